//! The teacher's top-k distributions written as shards by several machines: shard ranges are
//! whole scoring batches covering every sequence once; three shards scored by the real SmolLM2
//! teacher put back together are exactly the cache a run computes itself; and a missing,
//! overlapping, damaged or foreign shard, or one of another top-k, is refused in one line
//! naming it.

mod common;

use std::path::{Path, PathBuf};

use apprentice::backend::ComputeDevice;
use apprentice::distill::cache::ShardRange;
use apprentice::lm::config::LmExperimentConfig;
use apprentice::lm::logit_cache::{
    LogitCacheError, TopKLogits, read_logit_cache, tokens_hash, write_logit_cache,
};
use apprentice::lm::logit_shards::{
    ShardExpectation, logit_shard_range, read_logit_shards, write_logit_shard,
};
use apprentice::lm::teacher::Teacher;
use apprentice::lm::teacher_data::{teacher_distributions, tokenize_corpus};
use apprentice::lm::teacher_shard::{LmShardRequest, write_teacher_shard};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn shard_ranges_are_whole_batches_covering_every_sequence_once() {
    for sequences in [1usize, 7, 12, 13, 100] {
        for batch in [1, 4, 5] {
            let batches = sequences.div_ceil(batch);
            for count in 1..=batches.min(9) {
                let mut next = 0;
                for index in 0..count {
                    let range = logit_shard_range(index, count, sequences, batch).unwrap();
                    assert_eq!(range.start, next, "{sequences} / {batch} / {index}/{count}");
                    assert!(!range.is_empty());
                    assert_eq!(range.start % batch, 0, "starts on a batch");
                    next = range.end;
                }
                assert_eq!(next, sequences);
            }
            let message = logit_shard_range(0, batches + 1, sequences, batch).unwrap_err();
            assert!(message.contains("leave some empty"), "{message}");
        }
    }
    assert!(logit_shard_range(3, 3, 10, 2).is_err());
}

/// Synthetic distributions of `lengths.len()` sequences (`lengths[i]` positions each).
fn synthetic(lengths: &[usize], k: usize, vocab: usize, seed: u64) -> TopKLogits {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut store = TopKLogits::new(k, vocab);
    for &n in lengths {
        let logits: Vec<f32> = (0..n * vocab)
            .map(|_| rng.random_range(-5.0f32..5.0))
            .collect();
        store.push_sequence(&logits);
    }
    store
}

/// The store of sequences `range` of `all`.
fn slice(all: &TopKLogits, range: ShardRange) -> TopKLogits {
    let (first, last) = (all.offsets[range.start], all.offsets[range.end]);
    TopKLogits {
        k: all.k,
        vocab: all.vocab,
        offsets: all.offsets[range.start..=range.end]
            .iter()
            .map(|o| o - first)
            .collect(),
        indices: all.indices[first * all.k..last * all.k].to_vec(),
        log_probs: all.log_probs[first * all.k..last * all.k].to_vec(),
        log_rest: all.log_rest[first..last].to_vec(),
    }
}

fn one_line(error: LogitCacheError, names: &str) -> String {
    let message = error.to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(names), "{names} not in: {message}");
    message
}

#[test]
fn shards_read_back_as_the_whole_and_bad_folders_are_refused_naming_the_shard() {
    let lengths = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
    let (k, vocab) = (4, 30);
    let all = synthetic(&lengths, k, vocab, 7);
    let tokens = tokens_hash(&[vec![1, 2, 3], vec![4, 5]]);
    let expected = ShardExpectation {
        teacher_sha256: "teacher-a",
        tokens_sha256: &tokens,
        sequences: lengths.len(),
        k,
        vocab,
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |dir: &Path, index: usize, count: usize, teacher: &str| -> PathBuf {
        let range = logit_shard_range(index, count, lengths.len(), 3).unwrap();
        write_logit_shard(dir, &slice(&all, range), range, teacher, &tokens).unwrap()
    };
    let paths: Vec<PathBuf> = (0..3)
        .map(|i| write(dir.path(), i, 3, "teacher-a"))
        .collect();
    let (read, shards) = read_logit_shards(dir.path(), &expected).unwrap();
    assert_eq!(read, all);
    assert_eq!(shards, paths);
    // One shard holding everything reads back the same.
    let whole = tempfile::tempdir().unwrap();
    write(whole.path(), 0, 1, "teacher-a");
    assert_eq!(read_logit_shards(whole.path(), &expected).unwrap().0, all);
    // A shard is not a whole cache.
    let message = one_line(
        read_logit_cache(&paths[0], "teacher-a", &tokens).unwrap_err(),
        "teacher-logits-lm-",
    );
    assert!(message.contains("one shard"), "{message}");

    // A missing shard: in the middle (naming the shard after the gap), and at the end.
    let moved = dir.path().join("moved");
    std::fs::rename(&paths[1], &moved).unwrap();
    let message = one_line(
        read_logit_shards(dir.path(), &expected).unwrap_err(),
        &paths[2].display().to_string(),
    );
    assert!(message.contains("in no shard"), "{message}");
    std::fs::rename(&moved, &paths[1]).unwrap();
    std::fs::rename(&paths[2], &moved).unwrap();
    let message = one_line(
        read_logit_shards(dir.path(), &expected).unwrap_err(),
        &dir.path().display().to_string(),
    );
    assert!(message.contains("missing shards"), "{message}");
    std::fs::rename(&moved, &paths[2]).unwrap();

    // A stale shard of a two-shard split (sequences 0..6) overlaps the three-shard ones.
    let stale = write(dir.path(), 0, 2, "teacher-a");
    let message = one_line(
        read_logit_shards(dir.path(), &expected).unwrap_err(),
        &stale.display().to_string(),
    );
    assert!(message.contains("overlap"), "{message}");
    std::fs::remove_file(&stale).unwrap();

    // Another teacher's shard, named.
    let foreign = tempfile::tempdir().unwrap();
    for i in 0..3 {
        write(
            foreign.path(),
            i,
            3,
            if i == 2 { "teacher-b" } else { "teacher-a" },
        );
    }
    let message = one_line(
        read_logit_shards(foreign.path(), &expected).unwrap_err(),
        "teacher-logits-lm-0000000006-0000000010",
    );
    assert!(message.contains("another teacher"), "{message}");
    // Other sequences.
    let other = tokens_hash(&[vec![1, 2, 3], vec![4, 6]]);
    let message = one_line(
        read_logit_shards(
            dir.path(),
            &ShardExpectation {
                tokens_sha256: &other,
                ..expected
            },
        )
        .unwrap_err(),
        "teacher-logits-lm-",
    );
    assert!(message.contains("other token sequences"), "{message}");
    // Another top-k.
    let message = one_line(
        read_logit_shards(dir.path(), &ShardExpectation { k: 5, ..expected }).unwrap_err(),
        "teacher-logits-lm-",
    );
    assert!(message.contains("top 4"), "{message}");
    // A whole cache file among the shards is not taken for one.
    let stray = dir.path().join("teacher-logits-lm-whole.safetensors");
    write_logit_cache(&stray, &all, "teacher-a", &tokens).unwrap();
    let message = one_line(
        read_logit_shards(dir.path(), &expected).unwrap_err(),
        "teacher-logits-lm-whole",
    );
    assert!(message.contains("not a shard"), "{message}");
    std::fs::remove_file(&stray).unwrap();

    // A damaged shard: a flipped byte in its tensors, then a truncated one.
    let mut bytes = std::fs::read(&paths[1]).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0x20;
    std::fs::write(&paths[1], &bytes).unwrap();
    let message = one_line(
        read_logit_shards(dir.path(), &expected).unwrap_err(),
        &paths[1].display().to_string(),
    );
    assert!(message.contains("checksum"), "{message}");
    std::fs::write(&paths[1], &bytes[..bytes.len() / 2]).unwrap();
    one_line(
        read_logit_shards(dir.path(), &expected).unwrap_err(),
        &paths[1].display().to_string(),
    );
    std::fs::write(&paths[1], &bytes[..20]).unwrap();
    one_line(
        read_logit_shards(dir.path(), &expected).unwrap_err(),
        &paths[1].display().to_string(),
    );
}

const TEXTS: [&str; 11] = [
    "A funny, warm and clever film.",
    "Dull and far too long.",
    "The cast is wonderful and the story moves along at a fine pace.",
    "I laughed once, maybe twice.",
    "A mess of a movie with no heart.",
    "Beautifully shot, but empty inside.",
    "One of the best films of the year.",
    "Predictable from start to finish.",
    "The actors seem to be having fun, even if we are not.",
    "Too loud, too long, too silly.",
    "A small gem worth seeking out.",
];

fn tiny_config(data: &Path, corpus: &Path) -> LmExperimentConfig {
    let text = format!(
        r#"
name = "tiny-shards"
[lm]
teacher = "{}"
max_len = 10
top_k = 5
score_batch = 3
[corpus]
path = "{}"
[student]
layers = 1
hidden = 16
heads = 2
kv_heads = 1
ffn = 32
[train]
steps = 1
[[objectives]]
name = "kd"
kind = "forward_kl"
"#,
        data.join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
            .display(),
        corpus.display()
    );
    LmExperimentConfig::from_toml(&text, "tiny-shards.toml").unwrap()
}

#[test]
fn three_teacher_shards_are_exactly_the_runs_own_cache() {
    let Some(data) = common::shared_data("three_teacher_shards_are_exactly_the_runs_own_cache")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("texts.txt");
    std::fs::write(&corpus, TEXTS.join("\n")).unwrap();
    let config = tiny_config(&data, &corpus);
    let device = ComputeDevice::cpu();

    // What a run computes itself: every sequence, in batches of score_batch.
    let teacher = Teacher::open(&config.lm.teacher, &device.inference()).unwrap();
    let sha = apprentice::lm::logit_cache::file_hash(&config.lm.teacher).unwrap();
    let (sequences, dropped) = tokenize_corpus(&teacher, &TEXTS.map(String::from), 10).unwrap();
    assert_eq!((sequences.len(), dropped), (TEXTS.len(), 0));
    let own_path = dir.path().join("teacher-logits.safetensors");
    let (own, reused, _) = teacher_distributions(
        &teacher,
        &sha,
        &sequences,
        5,
        3,
        &own_path,
        None,
        &mut |_| {},
    )
    .unwrap();
    assert!(!reused);
    assert_eq!(own.sequences(), TEXTS.len());

    // Three machines, one shard each.
    let shards = dir.path().join("shards");
    let mut ranges = Vec::new();
    for index in 0..3 {
        let request = LmShardRequest {
            teacher: None,
            shard: Some((index, 3)),
            out: shards.clone(),
        };
        let written = write_teacher_shard(&config, &request, &device, &mut |_| {}).unwrap();
        assert_eq!(written.sequences, TEXTS.len());
        assert_eq!(written.teacher_sha256, sha);
        assert_eq!(written.tokens_sha256, tokens_hash(&sequences));
        ranges.push((written.range.start, written.range.end));
    }
    // 11 sequences in 4 batches of 3: shards of 1, 1 and 2 batches.
    assert_eq!(ranges, vec![(0, 3), (3, 6), (6, 11)]);

    // The run given the shard folder reads them, and they are its own cache exactly.
    let elsewhere = dir.path().join("unused.safetensors");
    let (read, reused, _) = teacher_distributions(
        &teacher,
        &sha,
        &sequences,
        5,
        3,
        &elsewhere,
        Some(&shards),
        &mut |_| {},
    )
    .unwrap();
    assert!(reused);
    assert!(!elsewhere.exists(), "nothing is recomputed");
    assert_eq!(read, own);
    assert_eq!(
        read,
        read_logit_cache(&own_path, &sha, &tokens_hash(&sequences)).unwrap()
    );

    // A shard folder that cannot serve the run stops it, naming the shard.
    std::fs::remove_file(shards.join("teacher-logits-lm-0000000003-0000000006.safetensors"))
        .unwrap();
    let error = teacher_distributions(
        &teacher,
        &sha,
        &sequences,
        5,
        3,
        &elsewhere,
        Some(&shards),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("sequences 3..6 are in no shard")
            && error.contains("teacher-logits-lm-0000000006-0000000011"),
        "{error}"
    );
    let error = teacher_distributions(
        &teacher,
        &sha,
        &sequences,
        8,
        3,
        &elsewhere,
        Some(&shards),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("top 5") && error.contains("teacher-logits-lm-"),
        "{error}"
    );
    assert!(!elsewhere.exists());
}

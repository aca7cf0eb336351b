//! The teacher's top-k distributions: the kept tokens and masses equal a float64 softmax, the
//! reconstructed batch gives exactly the kept probabilities, the file reads back equal, and a
//! damaged file or one written for another teacher or other sequences is refused in one line.

use apprentice::lm::logit_cache::{
    TopKLogits, read_logit_cache, tokens_hash, top_k_row, write_logit_cache,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn logits(rows: usize, vocab: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows * vocab)
        .map(|_| rng.random_range(-6.0f32..6.0))
        .collect()
}

fn softmax64(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = row.iter().map(|&l| (l as f64 - max).exp()).collect();
    let total: f64 = e.iter().sum();
    e.iter().map(|v| v / total).collect()
}

#[test]
fn the_top_k_and_the_rest_match_a_float64_softmax() {
    let vocab = 50;
    for (seed, row) in logits(20, vocab, 1).chunks(vocab).enumerate() {
        let p = softmax64(row);
        let (ids, log_probs, log_rest) = top_k_row(row, 5);
        let mut order: Vec<usize> = (0..vocab).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        assert_eq!(
            ids,
            order[..5].iter().map(|&i| i as u32).collect::<Vec<_>>(),
            "row {seed}"
        );
        for (&id, &lp) in ids.iter().zip(&log_probs) {
            assert!((lp as f64 - p[id as usize].ln()).abs() < 1e-5);
        }
        let rest: f64 = order[5..].iter().map(|&i| p[i]).sum();
        assert!((log_rest as f64 - rest.ln()).abs() < 1e-5);
    }
}

#[test]
fn a_dense_batch_gives_the_kept_probabilities_and_spreads_the_rest() {
    let vocab = 30;
    let mut store = TopKLogits::new(4, vocab);
    let a = logits(3, vocab, 2);
    let b = logits(5, vocab, 3);
    store.push_sequence(&a);
    store.push_sequence(&b);
    assert_eq!(store.sequences(), 2);
    assert_eq!(store.offsets, vec![0, 3, 8]);
    // Sequence 0 padded to 5 positions, after sequence 1.
    let dense = store.dense_batch(&[1, 0], 5);
    assert_eq!(dense.len(), 2 * 5 * vocab);
    for (r, (source, len)) in [(&b, 5), (&a, 3)].into_iter().enumerate() {
        for i in 0..5 {
            let row = &dense[(r * 5 + i) * vocab..(r * 5 + i + 1) * vocab];
            if i >= len {
                assert!(row.iter().all(|&v| v == 0.0), "padding is zero");
                continue;
            }
            let truth = softmax64(&source[i * vocab..(i + 1) * vocab]);
            let rebuilt = softmax64(row);
            let (ids, _, _) = top_k_row(&source[i * vocab..(i + 1) * vocab], 4);
            for &id in &ids {
                assert!((rebuilt[id as usize] - truth[id as usize]).abs() < 1e-6);
            }
            let rest: f64 = (0..vocab)
                .filter(|c| !ids.contains(&(*c as u32)))
                .map(|c| truth[c])
                .sum();
            let spread = rest / (vocab - 4) as f64;
            for c in (0..vocab).filter(|c| !ids.contains(&(*c as u32))) {
                assert!((rebuilt[c] - spread).abs() < 1e-6);
            }
        }
    }
}

#[test]
fn the_file_reads_back_and_refuses_other_teachers_sequences_and_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("teacher-logits.safetensors");
    let vocab = 40;
    let mut store = TopKLogits::new(6, vocab);
    store.push_sequence(&logits(4, vocab, 5));
    store.push_sequence(&logits(2, vocab, 6));
    let sequences = vec![vec![1u32, 2, 3, 4, 5], vec![7, 8, 9]];
    let tokens = tokens_hash(&sequences);
    write_logit_cache(&path, &store, "teacher-a", &tokens).unwrap();
    assert_eq!(
        read_logit_cache(&path, "teacher-a", &tokens).unwrap(),
        store
    );

    let one_line = |e: apprentice::lm::logit_cache::LogitCacheError| {
        let message = e.to_string();
        assert!(!message.contains('\n'));
        assert!(message.contains("teacher-logits.safetensors"), "{message}");
        message
    };
    let message = one_line(read_logit_cache(&path, "teacher-b", &tokens).unwrap_err());
    assert!(message.contains("another teacher"), "{message}");
    let other = tokens_hash(&[vec![1, 2, 3, 4, 5], vec![7, 8, 10]]);
    assert_ne!(other, tokens);
    let message = one_line(read_logit_cache(&path, "teacher-a", &other).unwrap_err());
    assert!(message.contains("other token sequences"), "{message}");

    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let message = one_line(read_logit_cache(&path, "teacher-a", &tokens).unwrap_err());
    assert!(message.contains("checksum"), "{message}");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    one_line(read_logit_cache(&path, "teacher-a", &tokens).unwrap_err());
    std::fs::write(&path, b"not a cache").unwrap();
    one_line(read_logit_cache(&path, "teacher-a", &tokens).unwrap_err());
}

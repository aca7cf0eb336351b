//! `apprentice cache-teacher --shard i/N` on a tiny language-model experiment (the real
//! SmolLM2 teacher, eleven short texts): three shards written one by one, a run reading them
//! with `--teacher-cache` gets the numbers of a run that scores the corpus itself, and a
//! missing shard or a bad option is one line.

mod cli_common;
mod shared_data;

use cli_common::{apprentice, only_run_folder, text};
use shared_data::shared_data;

use std::path::Path;

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

fn tiny_config(corpus: &Path) -> String {
    format!(
        r#"
name = "tiny-lm-shards"
seeds = [0]

[lm]
teacher = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
max_len = 10
held_out_fraction = 0.25
top_k = 5
score_batch = 3
eval_every = 0
curve_texts = 2
speed_tokens = 0

[corpus]
path = "{}"

[student]
layers = 1
hidden = 16
heads = 2
kv_heads = 1
ffn = 32

[train]
steps = 2
batch_size = 4

[[objectives]]
name = "kd"
kind = "forward_kl"
"#,
        corpus.display()
    )
}

fn results(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(only_run_folder(out).join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_run_reads_the_shards_three_machines_wrote() {
    let Some(data) = shared_data("a_run_reads_the_shards_three_machines_wrote") else {
        return;
    };
    let data = data.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("texts.txt");
    std::fs::write(&corpus, TEXTS.join("\n")).unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, tiny_config(&corpus)).unwrap();
    let config = config.to_str().unwrap();
    let shards = dir.path().join("shards");
    let shards = shards.to_str().unwrap();
    let cache = |extra: &[&str]| {
        let mut args = vec!["cache-teacher", config, "--data", data, "--out", shards];
        args.extend(extra);
        apprentice(&args)
    };
    for (index, range) in ["0..3", "3..6", "6..11"].iter().enumerate() {
        let output = cache(&["--shard", &format!("{index}/3")]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stdout = text(&output.stdout);
        assert!(
            stdout.contains("teacher-logits-lm-")
                && stdout.contains(&format!("sequences {range} of 11")),
            "{stdout}"
        );
    }
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            config,
            "--data",
            data,
            "--out",
            out.to_str().unwrap(),
            "--no-checkpoints",
        ];
        args.extend(extra);
        apprentice(&args)
    };

    // The run reading the shards and the run scoring the corpus itself agree exactly.
    let from_shards = dir.path().join("from-shards");
    let output = run(&from_shards, &["--teacher-cache", shards]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("teacher cache: 3 shards from"), "{stderr}");
    let own = dir.path().join("own");
    let output = run(&own, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (sharded, computed) = (results(&from_shards), results(&own));
    assert_eq!(sharded["lm"]["cache"]["reused"], true);
    assert_eq!(computed["lm"]["cache"]["reused"], false);
    assert_eq!(
        sharded["lm"]["cache"]["positions"],
        computed["lm"]["cache"]["positions"]
    );
    for model in 0..2 {
        assert_eq!(
            sharded["models"][model]["test"], computed["models"][model]["test"],
            "model {model}"
        );
        assert_eq!(
            sharded["lm"]["models"][model]["curves"], computed["lm"]["models"][model]["curves"],
            "model {model}"
        );
    }

    // One line each: a missing shard, options a language-model cache does not take.
    std::fs::remove_file(
        Path::new(shards).join("teacher-logits-lm-0000000003-0000000006.safetensors"),
    )
    .unwrap();
    let missing = run(
        &dir.path().join("missing"),
        &["--teacher-cache", shards, "--quiet"],
    );
    for (output, expected) in [
        (&missing, "teacher-logits-lm-0000000006-0000000011"),
        (&cache(&["--shard", "4/5"]), "4/5"),
        (&cache(&["--seed", "1"]), "--seed"),
        (&cache(&["--top-k", "9"]), "--top-k"),
    ] {
        let message = text(&output.stderr);
        assert!(!output.status.success(), "{message}");
        assert_eq!(message.trim().lines().count(), 1, "{message}");
        assert!(message.contains(expected), "{expected} not in: {message}");
    }
    assert!(text(&missing.stderr).contains("sequences 3..6 are in no shard"));
}

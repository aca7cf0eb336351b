//! `apprentice export` on a text run's students: the command tells them from image
//! checkpoints by their run's experiment, writes the graph the library writes (whose logits
//! `apprentice/tests/onnx_export_text.rs` checks against apprentice's) and names the tokenizer
//! its ids come from; a run of a tiny text experiment on the real encoder (shared data) and a
//! run folder written by the run store (no data needed) alike.

mod cli_common;
mod shared_data;

use cli_common::{apprentice, only_run_folder, text, write_text_run};
use shared_data::shared_data;

use std::path::{Path, PathBuf};

use apprentice::text::onnx_export::export_text_checkpoint;

/// Exports `checkpoint` with the command and checks that it wrote what the library writes;
/// returns the command's output.
fn export_like_the_library(checkpoint: &Path, folder: &Path) -> String {
    let stem = checkpoint.file_stem().unwrap().to_str().unwrap();
    let out = folder.join(format!("{stem}.onnx"));
    let output = apprentice(&[
        "export",
        checkpoint.to_str().unwrap(),
        "--onnx",
        out.to_str().unwrap(),
    ]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let reference = folder.join(format!("{stem}.library.onnx"));
    export_text_checkpoint(checkpoint, &reference).unwrap();
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap(),
        "{stem}: the command wrote another graph than the library"
    );
    stdout
}

/// 60 texts, one seed, a bag and a CNN student of one epoch: about a second.
const TINY_RUN: &str = r#"
name = "tiny-text"
seeds = [0]

[text]
model = "all-MiniLM-L6-v2"
cache_dir = "CACHE"
bench_seconds = 0

[data]
path = "rotten-tomatoes/rotten_tomatoes_corpus_full.csv.bz2"
text_column = "text"
label_column = "category"
classes = ["rotten", "fresh"]
drop_labels = ["plot"]
max_rows = 60
validation_fraction = 0.2
test_fraction = 0.2

[teacher]
hidden = []

[teacher.train]
epochs = 2
batch_size = 16

[students]
kinds = ["bag", "cnn"]
embedding_dim = 8
channels = 8
max_tokens = 16

[students.train]
epochs = 1
batch_size = 16
"#;

#[test]
fn a_tiny_text_runs_students_are_exported_with_their_tokenizer_named() {
    let Some(data) =
        shared_data("a_tiny_text_runs_students_are_exported_with_their_tokenizer_named")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny-text.toml");
    let cache = dir.path().join("cache");
    std::fs::write(&config, TINY_RUN.replace("CACHE", cache.to_str().unwrap())).unwrap();
    let out = dir.path().join("runs");
    let output = apprentice(&[
        "run",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let seed = only_run_folder(&out).join("seed-0");
    let tokenizer = data.join("all-MiniLM-L6-v2/tokenizer.json");
    for (model, classes) in [("cnn-kd", 2), ("bag", 2), ("bag-embed", 2)] {
        let stdout =
            export_like_the_library(&seed.join(format!("{model}.safetensors")), dir.path());
        println!("{stdout}");
        assert!(
            stdout.contains(&format!("{model} (")) && stdout.contains("input_ids"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("logits [N, {classes}]")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("tokenizer {}", tokenizer.display())),
            "{stdout}"
        );
        assert!(stdout.contains("at most 16 pieces"), "{stdout}");
    }
}

/// A text run's folder as the run store writes it, with an encoder folder's `config.json`.
fn write_run(root: &Path) -> PathBuf {
    let encoder = root.join("encoder");
    std::fs::create_dir_all(&encoder).unwrap();
    std::fs::write(
        encoder.join("config.json"),
        r#"{"model_type": "bert", "vocab_size": 40, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 32,
            "pad_token_id": 1}"#,
    )
    .unwrap();
    write_text_run(root)
}

#[test]
fn a_run_folders_cnn_is_exported_and_other_files_are_refused_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_run(dir.path());
    let stdout = export_like_the_library(&run.join("seed-0/cnn-kd.safetensors"), dir.path());
    assert!(stdout.contains("logits [N, 3]"), "{stdout}");
    let tokenizer = dir.path().join("encoder/tokenizer.json");
    assert!(
        stdout.contains(&format!("tokenizer {}", tokenizer.display())),
        "{stdout}"
    );
    assert!(stdout.contains("pad id 1"), "{stdout}");

    // The same weights outside a run folder: neither kind of checkpoint.
    let stray = dir.path().join("stray.safetensors");
    std::fs::copy(run.join("seed-0/cnn-kd.safetensors"), &stray).unwrap();
    let out = dir.path().join("stray.onnx");
    let output = apprentice(&[
        "export",
        stray.to_str().unwrap(),
        "--onnx",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("stray.safetensors") && stderr.contains("neither"),
        "{stderr}"
    );
    assert!(!out.exists());
}

//! What the command-line tests of text and language-model runs share: running the binary,
//! the only run folder of an output folder, a tiny random encoder and a text run's folder
//! written without training. Each test file uses part of it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use apprentice::backend::ComputeDevice;
use apprentice::text::bert::{Bert, BertConfig};
use apprentice::text::classifier::{BertClassifier, ClassifierPooling};
use apprentice::text::classifier_folder::save_classifier;
use apprentice::text::config::{StudentKind, StudentsConfig};
use apprentice::text::run_store::TextRunStore;
use apprentice::text::students::TextStudent;

/// Runs `apprentice args` to completion.
pub fn apprentice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(args)
        .output()
        .expect("the apprentice binary runs")
}

/// Captured output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The only run folder under `out`.
pub fn only_run_folder(out: &Path) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.pop().unwrap()
}

/// A random 2-layer BERT of width 16 with all-MiniLM-L6-v2's vocabulary and tokenizer files.
pub fn tiny_encoder(data: &Path, folder: &Path) {
    let config: BertConfig = serde_json::from_value(serde_json::json!({
        "vocab_size": 30522, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64
    }))
    .unwrap();
    let device = ComputeDevice::cpu().inference();
    device.seed(5);
    let model = BertClassifier::new(
        Bert::random(&config, &device),
        &config,
        2,
        ClassifierPooling::Cls,
        &device,
    );
    let labels = ["a".to_string(), "b".to_string()];
    let source = data.join("all-MiniLM-L6-v2");
    save_classifier(&model, &config, &labels, Some(&source), folder).unwrap();
}

/// A text run's folder as the run store writes it, without an encoder or data: enough for
/// the errors that come before either is read.
pub fn write_text_run(root: &Path) -> PathBuf {
    let run = root.join("runs/tiny-20261203-000000");
    std::fs::create_dir_all(&run).unwrap();
    let students = "kinds = [\"cnn\"]\nembedding_dim = 4\nchannels = 5\nmax_tokens = 12\n\
                    [train]\nepochs = 1\n";
    std::fs::write(
        run.join("config.toml"),
        format!(
            "name = \"tiny\"\ndata_root = \"{}\"\n[text]\nmodel = \"encoder\"\n[data]\n\
             path = \"texts.csv\"\n[teacher]\n[teacher.train]\nepochs = 1\n[students]\n{}",
            root.display(),
            students.replace("[train]", "[students.train]")
        ),
    )
    .unwrap();
    let config: StudentsConfig = toml::from_str(students).unwrap();
    let device = ComputeDevice::cpu().inference();
    let cnn = TextStudent::new(StudentKind::Cnn, &config, 40, 3, None, 7, &device);
    TextRunStore::new(Some(&run))
        .save_module(0, "cnn-kd", &cnn)
        .unwrap();
    run
}

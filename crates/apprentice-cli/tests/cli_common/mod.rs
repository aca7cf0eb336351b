//! What the command-line tests of text and language-model runs share: running the binary,
//! the only run folder of an output folder, a tiny random encoder, a text run's config on it
//! and a text run's folder written without training. Each test file uses part of it.

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

/// A text run on the tiny encoder at `model`: two seeds, 300 snippets of which 160 train, with
/// `teacher` (a `[teacher]` table such as [`FINETUNE`]) and shallow, narrow, bag and CNN
/// students of a few epochs.
pub fn text_config(model: &Path, teacher: &str) -> String {
    format!(
        r#"
name = "tiny-resume"
seeds = [0, 1]

[text]
model = "{model}"
cache_dir = ""
bench_seconds = 0.0

[data]
path = "rotten-tomatoes/rotten_tomatoes_corpus_full.csv.bz2"
text_column = "text"
label_column = "category"
classes = ["rotten", "fresh"]
drop_labels = ["plot"]
max_rows = 300
max_train = 160
validation_fraction = 0.15
test_fraction = 0.25

{teacher}

[students]
kinds = ["shallow", "narrow", "bag", "cnn"]
embedding_dim = 8
hidden = [8]
channels = 8
max_tokens = 32

[students.train]
epochs = 2
batch_size = 16

[students.shallow]
layers = [1]

[students.shallow.train]
epochs = 2
batch_size = 16
lr = 1e-3
max_length = 32

[students.narrow]
layers = 1
hidden = 8
heads = 2

[students.narrow.train]
epochs = 2
batch_size = 16
lr = 1e-3
max_length = 32
"#,
        model = model.display()
    )
}

/// The teacher of [`text_config`]: the tiny encoder fine-tuned for 3 epochs.
pub const FINETUNE: &str = r#"
[teacher]
kind = "finetune"

[teacher.finetune]
epochs = 3
batch_size = 16
lr = 1e-3
max_length = 32
"#;

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

//! `apprentice export MODEL.hf --onnx OUT.onnx` writes a BERT classifier folder as ONNX and
//! says what the graph takes; a folder that is not a classifier is one line naming its file.

use std::path::Path;
use std::process::{Command, Output};

use apprentice::backend::ComputeDevice;
use apprentice::text::bert::{Bert, BertConfig};
use apprentice::text::classifier::{BertClassifier, ClassifierPooling};
use apprentice::text::classifier_folder::save_classifier;

fn export(model: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .arg("export")
        .arg(model)
        .arg("--onnx")
        .arg(out)
        .output()
        .unwrap()
}

fn saved_classifier(dir: &Path) {
    let config: BertConfig = serde_json::from_value(serde_json::json!({
        "vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16, "max_position_embeddings": 12
    }))
    .unwrap();
    let device = ComputeDevice::cpu().inference();
    device.seed(3);
    let model = BertClassifier::new(
        Bert::random(&config, &device),
        &config,
        2,
        ClassifierPooling::Cls,
        &device,
    );
    let labels = ["rotten".to_string(), "fresh".to_string()];
    save_classifier(&model, &config, &labels, None, dir).unwrap();
}

#[test]
fn a_classifier_folder_is_exported_and_described() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("student.hf");
    saved_classifier(&dir);
    let out = root.path().join("student.onnx");
    let output = export(&dir, &out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("bert 1×8 (2 heads), cls head → 2")
            && stdout.contains("input_ids and attention_mask")
            && stdout.contains("(rotten, fresh)")
            && stdout.contains("at most 12 pieces"),
        "{stdout}"
    );
    assert!(std::fs::metadata(&out).unwrap().len() > 1000);
}

#[test]
fn a_folder_of_another_architecture_is_one_line() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("encoder");
    saved_classifier(&dir);
    let config = dir.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("BertForSequenceClassification", "GPT2LMHeadModel"),
    )
    .unwrap();
    let out = root.path().join("x.onnx");
    let output = export(&dir, &out);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("config.json") && stderr.contains("GPT2LMHeadModel"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn a_key_value_cache_is_refused_for_a_classifier() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("student.hf");
    saved_classifier(&dir);
    let out = root.path().join("student.onnx");
    let output = Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args([
            "export",
            dir.to_str().unwrap(),
            "--onnx",
            out.to_str().unwrap(),
            "--kv-cache",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--kv-cache") && stderr.contains("student.hf"),
        "{stderr}"
    );
    assert!(!out.exists());
}

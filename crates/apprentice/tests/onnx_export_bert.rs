//! BERT classifiers out to ONNX: a saved `BertForSequenceClassification` folder (the
//! fine-tuned teacher, a transformer student, or a folder fine-tuned elsewhere) exported by
//! `apprentice export` gives apprentice's logits in tract (here, on padded batches with junk
//! ids at padded positions, for the pooler head and for mean pooling) and in onnxruntime and
//! `transformers` (the committed fixture of `fixtures/onnx/make_bert_reference.py`, which loads
//! the committed folder with `BertForSequenceClassification` and the exported graph with
//! onnxruntime); and at full size, all-MiniLM-L6-v2 with a classification head on real texts.

mod common;

use common::onnx::{FixtureJson, fixture_dir, max_diff, padded_batch, tract_file_logits, unpadded};

use std::path::Path;

use apprentice::backend::ComputeDevice;
use apprentice::onnx::OnnxError;
use apprentice::text::PretrainedEncoder;
use apprentice::text::bert::{Bert, BertConfig};
use apprentice::text::classifier::{BertClassifier, ClassifierPooling};
use apprentice::text::classifier_folder::{load_classifier, save_classifier};
use apprentice::text::onnx_export::{ExportedStudent, export_student};

const VOCAB: usize = 40;
const PAD: u32 = 0;
const POSITIONS: usize = 24;

fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": VOCAB, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 32,
        "max_position_embeddings": POSITIONS, "initializer_range": 0.5, "pad_token_id": PAD
    }))
    .unwrap()
}

/// A random classifier of `labels` classes, saved as a model folder in `dir`.
fn saved_classifier(dir: &Path, pooling: ClassifierPooling, labels: usize, seed: u64) {
    let config = tiny_config();
    let device = ComputeDevice::cpu().inference();
    device.seed(seed);
    let model = BertClassifier::new(
        Bert::random(&config, &device),
        &config,
        labels,
        pooling,
        &device,
    );
    let names: Vec<String> = (0..labels).map(|i| format!("class{i}")).collect();
    save_classifier(&model, &config, &names, None, dir).unwrap();
}

/// Texts of lengths 5, 1, 12, 3 and 9 (each `[CLS] … [SEP]`-free: any ids do), from `salt`.
fn texts(salt: u32) -> Vec<Vec<u32>> {
    [5usize, 1, 12, 3, 9]
        .iter()
        .enumerate()
        .map(|(row, &len)| {
            (0..len as u32)
                .map(|i| 1 + (i * 11 + row as u32 * 7 + salt) % (VOCAB as u32 - 1))
                .collect()
        })
        .collect()
}

/// The texts padded to the longest, with ids other than the pad id at padded positions,
/// which the attention mask must make irrelevant.
fn graph_inputs(texts: &[Vec<u32>]) -> (Vec<i64>, Vec<i64>, usize) {
    padded_batch(texts, |row, column| ((row * 5 + column * 3) % VOCAB) as i64)
}

/// apprentice's logits of the folder's classifier, through its own padded batches.
fn apprentice_logits(dir: &Path, texts: &[Vec<u32>]) -> Vec<f32> {
    let device = ComputeDevice::cpu().inference();
    let loaded = load_classifier(dir, &device).unwrap();
    loaded.model.logits(texts, PAD, POSITIONS, 2, &device)
}

#[test]
fn exported_classifiers_give_apprentices_logits_in_tract() {
    let root = tempfile::tempdir().unwrap();
    for (pooling, labels, seed) in [
        (ClassifierPooling::Cls, 3, 5),
        (ClassifierPooling::Mean, 2, 6),
    ] {
        let dir = root.path().join(format!("{pooling:?}.hf"));
        saved_classifier(&dir, pooling, labels, seed);
        let out = root.path().join(format!("{pooling:?}.onnx"));
        let ExportedStudent::Bert(summary) = export_student(&dir, &out).unwrap() else {
            panic!("a model folder is exported as a BERT classifier");
        };
        assert_eq!(summary.labels.len(), labels);
        assert_eq!(summary.max_positions, POSITIONS);
        assert!(
            summary.architecture.starts_with("bert 2×16 (4 heads)"),
            "{}",
            summary.architecture
        );
        // Two batches of other sizes and lengths through one file: both axes are dynamic.
        for salt in [1, 4] {
            let texts = texts(salt);
            let texts = if salt == 4 {
                texts[..3].to_vec()
            } else {
                texts
            };
            let (ids, mask, len) = graph_inputs(&texts);
            let expected = apprentice_logits(&dir, &texts);
            let spread = max_diff(&expected[..labels], &expected[labels..2 * labels]);
            assert!(
                spread > 1e-3,
                "{pooling:?}: the same logits for different texts"
            );
            let got = tract_file_logits(&out, &[&ids, &mask], texts.len(), len);
            let diff = max_diff(&expected, &got);
            println!("{pooling:?}, batch {salt}: max |tract − apprentice| = {diff:.2e}");
            assert!(diff <= 1e-4, "{pooling:?}: {diff}");
        }
    }
}

#[test]
fn folders_that_are_not_classifiers_are_refused_on_one_line() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model.hf");
    saved_classifier(&dir, ClassifierPooling::Cls, 2, 1);
    let out = root.path().join("out.onnx");

    // An encoder without a classification head (`BertModel`).
    let config_path = dir.join("config.json");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        config.replace("BertForSequenceClassification", "BertModel"),
    )
    .unwrap();
    let error = export_student(&dir, &out).unwrap_err().to_string();
    assert!(
        error.contains("config.json")
            && error.contains("unknown architecture")
            && !error.contains('\n'),
        "{error}"
    );
    assert!(!out.exists(), "nothing is written on error");

    // A classifier whose weights lack `classifier.weight`.
    std::fs::write(&config_path, &config).unwrap();
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "classifier.weight")
        .collect();
    safetensors::serialize_to_file(kept, None, &weights).unwrap();
    let error = export_student(&dir, &out).unwrap_err();
    assert!(matches!(error, OnnxError::Invalid { .. }), "{error}");
    let error = error.to_string();
    assert!(
        error.contains("model.safetensors") && error.contains("classifier.weight"),
        "{error}"
    );
}

// The onnxruntime and transformers fixture: a classifier from a fixed seed, saved as a model
// folder and exported by `write_bert_fixture`, then run by `make_bert_reference.py`.

/// Rewrites the fixture's folder and ONNX file; run it with `--ignored`, then the script.
#[test]
#[ignore = "writes the fixture files; run by hand before make_bert_reference.py"]
fn write_bert_fixture() {
    let dir = fixture_dir().join("bert-tiny");
    saved_classifier(&dir, ClassifierPooling::Cls, 3, 21);
    export_student(&dir, &fixture_dir().join("bert-tiny.onnx")).unwrap();
}

#[test]
fn onnxruntime_and_transformers_give_apprentices_logits() {
    let fixture = FixtureJson::read("bert-onnxruntime-logits.json");
    let (rows, len) = fixture.rows_and_length();
    let ids = fixture.ints("input_ids");
    let mask = fixture.ints("attention_mask");
    let texts = unpadded(&ids, &mask, rows, len);
    let onnxruntime = fixture.floats("onnxruntime_logits");
    let transformers = fixture.floats("transformers_logits");

    let dir = fixture_dir().join("bert-tiny");
    let ours = apprentice_logits(&dir, &texts);
    let tract = tract_file_logits(
        &fixture_dir().join("bert-tiny.onnx"),
        &[&ids, &mask],
        rows,
        len,
    );
    for (what, theirs, tolerance) in [
        ("onnxruntime", &onnxruntime, 1e-4),
        ("transformers", &transformers, 1e-4),
        ("tract", &tract, 1e-4),
    ] {
        let diff = max_diff(&ours, theirs);
        println!("max |{what} − apprentice| = {diff:.2e}");
        assert!(diff <= tolerance, "{what}: {diff}");
    }
    // Today's exporter still writes the committed graph's arithmetic.
    let scratch = tempfile::tempdir().unwrap();
    let fresh = scratch.path().join("bert-tiny.onnx");
    export_student(&dir, &fresh).unwrap();
    let diff = max_diff(&ours, &tract_file_logits(&fresh, &[&ids, &mask], rows, len));
    assert!(diff <= 1e-4, "a fresh export: {diff}");
}

#[test]
fn a_full_size_minilm_classifier_gives_apprentices_logits_on_real_texts() {
    let Some(data) =
        common::shared_data("a_full_size_minilm_classifier_gives_apprentices_logits_on_real_texts")
    else {
        return;
    };
    let source = data.join("all-MiniLM-L6-v2");
    let compute = ComputeDevice::cpu();
    let encoder = PretrainedEncoder::load(&source, &compute).unwrap();
    let device = compute.inference();
    device.seed(9);
    let model = BertClassifier::new(
        encoder.bert.clone(),
        &encoder.config,
        2,
        ClassifierPooling::Cls,
        &device,
    );
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("minilm-classifier.hf");
    let labels = ["rotten".to_string(), "fresh".to_string()];
    save_classifier(&model, &encoder.config, &labels, Some(&source), &dir).unwrap();
    let out = root.path().join("minilm.onnx");
    export_student(&dir, &out).unwrap();

    let texts = [
        "a gorgeous, witty, seductive movie.",
        "the film is strictly routine.",
        "an utterly charming and hilarious film that reminded me of the best of the genre, \
         with performances that never once strike a false note and a script that keeps \
         surprising you until the very last scene, long after you thought you knew where it \
         was going.",
        "bad.",
    ];
    let max_length = 64;
    let sequences: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            let mut ids = encoder.tokenizer.encode(t).unwrap();
            ids.truncate(max_length);
            ids
        })
        .collect();
    let ours = model.logits(
        &sequences,
        encoder.config.pad_token_id,
        max_length,
        4,
        &device,
    );
    let (ids, mask, len) = graph_inputs(&sequences);
    let tract = tract_file_logits(&out, &[&ids, &mask], sequences.len(), len);
    let diff = max_diff(&ours, &tract);
    // The new head's logits are small (BERT's initialisation), so the check is relative to
    // how much they differ between texts.
    let spread = (1..sequences.len())
        .map(|r| max_diff(&ours[..2], &ours[2 * r..2 * r + 2]))
        .fold(0.0, f32::max);
    println!(
        "all-MiniLM-L6-v2 + head, {len} pieces: max |tract − apprentice| = {diff:.2e}, \
         spread between texts {spread:.2e}"
    );
    assert!(
        diff <= 1e-4 && diff <= spread * 1e-3,
        "{diff} against a spread of {spread}"
    );
}

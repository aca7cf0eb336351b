//! A model folder with a missing file, a missing or mis-shaped tensor, an unknown architecture
//! or no `modules.json`: each gives a one-line error naming the file and what is wrong (or, for
//! `modules.json`, the documented default).

mod common;

use std::path::{Path, PathBuf};

use apprentice::backend::ComputeDevice;
use apprentice::text::{PretrainedEncoder, TextError};
use safetensors::tensor::{Dtype, TensorView};

const HIDDEN: usize = 8;
const INTERMEDIATE: usize = 16;
const POSITIONS: usize = 32;

/// The stored shape of every tensor of a one-layer BERT with the vocabulary of `vocab` pieces,
/// in Hugging Face's names and PyTorch's `[out, in]` layout.
fn tiny_tensors(vocab: usize) -> Vec<(String, Vec<usize>)> {
    let (h, i) = (HIDDEN, INTERMEDIATE);
    let mut list = vec![
        (
            "embeddings.word_embeddings.weight".to_string(),
            vec![vocab, h],
        ),
        (
            "embeddings.position_embeddings.weight".to_string(),
            vec![POSITIONS, h],
        ),
        (
            "embeddings.token_type_embeddings.weight".to_string(),
            vec![2, h],
        ),
        ("embeddings.LayerNorm.weight".to_string(), vec![h]),
        ("embeddings.LayerNorm.bias".to_string(), vec![h]),
    ];
    let layer = "encoder.layer.0";
    for (name, out, inp) in [
        ("attention.self.query", h, h),
        ("attention.self.key", h, h),
        ("attention.self.value", h, h),
        ("attention.output.dense", h, h),
        ("intermediate.dense", i, h),
        ("output.dense", h, i),
    ] {
        list.push((format!("{layer}.{name}.weight"), vec![out, inp]));
        list.push((format!("{layer}.{name}.bias"), vec![out]));
    }
    for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
        list.push((format!("{layer}.{name}.weight"), vec![h]));
        list.push((format!("{layer}.{name}.bias"), vec![h]));
    }
    list
}

/// Writes a safetensors file of `tensors`, with small deterministic values.
fn write_weights(path: &Path, tensors: &[(String, Vec<usize>)]) {
    let buffers: Vec<Vec<u8>> = tensors
        .iter()
        .enumerate()
        .map(|(t, (_, shape))| {
            let count: usize = shape.iter().product();
            (0..count)
                .flat_map(|k| (((k * 7 + t * 3) % 11) as f32 * 0.01 - 0.05).to_le_bytes())
                .collect()
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&buffers)
        .map(|((name, shape), bytes)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn tiny_config(model_type: &str) -> String {
    serde_json::json!({
        "model_type": model_type,
        "architectures": ["BertModel"],
        "vocab_size": 30522,
        "hidden_size": HIDDEN,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": POSITIONS,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "hidden_act": "gelu",
        "pad_token_id": 0
    })
    .to_string()
}

/// A one-layer model folder in a temporary directory, with the real folder's tokenizer.
fn tiny_folder(real: &Path, tensors: &[(String, Vec<usize>)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("tiny-bert");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(real.join("tokenizer.json"), folder.join("tokenizer.json")).unwrap();
    std::fs::write(folder.join("config.json"), tiny_config("bert")).unwrap();
    write_weights(&folder.join("model.safetensors"), tensors);
    (dir, folder)
}

fn load_error(folder: &Path) -> String {
    let error: TextError = PretrainedEncoder::load(folder, &ComputeDevice::cpu()).unwrap_err();
    let text = error.to_string();
    assert!(!text.contains('\n'), "one line expected: {text}");
    text
}

fn real_folder(test: &str) -> Option<PathBuf> {
    common::shared_data(test).map(|data| data.join("all-MiniLM-L6-v2"))
}

#[test]
fn a_tiny_folder_loads_and_embeds() {
    let Some(real) = real_folder("a_tiny_folder_loads_and_embeds") else {
        return;
    };
    let (_dir, folder) = tiny_folder(&real, &tiny_tensors(30522));
    let encoder = PretrainedEncoder::load(&folder, &ComputeDevice::cpu()).unwrap();
    // No modules.json and no sentence_bert_config.json: the defaults are said.
    assert_eq!(encoder.notes.len(), 2, "{:?}", encoder.notes);
    assert!(
        encoder.notes[0].contains("mean pooling and L2"),
        "{:?}",
        encoder.notes
    );
    assert_eq!(encoder.max_length, POSITIONS);
    let vectors = encoder
        .embed_texts(
            &["a short one", "and a somewhat longer second sentence"],
            2,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(vectors.len(), 2 * HIDDEN);
    for row in vectors.chunks(HIDDEN) {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "L2-normalised: {norm}");
    }
    assert_ne!(vectors[..HIDDEN], vectors[HIDDEN..]);
}

#[test]
fn a_mis_shaped_tensor_is_named_with_both_shapes() {
    let Some(real) = real_folder("a_mis_shaped_tensor_is_named_with_both_shapes") else {
        return;
    };
    let mut tensors = tiny_tensors(30522);
    let wrong = tensors
        .iter_mut()
        .find(|(name, _)| name == "encoder.layer.0.output.dense.weight")
        .unwrap();
    wrong.1 = vec![INTERMEDIATE, HIDDEN];
    let (_dir, folder) = tiny_folder(&real, &tensors);
    let error = load_error(&folder);
    assert!(error.contains("model.safetensors"), "{error}");
    assert!(
        error.contains("\"encoder.layer.0.output.dense.weight\""),
        "{error}"
    );
    assert!(
        error.contains("has shape [16, 8], expected [8, 16]"),
        "{error}"
    );
}

#[test]
fn a_missing_tensor_is_named() {
    let Some(real) = real_folder("a_missing_tensor_is_named") else {
        return;
    };
    let tensors: Vec<_> = tiny_tensors(30522)
        .into_iter()
        .filter(|(name, _)| name != "encoder.layer.0.attention.self.key.bias")
        .collect();
    let (_dir, folder) = tiny_folder(&real, &tensors);
    let error = load_error(&folder);
    assert!(error.contains("model.safetensors"), "{error}");
    assert!(
        error.contains("missing tensor \"encoder.layer.0.attention.self.key.bias\""),
        "{error}"
    );
}

#[test]
fn an_unknown_architecture_is_named() {
    let Some(real) = real_folder("an_unknown_architecture_is_named") else {
        return;
    };
    let (_dir, folder) = tiny_folder(&real, &tiny_tensors(30522));
    std::fs::write(folder.join("config.json"), tiny_config("gpt2")).unwrap();
    let error = load_error(&folder);
    assert!(error.contains("config.json"), "{error}");
    assert!(error.contains("model_type"), "{error}");
    assert!(error.contains("\"gpt2\""), "{error}");
}

#[test]
fn missing_files_are_named() {
    let Some(real) = real_folder("missing_files_are_named") else {
        return;
    };
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        let (_dir, folder) = tiny_folder(&real, &tiny_tensors(30522));
        std::fs::remove_file(folder.join(file)).unwrap();
        let error = load_error(&folder);
        assert!(error.contains(file), "{file}: {error}");
        assert!(error.contains("missing file"), "{file}: {error}");
    }
    let error = load_error(Path::new("no/such/model-folder"));
    assert!(error.contains("no/such/model-folder"), "{error}");
}

#[test]
fn without_modules_json_the_real_model_still_matches_its_reference() {
    let Some(real) = real_folder("without_modules_json_the_real_model_still_matches_its_reference")
    else {
        return;
    };
    // The real folder minus modules.json, its large file linked rather than copied.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("minilm");
    std::fs::create_dir(&folder).unwrap();
    for entry in std::fs::read_dir(&real).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        if path.is_file() && name != "modules.json" {
            std::os::unix::fs::symlink(&path, folder.join(name)).unwrap();
        }
    }
    let encoder = PretrainedEncoder::load(&folder, &ComputeDevice::cpu()).unwrap();
    assert_eq!(encoder.notes.len(), 1, "{:?}", encoder.notes);
    assert!(encoder.notes[0].contains("modules.json"));
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(real.join("reference-embeddings.json")).unwrap(),
    )
    .unwrap();
    let item = &reference["items"][0];
    let expected: Vec<f32> = serde_json::from_value(item["embedding"].clone()).unwrap();
    let ours = encoder
        .embed_texts(&[item["text"].as_str().unwrap()], 1, &mut |_| {})
        .unwrap();
    let difference = ours
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(difference <= 1e-5, "{difference}");
}

//! Student language models out to ONNX: the exported graph of a small llama decoder (tied and
//! untied output projection, grouped-query and plain attention) gives apprentice's next-token
//! logits at every position in tract, for batches of other sizes and lengths through one file.

use apprentice::backend::{ComputeDevice, to_host};
use apprentice::lm::llama::{Llama, LlamaConfig};
use apprentice::lm::onnx_export::llama_weights;
use apprentice::onnx::export_llama::llama_to_onnx_bytes;
use burn::nn::Initializer;
use burn::tensor::{Int, Tensor as BurnTensor, TensorData};
use tract_onnx::prelude::*;

const VOCAB: usize = 50;

fn config(kv_heads: usize, tied: bool) -> LlamaConfig {
    LlamaConfig {
        vocab_size: VOCAB,
        hidden: 16,
        layers: 2,
        heads: 4,
        kv_heads,
        ffn: 24,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        max_len: 20,
        tied,
    }
}

fn ids(rows: usize, len: usize, salt: usize) -> Vec<i64> {
    (0..rows * len)
        .map(|i| ((i * 7 + salt * 3 + i / len) % VOCAB) as i64)
        .collect()
}

fn tract_logits(bytes: &[u8], ids: &[i64], rows: usize, len: usize) -> Vec<f32> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .expect("tract reads the export")
        .into_optimized()
        .expect("tract optimises it")
        .into_runnable()
        .expect("tract plans it");
    let ids = Tensor::from_shape(&[rows, len], ids).unwrap();
    let outputs = model.run(tvec![ids.into()]).expect("tract runs it");
    outputs[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

#[test]
fn exported_decoders_give_apprentices_logits_in_tract() {
    for (kv_heads, tied) in [(2, true), (4, false)] {
        let config = config(kv_heads, tied);
        let device = ComputeDevice::cpu().inference();
        device.seed(kv_heads as u64);
        let init = Initializer::Normal {
            mean: 0.0,
            std: 0.3,
        };
        let model = Llama::new(&config, &init, &device);
        let weights = llama_weights(&model, config.rms_eps, config.max_len);
        let bytes = llama_to_onnx_bytes(&weights, "test decoder").unwrap();
        for (rows, len, salt) in [(2, 7, 1), (3, 20, 2), (1, 1, 3)] {
            let ids = ids(rows, len, salt);
            let expected = to_host(model.forward(BurnTensor::<2, Int>::from_data(
                TensorData::new(ids.clone(), [rows, len]),
                &device,
            )));
            let got = tract_logits(&bytes, &ids, rows, len);
            assert_eq!(got.len(), rows * len * VOCAB);
            let diff = expected
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let spread = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            println!(
                "kv_heads {kv_heads}, tied {tied}, [{rows} × {len}]: max |tract − apprentice| = \
                 {diff:.2e} (largest logit {spread:.2})"
            );
            assert!(spread > 0.1, "logits too small to compare");
            assert!(diff <= 1e-4, "kv_heads {kv_heads}, tied {tied}: {diff}");
        }
    }
}

// The onnxruntime and transformers fixture: a decoder from a fixed seed, exported by
// `write_llama_fixture`, then run by `fixtures/onnx/make_llama_reference.py` in onnxruntime
// and, with the graph's weights loaded into `LlamaForCausalLM`, in transformers.

fn fixture_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

fn fixture_model() -> (LlamaConfig, Llama) {
    let config = config(2, true);
    let device = ComputeDevice::cpu().inference();
    device.seed(41);
    let init = Initializer::Normal {
        mean: 0.0,
        std: 0.3,
    };
    let model = Llama::new(&config, &init, &device);
    // burn draws a parameter's values when it is first read: read them all now, in one order.
    let _ = llama_weights(&model, config.rms_eps, config.max_len);
    (config, model)
}

/// Rewrites the fixture's ONNX file and configuration; run it with `--ignored`, then the script.
#[test]
#[ignore = "writes the fixture files; run by hand before make_llama_reference.py"]
fn write_llama_fixture() {
    let (config, model) = fixture_model();
    let bytes = llama_to_onnx_bytes(
        &llama_weights(&model, config.rms_eps, config.max_len),
        "llama-tiny",
    )
    .unwrap();
    std::fs::write(fixture_dir().join("llama-tiny.onnx"), bytes).unwrap();
    std::fs::write(
        fixture_dir().join("llama-tiny-config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
}

#[test]
fn onnxruntime_and_transformers_give_apprentices_next_token_logits() {
    let text = std::fs::read_to_string(fixture_dir().join("llama-onnxruntime-logits.json"))
        .expect("the committed fixture");
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let numbers = |key: &str| -> Vec<f64> {
        fixture[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: an array"))
            .iter()
            .map(|x| x.as_f64().expect("a number"))
            .collect()
    };
    let shape = numbers("shape");
    let (rows, len) = (shape[0] as usize, shape[1] as usize);
    let ids: Vec<i64> = numbers("input_ids").iter().map(|&v| v as i64).collect();
    let (_, model) = fixture_model();
    let device = ComputeDevice::cpu().inference();
    let ours = to_host(model.forward(BurnTensor::<2, Int>::from_data(
        TensorData::new(ids.clone(), [rows, len]),
        &device,
    )));
    let committed = std::fs::read(fixture_dir().join("llama-tiny.onnx")).unwrap();
    let tract = tract_logits(&committed, &ids, rows, len);
    for (what, theirs) in [
        ("onnxruntime", numbers("onnxruntime_logits")),
        ("transformers", numbers("transformers_logits")),
        ("tract", tract.iter().map(|&v| f64::from(v)).collect()),
    ] {
        let diff = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0f64, f64::max);
        println!("max |{what} − apprentice| = {diff:.2e}");
        assert_eq!(theirs.len(), ours.len(), "{what}");
        assert!(diff <= 1e-4, "{what}: {diff}");
    }
}

//! Student language models out to ONNX: the exported graph of a small llama decoder (tied and
//! untied output projection, grouped-query and plain attention) gives apprentice's next-token
//! logits at every position in tract, for batches of other sizes and lengths through one file;
//! so does a decoder of SmolLM2's real shape and weights (its first and last layers), with and
//! without the key/value cache.

mod common;

use common::onnx::{
    FixtureJson, fixture_dir, floats_of, int_matrix, max_diff, tract_logits, tract_plan,
};

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
            let got = tract_logits(&tract_plan(&bytes), &[&ids], rows, len);
            assert_eq!(got.len(), rows * len * VOCAB);
            let diff = max_diff(&expected, &got);
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
// `write_llama_fixture` (with and without a key/value cache), then run by
// `fixtures/onnx/make_llama_reference.py` in onnxruntime (the cached graph on the prompt's
// first part, then the rest) and, with the graph's weights loaded into `LlamaForCausalLM`, in
// transformers.

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
    let cached = apprentice::onnx::export_llama::llama_to_onnx_with_cache_bytes(
        &llama_weights(&model, config.rms_eps, config.max_len),
        "llama-tiny with a key/value cache",
    )
    .unwrap();
    std::fs::write(fixture_dir().join("llama-tiny-cached.onnx"), cached).unwrap();
    std::fs::write(
        fixture_dir().join("llama-tiny-config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
}

#[test]
fn onnxruntime_and_transformers_give_apprentices_next_token_logits() {
    let fixture = FixtureJson::read("llama-onnxruntime-logits.json");
    let (rows, len) = fixture.rows_and_length();
    let ids = fixture.ints("input_ids");
    let (_, model) = fixture_model();
    let device = ComputeDevice::cpu().inference();
    let ours = to_host(model.forward(BurnTensor::<2, Int>::from_data(
        TensorData::new(ids.clone(), [rows, len]),
        &device,
    )));
    let committed = std::fs::read(fixture_dir().join("llama-tiny.onnx")).unwrap();
    let tract = tract_logits(&tract_plan(&committed), &[&ids], rows, len);
    for (what, theirs) in [
        ("onnxruntime", fixture.floats("onnxruntime_logits")),
        (
            "onnxruntime with the cache",
            fixture.floats("onnxruntime_cached_logits"),
        ),
        ("transformers", fixture.floats("transformers_logits")),
        ("tract", tract),
    ] {
        let diff = max_diff(&ours, &theirs);
        println!("max |{what} − apprentice| = {diff:.2e}");
        assert!(diff <= 1e-4, "{what}: {diff}");
    }
}

/// The cached graph: a prompt with an empty cache, then more tokens with the cache it
/// returned, give the logits of one pass over the whole sequence.
#[test]
fn the_cached_graph_continues_where_the_prompt_left_off() {
    use apprentice::onnx::export_llama::{cache_name, llama_to_onnx_with_cache_bytes};
    let config = config(2, true);
    let device = ComputeDevice::cpu().inference();
    device.seed(5);
    let init = Initializer::Normal {
        mean: 0.0,
        std: 0.3,
    };
    let model = Llama::new(&config, &init, &device);
    let bytes = llama_to_onnx_with_cache_bytes(
        &llama_weights(&model, config.rms_eps, config.max_len),
        "cached",
    )
    .unwrap();
    let runnable = tract_plan(&bytes);
    let (rows, prompt, more) = (2, 5, 3);
    let all = ids(rows, prompt + more, 7);
    let whole = to_host(model.forward(BurnTensor::<2, Int>::from_data(
        TensorData::new(all.clone(), [rows, prompt + more]),
        &device,
    )));
    let head_dim = config.hidden / config.heads;
    let part = |from: usize, to: usize| -> Vec<i64> {
        (0..rows)
            .flat_map(|r| all[r * (prompt + more) + from..r * (prompt + more) + to].to_vec())
            .collect()
    };
    let mut past: Vec<TValue> = (0..config.layers * 2)
        .map(|_| {
            Tensor::from_shape(&[rows, config.kv_heads, 0, head_dim], &[] as &[f32])
                .unwrap()
                .into()
        })
        .collect();
    for (from, to) in [(0, prompt), (prompt, prompt + more)] {
        let mut inputs: TVec<TValue> = tvec![int_matrix(&part(from, to), rows, to - from)];
        inputs.extend(past.drain(..));
        let outputs = runnable.run(inputs).expect("tract runs the cached graph");
        let logits = floats_of(&outputs[0]);
        let expected: Vec<f32> = (0..rows)
            .flat_map(|r| {
                let row = &whole[r * (prompt + more) * VOCAB..(r + 1) * (prompt + more) * VOCAB];
                row[from * VOCAB..to * VOCAB].to_vec()
            })
            .collect();
        let diff = max_diff(&expected, &logits);
        println!("positions {from}..{to}: max |cached tract − apprentice| = {diff:.2e}");
        assert!(diff <= 1e-4, "positions {from}..{to}: {diff}");
        assert_eq!(outputs[1].shape(), &[rows, config.kv_heads, to, head_dim]);
        past = outputs.into_iter().skip(1).collect();
    }
    // The inputs after the ids, in the order the outputs after the logits come.
    assert_eq!(cache_name("past", "value", 1), "past_value.1");
}

/// SmolLM2-135M's first and last layers with its embeddings and final norm: the real widths
/// (9 query and 3 key/value heads of 64, rotary base and context), on real token ids.
#[test]
fn a_decoder_of_smollm2s_shape_gives_apprentices_logits_in_tract() {
    use apprentice::lm::teacher::Teacher;
    use apprentice::onnx::export_llama::llama_to_onnx_with_cache_bytes;
    let Some(data) =
        common::shared_data("a_decoder_of_smollm2s_shape_gives_apprentices_logits_in_tract")
    else {
        return;
    };
    let device = ComputeDevice::cpu().inference();
    let teacher = Teacher::open(
        &data.join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"),
        &device,
    )
    .unwrap();
    let last = teacher.model.layers.len() - 1;
    let model = Llama {
        embed: teacher.model.embed.clone(),
        layers: vec![
            teacher.model.layers[0].clone(),
            teacher.model.layers[last].clone(),
        ],
        norm: teacher.model.norm.clone(),
        lm_head: None,
        heads: teacher.model.heads,
        kv_heads: teacher.model.kv_heads,
        rope_theta: teacher.model.rope_theta,
    };
    let config = &teacher.config;
    let prompt = teacher
        .tokenizer
        .encode("This movie is a gorgeous, witty, seductive film.")
        .unwrap();
    let ids: Vec<i64> = prompt.iter().map(|&i| i64::from(i)).collect();
    let len = ids.len();
    let expected = to_host(model.forward(BurnTensor::<2, Int>::from_data(
        TensorData::new(ids.clone(), [1, len]),
        &device,
    )));
    let weights = llama_weights(&model, config.rms_eps, config.max_len);
    let plain = llama_to_onnx_bytes(&weights, "smollm2 layers 0 and last").unwrap();
    let got = tract_logits(&tract_plan(&plain), &[&ids], 1, len);
    let diff = |got: &[f32]| max_diff(&expected, got);
    let largest = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    println!(
        "SmolLM2 shape, {len} tokens: max |tract − apprentice| = {:.2e} (largest logit {largest:.1})",
        diff(&got)
    );
    assert!(
        diff(&got) <= 1e-3 && diff(&got) <= largest * 1e-4,
        "{}",
        diff(&got)
    );

    // The cached graph on the whole prompt with an empty cache gives the same logits.
    let cached = llama_to_onnx_with_cache_bytes(&weights, "cached").unwrap();
    let runnable = tract_plan(&cached);
    let head_dim = config.hidden / config.heads;
    let mut inputs: TVec<TValue> = tvec![int_matrix(&ids, 1, len)];
    for _ in 0..model.layers.len() * 2 {
        inputs.push(
            Tensor::from_shape(&[1, config.kv_heads, 0, head_dim], &[] as &[f32])
                .unwrap()
                .into(),
        );
    }
    let outputs = runnable.run(inputs).unwrap();
    let got = floats_of(&outputs[0]);
    assert!(
        diff(&got) <= 1e-3 && diff(&got) <= largest * 1e-4,
        "cached: {}",
        diff(&got)
    );
}

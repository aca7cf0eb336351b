//! A student language model's checkpoint out to ONNX: the weights saved by a language-model
//! run (`<run>/seed-N/<student>.safetensors` and the description beside it) read back with
//! [`super::checkpoint::load_student`], whose errors name the file, and written as
//! [`crate::onnx::export_llama`]'s graph.

use std::path::{Path, PathBuf};

use burn::nn::Linear;

use super::checkpoint::{LM_CHECKPOINT_FORMAT, load_student, meta_path};
use super::llama::{Llama, rotary_tables};
use crate::backend::{ComputeDevice, to_host};
use crate::onnx::OnnxError;
use crate::onnx::export_llama::{
    LlamaLayerWeights, LlamaWeights, Projection, llama_to_onnx, llama_to_onnx_with_cache,
};

/// What [`export_lm_checkpoint`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct LmExportSummary {
    /// The student's name in its run.
    pub name: String,
    /// Layers, width, heads and key/value heads, in words.
    pub architecture: String,
    /// The tokenizer file whose ids the graph takes.
    pub tokenizer: PathBuf,
    /// Positions the graph reads at most.
    pub max_positions: usize,
    /// Whether the graph takes and returns a key/value cache.
    pub kv_cache: bool,
    /// Width of the logits (the vocabulary).
    pub vocab_size: usize,
    /// Operators in the graph.
    pub nodes: usize,
    /// Bytes written.
    pub bytes: usize,
}

/// Whether `path` is a student checkpoint of a language-model run: its description beside it
/// names the language-model checkpoint format.
pub fn is_lm_checkpoint(path: &Path) -> bool {
    std::fs::read_to_string(meta_path(path))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|value| {
            value
                .get("format")?
                .as_str()
                .map(|f| f == LM_CHECKPOINT_FORMAT)
        })
        .unwrap_or(false)
}

/// The weights of `model` as plain arrays, for [`llama_to_onnx`].
pub fn llama_weights(model: &Llama, rms_eps: f64, max_positions: usize) -> LlamaWeights {
    let [_, hidden] = model.embed.weight.dims();
    let (rope_cos, rope_sin) =
        rotary_tables(0, max_positions, hidden / model.heads, model.rope_theta);
    LlamaWeights {
        hidden,
        heads: model.heads,
        kv_heads: model.kv_heads,
        rms_eps: rms_eps as f32,
        max_positions,
        rope_cos,
        rope_sin,
        embedding: to_host(model.embed.weight.val()),
        layers: model
            .layers
            .iter()
            .map(|layer| LlamaLayerWeights {
                attn_norm: to_host(layer.attn_norm.gamma.val()),
                q: projection(&layer.q),
                k: projection(&layer.k),
                v: projection(&layer.v),
                o: projection(&layer.o),
                ffn_norm: to_host(layer.ffn_norm.gamma.val()),
                gate: projection(&layer.gate),
                up: projection(&layer.up),
                down: projection(&layer.down),
            })
            .collect(),
        norm: to_host(model.norm.gamma.val()),
        lm_head: model.lm_head.as_ref().map(projection),
    }
}

fn projection(linear: &Linear) -> Projection {
    let [inputs, outputs] = linear.weight.dims();
    Projection {
        weight: to_host(linear.weight.val()),
        inputs,
        outputs,
    }
}

/// Reads the student checkpoint at `weights` and writes it as an ONNX file at `out`
/// (atomically); with `kv_cache`, the graph takes and returns each layer's keys and values
/// ([`llama_to_onnx_with_cache`]).
pub fn export_lm_checkpoint(
    weights: &Path,
    out: &Path,
    kv_cache: bool,
) -> Result<LmExportSummary, OnnxError> {
    let device = ComputeDevice::cpu().inference();
    let loaded = load_student(weights, &device).map_err(|e| OnnxError::Export(e.to_string()))?;
    let config = &loaded.meta.config;
    let architecture = format!(
        "llama {} layers × {} ({} heads, {} key/value heads), SwiGLU {}",
        config.layers, config.hidden, config.heads, config.kv_heads, config.ffn
    );
    let tokenizer = meta_path(weights)
        .parent()
        .unwrap_or(Path::new("."))
        .join(&loaded.meta.tokenizer);
    let description = format!(
        "{} ({architecture}), a student language model trained by apprentice; input: \
         input_ids int64 [N, L] from its tokenizer, at most {} positions; output: the \
         next-token logits of every position, [N, L, {}]",
        loaded.meta.name, config.max_len, config.vocab_size
    );
    let host = llama_weights(&loaded.model, config.rms_eps, config.max_len);
    let model = if kv_cache {
        llama_to_onnx_with_cache(&host, &description)?
    } else {
        llama_to_onnx(&host, &description)?
    };
    let bytes = crate::onnx::export::write_model(&model, out)?;
    Ok(LmExportSummary {
        name: loaded.meta.name.clone(),
        architecture,
        tokenizer,
        max_positions: config.max_len,
        kv_cache,
        vocab_size: config.vocab_size,
        nodes: model.graph.as_ref().map_or(0, |g| g.node.len()),
        bytes,
    })
}

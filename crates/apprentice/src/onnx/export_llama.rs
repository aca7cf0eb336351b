//! A student language model (apprentice's llama decoder) out to ONNX (opset 17), from token
//! ids to the next-token logits of every position.
//!
//! Input `input_ids`, int64 `[N, L]` (the run's tokenizer, no padding: each row a prefix of
//! the same length); output `logits` `[N, L, vocab]`. The graph does what
//! `lm::llama::Llama::forward` does: the token embeddings; per layer, RMSNorm
//! (`x / sqrt(mean(x²) + ε) · γ`, spelled out: its operator arrived only in opset 23),
//! rotary position embeddings in the rotate-half layout from the decoder's own tables of every
//! position it reads, grouped-query attention with a causal mask, the output projection and
//! residual, RMSNorm, the SwiGLU block (`silu(x·G) ⊙ x·U`, then `·D`) and residual; the final
//! RMSNorm and the output projection, which for tied embeddings reads the embedding matrix
//! transposed (`Gemm`'s `transB`), so that the file holds it once.
//!
//! The weights come as plain host arrays ([`LlamaWeights`]): the `lm` module sits above `onnx`
//! in the library's layers, so `lm::onnx_export` hands them over.

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use super::error::OnnxError;
use super::export::typed_value_info;
use super::export::{BATCH_AXIS, Graph, OUTPUT_NAME, fixed, int, ints, model_proto, symbolic};
use super::export_text::IDS_NAME;

/// Name of the symbolic length axis.
const LENGTH_AXIS: &str = "L";

/// Name of the symbolic axis of the cached positions.
const PAST_AXIS: &str = "P";

/// Name of the symbolic axis of the cached and new positions together.
const TOTAL_AXIS: &str = "P_plus_L";

/// A projection without bias, as burn stores it: `[inputs, outputs]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// `[inputs, outputs]`, row-major.
    pub weight: Vec<f32>,
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
}

/// One decoder layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaLayerWeights {
    /// RMSNorm scale before attention.
    pub attn_norm: Vec<f32>,
    /// Query projection.
    pub q: Projection,
    /// Key projection.
    pub k: Projection,
    /// Value projection.
    pub v: Projection,
    /// Output projection of the concatenated heads.
    pub o: Projection,
    /// RMSNorm scale before the feed-forward block.
    pub ffn_norm: Vec<f32>,
    /// SwiGLU gate.
    pub gate: Projection,
    /// SwiGLU up projection.
    pub up: Projection,
    /// Projection back to the hidden width.
    pub down: Projection,
}

/// A llama decoder's weights and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaWeights {
    /// Width of token representations.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Epsilon of every RMSNorm.
    pub rms_eps: f32,
    /// Positions the model reads at most (the rotary tables' rows).
    pub max_positions: usize,
    /// Cosines of the rotary angles, `[max_positions, head_dim]`, in the rotate-half layout
    /// the decoder uses (`lm::llama::rotary_tables`).
    pub rope_cos: Vec<f32>,
    /// Sines of the same angles.
    pub rope_sin: Vec<f32>,
    /// Token embeddings, `[vocab, hidden]`.
    pub embedding: Vec<f32>,
    /// Decoder layers, input side first.
    pub layers: Vec<LlamaLayerWeights>,
    /// Final RMSNorm scale.
    pub norm: Vec<f32>,
    /// The output projection `[hidden, vocab]`; `None` when tied to the embeddings.
    pub lm_head: Option<Projection>,
}

/// The ONNX model of `model`: input [`IDS_NAME`] int64 `[N, L]`, output `logits`
/// `[N, L, vocab]`.
pub fn llama_to_onnx(model: &LlamaWeights, description: &str) -> Result<pb::ModelProto, OnnxError> {
    build(model, description, false)
}

/// The ONNX model of `model` for generation with a key/value cache: besides [`IDS_NAME`] (the
/// new tokens, `[N, L]`) it takes each layer's keys and values of the `P` positions before
/// them, `past_key.{i}` and `past_value.{i}` `[N, kv_heads, P, head_dim]` (`P` = 0 at the
/// first call), and returns, besides `logits` `[N, L, vocab]`, `present_key.{i}` and
/// `present_value.{i}` `[N, kv_heads, P + L, head_dim]` for the next call. The new tokens sit
/// at positions `P..P + L` and see every earlier one.
pub fn llama_to_onnx_with_cache(
    model: &LlamaWeights,
    description: &str,
) -> Result<pb::ModelProto, OnnxError> {
    build(model, description, true)
}

/// The name of layer `layer`'s cached keys or values (`part` is `key` or `value`) as the graph
/// takes them (`past`) or returns them (`present`).
pub fn cache_name(direction: &str, part: &str, layer: usize) -> String {
    format!("{direction}_{part}.{layer}")
}

fn build(
    model: &LlamaWeights,
    description: &str,
    cache: bool,
) -> Result<pb::ModelProto, OnnxError> {
    let h = model.hidden;
    if h == 0
        || model.heads == 0
        || model.kv_heads == 0
        || !h.is_multiple_of(model.heads)
        || !model.heads.is_multiple_of(model.kv_heads)
        || model.embedding.is_empty()
        || !model.embedding.len().is_multiple_of(h)
    {
        return Err(OnnxError::Export(format!(
            "a decoder of width {h} with {} heads and {} key/value heads and {} embedding values",
            model.heads,
            model.kv_heads,
            model.embedding.len()
        )));
    }
    let vocab = model.embedding.len() / h;
    let head_dim = h / model.heads;
    let mut graph = Graph::default();

    let embedding = graph.initializer("embed", &[vocab, h], model.embedding.clone());
    let mut x = graph.node(
        "Gather",
        "embed.gather",
        &[&embedding, IDS_NAME],
        vec![int("axis", 0)],
    );

    // The rotary tables cut to the input's length, and the causal mask.
    let table = [model.max_positions, head_dim];
    if model.rope_cos.len() != table[0] * table[1] || model.rope_sin.len() != table[0] * table[1] {
        return Err(OnnxError::Export(format!(
            "rotary tables of {} and {} values, expected {} × {head_dim}",
            model.rope_cos.len(),
            model.rope_sin.len(),
            model.max_positions
        )));
    }
    let cos_table = graph.initializer("rope.cos", &table, model.rope_cos.clone());
    let sin_table = graph.initializer("rope.sin", &table, model.rope_sin.clone());
    let length = graph.node(
        "Shape",
        "length",
        &[IDS_NAME],
        vec![int("start", 1), int("end", 2)],
    );
    let zero = graph.int64("zero", &[1], &[0]);
    // The new tokens' positions `offset..end`: after the cached ones, if any.
    let (offset, end) = if cache {
        let offset = graph.node(
            "Shape",
            "past.length",
            &[&cache_name("past", "key", 0)],
            vec![int("start", 2), int("end", 3)],
        );
        let end = graph.node("Add", "positions.end", &[&offset, &length], vec![]);
        (offset, end)
    } else {
        (zero.clone(), length.clone())
    };
    let cos = graph.node(
        "Slice",
        "rope.cos_cut",
        &[&cos_table, &offset, &end, &zero],
        vec![],
    );
    let sin = graph.node(
        "Slice",
        "rope.sin_cut",
        &[&sin_table, &offset, &end, &zero],
        vec![],
    );
    let zero_scalar = graph.int64("zero_scalar", &[], &[0]);
    let one_scalar = graph.int64("one_scalar", &[], &[1]);
    let offset_scalar = graph.node("Squeeze", "offset_scalar", &[&offset, &zero], vec![]);
    let end_scalar = graph.node("Squeeze", "end_scalar", &[&end, &zero], vec![]);
    let query_positions = graph.node(
        "Range",
        "causal.queries",
        &[&offset_scalar, &end_scalar, &one_scalar],
        vec![],
    );
    let key_positions = graph.node(
        "Range",
        "causal.keys",
        &[&zero_scalar, &end_scalar, &one_scalar],
        vec![],
    );
    let one = graph.int64("one", &[1], &[1]);
    let rows = graph.node(
        "Unsqueeze",
        "causal.rows",
        &[&query_positions, &one],
        vec![],
    );
    let columns = graph.node(
        "Unsqueeze",
        "causal.columns",
        &[&key_positions, &zero],
        vec![],
    );
    let future = graph.node("Greater", "causal.future", &[&columns, &rows], vec![]);
    let hidden_away = graph.initializer("causal.minus_infinity", &[], vec![f32::NEG_INFINITY]);

    let half = (head_dim / 2) as i64;
    let halves = [
        graph.int64("rope.half", &[1], &[half]),
        graph.int64("rope.end", &[1], &[head_dim as i64]),
        graph.int64("rope.axis", &[1], &[3]),
    ];
    let split = |graph: &mut Graph, n: usize, name: &str| {
        graph.int64(name, &[4], &[0, 0, n as i64, head_dim as i64])
    };
    let query_shape = split(&mut graph, model.heads, "shape.query_heads");
    let kv_shape = split(&mut graph, model.kv_heads, "shape.kv_heads");
    let merged = graph.int64("shape.merged", &[3], &[0, 0, h as i64]);
    let repeat = model.heads / model.kv_heads;
    let grouped = (repeat > 1).then(|| {
        (
            graph.int64("gqa.axis", &[1], &[2]),
            graph.int64("gqa.repeats", &[5], &[1, 1, repeat as i64, 1, 1]),
            graph.int64(
                "gqa.shape",
                &[4],
                &[0, model.heads as i64, -1, head_dim as i64],
            ),
        )
    });
    let scale = graph.initializer("attention.scale", &[], vec![1.0 / (head_dim as f32).sqrt()]);
    let eps = graph.initializer("rms.epsilon", &[], vec![model.rms_eps]);

    for (index, layer) in model.layers.iter().enumerate() {
        let name = |part: &str| format!("layer{index}.{part}");
        let normed = rms_norm(&mut graph, &x, &layer.attn_norm, &eps, &name("attn_norm"));
        let heads = |graph: &mut Graph, p: &Projection, shape: &str, part: &str| {
            let projected = project(graph, &normed, p, &name(part));
            let split = graph.node(
                "Reshape",
                &name(&format!("{part}.split")),
                &[&projected, shape],
                vec![],
            );
            graph.node(
                "Transpose",
                &name(&format!("{part}.heads")),
                &[&split],
                vec![ints("perm", &[0, 2, 1, 3])],
            )
        };
        let q = heads(&mut graph, &layer.q, &query_shape, "q");
        let k = heads(&mut graph, &layer.k, &kv_shape, "k");
        let v = heads(&mut graph, &layer.v, &kv_shape, "v");
        let q = rotate(&mut graph, &q, &cos, &sin, &halves, &zero, &name("q.rope"));
        let mut k = rotate(&mut graph, &k, &cos, &sin, &halves, &zero, &name("k.rope"));
        let mut v = v;
        if cache {
            // The cache holds the rotated keys, before the heads are repeated.
            for (t, part) in [(&mut k, "key"), (&mut v, "value")] {
                let past = cache_name("past", part, index);
                let joined = graph.node(
                    "Concat",
                    &name(&format!("{part}.joined")),
                    &[&past, t.as_str()],
                    vec![int("axis", 2)],
                );
                graph.node(
                    "Identity",
                    &name(&format!("{part}.present")),
                    &[&joined],
                    vec![],
                );
                graph.rename_last_output(&cache_name("present", part, index));
                *t = joined;
            }
        }
        if let Some((axis, repeats, shape)) = &grouped {
            for (t, part) in [(&mut k, "k"), (&mut v, "v")] {
                let one_more = graph.node(
                    "Unsqueeze",
                    &name(&format!("{part}.group")),
                    &[t, axis],
                    vec![],
                );
                let tiled = graph.node(
                    "Tile",
                    &name(&format!("{part}.repeat")),
                    &[&one_more, repeats],
                    vec![],
                );
                *t = graph.node(
                    "Reshape",
                    &name(&format!("{part}.as_heads")),
                    &[&tiled, shape],
                    vec![],
                );
            }
        }
        let keys = graph.node(
            "Transpose",
            &name("k.transposed"),
            &[&k],
            vec![ints("perm", &[0, 1, 3, 2])],
        );
        let scores = graph.node("MatMul", &name("scores"), &[&q, &keys], vec![]);
        let scores = graph.node("Mul", &name("scaled"), &[&scores, &scale], vec![]);
        let scores = graph.node(
            "Where",
            &name("causal"),
            &[&future, &hidden_away, &scores],
            vec![],
        );
        let context = graph.attention_context(&scores, &v, &merged, &format!("layer{index}."));
        let attended = project(&mut graph, &context, &layer.o, &name("o"));
        x = graph.node("Add", &name("attention.residual"), &[&x, &attended], vec![]);
        let normed = rms_norm(&mut graph, &x, &layer.ffn_norm, &eps, &name("ffn_norm"));
        let gate = project(&mut graph, &normed, &layer.gate, &name("gate"));
        let sigmoid = graph.node("Sigmoid", &name("gate.sigmoid"), &[&gate], vec![]);
        let silu = graph.node("Mul", &name("gate.silu"), &[&gate, &sigmoid], vec![]);
        let up = project(&mut graph, &normed, &layer.up, &name("up"));
        let inner = graph.node("Mul", &name("swiglu"), &[&silu, &up], vec![]);
        let down = project(&mut graph, &inner, &layer.down, &name("down"));
        x = graph.node("Add", &name("ffn.residual"), &[&x, &down], vec![]);
    }
    let x = rms_norm(&mut graph, &x, &model.norm, &eps, "norm");
    match &model.lm_head {
        Some(head) => {
            project(&mut graph, &x, head, "lm_head");
        }
        None => {
            // [N·L, H] · Eᵀ, then back to [N, L, vocab].
            let flat_shape = graph.int64("lm_head.flat", &[2], &[-1, h as i64]);
            let flat = graph.node("Reshape", "lm_head.rows", &[&x, &flat_shape], vec![]);
            let logits = graph.node(
                "Gemm",
                "lm_head.tied",
                &[&flat, &embedding],
                vec![int("transB", 1)],
            );
            let batch_and_length = graph.node("Shape", "lm_head.input_shape", &[IDS_NAME], vec![]);
            let width = graph.int64("lm_head.vocab", &[1], &[vocab as i64]);
            let shape = graph.node(
                "Concat",
                "lm_head.shape",
                &[&batch_and_length, &width],
                vec![int("axis", 0)],
            );
            graph.node("Reshape", "lm_head.logits", &[&logits, &shape], vec![]);
        }
    }
    graph.rename_last_output(OUTPUT_NAME);

    let mut input = vec![typed_value_info(
        IDS_NAME,
        DataType::Int64,
        vec![symbolic(BATCH_AXIS), symbolic(LENGTH_AXIS)],
    )];
    let mut output = vec![typed_value_info(
        OUTPUT_NAME,
        DataType::Float,
        vec![symbolic(BATCH_AXIS), symbolic(LENGTH_AXIS), fixed(vocab)],
    )];
    if cache {
        let cached = |length: &str| {
            vec![
                symbolic(BATCH_AXIS),
                fixed(model.kv_heads),
                symbolic(length),
                fixed(head_dim),
            ]
        };
        for layer in 0..model.layers.len() {
            for part in ["key", "value"] {
                input.push(typed_value_info(
                    &cache_name("past", part, layer),
                    DataType::Float,
                    cached(PAST_AXIS),
                ));
                output.push(typed_value_info(
                    &cache_name("present", part, layer),
                    DataType::Float,
                    cached(TOTAL_AXIS),
                ));
            }
        }
    }
    let graph = pb::GraphProto {
        name: "apprentice".into(),
        node: graph.nodes,
        initializer: graph.initializers,
        input,
        output,
        doc_string: description.to_owned(),
        ..Default::default()
    };
    Ok(model_proto(graph, description))
}

/// The serialised ONNX model of `model` (see [`llama_to_onnx`]).
pub fn llama_to_onnx_bytes(model: &LlamaWeights, description: &str) -> Result<Vec<u8>, OnnxError> {
    Ok(llama_to_onnx(model, description)?.encode_to_vec())
}

/// The serialised ONNX model of `model` with a key/value cache (see
/// [`llama_to_onnx_with_cache`]).
pub fn llama_to_onnx_with_cache_bytes(
    model: &LlamaWeights,
    description: &str,
) -> Result<Vec<u8>, OnnxError> {
    Ok(llama_to_onnx_with_cache(model, description)?.encode_to_vec())
}

/// `x · W` over the last axis.
fn project(graph: &mut Graph, x: &str, p: &Projection, name: &str) -> String {
    let w = graph.initializer(
        &format!("{name}.weight"),
        &[p.inputs, p.outputs],
        p.weight.clone(),
    );
    graph.node("MatMul", name, &[x, &w], vec![])
}

/// `x / sqrt(mean(x²) + ε) · γ` over the last axis, in burn's order of operations.
fn rms_norm(graph: &mut Graph, x: &str, gamma: &[f32], eps: &str, name: &str) -> String {
    let g = graph.initializer(&format!("{name}.weight"), &[gamma.len()], gamma.to_vec());
    let squares = graph.node("Mul", &format!("{name}.square"), &[x, x], vec![]);
    // Opset 17's ReduceMean takes its axes as an attribute (an input only from opset 18).
    let mean = graph.node(
        "ReduceMean",
        &format!("{name}.mean"),
        &[&squares],
        vec![ints("axes", &[-1]), int("keepdims", 1)],
    );
    let shifted = graph.node("Add", &format!("{name}.epsilon"), &[&mean, eps], vec![]);
    let rms = graph.node("Sqrt", &format!("{name}.rms"), &[&shifted], vec![]);
    let normalised = graph.node("Div", &format!("{name}.divide"), &[x, &rms], vec![]);
    graph.node("Mul", &format!("{name}.scale"), &[&normalised, &g], vec![])
}

/// `x · cos + rotate_half(x) · sin` for `x` `[N, heads, L, head_dim]`.
fn rotate(
    graph: &mut Graph,
    x: &str,
    cos: &str,
    sin: &str,
    [half, end, axis]: &[String; 3],
    zero: &str,
    name: &str,
) -> String {
    let first = graph.node(
        "Slice",
        &format!("{name}.first"),
        &[x, zero, half, axis],
        vec![],
    );
    let second = graph.node(
        "Slice",
        &format!("{name}.second"),
        &[x, half, end, axis],
        vec![],
    );
    let negated = graph.node("Neg", &format!("{name}.negate"), &[&second], vec![]);
    let rotated = graph.node(
        "Concat",
        &format!("{name}.rotated"),
        &[&negated, &first],
        vec![int("axis", 3)],
    );
    let straight = graph.node("Mul", &format!("{name}.cos"), &[x, cos], vec![]);
    let turned = graph.node("Mul", &format!("{name}.sin"), &[&rotated, sin], vec![]);
    graph.node("Add", &format!("{name}.sum"), &[&straight, &turned], vec![])
}

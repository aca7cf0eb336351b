//! A BERT classifier out to ONNX (opset 17): the fine-tuned teacher and the transformer
//! students (the shallow copy of the teacher, the narrow BERT), from word-piece ids to logits.
//!
//! Inputs are `input_ids` and `attention_mask`, int64 `[N, L]`, as the Hugging Face tokenizer
//! of the model's folder returns them (special tokens included, truncated at the length the
//! model was trained on, padded to any `L` up to `max_position_embeddings`). The graph does
//! what apprentice's encoder does (`text::bert`): word + position + segment-0 embeddings and a
//! LayerNorm; per layer, self-attention with an additive mask that gives padded keys a score
//! of −10⁹, the output projection, residual and LayerNorm, the feed-forward block with the
//! exact GELU (spelled out with `Erf`: its operator arrived only in opset 20), residual and
//! LayerNorm; then the head: `tanh(dense([CLS]))` (BERT's pooler) or the mean of the real
//! tokens, and the classification layer. LayerNorm is opset 17's `LayerNormalization`, which
//! runtimes fuse.
//!
//! The weights come as plain host arrays ([`BertClassifierWeights`]): the `text` module,
//! where the encoder lives, sits above `onnx` in the library's layers, so
//! `text::onnx_export` hands them over.

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use super::error::OnnxError;
use super::export::typed_value_info;
use super::export::{
    BATCH_AXIS, Graph, OUTPUT_NAME, fixed, float, int, ints, model_proto, symbolic,
};
use super::export_text::{IDS_NAME, MASK_NAME, masked_mean};
use crate::models::Activation;

/// Name of the symbolic length axis.
const LENGTH_AXIS: &str = "L";

/// The score a padded key gets before the softmax, as apprentice's encoder gives it.
const MASKED_SCORE: f32 = -1e9;

/// A dense layer as burn stores it: `weight` `[inputs, outputs]` row-major, `bias`
/// `[outputs]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseWeights {
    /// `[inputs, outputs]`, row-major.
    pub weight: Vec<f32>,
    /// One per output.
    pub bias: Vec<f32>,
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
}

/// A LayerNorm's scale and shift.
#[derive(Debug, Clone, PartialEq)]
pub struct NormWeights {
    /// γ, one per feature.
    pub gamma: Vec<f32>,
    /// β, one per feature.
    pub beta: Vec<f32>,
}

/// One encoder layer.
#[derive(Debug, Clone, PartialEq)]
pub struct BertLayerWeights {
    /// Query projection.
    pub query: DenseWeights,
    /// Key projection.
    pub key: DenseWeights,
    /// Value projection.
    pub value: DenseWeights,
    /// The attention's output projection.
    pub attention_output: DenseWeights,
    /// LayerNorm after the attention block.
    pub attention_norm: NormWeights,
    /// The feed-forward block's first layer (GELU after it).
    pub intermediate: DenseWeights,
    /// The feed-forward block's second layer.
    pub output: DenseWeights,
    /// LayerNorm after the feed-forward block.
    pub output_norm: NormWeights,
}

/// How the head reads the encoder's output.
#[derive(Debug, Clone, PartialEq)]
pub enum HeadPooling {
    /// `tanh(dense([CLS]))`, BERT's pooler.
    Cls(DenseWeights),
    /// The mean of the real tokens' vectors.
    Mean,
}

/// A BERT classifier's weights and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct BertClassifierWeights {
    /// Width of the hidden states.
    pub hidden: usize,
    /// Attention heads per layer.
    pub heads: usize,
    /// The LayerNorms' epsilon.
    pub layer_norm_eps: f32,
    /// Word-piece vectors, `[vocab, hidden]`.
    pub word_embeddings: Vec<f32>,
    /// Position vectors, `[max_positions, hidden]`.
    pub position_embeddings: Vec<f32>,
    /// The segment-0 vector (apprentice feeds one segment), `[hidden]`.
    pub segment_embedding: Vec<f32>,
    /// LayerNorm after the embeddings.
    pub embedding_norm: NormWeights,
    /// Encoder layers, input side first.
    pub layers: Vec<BertLayerWeights>,
    /// The head's pooling.
    pub pooling: HeadPooling,
    /// The classification layer.
    pub classifier: DenseWeights,
}

/// The ONNX model of `model`: inputs [`IDS_NAME`] and [`MASK_NAME`], int64 `[N, L]` with both
/// axes dynamic, output `logits` `[N, classes]`.
pub fn bert_classifier_to_onnx(
    model: &BertClassifierWeights,
    description: &str,
) -> Result<pb::ModelProto, OnnxError> {
    check_shapes(model)?;
    let h = model.hidden;
    let vocab = model.word_embeddings.len() / h;
    let positions = model.position_embeddings.len() / h;
    let mut graph = Graph::default();

    // Embeddings: (word + position) + segment 0, then LayerNorm, in apprentice's order.
    let word = graph.initializer(
        "embeddings.word",
        &[vocab, h],
        model.word_embeddings.clone(),
    );
    let position = graph.initializer(
        "embeddings.position",
        &[positions, h],
        model.position_embeddings.clone(),
    );
    let segment = graph.initializer("embeddings.segment0", &[h], model.segment_embedding.clone());
    let words = graph.node(
        "Gather",
        "embeddings.words",
        &[&word, IDS_NAME],
        vec![int("axis", 0)],
    );
    let length = graph.node(
        "Shape",
        "embeddings.length",
        &[IDS_NAME],
        vec![int("start", 1), int("end", 2)],
    );
    let zero = graph.int64("embeddings.zero", &[], &[0]);
    let one = graph.int64("embeddings.one", &[], &[1]);
    let length = squeeze_scalar(&mut graph, &length, "embeddings.length_scalar");
    let steps = graph.node("Range", "embeddings.steps", &[&zero, &length, &one], vec![]);
    let places = graph.node(
        "Gather",
        "embeddings.positions",
        &[&position, &steps],
        vec![int("axis", 0)],
    );
    let x = graph.node("Add", "embeddings.add_position", &[&words, &places], vec![]);
    let x = graph.node("Add", "embeddings.add_segment", &[&x, &segment], vec![]);
    let mut x = layer_norm(
        &mut graph,
        &x,
        &model.embedding_norm,
        model,
        "embeddings.norm",
    );

    // The additive mask `(mask − 1) · 10⁹`, `[N, 1, 1, L]`.
    let mask = graph.node(
        "Cast",
        "mask.float",
        &[MASK_NAME],
        vec![int("to", DataType::Float as i64)],
    );
    let one_f = graph.initializer("mask.one", &[], vec![1.0]);
    let scale = graph.initializer("mask.scale", &[], vec![-MASKED_SCORE]);
    let shifted = graph.node("Sub", "mask.shift", &[&mask, &one_f], vec![]);
    let bias = graph.node("Mul", "mask.scaled", &[&shifted, &scale], vec![]);
    let axes12 = graph.int64("mask.axes", &[2], &[1, 2]);
    let bias = graph.node("Unsqueeze", "mask.bias", &[&bias, &axes12], vec![]);

    let head_dim = h / model.heads;
    let split_shape = graph.int64(
        "attention.split_shape",
        &[4],
        &[0, 0, model.heads as i64, head_dim as i64],
    );
    let merge_shape = graph.int64("attention.merge_shape", &[3], &[0, 0, h as i64]);
    let inverse_sqrt =
        graph.initializer("attention.scale", &[], vec![1.0 / (head_dim as f32).sqrt()]);
    for (index, layer) in model.layers.iter().enumerate() {
        let name = |part: &str| format!("layer{index}.{part}");
        let heads = |graph: &mut Graph, x: &str, part: &str, perm: &[i64]| {
            let split = graph.node(
                "Reshape",
                &name(&format!("{part}.split")),
                &[x, &split_shape],
                vec![],
            );
            graph.node(
                "Transpose",
                &name(&format!("{part}.heads")),
                &[&split],
                vec![ints("perm", perm)],
            )
        };
        let q = dense(&mut graph, &x, &layer.query, &name("query"));
        let k = dense(&mut graph, &x, &layer.key, &name("key"));
        let v = dense(&mut graph, &x, &layer.value, &name("value"));
        // [N, heads, L, d], [N, heads, d, L], [N, heads, L, d]
        let q = heads(&mut graph, &q, "query", &[0, 2, 1, 3]);
        let k = heads(&mut graph, &k, "key", &[0, 2, 3, 1]);
        let v = heads(&mut graph, &v, "value", &[0, 2, 1, 3]);
        let scores = graph.node("MatMul", &name("scores"), &[&q, &k], vec![]);
        let scores = graph.node("Mul", &name("scaled"), &[&scores, &inverse_sqrt], vec![]);
        let scores = graph.node("Add", &name("masked"), &[&scores, &bias], vec![]);
        let context = graph.attention_context(&scores, &v, &merge_shape, &format!("layer{index}."));
        let attended = dense(
            &mut graph,
            &context,
            &layer.attention_output,
            &name("attention_output"),
        );
        let residual = graph.node("Add", &name("attention.residual"), &[&attended, &x], vec![]);
        x = layer_norm(
            &mut graph,
            &residual,
            &layer.attention_norm,
            model,
            &name("attention_norm"),
        );
        let inner = dense(&mut graph, &x, &layer.intermediate, &name("intermediate"));
        let inner = graph.activation(&inner, Activation::Gelu, &name("intermediate"));
        let out = dense(&mut graph, &inner, &layer.output, &name("output"));
        let residual = graph.node("Add", &name("output.residual"), &[&out, &x], vec![]);
        x = layer_norm(
            &mut graph,
            &residual,
            &layer.output_norm,
            model,
            &name("output_norm"),
        );
    }

    let pooled = match &model.pooling {
        HeadPooling::Cls(pooler) => {
            let first = graph.node("Gather", "head.cls", &[&x, &zero], vec![int("axis", 1)]);
            let dense_out = gemm(&mut graph, &first, pooler, "head.pooler");
            graph.node("Tanh", "head.tanh", &[&dense_out], vec![])
        }
        // Σ x·m / max(Σ m, 10⁻⁹) over the tokens, as apprentice's head pools.
        HeadPooling::Mean => masked_mean(&mut graph, &x, &mask, 1e-9, "head"),
    };
    gemm(&mut graph, &pooled, &model.classifier, "classifier");
    graph.rename_last_output(OUTPUT_NAME);

    let token_dims = || vec![symbolic(BATCH_AXIS), symbolic(LENGTH_AXIS)];
    let graph = pb::GraphProto {
        name: "apprentice".into(),
        node: graph.nodes,
        initializer: graph.initializers,
        input: vec![
            typed_value_info(IDS_NAME, DataType::Int64, token_dims()),
            typed_value_info(MASK_NAME, DataType::Int64, token_dims()),
        ],
        output: vec![typed_value_info(
            OUTPUT_NAME,
            DataType::Float,
            vec![symbolic(BATCH_AXIS), fixed(model.classifier.outputs)],
        )],
        doc_string: description.to_owned(),
        ..Default::default()
    };
    Ok(model_proto(graph, description))
}

/// The serialised ONNX model of `model` (see [`bert_classifier_to_onnx`]).
pub fn bert_classifier_to_onnx_bytes(
    model: &BertClassifierWeights,
    description: &str,
) -> Result<Vec<u8>, OnnxError> {
    Ok(bert_classifier_to_onnx(model, description)?.encode_to_vec())
}

/// Every array has the size the shape says, so that a mismatch is an error here rather than
/// a graph a runtime refuses.
fn check_shapes(model: &BertClassifierWeights) -> Result<(), OnnxError> {
    let h = model.hidden;
    let wrong = |what: &str, found: usize, expected: String| {
        Err(OnnxError::Export(format!(
            "{what}: {found} values, expected {expected}"
        )))
    };
    if h == 0 || model.heads == 0 || !h.is_multiple_of(model.heads) {
        return Err(OnnxError::Export(format!(
            "hidden size {h} is not a multiple of the {} attention heads",
            model.heads
        )));
    }
    for (what, len) in [
        ("word embeddings", model.word_embeddings.len()),
        ("position embeddings", model.position_embeddings.len()),
    ] {
        if len == 0 || !len.is_multiple_of(h) {
            return wrong(what, len, format!("rows of {h}"));
        }
    }
    if model.segment_embedding.len() != h {
        return wrong(
            "segment embedding",
            model.segment_embedding.len(),
            h.to_string(),
        );
    }
    let dense_ok = |what: String, d: &DenseWeights, inputs: usize, outputs: Option<usize>| {
        if d.inputs != inputs || outputs.is_some_and(|o| o != d.outputs) {
            return Err(OnnxError::Export(format!(
                "{what}: {} inputs → {} outputs, expected {inputs} inputs{}",
                d.inputs,
                d.outputs,
                outputs.map_or_else(String::new, |o| format!(" → {o} outputs"))
            )));
        }
        if d.weight.len() != d.inputs * d.outputs || d.bias.len() != d.outputs {
            return wrong(
                &what,
                d.weight.len(),
                format!(
                    "{} × {} weights and {} biases",
                    d.inputs, d.outputs, d.outputs
                ),
            );
        }
        Ok(())
    };
    let norm_ok = |what: String, n: &NormWeights| {
        if n.gamma.len() != h || n.beta.len() != h {
            return wrong(&what, n.gamma.len(), h.to_string());
        }
        Ok(())
    };
    norm_ok("embedding LayerNorm".into(), &model.embedding_norm)?;
    for (i, layer) in model.layers.iter().enumerate() {
        for (part, d) in [
            ("query", &layer.query),
            ("key", &layer.key),
            ("value", &layer.value),
            ("attention output", &layer.attention_output),
        ] {
            dense_ok(format!("layer {i} {part}"), d, h, Some(h))?;
        }
        dense_ok(
            format!("layer {i} intermediate"),
            &layer.intermediate,
            h,
            None,
        )?;
        let inner = layer.intermediate.outputs;
        dense_ok(format!("layer {i} output"), &layer.output, inner, Some(h))?;
        norm_ok(
            format!("layer {i} attention LayerNorm"),
            &layer.attention_norm,
        )?;
        norm_ok(format!("layer {i} output LayerNorm"), &layer.output_norm)?;
    }
    if let HeadPooling::Cls(pooler) = &model.pooling {
        dense_ok("pooler".into(), pooler, h, Some(h))?;
    }
    dense_ok("classifier".into(), &model.classifier, h, None)
}

/// `x · W + b` over the last axis of a `[N, L, inputs]` tensor.
fn dense(graph: &mut Graph, x: &str, layer: &DenseWeights, name: &str) -> String {
    let (w, b) = weights(graph, layer, name);
    let product = graph.node("MatMul", &format!("{name}.matmul"), &[x, &w], vec![]);
    graph.node("Add", &format!("{name}.bias"), &[&product, &b], vec![])
}

/// `x · W + b` of a `[N, inputs]` matrix.
fn gemm(graph: &mut Graph, x: &str, layer: &DenseWeights, name: &str) -> String {
    let (w, b) = weights(graph, layer, name);
    graph.node("Gemm", name, &[x, &w, &b], vec![])
}

fn weights(graph: &mut Graph, layer: &DenseWeights, name: &str) -> (String, String) {
    let w = graph.initializer(
        &format!("{name}.weight"),
        &[layer.inputs, layer.outputs],
        layer.weight.clone(),
    );
    let b = graph.initializer(
        &format!("{name}.bias"),
        &[layer.outputs],
        layer.bias.clone(),
    );
    (w, b)
}

fn layer_norm(
    graph: &mut Graph,
    x: &str,
    norm: &NormWeights,
    model: &BertClassifierWeights,
    name: &str,
) -> String {
    let gamma = graph.initializer(
        &format!("{name}.gamma"),
        &[model.hidden],
        norm.gamma.clone(),
    );
    let beta = graph.initializer(&format!("{name}.beta"), &[model.hidden], norm.beta.clone());
    graph.node(
        "LayerNormalization",
        name,
        &[x, &gamma, &beta],
        vec![int("axis", -1), float("epsilon", model.layer_norm_eps)],
    )
}

/// A one-element int64 tensor `[1]` → a scalar.
fn squeeze_scalar(graph: &mut Graph, x: &str, name: &str) -> String {
    let axes = graph.int64(&format!("{name}.axes"), &[1], &[0]);
    graph.node("Squeeze", name, &[x, &axes], vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(inputs: usize, outputs: usize) -> DenseWeights {
        DenseWeights {
            weight: vec![0.0; inputs * outputs],
            bias: vec![0.0; outputs],
            inputs,
            outputs,
        }
    }

    fn norm(h: usize) -> NormWeights {
        NormWeights {
            gamma: vec![1.0; h],
            beta: vec![0.0; h],
        }
    }

    fn model() -> BertClassifierWeights {
        let h = 4;
        BertClassifierWeights {
            hidden: h,
            heads: 2,
            layer_norm_eps: 1e-12,
            word_embeddings: vec![0.0; 10 * h],
            position_embeddings: vec![0.0; 8 * h],
            segment_embedding: vec![0.0; h],
            embedding_norm: norm(h),
            layers: vec![BertLayerWeights {
                query: dense(h, h),
                key: dense(h, h),
                value: dense(h, h),
                attention_output: dense(h, h),
                attention_norm: norm(h),
                intermediate: dense(h, 6),
                output: dense(6, h),
                output_norm: norm(h),
            }],
            pooling: HeadPooling::Cls(dense(h, h)),
            classifier: dense(h, 3),
        }
    }

    #[test]
    fn consistent_shapes_pass_and_each_mismatch_is_named() {
        assert!(check_shapes(&model()).is_ok());
        let mut wrong_key = model();
        wrong_key.layers[0].key = dense(4, 5);
        let message = check_shapes(&wrong_key).unwrap_err().to_string();
        assert!(
            message.contains("layer 0 key: 4 inputs → 5 outputs, expected 4 inputs → 4 outputs"),
            "{message}"
        );
        let mut short_bias = model();
        short_bias.classifier.bias.pop();
        let message = check_shapes(&short_bias).unwrap_err().to_string();
        assert!(message.contains("classifier"), "{message}");
        let mut heads = model();
        heads.heads = 3;
        let message = check_shapes(&heads).unwrap_err().to_string();
        assert!(message.contains("3 attention heads"), "{message}");
    }
}

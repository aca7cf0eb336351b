//! apprentice's small text students out to ONNX (opset 17): the bag of embeddings (also the
//! static-embedding student) and the token CNN, from word-piece ids to logits.
//!
//! Tokenisation stays outside the graph: its inputs are `input_ids` and `attention_mask`, int64
//! `[N, L]`, exactly as the Hugging Face tokenizer of the run's `text.model` folder
//! (`tokenizer.json`) returns them, special tokens included and padded to any length `L`. The
//! graph then does what apprentice does to a padded batch:
//! - it reads at most `students.max_tokens` pieces (a `Slice`), as apprentice cuts each text;
//! - it reads every padded position (mask 0) as the run's pad id (a `Where`), whatever the
//!   input holds there, because apprentice's batches hold the pad id there, and the CNN sees
//!   it: the pad token's vector enters the convolution beside the last real tokens;
//! - the bag averages the token vectors over the real tokens only (at least one);
//! - the CNN convolves over all `L` positions with zeros beyond both ends ('same' padding),
//!   applies ReLU, zeroes the padded positions and takes the maximum over time (every value
//!   is ≥ 0 after ReLU, so a zeroed position never wins over a real one);
//! - the dense layers follow, ReLU between them; a student trained to regress the teacher's
//!   sentence embeddings is L2-normalised and followed by the teacher's head.
//!
//! As in apprentice, a CNN's logits for a text depend on how far its batch is padded (the pad
//! vector at the edges); the bag's do not.
//!
//! The graph is built from the student's tensors ([`TextStudentWeights`]): the `text` module,
//! where the students live, sits above `onnx` in the library's layers (through the experiment
//! file), so `text::onnx_export` hands them over and reads a text run's saved students.

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use super::error::OnnxError;
use super::export::{
    BATCH_AXIS, Graph, OUTPUT_NAME, fixed, int, ints, model_proto, symbolic, typed_value_info,
};
use burn::tensor::Tensor;

use crate::backend::to_host;
use crate::models::layers::Dense;
use crate::models::{Activation, Network};

/// Name of the graph's token-id input, int64 `[N, L]`.
pub const IDS_NAME: &str = "input_ids";

/// Name of the graph's mask input, int64 `[N, L]`: 1 for a real token, 0 for padding.
pub const MASK_NAME: &str = "attention_mask";

/// Name of the symbolic length axis.
const LENGTH_AXIS: &str = "L";

/// The epsilon of apprentice's L2 normalisation (`text::pooling::l2_normalize`).
const L2_EPSILON: f32 = 1e-12;

/// The weights of a bag or CNN text student (`text::students::TextStudent`).
#[derive(Debug, Clone)]
pub struct TextStudentWeights<'a> {
    /// One vector per word piece, `[vocab, embedding_dim]`.
    pub embedding: Tensor<2>,
    /// The CNN's kernel `[channels, embedding_dim, width]` and bias `[channels]`; `None` for
    /// a bag of embeddings.
    pub conv: Option<(Tensor<3>, Tensor<1>)>,
    /// Dense layers after pooling, ReLU between them; the last gives the outputs.
    pub head: &'a [Dense],
}

/// What a text graph needs besides the student's weights.
#[derive(Debug, Clone, Copy)]
pub struct TextGraphOptions<'a> {
    /// The id apprentice pads with (the encoder's `pad_token_id`); padded positions are read
    /// as it.
    pub pad_id: u32,
    /// Pieces the student reads at most (`students.max_tokens`); longer inputs are cut inside
    /// the graph. `None`: no cut.
    pub max_tokens: Option<usize>,
    /// The teacher's head, for a student trained to regress the teacher's sentence embeddings
    /// (`bag-embed`): its L2-normalised outputs go through it.
    pub head: Option<&'a Network>,
}

/// The ONNX model of a bag or CNN `student`: inputs [`IDS_NAME`] and [`MASK_NAME`], int64
/// `[N, L]` with both axes dynamic, output `logits` `[N, outputs]` (the head's classes when
/// `options.head` is given).
pub fn text_student_to_onnx(
    student: &TextStudentWeights<'_>,
    options: &TextGraphOptions<'_>,
    description: &str,
) -> Result<pb::ModelProto, OnnxError> {
    let mut graph = Graph::default();
    let (mut ids, mut mask) = (IDS_NAME.to_owned(), MASK_NAME.to_owned());
    if let Some(max_tokens) = options.max_tokens {
        if max_tokens == 0 {
            return Err(OnnxError::Export(
                "max_tokens: expected at least one piece".into(),
            ));
        }
        let starts = graph.int64("truncate.starts", &[1], &[0]);
        let limit = graph.int64("truncate.limit", &[1], &[max_tokens as i64]);
        let axes = graph.int64("truncate.axes", &[1], &[1]);
        // `min(L, max_tokens)` rather than `max_tokens` alone: ONNX clamps an end past the
        // axis, but tract refuses it.
        let length = graph.node(
            "Shape",
            "truncate.length",
            &[&ids],
            vec![int("start", 1), int("end", 2)],
        );
        let ends = graph.node("Min", "truncate.ends", &[&length, &limit], vec![]);
        ids = graph.node(
            "Slice",
            "truncate_ids",
            &[&ids, &starts, &ends, &axes],
            vec![],
        );
        mask = graph.node(
            "Slice",
            "truncate_mask",
            &[&mask, &starts, &ends, &axes],
            vec![],
        );
    }
    let real = cast(&mut graph, &mask, "mask_bool", DataType::Bool);
    let pad = graph.int64("pad_id", &[], &[i64::from(options.pad_id)]);
    ids = graph.node("Where", "pad_ids", &[&real, &ids, &pad], vec![]);
    let weights = cast(&mut graph, &real, "mask_float", DataType::Float);

    let table = student.embedding.clone();
    let table_dims = table.dims().to_vec();
    let table = graph.initializer("embedding", &table_dims, to_host(table));
    // [N, L, D]
    let vectors = graph.node(
        "Gather",
        "embedding.gather",
        &[&table, &ids],
        vec![int("axis", 0)],
    );
    let mut x = match &student.conv {
        None => masked_mean(&mut graph, &vectors, &weights, 1.0, "bag"),
        Some((weight, bias)) => {
            let weight = weight.clone();
            let dims = weight.dims().to_vec();
            let width = dims[2];
            if width % 2 == 0 {
                return Err(OnnxError::Export(format!(
                    "the convolution's kernel is {width} tokens wide; apprentice's students \
                     have odd widths"
                )));
            }
            let w = graph.initializer("conv.weight", &dims, to_host(weight));
            let b = graph.initializer("conv.bias", &[dims[0]], to_host(bias.clone()));
            cnn_pooling(&mut graph, &vectors, &weights, &w, &b, width)
        }
    };
    x = dense_layers(
        &mut graph,
        &x,
        student
            .head
            .iter()
            .map(|layer| (layer.weight.val(), layer.bias.val())),
        Activation::Relu,
        "dense",
    );
    let mut outputs = student
        .head
        .last()
        .map_or(table_dims[1], |l| l.weight.dims()[1]);
    if let Some(head) = options.head {
        if !head.blocks.is_empty() {
            return Err(OnnxError::Export(
                "the teacher's head must be an MLP on sentence embeddings".into(),
            ));
        }
        if head.input_shape().len() != outputs {
            return Err(OnnxError::Export(format!(
                "the student gives {outputs} values but the teacher's head takes {}",
                head.input_shape().len()
            )));
        }
        let normalized = l2_normalize(&mut graph, &x);
        // The last node's output is renamed `logits` below.
        dense_layers(
            &mut graph,
            &normalized,
            head.dense
                .iter()
                .map(|layer| (layer.weight.val(), layer.bias.val())),
            head.activation(),
            "teacher_head",
        );
        outputs = head.num_classes;
    }
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
            vec![symbolic(BATCH_AXIS), fixed(outputs)],
        )],
        doc_string: description.to_owned(),
        ..Default::default()
    };
    Ok(model_proto(graph, description))
}

/// The serialised ONNX model of `student` (see [`text_student_to_onnx`]).
pub fn text_student_to_onnx_bytes(
    student: &TextStudentWeights<'_>,
    options: &TextGraphOptions<'_>,
    description: &str,
) -> Result<Vec<u8>, OnnxError> {
    Ok(text_student_to_onnx(student, options, description)?.encode_to_vec())
}

/// The mean of the token vectors `[N, L, D]` over the real tokens (`weights` `[N, L]`, 1 for
/// a real token): `Σ v·m / max(Σ m, floor)`, in apprentice's order of operations, with nodes
/// named after `prefix`. The bag of embeddings pools with a floor of 1, a BERT head's mean
/// pooling with 10⁻⁹.
pub(crate) fn masked_mean(
    graph: &mut Graph,
    vectors: &str,
    weights: &str,
    floor: f32,
    prefix: &str,
) -> String {
    let name = |part: &str| format!("{prefix}.{part}");
    let axis2 = graph.int64(&name("axis2"), &[1], &[2]);
    let axis1 = graph.int64(&name("axis1"), &[1], &[1]);
    let floor = graph.initializer(&name("floor"), &[], vec![floor]);
    let column = graph.node("Unsqueeze", &name("mask"), &[weights, &axis2], vec![]);
    let weighted = graph.node("Mul", &name("weighted"), &[vectors, &column], vec![]);
    let sum = graph.node(
        "ReduceSum",
        &name("sum"),
        &[&weighted, &axis1],
        vec![int("keepdims", 0)],
    );
    let count = graph.node(
        "ReduceSum",
        &name("count"),
        &[weights, &axis1],
        vec![int("keepdims", 1)],
    );
    let count = graph.node("Max", &name("count_floor"), &[&count, &floor], vec![]);
    graph.node("Div", &name("mean"), &[&sum, &count], vec![])
}

/// The token convolution ('same' padded), ReLU, padded positions zeroed, max over time.
fn cnn_pooling(
    graph: &mut Graph,
    vectors: &str,
    weights: &str,
    w: &str,
    b: &str,
    width: usize,
) -> String {
    let axis1 = graph.int64("cnn.axis1", &[1], &[1]);
    // [N, D, L], channels first as Conv takes them.
    let channels_first = graph.node(
        "Transpose",
        "cnn.transpose",
        &[vectors],
        vec![ints("perm", &[0, 2, 1])],
    );
    let k = width as i64;
    let maps = graph.node(
        "Conv",
        "cnn.conv",
        &[&channels_first, w, b],
        vec![
            ints("kernel_shape", &[k]),
            ints("pads", &[k / 2, k / 2]),
            ints("strides", &[1]),
            ints("dilations", &[1]),
        ],
    );
    let maps = graph.node("Relu", "cnn.relu", &[&maps], vec![]);
    let row = graph.node("Unsqueeze", "cnn.mask", &[weights, &axis1], vec![]);
    let maps = graph.node("Mul", "cnn.masked", &[&maps, &row], vec![]);
    // Opset 17's ReduceMax takes its axes as an attribute (an input only from opset 18).
    graph.node(
        "ReduceMax",
        "cnn.max",
        &[&maps],
        vec![ints("axes", &[2]), int("keepdims", 0)],
    )
}

/// `x / max(‖x‖, ε)` per row, as apprentice normalises a sentence embedding.
fn l2_normalize(graph: &mut Graph, x: &str) -> String {
    let axis1 = graph.int64("l2.axis1", &[1], &[1]);
    let epsilon = graph.initializer("l2.epsilon", &[], vec![L2_EPSILON]);
    let squares = graph.node("Mul", "l2.square", &[x, x], vec![]);
    let sum = graph.node(
        "ReduceSum",
        "l2.sum",
        &[&squares, &axis1],
        vec![int("keepdims", 1)],
    );
    let norm = graph.node("Sqrt", "l2.norm", &[&sum], vec![]);
    let norm = graph.node("Max", "l2.norm_min", &[&norm, &epsilon], vec![]);
    graph.node("Div", "l2.divide", &[x, &norm], vec![])
}

/// Dense layers `x·W + b` (W stored `[inputs, outputs]`), `activation` between them.
fn dense_layers(
    graph: &mut Graph,
    x: &str,
    layers: impl ExactSizeIterator<Item = (burn::tensor::Tensor<2>, burn::tensor::Tensor<1>)>,
    activation: Activation,
    prefix: &str,
) -> String {
    let last = layers.len().saturating_sub(1);
    let mut x = x.to_owned();
    for (index, (weight, bias)) in layers.enumerate() {
        let name = format!("{prefix}{}", index + 1);
        let dims = weight.dims().to_vec();
        let w = graph.initializer(&format!("{name}.weight"), &dims, to_host(weight));
        let b = graph.initializer(&format!("{name}.bias"), &[dims[1]], to_host(bias));
        x = graph.node("Gemm", &name, &[&x, &w, &b], vec![]);
        if index < last {
            x = graph.activation(&x, activation, &format!("{prefix}_hidden{}", index + 1));
        }
    }
    x
}

fn cast(graph: &mut Graph, x: &str, name: &str, to: DataType) -> String {
    graph.node("Cast", name, &[x], vec![int("to", to as i64)])
}

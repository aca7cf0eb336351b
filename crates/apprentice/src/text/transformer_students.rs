//! Transformer students of a BERT teacher: a shallower copy initialised from a subset of the
//! teacher's layers (DistilBERT: every other layer), or a narrower BERT from random
//! initialisation that keeps the teacher's vocabulary (and so its tokenizer).

use burn::module::Module;
use burn::tensor::Device;

use super::bert::{Bert, BertConfig};
use super::error::TextError;

/// Every other layer of `layers`, starting with the first: `[0, 2, 4]` of 6 (DistilBERT's
/// choice for a student of half the depth).
pub fn every_other_layer(layers: usize) -> Vec<usize> {
    (0..layers).step_by(2).collect()
}

/// A student with the teacher's embeddings and the teacher's layers `layers` (in that order),
/// on `device`, and its config (the teacher's with `num_hidden_layers` changed).
pub fn shallow_copy(
    teacher: &Bert,
    config: &BertConfig,
    layers: &[usize],
    device: &Device,
) -> Result<(Bert, BertConfig), TextError> {
    if layers.is_empty() {
        return Err(TextError::Invalid(
            "shallow_copy: expected at least one teacher layer to copy".into(),
        ));
    }
    if let Some(&bad) = layers.iter().find(|&&l| l >= teacher.layers.len()) {
        return Err(TextError::Invalid(format!(
            "shallow_copy: layer {bad} of a teacher with {} layers (counted from 0)",
            teacher.layers.len()
        )));
    }
    let student = Bert {
        embeddings: teacher.embeddings.clone().to_device(device),
        layers: layers
            .iter()
            .map(|&l| teacher.layers[l].clone().to_device(device))
            .collect(),
        heads: teacher.heads,
        layer_norm_eps: teacher.layer_norm_eps,
    };
    let mut student_config = config.clone();
    student_config.num_hidden_layers = layers.len();
    Ok((student, student_config))
}

/// The shape of a narrower student: the teacher's vocabulary, positions, segments and
/// padding id with `layers` layers of width `hidden`, `heads` heads and a feed-forward block
/// of `4 × hidden`.
pub fn narrow_config(
    teacher: &BertConfig,
    layers: usize,
    hidden: usize,
    heads: usize,
) -> Result<BertConfig, TextError> {
    let config = BertConfig {
        hidden_size: hidden,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        intermediate_size: 4 * hidden,
        ..teacher.clone()
    };
    config
        .validate()
        .map_err(|m| TextError::Invalid(format!("narrow student: {m}")))?;
    Ok(config)
}

/// A randomly initialised BERT of shape `config` (BERT's initialisation, from burn's generator
/// for `device`: seed it for a reproducible student).
pub fn narrow_student(config: &BertConfig, device: &Device) -> Bert {
    Bert::random(config, device)
}

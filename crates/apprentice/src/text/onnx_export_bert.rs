//! A `BertForSequenceClassification` folder out to ONNX: the fine-tuned teacher and the
//! transformer students a text run saves (`<run>/seed-N/<model>.hf`), or a folder fine-tuned
//! elsewhere. The folder is read as apprentice reads it as a teacher
//! ([`super::classifier_folder::load_classifier`], whose errors name the file and tensor), and
//! the graph is [`crate::onnx::export_bert`]'s.

use std::path::{Path, PathBuf};

use super::bert::Bert;
use super::classifier::{BertClassifier, ClassifierPooling};
use super::classifier_folder::load_classifier;
use super::error::TextError;
use super::pretrained::TOKENIZER_FILE;
use crate::backend::{ComputeDevice, to_host};
use crate::onnx::OnnxError;
use crate::onnx::export_bert::{
    BertClassifierWeights, BertLayerWeights, DenseWeights, HeadPooling, NormWeights,
    bert_classifier_to_onnx,
};
use burn::nn::{LayerNorm, Linear};

/// What [`export_classifier_folder`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct BertExportSummary {
    /// The model's shape in words (`bert 3×384 (12 heads), cls head → 2`).
    pub architecture: String,
    /// Class names in class order (`id2label`).
    pub labels: Vec<String>,
    /// The folder's tokenizer, whose ids the graph takes (it may be absent: a folder
    /// fine-tuned elsewhere can keep its tokenizer apart).
    pub tokenizer: PathBuf,
    /// Positions the model has (`max_position_embeddings`): the longest input it reads.
    pub max_positions: usize,
    /// Operators in the graph.
    pub nodes: usize,
    /// Bytes written.
    pub bytes: usize,
}

/// The weights of `model` as plain arrays, for [`bert_classifier_to_onnx`].
pub fn classifier_weights(model: &BertClassifier) -> BertClassifierWeights {
    let bert: &Bert = &model.bert;
    let [_, hidden] = bert.embeddings.word.weight.dims();
    let segment = bert.embeddings.token_type.weight.val().narrow(0, 0, 1);
    BertClassifierWeights {
        hidden,
        heads: bert.heads,
        layer_norm_eps: bert.layer_norm_eps as f32,
        word_embeddings: to_host(bert.embeddings.word.weight.val()),
        position_embeddings: to_host(bert.embeddings.position.weight.val()),
        segment_embedding: to_host(segment),
        embedding_norm: norm(&bert.embeddings.norm),
        layers: bert
            .layers
            .iter()
            .map(|layer| BertLayerWeights {
                query: dense(&layer.query),
                key: dense(&layer.key),
                value: dense(&layer.value),
                attention_output: dense(&layer.attention_output),
                attention_norm: norm(&layer.attention_norm),
                intermediate: dense(&layer.intermediate),
                output: dense(&layer.output),
                output_norm: norm(&layer.output_norm),
            })
            .collect(),
        pooling: match model.pooling() {
            ClassifierPooling::Cls => HeadPooling::Cls(dense(&model.pooler)),
            ClassifierPooling::Mean => HeadPooling::Mean,
        },
        classifier: dense(&model.classifier),
    }
}

fn dense(linear: &Linear) -> DenseWeights {
    let [inputs, outputs] = linear.weight.dims();
    DenseWeights {
        weight: to_host(linear.weight.val()),
        bias: linear
            .bias
            .as_ref()
            .map_or_else(|| vec![0.0; outputs], |b| to_host(b.val())),
        inputs,
        outputs,
    }
}

fn norm(layer: &LayerNorm) -> NormWeights {
    let gamma = to_host(layer.gamma.val());
    let beta = layer
        .beta
        .as_ref()
        .map_or_else(|| vec![0.0; gamma.len()], |b| to_host(b.val()));
    NormWeights { gamma, beta }
}

/// Reads the `BertForSequenceClassification` folder `dir` and writes it as an ONNX file at
/// `out` (atomically); a folder apprentice cannot read as a classifier is refused on one
/// line naming the file and what is wrong.
pub fn export_classifier_folder(dir: &Path, out: &Path) -> Result<BertExportSummary, OnnxError> {
    let device = ComputeDevice::cpu().inference();
    let loaded = load_classifier(dir, &device).map_err(|error| match error {
        TextError::Model { path, message } => OnnxError::Invalid { path, message },
        TextError::Io { path, source } => OnnxError::Io { path, source },
        other => OnnxError::Export(other.to_string()),
    })?;
    let config = &loaded.config;
    let architecture = format!(
        "bert {}×{} ({} heads), {} head → {}",
        config.num_hidden_layers,
        config.hidden_size,
        config.num_attention_heads,
        match loaded.model.pooling() {
            ClassifierPooling::Cls => "cls",
            ClassifierPooling::Mean => "mean",
        },
        loaded.labels.len()
    );
    let tokenizer = dir.join(TOKENIZER_FILE);
    // The folder's name only: a full path would record the exporting machine's layout.
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let description = format!(
        "{architecture}, from the model folder {name} by apprentice; inputs: input_ids and \
         attention_mask, int64 [N, L], from the folder's {TOKENIZER_FILE} (special tokens \
         included, at most {} pieces); output: logits [N, {}] for the labels {}",
        config.max_position_embeddings,
        loaded.labels.len(),
        loaded.labels.join(", ")
    );
    let model = bert_classifier_to_onnx(&classifier_weights(&loaded.model), &description)?;
    let bytes = crate::onnx::export::write_model(&model, out)?;
    Ok(BertExportSummary {
        architecture,
        labels: loaded.labels.clone(),
        tokenizer,
        max_positions: config.max_position_embeddings,
        nodes: model.graph.as_ref().map_or(0, |g| g.node.len()),
        bytes,
    })
}

//! A BERT sequence classifier: the encoder, then Hugging Face's `BertForSequenceClassification`
//! head (the pooler, `tanh(dense([CLS]))`, dropout, a linear layer), or mean pooling over the
//! real tokens before the dropout and the linear layer.
//!
//! With the pooler head the arithmetic is `transformers`' own, so a folder saved by
//! [`super::classifier_folder`] gives the same logits there; the mean-pooling head is
//! apprentice's (sentence encoders such as all-MiniLM-L6-v2 are trained for mean pooling) and
//! is marked in the folder's `config.json`.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData, activation};
use serde::{Deserialize, Serialize};

use super::bert::{Bert, BertConfig, BertDropout, BertOutput};
use super::tokenizer::pad_batch;

/// How the token vectors become the vector the classifier reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassifierPooling {
    /// `tanh(dense([CLS]))`: `BertForSequenceClassification`'s pooler.
    #[default]
    Cls,
    /// The mean of the real tokens' vectors.
    Mean,
}

/// A BERT encoder with a classification head.
#[derive(Module, Debug)]
pub struct BertClassifier {
    /// The encoder.
    pub bert: Bert,
    /// The pooler's dense layer (`hidden → hidden`, then tanh), used by [`ClassifierPooling::Cls`].
    pub pooler: Linear,
    /// The classification layer (`hidden → labels`).
    pub classifier: Linear,
    /// Whether the head reads the mean of the real tokens instead of the pooled `[CLS]`.
    pub mean_pooling: bool,
}

/// A dense layer with BERT's initialisation (N(0, `std`²) weights, zero bias).
pub(crate) fn bert_linear(inputs: usize, outputs: usize, std: f64, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(inputs, outputs)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    linear.bias = Some(Param::from_tensor(Tensor::zeros([outputs], device)));
    linear
}

/// A linear layer from PyTorch's weights: `weight` as `nn.Linear` stores it (one row of
/// `inputs` per output), `bias` one per output; burn keeps the weight as `[inputs, outputs]`.
pub fn linear_from_pytorch(weight: &[Vec<f32>], bias: &[f32], device: &Device) -> Linear {
    let (outputs, inputs) = (weight.len(), weight.first().map_or(0, Vec::len));
    let transposed: Vec<f32> = (0..inputs)
        .flat_map(|i| weight.iter().map(move |row| row[i]))
        .collect();
    Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(transposed, [inputs, outputs]),
            device,
        )),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias.to_vec(), [outputs]),
            device,
        ))),
    }
}

impl BertClassifier {
    /// A classifier over `bert` with a new pooler and head (BERT's initialisation, from burn's
    /// generator for `device`) for `labels` classes.
    pub fn new(
        bert: Bert,
        config: &BertConfig,
        labels: usize,
        pooling: ClassifierPooling,
        device: &Device,
    ) -> Self {
        let h = config.hidden_size;
        Self {
            bert,
            pooler: bert_linear(h, h, config.initializer_range, device),
            classifier: bert_linear(h, labels, config.initializer_range, device),
            mean_pooling: pooling == ClassifierPooling::Mean,
        }
    }

    /// Which pooling the head reads.
    pub fn pooling(&self) -> ClassifierPooling {
        if self.mean_pooling {
            ClassifierPooling::Mean
        } else {
            ClassifierPooling::Cls
        }
    }

    /// Number of classes.
    pub fn labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Logits `[batch, labels]` of padded `ids` `[batch, len]` with `mask` (1 for real tokens);
    /// `dropout` is the encoder's, `head_dropout` the one before the classification layer.
    /// Dropout only acts on an autodiff device.
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        mask: Tensor<2>,
        dropout: &BertDropout,
        head_dropout: f64,
    ) -> Tensor<2> {
        let output = self.bert.forward_detailed(ids, mask.clone(), dropout);
        self.head(&output, mask, dropout, head_dropout)
    }

    /// The head on an encoder output already computed (for losses that also read the hidden
    /// states or attentions).
    pub fn head(
        &self,
        output: &BertOutput,
        mask: Tensor<2>,
        dropout: &BertDropout,
        head_dropout: f64,
    ) -> Tensor<2> {
        let hidden = output.last();
        let [batch, len, width] = hidden.dims();
        let pooled: Tensor<2> = if self.mean_pooling {
            let weights: Tensor<3> = mask.clone().reshape([batch, len, 1]);
            let sum: Tensor<2> = (hidden * weights).sum_dim(1).reshape([batch, width]);
            sum / mask.sum_dim(1).clamp_min(1e-9)
        } else {
            let first: Tensor<2> = hidden.narrow(1, 0, 1).reshape([batch, width]);
            activation::tanh(self.pooler.forward(first))
        };
        self.classifier.forward(dropout.apply(head_dropout, pooled))
    }

    /// Logits of unpadded id sequences, `sequences × labels`, row-major, in input order,
    /// without dropout: sorted by length and padded per batch of `batch_size`, each cut at
    /// `max_length`.
    pub fn logits(
        &self,
        sequences: &[Vec<u32>],
        pad_id: u32,
        max_length: usize,
        batch_size: usize,
        device: &Device,
    ) -> Vec<f32> {
        let labels = self.labels();
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| (sequences[i].len(), i));
        let mut output = vec![0.0; sequences.len() * labels];
        for chunk in order.chunks(batch_size.max(1)) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| sequences[i].as_slice()).collect();
            let (ids, mask) = batch_tensors(&batch, pad_id, max_length, device);
            let logits =
                crate::backend::to_host(self.forward(ids, mask, &BertDropout::default(), 0.0));
            for (row, &index) in chunk.iter().enumerate() {
                output[index * labels..(index + 1) * labels]
                    .copy_from_slice(&logits[row * labels..(row + 1) * labels]);
            }
        }
        output
    }
}

/// Ids `[batch, len]` and mask `[batch, len]` tensors of sequences padded to the longest (each
/// cut at `max_length`).
pub fn batch_tensors<S: AsRef<[u32]>>(
    sequences: &[S],
    pad_id: u32,
    max_length: usize,
    device: &Device,
) -> (Tensor<2, Int>, Tensor<2>) {
    let padded = pad_batch(sequences, pad_id, max_length);
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(padded.ids, [padded.rows, padded.len]),
        device,
    );
    let mask = crate::backend::matrix(padded.mask, padded.rows, padded.len, device);
    (ids, mask)
}

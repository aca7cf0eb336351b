//! A BERT encoder as burn modules: word, position and token-type embeddings with LayerNorm,
//! then layers of self-attention and a GELU feed-forward block, each followed by a residual
//! connection and LayerNorm (post-norm), as in Devlin et al. (2019) and Hugging Face's
//! `BertModel`.
//!
//! The modules are built with zero weights; [`super::pretrained`] fills them from a model
//! folder.

pub use super::dropout::BertDropout;
use crate::models::kernels::{
    batched_matmul, embedding_lookup, gelu, layer_norm as fused_layer_norm, linear_forward,
    softmax_last,
};
use burn::module::Module;
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// The fields of a Hugging Face `config.json` that a BERT encoder needs; the file's other
/// fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Number of word pieces.
    pub vocab_size: usize,
    /// Width of every token representation.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; divides `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Number of learned positions: the longest sequence the model can read.
    pub max_position_embeddings: usize,
    /// Number of segment (token type) embeddings.
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    /// Epsilon of every LayerNorm.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Non-linearity of the feed-forward block; only `gelu` (the exact erf form) is supported.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Only `absolute` (learned positions) is supported.
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
    /// Id of the padding token.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Dropout after the embeddings and each block's output projection, in training.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention probabilities, in training.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Standard deviation of the normal initialisation of new weights.
    #[serde(default = "default_initializer_range")]
    pub initializer_range: f64,
}

fn default_dropout() -> f64 {
    0.1
}
fn default_initializer_range() -> f64 {
    0.02
}

fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_hidden_act() -> String {
    "gelu".to_string()
}
fn default_position_embedding_type() -> String {
    "absolute".to_string()
}

impl BertConfig {
    /// Checks what this implementation supports; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(format!("{field}: expected at least 1, found 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "num_attention_heads: expected a divisor of hidden_size {}, found {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act: expected \"gelu\", found {:?} (not supported)",
                self.hidden_act
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type: expected \"absolute\", found {:?} (not supported)",
                self.position_embedding_type
            ));
        }
        for (field, value) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&value) {
                return Err(format!(
                    "{field}: expected a number in [0, 1), found {value}"
                ));
            }
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(format!(
                "layer_norm_eps: expected a positive number, found {}",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }

    /// The dropout probabilities this config trains with.
    pub fn dropout(&self) -> BertDropout {
        BertDropout {
            hidden: self.hidden_dropout_prob,
            attention: self.attention_probs_dropout_prob,
            generator: None,
        }
    }

    /// Number of parameters of the encoder this config describes.
    pub fn parameter_count(&self) -> usize {
        let h = self.hidden_size;
        let i = self.intermediate_size;
        let embeddings =
            (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * (h * i) + i + h + 4 * h;
        embeddings + self.num_hidden_layers * layer
    }
}

/// Word, position and token-type embeddings, summed and normalised.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// One vector per word piece.
    pub word: Embedding,
    /// One vector per position.
    pub position: Embedding,
    /// One vector per segment; single-sentence inputs use segment 0.
    pub token_type: Embedding,
    /// LayerNorm of the sum.
    pub norm: LayerNorm,
}

/// One encoder layer: multi-head self-attention and a feed-forward block.
#[derive(Module, Debug)]
pub struct BertLayer {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Projection of the concatenated heads.
    pub attention_output: Linear,
    /// LayerNorm after the attention's residual connection.
    pub attention_norm: LayerNorm,
    /// Feed-forward expansion.
    pub intermediate: Linear,
    /// Feed-forward projection back to the hidden size.
    pub output: Linear,
    /// LayerNorm after the feed-forward residual connection.
    pub output_norm: LayerNorm,
}

/// The whole encoder.
#[derive(Module, Debug)]
pub struct Bert {
    /// Input embeddings.
    pub embeddings: BertEmbeddings,
    /// Encoder layers, input side first.
    pub layers: Vec<BertLayer>,
    /// Attention heads per layer.
    pub heads: usize,
    /// The LayerNorms' epsilon (`layer_norm_eps`), which burn's `LayerNorm` keeps private.
    pub layer_norm_eps: f64,
}

fn linear(inputs: usize, outputs: usize, init: &Initializer, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(inputs, outputs)
        .with_initializer(init.clone())
        .init(device);
    // Biases start at zero, as in BERT's initialisation.
    linear.bias = Some(burn::module::Param::from_tensor(Tensor::zeros(
        [outputs],
        device,
    )));
    linear
}

fn embedding(count: usize, width: usize, init: &Initializer, device: &Device) -> Embedding {
    EmbeddingConfig::new(count, width)
        .with_initializer(init.clone())
        .init(device)
}

fn layer_norm(config: &BertConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(config.hidden_size)
        .with_epsilon(config.layer_norm_eps)
        .init(device)
}

impl Bert {
    /// An encoder of the shape `config` describes, every weight zero (to be loaded).
    pub fn zeros(config: &BertConfig, device: &Device) -> Self {
        Self::with_initializer(config, &Initializer::Zeros, device)
    }

    /// An encoder of the shape `config` describes, initialised as BERT is: dense and embedding
    /// weights from N(0, `initializer_range`²), biases 0, LayerNorm scales 1. The draws come
    /// from burn's generator for `device`: seed it (`Device::seed`) for a reproducible model.
    pub fn random(config: &BertConfig, device: &Device) -> Self {
        let init = Initializer::Normal {
            mean: 0.0,
            std: config.initializer_range,
        };
        Self::with_initializer(config, &init, device)
    }

    fn with_initializer(config: &BertConfig, init: &Initializer, device: &Device) -> Self {
        let h = config.hidden_size;
        let embeddings = BertEmbeddings {
            word: embedding(config.vocab_size, h, init, device),
            position: embedding(config.max_position_embeddings, h, init, device),
            token_type: embedding(config.type_vocab_size, h, init, device),
            norm: layer_norm(config, device),
        };
        let layers = (0..config.num_hidden_layers)
            .map(|_| BertLayer {
                query: linear(h, h, init, device),
                key: linear(h, h, init, device),
                value: linear(h, h, init, device),
                attention_output: linear(h, h, init, device),
                attention_norm: layer_norm(config, device),
                intermediate: linear(h, config.intermediate_size, init, device),
                output: linear(config.intermediate_size, h, init, device),
                output_norm: layer_norm(config, device),
            })
            .collect();
        Self {
            embeddings,
            layers,
            heads: config.num_attention_heads,
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// Token representations `[batch, len, hidden]` of `ids` `[batch, len]`; `mask` `[batch,
    /// len]` is 1 for real tokens and 0 for padding, which no token attends to.
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
        let [batch, len] = ids.dims();
        let mut x = self.embed(ids);
        let padding: Tensor<4, Bool> = mask
            .equal_elem(0.0)
            .reshape([batch, 1, 1, len])
            .expand([batch, self.heads, len, len]);
        for layer in &self.layers {
            x = layer.forward(x, padding.clone(), self.heads);
        }
        x
    }

    /// The normalised sum of word, position and segment-0 embeddings, `[batch, len, hidden]`.
    fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, len] = ids.dims();
        let device = ids.device();
        let positions: Vec<i64> = (0..len as i64).collect();
        let positions = Tensor::<2, Int>::from_data(TensorData::new(positions, [1, len]), &device);
        let segment = Tensor::<2, Int>::zeros([1, 1], &device);
        let x = embedding_lookup(&self.embeddings.word, ids)
            + self.embeddings.position.forward(positions)
            + self.embeddings.token_type.forward(segment);
        fused_layer_norm(&self.embeddings.norm, x, self.layer_norm_eps)
    }

    /// The forward pass for training and distillation: dropout as BERT applies it (after the
    /// embeddings, on the attention probabilities, after each block's output projection; only
    /// on an autodiff device), the attention written out so that its probabilities can be
    /// returned, and every layer's output kept.
    pub fn forward_detailed(
        &self,
        ids: Tensor<2, Int>,
        mask: Tensor<2>,
        dropout: &BertDropout,
    ) -> BertOutput {
        let [batch, len] = ids.dims();
        let mut x = dropout.hidden(self.embed(ids));
        // Additive mask: padded keys get a score so low that their weight is exactly 0.
        let bias: Tensor<4> = ((mask - 1.0) * 1e9).reshape([batch, 1, 1, len]);
        let mut hidden_states = vec![x.clone()];
        let mut attentions = Vec::with_capacity(self.layers.len());
        let mut values = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (next, probabilities, value) =
                layer.forward_detailed(x, &bias, self.heads, self.layer_norm_eps, dropout);
            x = next;
            hidden_states.push(x.clone());
            attentions.push(probabilities);
            values.push(value);
        }
        BertOutput {
            hidden_states,
            attentions,
            values,
        }
    }
}

/// What [`Bert::forward_detailed`] returns.
#[derive(Debug, Clone)]
pub struct BertOutput {
    /// The embeddings' output, then each layer's, `[batch, len, hidden]` each (`layers + 1`).
    pub hidden_states: Vec<Tensor<3>>,
    /// Each layer's attention probabilities `[batch, heads, len, len]` (before dropout).
    pub attentions: Vec<Tensor<4>>,
    /// Each layer's value vectors split by head, `[batch, heads, len, head_width]`.
    pub values: Vec<Tensor<4>>,
}

impl BertOutput {
    /// The last layer's token representations.
    pub fn last(&self) -> Tensor<3> {
        self.hidden_states
            .last()
            .cloned()
            .expect("at least the embeddings' output")
    }
}

impl BertLayer {
    fn forward_detailed(
        &self,
        x: Tensor<3>,
        bias: &Tensor<4>,
        heads: usize,
        eps: f64,
        dropout: &BertDropout,
    ) -> (Tensor<3>, Tensor<4>, Tensor<4>) {
        let [batch, len, hidden] = x.dims();
        let head_width = hidden / heads;
        let split = |t: Tensor<3>| -> Tensor<4> {
            t.reshape([batch, len, heads, head_width]).swap_dims(1, 2)
        };
        let query = split(linear_forward(&self.query, x.clone()));
        let key = split(linear_forward(&self.key, x.clone()));
        let value = split(linear_forward(&self.value, x.clone()));
        let scores =
            batched_matmul(query, key.swap_dims(2, 3)) / (head_width as f64).sqrt() + bias.clone();
        let probabilities = softmax_last(scores);
        let weights = dropout.apply(dropout.attention, probabilities.clone());
        let context: Tensor<3> = batched_matmul(weights, value.clone())
            .swap_dims(1, 2)
            .reshape([batch, len, hidden]);
        let attended = dropout.hidden(linear_forward(&self.attention_output, context));
        let x = fused_layer_norm(&self.attention_norm, attended + x, eps);
        let inner = gelu(linear_forward(&self.intermediate, x.clone()));
        let out = dropout.hidden(linear_forward(&self.output, inner));
        (
            fused_layer_norm(&self.output_norm, out + x, eps),
            probabilities,
            value,
        )
    }

    fn forward(&self, x: Tensor<3>, padding: Tensor<4, Bool>, heads: usize) -> Tensor<3> {
        let [batch, len, hidden] = x.dims();
        let head_width = hidden / heads;
        let split = |t: Tensor<3>| -> Tensor<4> {
            t.reshape([batch, len, heads, head_width]).swap_dims(1, 2)
        };
        let query = split(linear_forward(&self.query, x.clone()));
        let key = split(linear_forward(&self.key, x.clone()));
        let value = split(linear_forward(&self.value, x.clone()));
        let context = attention(
            query,
            key,
            value,
            Some(padding),
            None,
            AttentionModuleOptions::default(),
        );
        let context: Tensor<3> = context.swap_dims(1, 2).reshape([batch, len, hidden]);
        let x = self
            .attention_norm
            .forward(linear_forward(&self.attention_output, context) + x);
        let inner = gelu(linear_forward(&self.intermediate, x.clone()));
        self.output_norm
            .forward(linear_forward(&self.output, inner) + x)
    }
}

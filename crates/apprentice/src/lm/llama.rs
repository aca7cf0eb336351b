//! A llama-architecture decoder as burn modules: token embeddings, layers of pre-norm
//! grouped-query self-attention with rotary positions and a SwiGLU feed-forward block, a final
//! RMSNorm, and the output projection (tied to the embeddings unless the file has its own).
//!
//! [`Llama::forward`] gives the logits of every position of a batch of sequences (causal: a
//! position sees itself and the ones before it, so right padding changes no real position);
//! [`Llama::forward_cached`] extends a [`KvCache`] for generation.
//!
//! Rotary positions use the "rotate half" layout of Hugging Face's `LlamaForCausalLM`: the
//! first half of each head's features pairs with the second half. llama.cpp's converter
//! permutes the rows of the query and key projections to interleave those pairs; the loader
//! ([`super::teacher`]) undoes that permutation, so weights here are in Hugging Face's order.

use burn::module::Module;
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, RmsNorm, RmsNormConfig,
};
use burn::tensor::module::{attention, linear as project};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData, activation};
use serde::{Deserialize, Serialize};

use crate::models::kernels;

/// The shape of a llama decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Width of every token representation.
    pub hidden: usize,
    /// Number of decoder layers.
    pub layers: usize,
    /// Query heads per layer.
    pub heads: usize,
    /// Key/value heads per layer; divides `heads` (grouped-query attention).
    pub kv_heads: usize,
    /// Width of the SwiGLU block.
    pub ffn: usize,
    /// Base of the rotary frequencies.
    pub rope_theta: f64,
    /// Epsilon of every RMSNorm.
    pub rms_eps: f64,
    /// Longest context the model was trained on (longer inputs are refused).
    pub max_len: usize,
    /// Whether the output projection is the token embedding matrix.
    pub tied: bool,
}

impl LlamaConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads.max(1)
    }

    /// Checks the shape; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden", self.hidden),
            ("layers", self.layers),
            ("heads", self.heads),
            ("kv_heads", self.kv_heads),
            ("ffn", self.ffn),
            ("max_len", self.max_len),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(format!("{field}: expected at least 1, found 0"));
            }
        }
        if !self.hidden.is_multiple_of(self.heads) || !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "heads: expected a divisor of hidden {} leaving an even head width, found {}",
                self.hidden, self.heads
            ));
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(format!(
                "kv_heads: expected a divisor of heads {}, found {}",
                self.heads, self.kv_heads
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err(format!(
                "rope_theta: expected a number above 1, found {}",
                self.rope_theta
            ));
        }
        if !(self.rms_eps.is_finite() && self.rms_eps > 0.0) {
            return Err(format!(
                "rms_eps: expected a positive number, found {}",
                self.rms_eps
            ));
        }
        Ok(())
    }

    /// Parameters outside the embeddings (and the output projection).
    pub fn non_embedding_parameters(&self) -> usize {
        let h = self.hidden;
        let kv = self.kv_heads * self.head_dim();
        let layer = 2 * h * h + 2 * h * kv + 3 * h * self.ffn + 2 * h;
        self.layers * layer + h
    }

    /// Every parameter.
    pub fn parameters(&self) -> usize {
        let embed = self.vocab_size * self.hidden;
        self.non_embedding_parameters() + if self.tied { embed } else { 2 * embed }
    }
}

/// One decoder layer.
#[derive(Module, Debug)]
pub struct LlamaLayer {
    /// RMSNorm before attention.
    pub attn_norm: RmsNorm,
    /// Query projection, `hidden → heads · head_dim`.
    pub q: Linear,
    /// Key projection, `hidden → kv_heads · head_dim`.
    pub k: Linear,
    /// Value projection, `hidden → kv_heads · head_dim`.
    pub v: Linear,
    /// Output projection of the concatenated heads.
    pub o: Linear,
    /// RMSNorm before the feed-forward block.
    pub ffn_norm: RmsNorm,
    /// SwiGLU gate projection.
    pub gate: Linear,
    /// SwiGLU up projection.
    pub up: Linear,
    /// Projection back to the hidden width.
    pub down: Linear,
}

/// The whole decoder.
#[derive(Module, Debug)]
pub struct Llama {
    /// Token embeddings `[vocab, hidden]`.
    pub embed: Embedding,
    /// Decoder layers, input side first.
    pub layers: Vec<LlamaLayer>,
    /// Final RMSNorm.
    pub norm: RmsNorm,
    /// Output projection `hidden → vocab`, when not tied to the embeddings.
    pub lm_head: Option<Linear>,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Base of the rotary frequencies.
    pub rope_theta: f64,
}

/// The keys and values of the positions seen so far, per layer, for generation.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<(Tensor<4>, Tensor<4>)>,
    len: usize,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn linear(inputs: usize, outputs: usize, init: &Initializer, device: &Device) -> Linear {
    LinearConfig::new(inputs, outputs)
        .with_bias(false)
        .with_initializer(init.clone())
        .init(device)
}

fn rms_norm(width: usize, eps: f64, device: &Device) -> RmsNorm {
    RmsNormConfig::new(width).with_epsilon(eps).init(device)
}

impl Llama {
    /// A decoder of the shape `config` describes, weights drawn from `init` (norms at one).
    /// The loader replaces every weight; students train from here.
    pub fn new(config: &LlamaConfig, init: &Initializer, device: &Device) -> Self {
        let h = config.hidden;
        let kv = config.kv_heads * config.head_dim();
        let layers = (0..config.layers)
            .map(|_| LlamaLayer {
                attn_norm: rms_norm(h, config.rms_eps, device),
                q: linear(h, h, init, device),
                k: linear(h, kv, init, device),
                v: linear(h, kv, init, device),
                o: linear(h, h, init, device),
                ffn_norm: rms_norm(h, config.rms_eps, device),
                gate: linear(h, config.ffn, init, device),
                up: linear(h, config.ffn, init, device),
                down: linear(config.ffn, h, init, device),
            })
            .collect();
        Self {
            embed: EmbeddingConfig::new(config.vocab_size, h)
                .with_initializer(init.clone())
                .init(device),
            layers,
            norm: rms_norm(h, config.rms_eps, device),
            lm_head: (!config.tied).then(|| linear(h, config.vocab_size, init, device)),
            heads: config.heads,
            kv_heads: config.kv_heads,
            rope_theta: config.rope_theta,
        }
    }

    /// Logits `[batch, len, vocab]` of every position of `ids` `[batch, len]`.
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.run(ids, None, None)
    }

    /// Logits `[batch, new, vocab]` of `ids` `[batch, new]`, the positions after those in
    /// `cache`, whose keys and values are appended to it.
    pub fn forward_cached(&self, ids: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<3> {
        self.run(ids, Some(cache), None)
    }

    /// [`Llama::forward_cached`] with the output projection `[hidden, vocab]` given, as
    /// [`Llama::output_weight`] makes it once for a whole generation: the tied projection is the
    /// transposed embedding matrix, and transposing it at every step costs more than the step.
    pub fn forward_cached_with(
        &self,
        ids: Tensor<2, Int>,
        cache: &mut KvCache,
        output: &Tensor<2>,
    ) -> Tensor<3> {
        self.run(ids, Some(cache), Some(output))
    }

    /// The output projection `[hidden, vocab]`, laid out contiguously (for inference).
    pub fn output_weight(&self) -> Tensor<2> {
        let weight = match &self.lm_head {
            Some(head) => head.weight.val(),
            None => self.embed.weight.val().transpose(),
        };
        let device = weight.device();
        Tensor::from_data(weight.into_data(), &device)
    }

    fn run(
        &self,
        ids: Tensor<2, Int>,
        mut cache: Option<&mut KvCache>,
        output: Option<&Tensor<2>>,
    ) -> Tensor<3> {
        let [_, len] = ids.dims();
        let device = ids.device();
        let start = cache.as_ref().map_or(0, |c| c.len);
        let head_dim = self.embed.weight.dims()[1] / self.heads;
        let rope = Rope::new(start, len, head_dim, self.rope_theta, &device);
        let mut x = self.embed.forward(ids);
        for (i, layer) in self.layers.iter().enumerate() {
            let past = cache.as_mut().map(|c| (&mut c.layers, i));
            x = layer.forward(x, &rope, self.heads, self.kv_heads, start, past);
        }
        if let Some(cache) = cache {
            cache.len += len;
        }
        let x = self.norm.forward(x);
        // As a linear layer, not a batched product: burn then folds the batch into the rows of
        // one product, so the vocabulary-wide matrix is read once per batch, not per sequence.
        if let Some(output) = output {
            return project(x, output.clone(), None);
        }
        match &self.lm_head {
            Some(head) => kernels::linear_forward(head, x),
            // On the CPU as one operation on every core, with burn's floats; elsewhere burn's.
            None => kernels::tied_output_projection(&x, &self.embed.weight.val())
                .unwrap_or_else(|| project(x, self.embed.weight.val().transpose(), None)),
        }
    }
}

/// Cosines and sines of the rotary angles of positions `start..start + len`, each `[1, 1,
/// len, head_dim]`, in the rotate-half layout (the angles of the first half repeated).
struct Rope {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

/// Cosines and sines of the rotary angles of positions `start..start + len`, `len × head_dim`
/// row-major each, in the rotate-half layout (the angles of the first half repeated). The
/// decoder and its ONNX export (`lm::onnx_export`) both take them from here.
pub fn rotary_tables(
    start: usize,
    len: usize,
    head_dim: usize,
    theta: f64,
) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(len * head_dim);
    let mut sin = Vec::with_capacity(len * head_dim);
    for p in start..start + len {
        for _ in 0..2 {
            for i in 0..half {
                // As Hugging Face: the inverse frequency in f32, then position × frequency.
                let inv = (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32;
                let angle = p as f32 * inv;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
    }
    (cos, sin)
}

impl Rope {
    fn new(start: usize, len: usize, head_dim: usize, theta: f64, device: &Device) -> Self {
        let (cos, sin) = rotary_tables(start, len, head_dim, theta);
        let shape = [1, 1, len, head_dim];
        Self {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
        }
    }

    /// `x · cos + rotate_half(x) · sin` for `x` `[batch, heads, len, head_dim]`.
    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, l, d] = x.dims();
        let first = x.clone().slice([0..b, 0..h, 0..l, 0..d / 2]);
        let second = x.clone().slice([0..b, 0..h, 0..l, d / 2..d]);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}

type PastRef<'a> = Option<(&'a mut Vec<(Tensor<4>, Tensor<4>)>, usize)>;

impl LlamaLayer {
    fn forward(
        &self,
        x: Tensor<3>,
        rope: &Rope,
        heads: usize,
        kv_heads: usize,
        start: usize,
        past: PastRef<'_>,
    ) -> Tensor<3> {
        let [batch, len, hidden] = x.dims();
        let head_dim = hidden / heads;
        let split = |t: Tensor<3>, n: usize| -> Tensor<4> {
            t.reshape([batch, len, n, head_dim]).swap_dims(1, 2)
        };
        // The projections through our linear kernel: its products on every core, with burn's
        // floats and gradients.
        let normed = self.attn_norm.forward(x.clone());
        let q = rope.apply(split(
            kernels::linear_forward(&self.q, normed.clone()),
            heads,
        ));
        let mut k = rope.apply(split(
            kernels::linear_forward(&self.k, normed.clone()),
            kv_heads,
        ));
        let mut v = split(kernels::linear_forward(&self.v, normed), kv_heads);
        if let Some((layers, i)) = past {
            if let Some((pk, pv)) = layers.get(i) {
                k = Tensor::cat(vec![pk.clone(), k], 2);
                v = Tensor::cat(vec![pv.clone(), v], 2);
            }
            if i < layers.len() {
                layers[i] = (k.clone(), v.clone());
            } else {
                layers.push((k.clone(), v.clone()));
            }
        }
        let total = k.dims()[2];
        let repeat = |t: Tensor<4>| -> Tensor<4> {
            if heads == kv_heads {
                return t;
            }
            t.unsqueeze_dim::<5>(2)
                .expand([batch, kv_heads, heads / kv_heads, total, head_dim])
                .reshape([batch, heads, total, head_dim])
        };
        let (mask, is_causal) = match (start, len) {
            (0, _) => (None, true),
            (_, 1) => (None, false),
            _ => (
                Some(causal_mask(batch, heads, start, len, &x.device())),
                false,
            ),
        };
        let options = AttentionModuleOptions {
            is_causal,
            ..AttentionModuleOptions::default()
        };
        let context = attention(q, repeat(k), repeat(v), mask, None, options);
        let context: Tensor<3> = context.swap_dims(1, 2).reshape([batch, len, hidden]);
        let x = x + kernels::linear_forward(&self.o, context);
        let normed = self.ffn_norm.forward(x.clone());
        let inner = activation::silu(kernels::linear_forward(&self.gate, normed.clone()))
            * kernels::linear_forward(&self.up, normed);
        x + kernels::linear_forward(&self.down, inner)
    }
}

/// `true` where query `start + i` must not see key `j` (`j > start + i`).
fn causal_mask(
    batch: usize,
    heads: usize,
    start: usize,
    len: usize,
    device: &Device,
) -> Tensor<4, Bool> {
    let total = start + len;
    let values: Vec<bool> = (0..len)
        .flat_map(|i| (0..total).map(move |j| j > start + i))
        .collect();
    Tensor::<4, Bool>::from_data(TensorData::new(values, [1, 1, len, total]), device)
        .expand([batch, heads, len, total])
}

//! Small text students: token embeddings pooled by a mean (bag of embeddings) or by a 1-D
//! convolution and max over time, then an MLP. The static-embedding student is the bag
//! architecture with its token vectors taken from the teacher (see [`static_token_vectors`]).
//!
//! Parameters are drawn from our own seeded generator, so the scratch and the distilled
//! student of a seed start from identical weights.

use burn::module::{Module, Param};
use burn::tensor::module::{conv1d, embedding};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Int, Tensor, TensorData, activation};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::{StudentKind, StudentsConfig};
use super::pca::Pca;
use crate::data::batch::mix_seed;
use crate::models::layers::Dense;

/// Range of the initial token vectors of a student trained from scratch.
const EMBEDDING_INIT: f32 = 0.1;

/// A 1-D convolution over time, 'same' padded.
#[derive(Module, Debug)]
pub struct TokenConv {
    /// Kernel, `[channels, embedding_dim, width]`.
    pub weight: Param<Tensor<3>>,
    /// Bias, `[channels]`.
    pub bias: Param<Tensor<1>>,
}

/// A text classifier (or sentence encoder) over word-piece ids.
#[derive(Module, Debug)]
pub struct TextStudent {
    /// One vector per word piece, `[vocab, embedding_dim]`.
    pub embedding: Param<Tensor<2>>,
    /// The convolution of a CNN student; `None` for a bag of embeddings.
    pub conv: Option<TokenConv>,
    /// Dense layers after pooling, ReLU between them; the last gives the outputs.
    pub head: Vec<Dense>,
}

fn uniform(len: usize, bound: f32, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-bound..=bound)).collect()
}

impl TextStudent {
    /// A student of `kind` with `outputs` outputs (classes, or the teacher's embedding width
    /// for embedding distillation), every weight drawn from `seed`. `token_vectors`
    /// (`vocab × embedding_dim`) replaces the random token vectors when given.
    pub fn new(
        kind: StudentKind,
        config: &StudentsConfig,
        vocab: usize,
        outputs: usize,
        token_vectors: Option<&[f32]>,
        seed: u64,
        device: &Device,
    ) -> Self {
        let dim = config.embedding_dim;
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, 0x7e47_0000));
        let vectors = match token_vectors {
            Some(vectors) => vectors.to_vec(),
            None => uniform(vocab * dim, EMBEDDING_INIT, &mut rng),
        };
        let embedding = Param::from_tensor(Tensor::from_data(
            TensorData::new(vectors, [vocab, dim]),
            device,
        ));
        let (conv, mut width) = if kind == StudentKind::Cnn {
            let k = config.kernel_size;
            let bound = 1.0 / ((dim * k) as f32).sqrt();
            let weight = uniform(config.channels * dim * k, bound, &mut rng);
            let bias = uniform(config.channels, bound, &mut rng);
            let conv = TokenConv {
                weight: Param::from_tensor(Tensor::from_data(
                    TensorData::new(weight, [config.channels, dim, k]),
                    device,
                )),
                bias: Param::from_tensor(Tensor::from_data(
                    TensorData::new(bias, [config.channels]),
                    device,
                )),
            };
            (Some(conv), config.channels)
        } else {
            (None, dim)
        };
        let mut head = Vec::new();
        for (index, &next) in config
            .hidden
            .iter()
            .chain(std::iter::once(&outputs))
            .enumerate()
        {
            head.push(Dense::new(
                width,
                next,
                mix_seed(seed, 0x7e47_0100 + index as u64),
                device,
            ));
            width = next;
        }
        Self {
            embedding,
            conv,
            head,
        }
    }

    /// Outputs `[batch, outputs]` for ids `[batch, len]` and mask `[batch, len]` (1 for real
    /// tokens, 0 for padding).
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
        let [batch, len] = ids.dims();
        let vectors: Tensor<3> = embedding(self.embedding.val(), ids);
        let [_, _, dim] = vectors.dims();
        let mut x: Tensor<2> = match &self.conv {
            None => {
                let weights: Tensor<3> = mask.clone().reshape([batch, len, 1]);
                let sum: Tensor<2> = (vectors * weights).sum_dim(1).reshape([batch, dim]);
                sum / mask.sum_dim(1).clamp_min(1.0)
            }
            Some(conv) => {
                let [_, _, width] = conv.weight.dims();
                let options = ConvOptions::new([1], [width / 2], [1], 1);
                let maps = conv1d(
                    vectors.swap_dims(1, 2),
                    conv.weight.val(),
                    Some(conv.bias.val()),
                    options,
                );
                // After ReLU every value is ≥ 0, so zeroing the padded positions keeps them
                // out of the maximum.
                let maps = activation::relu(maps) * mask.reshape([batch, 1, len]);
                let [_, channels, _] = maps.dims();
                maps.max_dim(2).reshape([batch, channels])
            }
        };
        let last = self.head.len() - 1;
        for (index, layer) in self.head.iter().enumerate() {
            x = layer.forward(x);
            if index < last {
                x = activation::relu(x);
            }
        }
        x
    }

    /// Number of trainable values.
    pub fn parameter_count(&self) -> usize {
        self.num_params()
    }

    /// A short description, e.g. `bag e64 → h64 → 2` or `cnn e64 c128k3 → 2`.
    pub fn describe(&self) -> String {
        let [vocab, dim] = self.embedding.dims();
        let mut text = match &self.conv {
            None => format!("bag {vocab}×{dim}"),
            Some(conv) => {
                let [channels, _, width] = conv.weight.dims();
                format!("cnn {vocab}×{dim} c{channels}k{width}")
            }
        };
        for layer in &self.head {
            let [_, outputs] = layer.weight.dims();
            text.push_str(&format!(" → {outputs}"));
        }
        text
    }
}

/// Token vectors for a static-embedding student: the teacher's sentence vector of each
/// vocabulary token on its own (`vocab × teacher_dim`), reduced to `dim` by PCA fitted on
/// them, as Model2Vec distils a sentence encoder into static embeddings.
pub fn static_token_vectors(teacher_vectors: &[f32], teacher_dim: usize, dim: usize) -> Vec<f32> {
    let pca = Pca::fit(teacher_vectors, teacher_dim, dim);
    pca.project(teacher_vectors)
}

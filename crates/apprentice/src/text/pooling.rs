//! From token representations to one sentence vector: mean (or `[CLS]`) pooling over the
//! attention mask, then optional L2 normalisation, as sentence-transformers does.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How the token vectors of a sentence become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolingMode {
    /// The mean of the real (unmasked) tokens.
    Mean,
    /// The first token's vector (`[CLS]`).
    Cls,
}

/// The whole pooling stage of a sentence encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pooling {
    /// Mean or `[CLS]`.
    pub mode: PoolingMode,
    /// Divide by the Euclidean norm afterwards.
    pub normalize: bool,
}

impl Default for Pooling {
    /// Mean pooling and L2 normalisation: sentence-transformers' pipeline for MiniLM-style
    /// sentence encoders.
    fn default() -> Self {
        Self {
            mode: PoolingMode::Mean,
            normalize: true,
        }
    }
}

impl Pooling {
    /// Sentence vectors `[batch, hidden]` from `hidden` `[batch, len, hidden]` and `mask`
    /// `[batch, len]` (1 for real tokens).
    pub fn apply(&self, hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let [batch, len, width] = hidden.dims();
        let pooled: Tensor<2> = match self.mode {
            PoolingMode::Mean => {
                let weights: Tensor<3> = mask.clone().reshape([batch, len, 1]);
                let sum: Tensor<2> = (hidden * weights).sum_dim(1).reshape([batch, width]);
                // sentence-transformers clamps the count at 1e-9, so an all-padding row is 0.
                let count = mask.sum_dim(1).clamp_min(1e-9);
                sum / count
            }
            PoolingMode::Cls => hidden.narrow(1, 0, 1).reshape([batch, width]),
        };
        if self.normalize {
            l2_normalize(pooled)
        } else {
            pooled
        }
    }
}

impl Pooling {
    /// Sentence vectors `sequences × width`, row-major, from token vectors packed sentence
    /// after sentence (`Σ lengths × width` values, no padding), as [`Pooling::apply`] computes
    /// them from a padded batch. An empty sentence gives the zero vector.
    pub fn apply_packed(&self, hidden: &[f32], lengths: &[usize], width: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; lengths.len() * width];
        let mut start = 0;
        for (row, &len) in out.chunks_mut(width).zip(lengths) {
            let tokens = &hidden[start * width..(start + len) * width];
            start += len;
            if len == 0 {
                continue;
            }
            match self.mode {
                PoolingMode::Mean => {
                    for token in tokens.chunks(width) {
                        for (o, v) in row.iter_mut().zip(token) {
                            *o += v;
                        }
                    }
                    let count = len as f32;
                    row.iter_mut().for_each(|o| *o /= count);
                }
                PoolingMode::Cls => row.copy_from_slice(&tokens[..width]),
            }
            if self.normalize {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                row.iter_mut().for_each(|o| *o /= norm);
            }
        }
        out
    }
}

/// Each row divided by its Euclidean norm (at least 1e-12, as in PyTorch's `normalize`).
pub fn l2_normalize(rows: Tensor<2>) -> Tensor<2> {
    let norm = rows
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    rows / norm
}

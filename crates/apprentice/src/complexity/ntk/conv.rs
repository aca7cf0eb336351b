//! A convolution block on the host: its weights in `f64` (batch norm folded to its affine
//! map), its forward pass through im2col patches and its backward pass, which writes the
//! per-example, per-output gradients of the block's parameters. Kept apart from the network
//! because a block's bookkeeping (kernel taps, padding, pooling) is its own.

use super::activation::activate;
use crate::complexity::linalg::dot;
use crate::models::Activation;

#[derive(Debug, Clone)]
pub(super) struct HostNorm {
    pub(super) gamma: Vec<f64>,
    pub(super) beta: Vec<f64>,
    pub(super) mean: Vec<f64>,
    /// `1/sqrt(σ² + ε)` per channel.
    pub(super) inv_std: Vec<f64>,
}

#[derive(Debug, Clone)]
pub(super) struct HostBlock {
    pub(super) in_channels: usize,
    pub(super) out_channels: usize,
    pub(super) kernel: usize,
    pub(super) height: usize,
    pub(super) width: usize,
    pub(super) out_height: usize,
    pub(super) out_width: usize,
    pub(super) pool: bool,
    pub(super) pooled_height: usize,
    pub(super) pooled_width: usize,
    /// `[out, in, k, k]`.
    pub(super) weight: Vec<f64>,
    pub(super) bias: Vec<f64>,
    pub(super) norm: Option<HostNorm>,
    /// Where this block's gradients start in an example's row of convolution gradients.
    pub(super) offset: usize,
    /// For output position `p` and kernel tap `t = ky·k + kx`, the input position read
    /// (`taps[p·k² + t]`), or [`PADDING`] where 'same' padding reads a zero.
    pub(super) taps: Vec<usize>,
}

/// Marks a kernel tap that falls in the zero padding.
const PADDING: usize = usize::MAX;

pub(super) struct BlockTape {
    /// The input patch under the kernel at every output position (`P × in·k²`, im2col), so
    /// that the forward pass, the weight gradients and the input signals are all products of
    /// contiguous rows.
    patches: Vec<f64>,
    /// `(z − μ)/sqrt(σ² + ε)`, for the gradient of `γ` (empty without batch norm).
    normalized: Vec<f64>,
    /// Activation derivative at every output position.
    slope: Vec<f64>,
    /// For each pooled value, the position of its window's maximum within its channel's plane.
    argmax: Vec<usize>,
}

/// The input position each output position reads through each kernel tap (see
/// [`HostBlock::taps`]), for a cross-correlation with zero padding, as burn's `conv2d` computes.
pub(super) fn conv_taps(
    input: [usize; 2],
    output: [usize; 2],
    kernel: usize,
    padding: usize,
) -> Vec<usize> {
    let ([height, width], [out_height, out_width]) = (input, output);
    let mut taps = Vec::with_capacity(out_height * out_width * kernel * kernel);
    for y in 0..out_height {
        for x in 0..out_width {
            for ky in 0..kernel {
                for kx in 0..kernel {
                    let yy = (y + ky).checked_sub(padding).filter(|&v| v < height);
                    let xx = (x + kx).checked_sub(padding).filter(|&v| v < width);
                    taps.push(match (yy, xx) {
                        (Some(yy), Some(xx)) => yy * width + xx,
                        _ => PADDING,
                    });
                }
            }
        }
    }
    taps
}

impl HostBlock {
    pub(super) fn parameter_count(&self) -> usize {
        let norm = if self.norm.is_some() {
            2 * self.out_channels
        } else {
            0
        };
        self.weight.len() + self.bias.len() + norm
    }

    fn plane(&self) -> usize {
        self.out_height * self.out_width
    }

    fn output_len(&self) -> usize {
        self.out_channels * self.pooled_height * self.pooled_width
    }

    fn patch_len(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    pub(super) fn forward(&self, input: Vec<f64>, activation: Activation) -> (Vec<f64>, BlockTape) {
        let (plane, in_plane, taps_per_channel) = (
            self.plane(),
            self.height * self.width,
            self.kernel * self.kernel,
        );
        let patch_len = self.patch_len();
        let mut patches = vec![0.0; plane * patch_len];
        for (p, patch) in patches.chunks_exact_mut(patch_len).enumerate() {
            let taps = &self.taps[p * taps_per_channel..(p + 1) * taps_per_channel];
            for (i, channel) in patch.chunks_exact_mut(taps_per_channel).enumerate() {
                let image = &input[i * in_plane..(i + 1) * in_plane];
                for (value, &at) in channel.iter_mut().zip(taps) {
                    if at != PADDING {
                        *value = image[at];
                    }
                }
            }
        }
        let mut z = vec![0.0; self.out_channels * plane];
        for (o, out) in z.chunks_exact_mut(plane).enumerate() {
            let weights = &self.weight[o * patch_len..(o + 1) * patch_len];
            for (value, patch) in out.iter_mut().zip(patches.chunks_exact(patch_len)) {
                *value = self.bias[o] + dot(weights, patch);
            }
        }
        let mut normalized = Vec::new();
        if let Some(norm) = &self.norm {
            normalized = z.clone();
            for o in 0..self.out_channels {
                for p in o * plane..(o + 1) * plane {
                    normalized[p] = (z[p] - norm.mean[o]) * norm.inv_std[o];
                    z[p] = norm.gamma[o] * normalized[p] + norm.beta[o];
                }
            }
        }
        let mut slope = vec![0.0; z.len()];
        for (value, s) in z.iter_mut().zip(slope.iter_mut()) {
            (*value, *s) = activate(activation, *value);
        }
        let mut argmax = Vec::new();
        let output = if self.pool {
            let (ph, pw) = (self.pooled_height, self.pooled_width);
            let mut pooled = vec![0.0; self.out_channels * ph * pw];
            argmax = vec![0; pooled.len()];
            for o in 0..self.out_channels {
                let map = &z[o * plane..(o + 1) * plane];
                for py in 0..ph {
                    for px in 0..pw {
                        // The first maximum in reading order, as burn's max-pool picks it.
                        let mut best = (2 * py) * self.out_width + 2 * px;
                        for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
                            let at = (2 * py + dy) * self.out_width + 2 * px + dx;
                            if map[at] > map[best] {
                                best = at;
                            }
                        }
                        let index = (o * ph + py) * pw + px;
                        pooled[index] = map[best];
                        argmax[index] = best;
                    }
                }
            }
            pooled
        } else {
            z
        };
        let tape = BlockTape {
            patches,
            normalized,
            slope,
            argmax,
        };
        (output, tape)
    }

    /// Backpropagates `C` signals on the block's output; writes each output's gradient of the
    /// block's parameters into `rows` (`C` rows of `row_len`, starting at this block's offset) and
    /// returns the signals on the block's input when `want_input` is set.
    pub(super) fn backward(
        &self,
        tape: &BlockTape,
        signal: Vec<f64>,
        outputs: usize,
        rows: &mut [f64],
        row_len: usize,
        want_input: bool,
    ) -> Option<Vec<f64>> {
        let (plane, len) = (self.plane(), self.out_channels * self.plane());
        let pooled_len = self.output_len();
        let mut gz = if self.pool {
            let mut unpooled = vec![0.0; outputs * len];
            let pooled_plane = self.pooled_height * self.pooled_width;
            for c in 0..outputs {
                for (index, &at) in tape.argmax.iter().enumerate() {
                    let o = index / pooled_plane;
                    unpooled[c * len + o * plane + at] += signal[c * pooled_len + index];
                }
            }
            unpooled
        } else {
            signal
        };
        for c in 0..outputs {
            for (g, s) in gz[c * len..(c + 1) * len].iter_mut().zip(&tape.slope) {
                *g *= s;
            }
        }
        let weights = self.weight.len();
        for c in 0..outputs {
            let row = &mut rows
                [c * row_len + self.offset..c * row_len + self.offset + self.parameter_count()];
            let g = &mut gz[c * len..(c + 1) * len];
            if let Some(norm) = &self.norm {
                let oc = self.out_channels;
                for o in 0..oc {
                    let span = o * plane..(o + 1) * plane;
                    row[weights + oc + o] = dot(&g[span.clone()], &tape.normalized[span.clone()]);
                    row[weights + 2 * oc + o] = g[span.clone()].iter().sum();
                    let scale = norm.gamma[o] * norm.inv_std[o];
                    g[span].iter_mut().for_each(|v| *v *= scale);
                }
            }
            let patch_len = self.patch_len();
            for o in 0..self.out_channels {
                let go = &g[o * plane..(o + 1) * plane];
                row[weights + o] = go.iter().sum();
                let target = &mut row[o * patch_len..(o + 1) * patch_len];
                for (&value, patch) in go.iter().zip(tape.patches.chunks_exact(patch_len)) {
                    // After ReLU and max-pooling most signals are exactly zero.
                    if value != 0.0 {
                        for (t, u) in target.iter_mut().zip(patch) {
                            *t += value * u;
                        }
                    }
                }
            }
        }
        if !want_input {
            return None;
        }
        let (in_plane, taps_per_channel, patch_len) = (
            self.height * self.width,
            self.kernel * self.kernel,
            self.patch_len(),
        );
        let in_len = self.in_channels * in_plane;
        let mut input_signal = vec![0.0; outputs * in_len];
        let mut patch_signal = vec![0.0; plane * patch_len];
        for c in 0..outputs {
            let g = &gz[c * len..(c + 1) * len];
            patch_signal.fill(0.0);
            for o in 0..self.out_channels {
                let weights = &self.weight[o * patch_len..(o + 1) * patch_len];
                for (p, &value) in g[o * plane..(o + 1) * plane].iter().enumerate() {
                    if value != 0.0 {
                        let target = &mut patch_signal[p * patch_len..(p + 1) * patch_len];
                        for (t, w) in target.iter_mut().zip(weights) {
                            *t += value * w;
                        }
                    }
                }
            }
            // col2im: every patch value goes back to the input position it was read from.
            let target = &mut input_signal[c * in_len..(c + 1) * in_len];
            for (p, patch) in patch_signal.chunks_exact(patch_len).enumerate() {
                let taps = &self.taps[p * taps_per_channel..(p + 1) * taps_per_channel];
                for (i, channel) in patch.chunks_exact(taps_per_channel).enumerate() {
                    for (&value, &at) in channel.iter().zip(taps) {
                        if at != PADDING {
                            target[i * in_plane + at] += value;
                        }
                    }
                }
            }
        }
        Some(input_signal)
    }
}

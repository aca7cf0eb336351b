//! The empirical neural tangent kernel of a [`Network`]: an exact fast path on host `f64`
//! copies of the weights, and a brute-force path through burn's autodiff that the fast path is
//! tested against. The module documentation of [`crate::complexity`] gives the definitions, the
//! route taken for each kind of layer and its cost.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};
use serde::{Deserialize, Serialize};

use super::linalg::{add_weighted_gram, dot, mirror_lower, symmetric_eigenvalues};
use super::{ComplexityError, Result, check_buffer};
use crate::backend::{self, ComputeDevice};
use crate::models::{Activation, Network};

/// Which kernel to build from the per-output gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelKind {
    /// `n × n`: the average over outputs of each output's kernel, `(1/C) Σ_c K^(c)`. The default:
    /// `C²` times smaller than the block kernel and `C³` times cheaper to factorise.
    #[default]
    Trace,
    /// `nC × nC`: every pair of (example, output), rows ordered example-major (`i·C + c`).
    Block,
}

/// An empirical NTK, symmetric, stored row-major in `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ntk {
    kind: KernelKind,
    examples: usize,
    outputs: usize,
    values: Vec<f64>,
}

impl Ntk {
    /// A kernel from its values (`N × N` row-major, `N = examples` for the trace kernel,
    /// `examples · outputs` for the block kernel), for kernels computed elsewhere or by hand.
    pub fn new(
        kind: KernelKind,
        examples: usize,
        outputs: usize,
        values: Vec<f64>,
    ) -> Result<Self> {
        if examples == 0 {
            return Err(ComplexityError::Empty("kernel examples"));
        }
        if outputs == 0 {
            return Err(ComplexityError::Empty("kernel outputs"));
        }
        let dim = match kind {
            KernelKind::Trace => Some(examples),
            KernelKind::Block => examples.checked_mul(outputs),
        };
        let expected = dim
            .and_then(|d| d.checked_mul(d))
            .ok_or(ComplexityError::TooLarge {
                what: "the kernel",
                bytes: u64::MAX,
                limit: super::MAX_BUFFER_BYTES,
            })?;
        if values.len() != expected {
            return Err(ComplexityError::Shape {
                what: "kernel values",
                expected,
                found: values.len(),
            });
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(ComplexityError::NonFinite("the kernel"));
        }
        Ok(Self {
            kind,
            examples,
            outputs,
            values,
        })
    }

    /// Trace or block kernel.
    pub fn kind(&self) -> KernelKind {
        self.kind
    }

    /// Number of examples `n`.
    pub fn examples(&self) -> usize {
        self.examples
    }

    /// Number of network outputs `C`.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Side of the matrix: `n` for the trace kernel, `nC` for the block kernel.
    pub fn dim(&self) -> usize {
        match self.kind {
            KernelKind::Trace => self.examples,
            KernelKind::Block => self.examples * self.outputs,
        }
    }

    /// The values, row-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// One entry.
    pub fn get(&self, row: usize, col: usize) -> f64 {
        self.values[row * self.dim() + col]
    }

    /// Sum of the diagonal.
    pub fn trace(&self) -> f64 {
        let dim = self.dim();
        (0..dim).map(|i| self.values[i * dim + i]).sum()
    }

    /// Frobenius norm.
    pub fn frobenius_norm(&self) -> f64 {
        self.values.iter().map(|v| v * v).sum::<f64>().sqrt()
    }

    /// `‖self − other‖_F / ‖other‖_F`, for comparing two computations of the same kernel.
    pub fn relative_difference(&self, other: &Ntk) -> Result<f64> {
        if self.values.len() != other.values.len() {
            return Err(ComplexityError::Shape {
                what: "kernel to compare with",
                expected: self.values.len(),
                found: other.values.len(),
            });
        }
        let difference: f64 = self
            .values
            .iter()
            .zip(&other.values)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        Ok(difference.sqrt() / other.frobenius_norm())
    }

    /// The kernel multiplied by `factor` (for checking scale invariance).
    pub fn scaled(&self, factor: f64) -> Ntk {
        Ntk {
            values: self.values.iter().map(|v| v * factor).collect(),
            ..self.clone()
        }
    }

    /// The trace kernel of a block kernel (the average of its diagonal blocks); a trace kernel
    /// is returned unchanged.
    pub fn to_trace(&self) -> Ntk {
        if self.kind == KernelKind::Trace {
            return self.clone();
        }
        let (n, c) = (self.examples, self.outputs);
        let dim = n * c;
        let mut values = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let sum: f64 = (0..c)
                    .map(|o| self.values[(i * c + o) * dim + j * c + o])
                    .sum();
                values[i * n + j] = sum / c as f64;
            }
        }
        Ntk {
            kind: KernelKind::Trace,
            examples: n,
            outputs: c,
            values,
        }
    }

    /// All eigenvalues, ascending (about `N³` flops).
    pub fn eigenvalues(&self) -> Result<Vec<f64>> {
        symmetric_eigenvalues(&self.values, self.dim())
    }
}

/// A [`Network`]'s weights copied to the host in `f64`, in evaluation mode (dropout off, batch
/// norm folded to its per-channel affine map), with the forward and backward passes the fast
/// NTK needs.
#[derive(Debug, Clone)]
pub struct HostNetwork {
    blocks: Vec<HostBlock>,
    dense: Vec<HostDense>,
    input_len: usize,
    activation: Activation,
    outputs: usize,
}

#[derive(Debug, Clone)]
struct HostNorm {
    gamma: Vec<f64>,
    beta: Vec<f64>,
    mean: Vec<f64>,
    /// `1/sqrt(σ² + ε)` per channel.
    inv_std: Vec<f64>,
}

#[derive(Debug, Clone)]
struct HostBlock {
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    height: usize,
    width: usize,
    out_height: usize,
    out_width: usize,
    pool: bool,
    pooled_height: usize,
    pooled_width: usize,
    /// `[out, in, k, k]`.
    weight: Vec<f64>,
    bias: Vec<f64>,
    norm: Option<HostNorm>,
    /// Where this block's gradients start in an example's row of convolution gradients.
    offset: usize,
    /// For output position `p` and kernel tap `t = ky·k + kx`, the input position read
    /// (`taps[p·k² + t]`), or [`PADDING`] where 'same' padding reads a zero.
    taps: Vec<usize>,
}

/// Marks a kernel tap that falls in the zero padding.
const PADDING: usize = usize::MAX;

#[derive(Debug, Clone)]
struct HostDense {
    inputs: usize,
    outputs: usize,
    /// `[inputs, outputs]`.
    weight: Vec<f64>,
    bias: Vec<f64>,
}

/// What one example's forward pass leaves for its backward pass.
struct Tape {
    blocks: Vec<BlockTape>,
    /// Input of each dense layer.
    dense_inputs: Vec<Vec<f64>>,
    /// Activation derivative after each hidden dense layer.
    dense_slopes: Vec<Vec<f64>>,
    logits: Vec<f64>,
}

struct BlockTape {
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

fn host_values<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    backend::to_host(tensor)
        .into_iter()
        .map(f64::from)
        .collect()
}

fn expect_len(what: &'static str, values: &[f64], expected: usize) -> Result<()> {
    if values.len() != expected {
        return Err(ComplexityError::Shape {
            what,
            expected,
            found: values.len(),
        });
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(ComplexityError::NonFinite(what));
    }
    Ok(())
}

/// The activation and its derivative at `z`.
fn activate(kind: Activation, z: f64) -> (f64, f64) {
    match kind {
        Activation::Relu => {
            if z > 0.0 {
                (z, 1.0)
            } else {
                (0.0, 0.0)
            }
        }
        Activation::LeakyRelu => {
            if z > 0.0 {
                (z, 1.0)
            } else {
                (0.01 * z, 0.01)
            }
        }
        Activation::Tanh => {
            let t = z.tanh();
            (t, 1.0 - t * t)
        }
        Activation::Gelu => {
            let cdf = 0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2));
            let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (z * cdf, cdf + z * density)
        }
    }
}

/// The error function to about 1e-15: a series of positive terms (no cancellation) below 3,
/// Laplace's continued fraction for `erfc` above.
fn erf(x: f64) -> f64 {
    let a = x.abs();
    let value = if a < 3.0 {
        // erf(a) = 2/√π · e^{−a²} · Σ 2ⁿ a^{2n+1} / (1·3·…·(2n+1)).
        let mut term = a;
        let mut sum = a;
        let mut n = 0.0;
        while term > 1e-17 * sum {
            n += 1.0;
            term *= 2.0 * a * a / (2.0 * n + 1.0);
            sum += term;
        }
        std::f64::consts::FRAC_2_SQRT_PI * (-a * a).exp() * sum
    } else {
        let mut t = a;
        for k in (1..=60).rev() {
            t = a + (k as f64 / 2.0) / t;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * t)
    };
    value.copysign(x)
}

/// The input position each output position reads through each kernel tap (see
/// [`HostBlock::taps`]), for a cross-correlation with zero padding, as burn's `conv2d` computes.
fn conv_taps(input: [usize; 2], output: [usize; 2], kernel: usize, padding: usize) -> Vec<usize> {
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
    fn parameter_count(&self) -> usize {
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

    fn forward(&self, input: Vec<f64>, activation: Activation) -> (Vec<f64>, BlockTape) {
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
    fn backward(
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

impl HostNetwork {
    /// Copies `network`'s weights (and batch-norm running statistics) to the host.
    pub fn from_network(network: &Network) -> Result<Self> {
        let [mut channels, mut height, mut width] = network.input_dims;
        let input_len = if network.blocks.is_empty() {
            None
        } else {
            Some(channels * height * width)
        };
        let mut blocks = Vec::with_capacity(network.blocks.len());
        let mut offset = 0;
        for block in &network.blocks {
            let [out_channels, in_channels, kh, kw] = block.weight.val().dims();
            let kernel = block.kernel_size;
            if in_channels != channels {
                return Err(ComplexityError::Shape {
                    what: "convolution input channels",
                    expected: channels,
                    found: in_channels,
                });
            }
            if kh != kernel || kw != kernel || kernel == 0 {
                return Err(ComplexityError::Shape {
                    what: "convolution kernel size",
                    expected: kernel,
                    found: kh.max(kw),
                });
            }
            let padding = kernel / 2;
            let (out_height, out_width) = match (
                (height + 2 * padding + 1).checked_sub(kernel),
                (width + 2 * padding + 1).checked_sub(kernel),
            ) {
                (Some(h), Some(w)) if h > 0 && w > 0 => (h, w),
                _ => {
                    return Err(ComplexityError::Invalid(format!(
                        "a {kernel}×{kernel} convolution does not fit a {height}×{width} map"
                    )));
                }
            };
            let weight = host_values(block.weight.val());
            expect_len(
                "convolution weights",
                &weight,
                out_channels * in_channels * kernel * kernel,
            )?;
            let bias = host_values(block.bias.val());
            expect_len("convolution biases", &bias, out_channels)?;
            let norm = match &block.norm {
                None => None,
                Some(norm) => {
                    let gamma = host_values(norm.gamma.val());
                    let beta = host_values(norm.beta.val());
                    let mean = host_values(norm.running_mean.value());
                    let var = host_values(norm.running_var.value());
                    for (what, values) in [
                        ("batch-norm scales", &gamma),
                        ("batch-norm shifts", &beta),
                        ("batch-norm running means", &mean),
                        ("batch-norm running variances", &var),
                    ] {
                        expect_len(what, values, out_channels)?;
                    }
                    let inv_std: Vec<f64> = var
                        .iter()
                        .map(|v| 1.0 / (v + norm.epsilon).sqrt())
                        .collect();
                    if inv_std.iter().any(|v| !v.is_finite()) {
                        return Err(ComplexityError::NonFinite("batch-norm variances"));
                    }
                    Some(HostNorm {
                        gamma,
                        beta,
                        mean,
                        inv_std,
                    })
                }
            };
            let pool = block.pool && out_height >= 2 && out_width >= 2;
            let (pooled_height, pooled_width) = if pool {
                (out_height / 2, out_width / 2)
            } else {
                (out_height, out_width)
            };
            let host = HostBlock {
                in_channels,
                out_channels,
                kernel,
                height,
                width,
                out_height,
                out_width,
                pool,
                pooled_height,
                pooled_width,
                weight,
                bias,
                norm,
                offset,
                taps: conv_taps([height, width], [out_height, out_width], kernel, padding),
            };
            offset += host.parameter_count();
            blocks.push(host);
            (channels, height, width) = (out_channels, pooled_height, pooled_width);
        }
        if network.dense.is_empty() {
            return Err(ComplexityError::Empty("the network's dense layers"));
        }
        let mut dense = Vec::with_capacity(network.dense.len());
        let mut expected_inputs = input_len.map(|_| channels * height * width);
        for layer in &network.dense {
            let [inputs, outputs] = layer.weight.val().dims();
            if let Some(expected) = expected_inputs
                && expected != inputs
            {
                return Err(ComplexityError::Shape {
                    what: "dense layer inputs",
                    expected,
                    found: inputs,
                });
            }
            let weight = host_values(layer.weight.val());
            expect_len("dense weights", &weight, inputs * outputs)?;
            let bias = host_values(layer.bias.val());
            expect_len("dense biases", &bias, outputs)?;
            dense.push(HostDense {
                inputs,
                outputs,
                weight,
                bias,
            });
            expected_inputs = Some(outputs);
        }
        let outputs = dense[dense.len() - 1].outputs;
        if outputs == 0 {
            return Err(ComplexityError::Empty("the network's outputs"));
        }
        Ok(Self {
            input_len: input_len.unwrap_or(dense[0].inputs),
            blocks,
            dense,
            activation: network.activation(),
            outputs,
        })
    }

    /// Values in one input sample.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Number of outputs `C`.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Number of trainable values, as [`Network::parameter_count`] counts them.
    pub fn parameter_count(&self) -> usize {
        self.conv_parameter_count()
            + self
                .dense
                .iter()
                .map(|d| d.weight.len() + d.bias.len())
                .sum::<usize>()
    }

    /// Trainable values in the convolution blocks (weights, biases, batch-norm `γ` and `β`).
    pub fn conv_parameter_count(&self) -> usize {
        self.blocks.iter().map(HostBlock::parameter_count).sum()
    }

    /// Number of examples in a row-major input buffer, or why it does not hold whole samples.
    fn count_examples(&self, inputs: &[f32]) -> Result<usize> {
        if inputs.is_empty() {
            return Err(ComplexityError::Empty("inputs"));
        }
        if !inputs.len().is_multiple_of(self.input_len) {
            return Err(ComplexityError::Invalid(format!(
                "{} input values do not split into samples of {}",
                inputs.len(),
                self.input_len
            )));
        }
        if inputs.iter().any(|v| !v.is_finite()) {
            return Err(ComplexityError::NonFinite("the inputs"));
        }
        Ok(inputs.len() / self.input_len)
    }

    fn forward(&self, sample: &[f32]) -> Tape {
        let mut x: Vec<f64> = sample.iter().map(|&v| f64::from(v)).collect();
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (output, tape) = block.forward(x, self.activation);
            blocks.push(tape);
            x = output;
        }
        let last = self.dense.len() - 1;
        let mut dense_inputs = Vec::with_capacity(self.dense.len());
        let mut dense_slopes = Vec::with_capacity(last);
        for (index, layer) in self.dense.iter().enumerate() {
            let mut z = layer.bias.clone();
            for (a, &value) in x.iter().enumerate() {
                let row = &layer.weight[a * layer.outputs..(a + 1) * layer.outputs];
                for (target, w) in z.iter_mut().zip(row) {
                    *target += value * w;
                }
            }
            dense_inputs.push(x);
            if index < last {
                let mut slope = vec![0.0; z.len()];
                for (value, s) in z.iter_mut().zip(slope.iter_mut()) {
                    (*value, *s) = activate(self.activation, *value);
                }
                dense_slopes.push(slope);
            }
            x = z;
        }
        Tape {
            blocks,
            dense_inputs,
            dense_slopes,
            logits: x,
        }
    }

    /// The logits of row-major `inputs`, in `f64`: the same function as
    /// [`Network::forward`] without dropout.
    pub fn logits(&self, inputs: &[f32]) -> Result<Vec<f64>> {
        let n = self.count_examples(inputs)?;
        let mut logits = Vec::with_capacity(n * self.outputs);
        for sample in inputs.chunks(self.input_len) {
            logits.extend(self.forward(sample).logits);
        }
        Ok(logits)
    }

    /// The exact empirical NTK of the logits on row-major `inputs` (`n × input_len`).
    pub fn ntk(&self, inputs: &[f32], kind: KernelKind) -> Result<Ntk> {
        let n = self.count_examples(inputs)?;
        let c = self.outputs;
        let dim = match kind {
            KernelKind::Trace => Some(n),
            KernelKind::Block => n.checked_mul(c),
        };
        let dim = dim.unwrap_or(usize::MAX);
        check_buffer("the kernel", dim.checked_mul(dim))?;
        let conv_len = self.conv_parameter_count();
        let mut dense_inputs = Vec::with_capacity(self.dense.len());
        let mut deltas = Vec::with_capacity(self.dense.len());
        for layer in &self.dense {
            let size = check_buffer("a dense layer's inputs", n.checked_mul(layer.inputs))?;
            dense_inputs.push(Vec::with_capacity(size));
            let size = n.checked_mul(c).and_then(|v| v.checked_mul(layer.outputs));
            deltas.push(Vec::with_capacity(check_buffer(
                "a dense layer's signals",
                size,
            )?));
        }
        let conv_size = n.checked_mul(c).and_then(|v| v.checked_mul(conv_len));
        let mut conv_grads = vec![0.0; check_buffer("the convolution gradients", conv_size)?];
        for (index, sample) in inputs.chunks(self.input_len).enumerate() {
            let tape = self.forward(sample);
            let rows = &mut conv_grads[index * c * conv_len..(index + 1) * c * conv_len];
            self.backward(&tape, &mut deltas, rows, conv_len);
            for (store, input) in dense_inputs.iter_mut().zip(tape.dense_inputs) {
                store.extend(input);
            }
        }
        let mut values = vec![0.0; dim * dim];
        let scale = 1.0 / c as f64;
        for ((layer, inputs), signals) in self.dense.iter().zip(&dense_inputs).zip(&deltas) {
            // (A Aᵀ + 1): the weights' inner products plus the bias's.
            let mut products = super::linalg::gram(inputs, n, layer.inputs);
            products.iter_mut().for_each(|v| *v += 1.0);
            match kind {
                KernelKind::Trace => {
                    add_weighted_gram(&mut values, signals, n, c * layer.outputs, |r, s| {
                        products[r * n + s] * scale
                    })
                }
                KernelKind::Block => {
                    add_weighted_gram(&mut values, signals, dim, layer.outputs, |r, s| {
                        products[(r / c) * n + s / c]
                    })
                }
            }
        }
        match kind {
            KernelKind::Trace => {
                add_weighted_gram(&mut values, &conv_grads, n, c * conv_len, |_, _| scale)
            }
            KernelKind::Block => {
                add_weighted_gram(&mut values, &conv_grads, dim, conv_len, |_, _| 1.0)
            }
        }
        mirror_lower(&mut values, dim);
        Ntk::new(kind, n, c, values)
    }

    /// Backpropagates all `C` outputs of one example: appends the signals on each dense layer's
    /// pre-activation to `deltas` and writes the convolution gradients into `rows`.
    fn backward(&self, tape: &Tape, deltas: &mut [Vec<f64>], rows: &mut [f64], row_len: usize) {
        let c = self.outputs;
        let mut signal = vec![0.0; c * c];
        for o in 0..c {
            signal[o * c + o] = 1.0;
        }
        for (index, layer) in self.dense.iter().enumerate().rev() {
            deltas[index].extend_from_slice(&signal);
            if index == 0 && self.blocks.is_empty() {
                return;
            }
            let mut previous = vec![0.0; c * layer.inputs];
            for o in 0..c {
                let s = &signal[o * layer.outputs..(o + 1) * layer.outputs];
                for (a, target) in previous[o * layer.inputs..(o + 1) * layer.inputs]
                    .iter_mut()
                    .enumerate()
                {
                    *target = dot(s, &layer.weight[a * layer.outputs..(a + 1) * layer.outputs]);
                }
            }
            if index > 0 {
                let slope = &tape.dense_slopes[index - 1];
                for o in 0..c {
                    for (v, s) in previous[o * layer.inputs..(o + 1) * layer.inputs]
                        .iter_mut()
                        .zip(slope)
                    {
                        *v *= s;
                    }
                }
            }
            signal = previous;
        }
        for (index, block) in self.blocks.iter().enumerate().rev() {
            match block.backward(&tape.blocks[index], signal, c, rows, row_len, index > 0) {
                Some(next) => signal = next,
                None => return,
            }
        }
    }
}

/// The exact empirical NTK of `network`'s logits on row-major `inputs` (`n × features`), by the
/// fast route described in [`crate::complexity`].
pub fn empirical_ntk(network: &Network, inputs: &[f32], kind: KernelKind) -> Result<Ntk> {
    HostNetwork::from_network(network)?.ntk(inputs, kind)
}

/// Collects every trainable parameter's gradient, flattened, in visiting order.
struct GradientCollector<'a> {
    grads: &'a Gradients,
    row: Vec<f64>,
}

impl ModuleVisitor for GradientCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // Running statistics are visited too, but are not trained and have no gradient.
        if !param.is_require_grad() {
            return;
        }
        let value = param.val();
        match value.grad(self.grads) {
            Some(grad) => self.row.extend(host_values(grad)),
            // A parameter the output does not depend on has a zero gradient.
            None => self
                .row
                .extend(std::iter::repeat_n(0.0, value.shape().num_elements())),
        }
    }
}

/// The empirical NTK by brute force: burn's autodiff through [`Network::forward`] (batch norm
/// on its running statistics, no dropout), one backward pass per example and output, every
/// parameter's gradient flattened. `n·C` passes and `n²·C·P` flops for the Gram matrix: the
/// reference the fast path is tested against, not a tool for large `n`.
pub fn empirical_ntk_brute_force(
    network: &Network,
    inputs: &[f32],
    kind: KernelKind,
    device: &ComputeDevice,
) -> Result<Ntk> {
    let host = HostNetwork::from_network(network)?;
    let n = host.count_examples(inputs)?;
    let (c, width) = (host.outputs, host.input_len);
    let params = network.parameter_count();
    let size = n.checked_mul(c).and_then(|v| v.checked_mul(params));
    let mut gradients = Vec::with_capacity(check_buffer("the gradients", size)?);
    let dim = match kind {
        KernelKind::Trace => Some(n),
        KernelKind::Block => n.checked_mul(c),
    };
    let dim = dim.unwrap_or(usize::MAX);
    check_buffer("the kernel", dim.checked_mul(dim))?;
    let training = device.training();
    // `valid().train()` gives every parameter a tracked gradient whatever device the network was
    // built on; batch norm is then switched to its running statistics by hand, because `train`
    // also turns its training flag back on.
    let mut model = network.valid().train().fork(&training);
    for block in &mut model.blocks {
        if let Some(norm) = block.norm.as_mut() {
            norm.training = norm.training.clone().with_value(false);
        }
    }
    for sample in inputs.chunks(width) {
        for output in 0..c {
            let x = backend::matrix(sample.to_vec(), 1, width, &training);
            let logit = model
                .forward(x, None)
                .logits
                .slice([0..1, output..output + 1])
                .sum();
            let grads = logit.backward();
            let mut collector = GradientCollector {
                grads: &grads,
                row: Vec::with_capacity(params),
            };
            model.visit(&mut collector);
            if collector.row.len() != params {
                return Err(ComplexityError::Shape {
                    what: "flattened gradients",
                    expected: params,
                    found: collector.row.len(),
                });
            }
            gradients.extend(collector.row);
        }
    }
    let mut values = vec![0.0; dim * dim];
    match kind {
        KernelKind::Trace => {
            let scale = 1.0 / c as f64;
            add_weighted_gram(&mut values, &gradients, n, c * params, |_, _| scale);
        }
        KernelKind::Block => add_weighted_gram(&mut values, &gradients, dim, params, |_, _| 1.0),
    }
    mirror_lower(&mut values, dim);
    Ntk::new(kind, n, c, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        let cases = [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (2.9, 0.999_958_902_121_900_5),
            (3.0, 0.999_977_909_503_001_4),
            (4.5, 0.999_999_999_803_383_9),
            (-1.0, -0.842_700_792_949_714_9),
        ];
        for (x, expected) in cases {
            assert!((erf(x) - expected).abs() < 1e-14, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn activation_slopes_match_finite_differences() {
        for kind in [
            Activation::Relu,
            Activation::LeakyRelu,
            Activation::Tanh,
            Activation::Gelu,
        ] {
            for z in [-2.3, -0.4, 0.3, 1.7] {
                let h = 1e-6;
                let numeric = (activate(kind, z + h).0 - activate(kind, z - h).0) / (2.0 * h);
                assert!(
                    (numeric - activate(kind, z).1).abs() < 1e-7,
                    "{kind:?} at {z}"
                );
            }
        }
    }
}

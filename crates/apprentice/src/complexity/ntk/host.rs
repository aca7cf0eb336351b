//! The fast route to the exact kernel: [`HostNetwork`], a network's weights copied to the host
//! in `f64`, whose forward pass keeps what the backward pass needs and whose backward pass
//! propagates all outputs of an example at once; the kernel is then assembled per layer as
//! described in [`crate::complexity`]. [`empirical_ntk`] is its one-call entry point.

use burn::tensor::Tensor;

use super::activation::activate;
use super::conv::{BlockTape, HostBlock, HostNorm, conv_taps};
use super::kernel::{KernelKind, Ntk};
use crate::backend;
use crate::complexity::linalg::{add_weighted_gram, dot, mirror_lower};
use crate::complexity::{ComplexityError, Result, check_buffer};
use crate::models::{Activation, Network};

/// A [`Network`]'s weights copied to the host in `f64`, in evaluation mode (dropout off, batch
/// norm folded to its per-channel affine map), with the forward and backward passes the fast
/// NTK needs.
#[derive(Debug, Clone)]
pub struct HostNetwork {
    blocks: Vec<HostBlock>,
    dense: Vec<HostDense>,
    pub(super) input_len: usize,
    activation: Activation,
    pub(super) outputs: usize,
}

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

pub(super) fn host_values<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
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
    pub(super) fn count_examples(&self, inputs: &[f32]) -> Result<usize> {
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
            let mut products = crate::complexity::linalg::gram(inputs, n, layer.inputs);
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

//! The layers our networks are made of, with seeded initialisation.
//!
//! Parameters are drawn from our own seeded generator rather than burn's global one, so that the
//! scratch and the distilled student start from bit-identical weights and so that a run can be
//! reproduced on any backend.

use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData, activation};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::kernels;
use super::spec::Activation;

/// Values drawn uniformly from `[-bound, bound]`: PyTorch's default for dense and convolution
/// layers (bound = 1/√fan_in), which keeps our baselines comparable to the usual references.
fn uniform(len: usize, bound: f32, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-bound..=bound)).collect()
}

/// A fully connected layer `y = x·W + b` with `W` stored as `[inputs, outputs]`.
#[derive(Module, Debug)]
pub struct Dense {
    /// Weight matrix, `[inputs, outputs]`.
    pub weight: Param<Tensor<2>>,
    /// Bias vector, `[outputs]`.
    pub bias: Param<Tensor<1>>,
}

impl Dense {
    /// A layer initialised from `seed`.
    pub fn new(inputs: usize, outputs: usize, seed: u64, device: &Device) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let bound = 1.0 / (inputs as f32).sqrt();
        let weight = uniform(inputs * outputs, bound, &mut rng);
        let bias = uniform(outputs, bound, &mut rng);
        Self {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(weight, [inputs, outputs]),
                device,
            )),
            bias: Param::from_tensor(Tensor::from_data(TensorData::new(bias, [outputs]), device)),
        }
    }

    /// Applies the layer to a `[batch, inputs]` tensor.
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        input.matmul(self.weight.val()) + self.bias.val().unsqueeze()
    }
}

/// A 'same'-padded convolution, optional batch norm, the activation and an optional 2×2 max-pool.
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// Kernel, `[out_channels, in_channels, k, k]`.
    pub weight: Param<Tensor<4>>,
    /// Bias, `[out_channels]`.
    pub bias: Param<Tensor<1>>,
    /// Batch normalisation of the convolution output, when enabled.
    pub norm: Option<BatchNorm>,
    /// Kernel size (odd).
    pub kernel_size: usize,
    /// Whether a 2×2 max-pool ends the block.
    pub pool: bool,
}

impl ConvBlock {
    /// A block initialised from `seed`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        batch_norm: bool,
        pool: bool,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let fan_in = in_channels * kernel_size * kernel_size;
        let bound = 1.0 / (fan_in as f32).sqrt();
        let weight = uniform(out_channels * fan_in, bound, &mut rng);
        let bias = uniform(out_channels, bound, &mut rng);
        Self {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(
                    weight,
                    [out_channels, in_channels, kernel_size, kernel_size],
                ),
                device,
            )),
            bias: Param::from_tensor(Tensor::from_data(
                TensorData::new(bias, [out_channels]),
                device,
            )),
            norm: batch_norm.then(|| BatchNormConfig::new(out_channels).init(device)),
            kernel_size,
            pool,
        }
    }

    /// Applies the block to a `[batch, channels, height, width]` tensor.
    ///
    /// On the CPU backend our own kernels ([`super::kernels`]) run the convolution, with the
    /// bias, ReLU and pool fused into it when there is no batch norm; anywhere else (GPU
    /// backends) burn's operations do, with the same results up to rounding.
    pub fn forward(&self, input: Tensor<4>, activation: Activation) -> Tensor<4> {
        let padding = self.kernel_size / 2;
        let [_, _, height, width] = input.dims();
        // 'same' padding keeps the size, so the pool runs on the input's height and width.
        let pool = self.pool && height >= 2 && width >= 2;
        let (weight, bias) = (self.weight.val(), self.bias.val());
        if self.norm.is_none()
            && activation == Activation::Relu
            && let Some(x) = kernels::conv2d_block(&input, &weight, &bias, padding, true, pool)
        {
            return x;
        }
        let mut x = kernels::conv2d_block(&input, &weight, &bias, padding, false, false)
            .unwrap_or_else(|| {
                let options = ConvOptions::new([1, 1], [padding, padding], [1, 1], 1);
                conv2d(input, weight, Some(bias), options)
            });
        if let Some(norm) = &self.norm {
            x = norm.forward(x);
        }
        x = activate(x, activation);
        if pool {
            x = kernels::max_pool2x2(&x)
                .unwrap_or_else(|| max_pool2d(x, MaxPoolOptions::new([2, 2])));
        }
        x
    }
}

/// Applies a non-linearity to a tensor of any rank.
pub fn activate<const D: usize>(x: Tensor<D>, kind: Activation) -> Tensor<D> {
    match kind {
        Activation::Relu => activation::relu(x),
        Activation::Gelu => kernels::gelu(x),
        Activation::Tanh => activation::tanh(x),
        Activation::LeakyRelu => activation::leaky_relu(x, 0.01),
    }
}

/// Inverted dropout with a mask drawn from our generator: kept units are scaled by 1/(1−p) so
/// that evaluation needs no rescaling.
pub fn dropout(x: Tensor<2>, probability: f64, rng: &mut ChaCha8Rng) -> Tensor<2> {
    if probability <= 0.0 {
        return x;
    }
    let [rows, cols] = x.dims();
    let keep = 1.0 - probability;
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = (0..rows * cols)
        .map(|_| {
            if rng.random::<f64>() < keep {
                scale
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, cols]), &x.device());
    x * mask
}

//! A network built from a [`ModelSpec`]: forward pass, named features, parameter count.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor};
use rand_chacha::ChaCha8Rng;

use super::layers::{ConvBlock, Dense, activate, dropout};
use super::spec::{Activation, ModelSpec};
use crate::data::SampleShape;
use crate::data::batch::mix_seed;

/// An intermediate activation, kept in the shape it had in the network.
#[derive(Debug, Clone)]
pub enum FeatureTensor {
    /// `[batch, width]` from a dense layer.
    Flat(Tensor<2>),
    /// `[batch, channels, height, width]` from a convolution block.
    Map(Tensor<4>),
}

/// A named intermediate activation (`hidden1`, `block2`, ...), for feature-based distillation.
#[derive(Debug, Clone)]
pub struct Feature {
    /// Layer name, stable for a given architecture.
    pub name: String,
    /// The activation itself.
    pub value: FeatureTensor,
}

/// What a forward pass returns: the logits and the named features that led to them.
#[derive(Debug, Clone)]
pub struct ForwardOutput {
    /// `[batch, classes]` unnormalised scores.
    pub logits: Tensor<2>,
    /// Intermediate activations, input side first.
    pub features: Vec<Feature>,
}

/// A classifier built from a [`ModelSpec`]. Inputs are always `[batch, features]`; convolutional
/// networks reshape them to images of [`Network::input_shape`].
#[derive(Module, Debug)]
pub struct Network {
    /// Convolution blocks (empty for an MLP).
    pub blocks: Vec<ConvBlock>,
    /// Dense layers; the last one produces the logits.
    pub dense: Vec<Dense>,
    /// Input channels, height and width.
    pub input_dims: [usize; 3],
    /// Number of classes.
    pub num_classes: usize,
    /// Non-linearity, as its index in [`Activation`] order (kept as a number so the module
    /// derive treats it as a constant).
    activation_code: usize,
    /// Dropout probability in dense hidden layers.
    pub dropout: f64,
}

const ACTIVATIONS: [Activation; 4] = [
    Activation::Relu,
    Activation::Gelu,
    Activation::Tanh,
    Activation::LeakyRelu,
];

impl Network {
    /// Builds a network for `input_shape` and `num_classes`, with every parameter drawn from
    /// `seed`. The same seed and spec always give the same weights.
    pub fn new(
        spec: &ModelSpec,
        input_shape: SampleShape,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, String> {
        let layer_seed = |index: u64| mix_seed(seed, 0x1a7e_0000 + index);
        let mut blocks = Vec::new();
        let mut dense = Vec::new();
        let (activation, dropout_probability, hidden) = match spec {
            ModelSpec::Mlp(mlp) => (mlp.activation, mlp.dropout, mlp.hidden.clone()),
            ModelSpec::Cnn(cnn) => (cnn.activation, cnn.dropout, cnn.hidden.clone()),
        };
        let mut width = input_shape.len();
        if let ModelSpec::Cnn(cnn) = spec {
            if !input_shape.is_image() {
                return Err(format!(
                    "a cnn needs image inputs, but the data has flat samples of {} features",
                    input_shape.len()
                ));
            }
            let (mut channels, mut height, mut map_width) =
                (input_shape.channels, input_shape.height, input_shape.width);
            for (index, &out_channels) in cnn.channels.iter().enumerate() {
                blocks.push(ConvBlock::new(
                    channels,
                    out_channels,
                    cnn.kernel_size,
                    cnn.batch_norm,
                    cnn.pool,
                    layer_seed(index as u64),
                    device,
                ));
                channels = out_channels;
                if cnn.pool && height >= 2 && map_width >= 2 {
                    height /= 2;
                    map_width /= 2;
                }
            }
            width = channels * height * map_width;
        }
        for (index, &outputs) in hidden
            .iter()
            .chain(std::iter::once(&num_classes))
            .enumerate()
        {
            dense.push(Dense::new(
                width,
                outputs,
                layer_seed(100 + index as u64),
                device,
            ));
            width = outputs;
        }
        let activation_code = ACTIVATIONS
            .iter()
            .position(|&a| a == activation)
            .unwrap_or(0);
        let network = Self {
            blocks,
            dense,
            input_dims: [input_shape.channels, input_shape.height, input_shape.width],
            num_classes,
            activation_code,
            dropout: dropout_probability,
        };
        Ok(network.map(&mut SequentialIds { next: 1 }))
    }

    /// How many parameter values [`Network::new`] would allocate for this spec, computed without
    /// allocating (`None` on overflow). Readers of checkpoints compare it with the file's size
    /// before building anything, so a damaged header cannot demand terabytes.
    pub fn planned_parameters(
        spec: &ModelSpec,
        input_shape: SampleShape,
        num_classes: usize,
    ) -> Option<u128> {
        let (hidden, mut width, mut total): (&[usize], u128, u128) = match spec {
            ModelSpec::Mlp(mlp) => (&mlp.hidden, input_shape.len() as u128, 0),
            ModelSpec::Cnn(cnn) => {
                let (mut channels, mut height, mut map_width) = (
                    input_shape.channels as u128,
                    input_shape.height,
                    input_shape.width,
                );
                let mut total: u128 = 0;
                for &out in &cnn.channels {
                    let k = cnn.kernel_size as u128;
                    let out = out as u128;
                    total = total
                        .checked_add(out.checked_mul(channels)?.checked_mul(k.checked_mul(k)?)?)?;
                    total = total.checked_add(out.checked_mul(if cnn.batch_norm {
                        5
                    } else {
                        1
                    })?)?;
                    channels = out;
                    if cnn.pool && height >= 2 && map_width >= 2 {
                        height /= 2;
                        map_width /= 2;
                    }
                }
                let flat = channels
                    .checked_mul(height as u128)?
                    .checked_mul(map_width as u128)?;
                (&cnn.hidden, flat, total)
            }
        };
        for &outputs in hidden.iter().chain(std::iter::once(&num_classes)) {
            let outputs = outputs as u128;
            total = total.checked_add(width.checked_mul(outputs)?.checked_add(outputs)?)?;
            width = outputs;
        }
        Some(total)
    }

    /// The sample shape the network expects.
    pub fn input_shape(&self) -> SampleShape {
        let [channels, height, width] = self.input_dims;
        SampleShape::image(channels, height, width)
    }

    /// The network's non-linearity.
    pub fn activation(&self) -> Activation {
        ACTIVATIONS[self.activation_code]
    }

    /// Number of trainable values (batch-norm running statistics excluded).
    pub fn parameter_count(&self) -> usize {
        let dense: usize = self
            .dense
            .iter()
            .map(|d| d.weight.val().shape().num_elements() + d.bias.val().shape().num_elements())
            .sum();
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| {
                let norm = b
                    .norm
                    .as_ref()
                    .map(|n| 2 * n.gamma.val().shape().num_elements())
                    .unwrap_or(0);
                b.weight.val().shape().num_elements() + b.bias.val().shape().num_elements() + norm
            })
            .sum();
        dense + blocks
    }

    /// Forward pass on `[batch, features]` inputs. With `dropout_rng` the network is in training
    /// mode (dropout masks drawn from it); without, dropout is off.
    pub fn forward(
        &self,
        input: Tensor<2>,
        mut dropout_rng: Option<&mut ChaCha8Rng>,
    ) -> ForwardOutput {
        let activation = self.activation();
        let mut features = Vec::new();
        let [batch, _] = input.dims();
        let mut x = input;
        if !self.blocks.is_empty() {
            let [channels, height, width] = self.input_dims;
            let mut map: Tensor<4> = x.reshape([batch, channels, height, width]);
            for (index, block) in self.blocks.iter().enumerate() {
                map = block.forward(map, activation);
                features.push(Feature {
                    name: format!("block{}", index + 1),
                    value: FeatureTensor::Map(map.clone()),
                });
            }
            let [_, c, h, w] = map.dims();
            x = map.reshape([batch, c * h * w]);
        }
        let last = self.dense.len() - 1;
        for (index, layer) in self.dense.iter().enumerate() {
            x = layer.forward(x);
            if index < last {
                x = activate(x, activation);
                if let Some(rng) = dropout_rng.as_deref_mut() {
                    x = dropout(x, self.dropout, rng);
                }
                features.push(Feature {
                    name: format!("hidden{}", index + 1),
                    value: FeatureTensor::Flat(x.clone()),
                });
            }
        }
        ForwardOutput {
            logits: x,
            features,
        }
    }

    /// True when every parameter is a finite number (a non-finite gradient poisons them).
    pub fn parameters_are_finite(&self) -> bool {
        let mut check = FiniteCheck { finite: true };
        self.visit(&mut check);
        check.finite
    }

    /// Logits only, without dropout.
    pub fn logits(&self, input: Tensor<2>) -> Tensor<2> {
        self.forward(input, None).logits
    }
}

/// Gives parameters the ids 1, 2, 3, ... in visiting order. Optimiser state is keyed by parameter
/// id, so ids that depend only on the architecture let a resumed run (a new process) attach the
/// saved optimiser state to a freshly built network.
pub(crate) struct SequentialIds {
    /// The id the next parameter gets.
    pub(crate) next: u64,
}

impl ModuleMapper for SequentialIds {
    fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.id = ParamId::from(self.next);
        self.next += 1;
        param
    }
}

struct FiniteCheck {
    finite: bool,
}

impl ModuleVisitor for FiniteCheck {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.finite {
            // A sum is NaN or infinite as soon as one element is.
            let total = crate::backend::to_host(param.val().sum());
            self.finite = total.iter().all(|v| v.is_finite());
        }
    }
}

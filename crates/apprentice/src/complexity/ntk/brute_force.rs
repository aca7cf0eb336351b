//! The reference kernel: burn's autodiff through the network itself, one backward pass per
//! example and output, then the Gram matrix of the flattened gradients. Slow, and kept apart
//! from the fast route because its only job is to check it.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};

use super::host::{HostNetwork, host_values};
use super::kernel::{KernelKind, Ntk};
use crate::backend::{self, ComputeDevice};
use crate::complexity::linalg::{add_weighted_gram, mirror_lower};
use crate::complexity::{ComplexityError, Result, check_buffer};
use crate::models::Network;

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

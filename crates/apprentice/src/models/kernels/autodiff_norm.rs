//! LayerNorm as one operation of burn's autodiff graph on the flex backend, on every core (see
//! the `layer_norm` module for the arithmetic).
//!
//! The gradients of `γ` and `β` are burn's sums over the rows, taken by flex's own reduction on
//! the same terms, so they too are burn's floats. The input's gradient is complete when the
//! input feeds nothing but this LayerNorm (BERT's residual sums): burn then adds the same two
//! terms that this step adds.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::tensor::{Shape, Tensor, TensorData};
use std::sync::Arc;

use super::autodiff::{AutodiffFlex, primitive, values};
use super::layer_norm;

/// What LayerNorm's backward step needs.
#[derive(Clone, Debug)]
struct NormState {
    gamma: FlexTensor,
    centered: Arc<Vec<f32>>,
    deviations: Arc<Vec<f32>>,
    variances: Arc<Vec<f32>>,
    dims: Vec<usize>,
}

/// `γ`'s or `β`'s gradient as burn takes it from `terms` (of the input's shape): summed over
/// every leading dimension that is not 1 (one sum per dimension, in order), then reshaped to
/// `[width]`.
fn parameter_gradient(terms: FlexTensor, dims: &[usize]) -> FlexTensor {
    let width = *dims.last().expect("a rank of at least 1");
    let summed: Vec<usize> = (0..dims.len() - 1).filter(|&d| dims[d] != 1).collect();
    let reduced = match summed.as_slice() {
        [] => terms,
        [dim] => Flex::float_sum_dim(terms, *dim),
        many => Flex::float_sum_dims(terms, many),
    };
    Flex::float_reshape(reduced, Shape::from(vec![width]))
}

/// The backward step of [`layer_norm_on_autodiff`].
#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_input, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        // burn's tape runs `+ β` first, then `· γ`, then the rest.
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, parameter_gradient(grad.clone(), &s.dims));
        }
        if node_input.is_none() && node_gamma.is_none() {
            return;
        }
        let (dx, gamma_terms) = layer_norm::backward(
            &values(&grad),
            &values(&s.gamma),
            &s.centered,
            &s.deviations,
            &s.variances,
        );
        if let Some(node) = node_gamma {
            let terms = FlexTensor::from_data(TensorData::new(gamma_terms, s.dims.clone()));
            grads.register::<Flex>(node.id, parameter_gradient(terms, &s.dims));
        }
        if let Some(node) = node_input {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, s.dims)));
        }
    }
}

/// LayerNorm over the last dimension of an autodiff-over-flex tensor with `gamma`, `beta` and
/// `epsilon`, on every core; `None` when the tensors are not float32 autodiff-over-flex ones
/// or the shapes do not fit.
pub(super) fn layer_norm_on_autodiff<const D: usize>(
    input: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
) -> Option<Tensor<D>> {
    let dims = input.dims().to_vec();
    let width = *dims.last()?;
    if width == 0 || gamma.dims() != [width] || beta.dims() != [width] {
        return None;
    }
    let (x, g, b) = (primitive(input)?, primitive(gamma)?, primitive(beta)?);
    let (xv, gv, bv) = (
        super::f32_values(x.primitive())?,
        super::f32_values(g.primitive())?,
        super::f32_values(b.primitive())?,
    );
    // flex adds a scalar to a float32 tensor rounded to float32.
    let forward = layer_norm::forward(&xv, &gv, Some(&bv), epsilon as f32);
    let out = FlexTensor::from_data(TensorData::new(forward.output, dims.clone()));
    let output = match NormBackward
        .prepare::<NoCheckpointing>([x.node(), g.node(), b.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = NormState {
                gamma: g.primitive().clone(),
                centered: Arc::new(forward.centered),
                deviations: Arc::new(forward.deviations),
                variances: Arc::new(forward.variances),
                dims,
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

//! The attention's batched products, softmax and dropout as operations of burn's autodiff graph
//! on the flex backend, on every core.
//!
//! burn's own operations run these on one thread: the batched product as one `gemm` call per
//! matrix, softmax as five operations each with its backward step, dropout as a product with
//! the mask and then with `1 / keep`. The steps here compute the same floats (see the
//! `batched_matmul` and `softmax` modules and [`dropout_forward`]) and register the same
//! gradients as burn's backward steps for those operations.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use super::autodiff::{AutodiffFlex, primitive, unary_backward};
use super::batched_matmul::batched_matmul;
use super::softmax;

/// The fewest elements per task of the element-wise passes.
const CHUNK: usize = 1 << 14;

/// `lhs × rhs` with our batched kernel when it takes the operands, flex's `matmul` otherwise;
/// both give flex's floats.
fn product(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor {
    batched_matmul(&lhs, &rhs).unwrap_or_else(|| Flex::float_matmul(lhs, rhs))
}

/// What the batched product's backward step needs: each operand, kept only when the other one
/// needs a gradient (as burn keeps them).
#[derive(Clone, Debug)]
struct ProductState {
    lhs: Option<FlexTensor>,
    rhs: Option<FlexTensor>,
}

/// The backward step of [`batched_product`]: burn's `matmul` backward, `dL/dlhs = g · rhsᵀ`
/// then `dL/drhs = lhsᵀ · g`, with the transposes as views.
#[derive(Debug)]
struct ProductBackward;

impl Backward<Flex, 2> for ProductBackward {
    type State = ProductState;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_lhs, node_rhs] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let state = ops.state;
        if let (Some(node), Some(rhs)) = (node_lhs, state.rhs) {
            let dlhs = product(grad.clone(), Flex::float_transpose(rhs));
            grads.register::<Flex>(node.id, dlhs);
        }
        if let (Some(node), Some(lhs)) = (node_rhs, state.lhs) {
            let drhs = product(Flex::float_transpose(lhs), grad);
            grads.register::<Flex>(node.id, drhs);
        }
    }
}

/// `lhs × rhs` for autodiff-over-flex tensors of rank `D ≥ 3` with the same batch dimensions,
/// on every core; `None` when they are not such tensors (the caller then uses burn's
/// `matmul`).
pub(super) fn batched_product<const D: usize>(
    lhs: &Tensor<D>,
    rhs: &Tensor<D>,
) -> Option<Tensor<D>> {
    let (a, b) = (primitive(lhs)?, primitive(rhs)?);
    let out = batched_matmul(a.primitive(), b.primitive())?;
    let (a_tracked, b_tracked) = (a.is_tracked(), b.is_tracked());
    let output = match ProductBackward
        .prepare::<NoCheckpointing>([a.node(), b.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = ProductState {
                lhs: b_tracked.then(|| a.primitive().clone()),
                rhs: a_tracked.then(|| b.primitive().clone()),
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

/// Inverted dropout as burn computes `x * mask * scale`: `(x · m) · s` for each element.
pub(super) fn dropout_forward(x: &[f32], mask: &[f32], scale: f32) -> Vec<f32> {
    assert_eq!(
        x.len(),
        mask.len(),
        "dropout: the mask and the input differ in size"
    );
    let mut out = Vec::new();
    x.par_iter()
        .with_min_len(CHUNK)
        .zip(mask)
        .map(|(&x, &m)| x * m * scale)
        .collect_into_vec(&mut out);
    out
}

/// The gradient of [`dropout_forward`] as burn's backward steps compute it: first through the
/// scale, then through the mask, `(g · s) · m`.
fn dropout_backward(g: &[f32], mask: &[f32], scale: f32) -> Vec<f32> {
    let mut out = Vec::new();
    g.par_iter()
        .with_min_len(CHUNK)
        .zip(mask)
        .map(|(&g, &m)| g * scale * m)
        .collect_into_vec(&mut out);
    out
}

/// What dropout's backward step needs.
#[derive(Clone, Debug)]
struct DropoutState {
    mask: Arc<Vec<f32>>,
    scale: f32,
    dims: Vec<usize>,
}

/// The backward step of [`dropout_on_autodiff`].
#[derive(Debug)]
struct DropoutBackward;

impl Backward<Flex, 1> for DropoutBackward {
    type State = DropoutState;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        unary_backward(ops, grads, |s, dy| {
            let dx = dropout_backward(dy, &s.mask, s.scale);
            FlexTensor::from_data(TensorData::new(dx, s.dims))
        });
    }
}

/// `input * mask * scale` of an autodiff-over-flex tensor on every core, `mask` holding one
/// value per element in row-major order; `None` when it is not one or is not float32.
pub(super) fn dropout_on_autodiff<const D: usize>(
    input: &Tensor<D>,
    mask: Arc<Vec<f32>>,
    scale: f32,
) -> Option<Tensor<D>> {
    let x = primitive(input)?;
    let xv = super::f32_values(x.primitive())?;
    let dims = input.dims().to_vec();
    let out = FlexTensor::from_data(TensorData::new(
        dropout_forward(&xv, &mask, scale),
        dims.clone(),
    ));
    let output = match DropoutBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(DropoutState { mask, scale, dims }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

/// What the softmax's backward step needs.
#[derive(Clone, Debug)]
struct SoftmaxState {
    exps: Arc<Vec<f32>>,
    sums: Arc<Vec<f32>>,
    dims: Vec<usize>,
}

/// The backward step of [`softmax_on_autodiff`].
#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    type State = SoftmaxState;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        unary_backward(ops, grads, |s, dy| {
            let width = *s.dims.last().expect("a rank of at least 1");
            let dx = softmax::backward(dy, &s.exps, &s.sums, width);
            FlexTensor::from_data(TensorData::new(dx, s.dims))
        });
    }
}

/// The softmax over the last dimension of an autodiff-over-flex tensor, on every core; `None`
/// when it is not one, is not float32, or has an empty last dimension.
pub(super) fn softmax_on_autodiff<const D: usize>(input: &Tensor<D>) -> Option<Tensor<D>> {
    let dims = input.dims().to_vec();
    let width = *dims.last()?;
    if width == 0 {
        return None;
    }
    let x = primitive(input)?;
    let xv = super::f32_values(x.primitive())?;
    let forward = softmax::forward(&xv, width);
    let out = FlexTensor::from_data(TensorData::new(forward.output, dims.clone()));
    let output = match SoftmaxBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = SoftmaxState {
                exps: Arc::new(forward.exps),
                sums: Arc::new(forward.sums),
                dims,
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

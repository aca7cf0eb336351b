//! The kernels as operations of burn's autodiff graph on the flex backend.
//!
//! Each operation takes the autodiff primitives out of the tensors, runs our forward kernel on
//! the flex primitives inside them, and registers a backward step that runs our backward kernel.
//! Only the default checkpointing strategy is handled; a tensor recorded with another one is
//! left to burn's operations.

use std::sync::Arc;

use burn::backend::Autodiff;
use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::{Tensor, TensorData};

use super::conv::{self, ConvGeometry};
use super::{f32_values, flex_from_vec, gelu, linear, pool};

/// burn's autodiff over flex, with the checkpointing strategy that `Device::autodiff` uses.
pub(super) type AutodiffFlex = Autodiff<Flex, NoCheckpointing>;

/// The autodiff primitive of a float tensor on flex, or `None` on any other backend.
pub(super) fn primitive<const D: usize>(
    tensor: &Tensor<D>,
) -> Option<<AutodiffFlex as burn::backend::BackendTypes>::FloatTensorPrimitive> {
    tensor.clone().try_into_primitive::<AutodiffFlex>().ok()
}

/// The values of a tensor our forward pass produced or kept, or of the gradient burn hands to
/// our backward step: float32 on flex by construction.
pub(super) fn values(tensor: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    f32_values(tensor).expect("a float32 flex tensor in our own autodiff step")
}

/// The body of a one-parent backward step: consumes the output's gradient and, when the parent
/// needs one, registers `gradient(state, output gradient)` for it.
pub(super) fn unary_backward<S>(
    ops: Ops<S, 1>,
    grads: &mut Gradients,
    gradient: impl FnOnce(S, &[f32]) -> FlexTensor,
) {
    let [node_input] = ops.parents;
    let grad = grads.consume::<Flex>(&ops.node);
    if let Some(node) = node_input {
        let dx = gradient(ops.state, &values(&grad));
        grads.register::<Flex>(node.id, dx);
    }
}

/// What the convolution block's backward step needs from its forward pass.
#[derive(Clone, Debug)]
struct ConvState {
    geometry: ConvGeometry,
    input: FlexTensor,
    weight: FlexTensor,
    output: FlexTensor,
    indices: Arc<Vec<u8>>,
}

/// The backward step of [`conv2d_block`].
#[derive(Debug)]
struct ConvBlockBackward;

impl Backward<Flex, 3> for ConvBlockBackward {
    type State = ConvState;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_input, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let state = ops.state;
        let g = state.geometry;
        let (x, w, out, dy) = (
            values(&state.input),
            values(&state.weight),
            values(&state.output),
            values(&grad),
        );
        let result = conv::backward(&g, &x, &w, &out, &state.indices, &dy, node_input.is_some());
        if let (Some(node), Some(dx)) = (node_input, result.input) {
            grads.register::<Flex>(
                node.id,
                flex_from_vec(dx, [g.batch, g.in_channels, g.height, g.width]),
            );
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(
                node.id,
                flex_from_vec(
                    result.weight,
                    [g.out_channels, g.in_channels, g.kernel, g.kernel],
                ),
            );
        }
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, flex_from_vec(result.bias, [g.out_channels]));
        }
    }
}

/// The convolution block on autodiff-over-flex tensors; `None` when any of them is not one or
/// is not float32.
pub(super) fn conv2d_block(
    g: &ConvGeometry,
    input: &Tensor<4>,
    weight: &Tensor<4>,
    bias: &Tensor<1>,
) -> Option<Tensor<4>> {
    let (x, w, b) = (primitive(input)?, primitive(weight)?, primitive(bias)?);
    let (xp, wp, bp) = (x.primitive(), w.primitive(), b.primitive());
    let (xv, wv, bv) = (f32_values(xp)?, f32_values(wp)?, f32_values(bp)?);
    let output = match ConvBlockBackward
        .prepare::<NoCheckpointing>([x.node(), w.node(), b.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, indices) = conv::forward(g, &xv, &wv, &bv, true);
            let out = flex_from_vec(out, g.output_dims());
            let state = ConvState {
                geometry: *g,
                input: xp.clone(),
                weight: wp.clone(),
                output: out.clone(),
                indices: Arc::new(indices),
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => {
            let (out, _) = conv::forward(g, &xv, &wv, &bv, false);
            prep.finish(flex_from_vec(out, g.output_dims()))
        }
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

/// What the pool's backward step needs from its forward pass.
#[derive(Clone, Debug)]
struct PoolState {
    dims: [usize; 4],
    indices: Arc<Vec<u8>>,
}

/// The backward step of [`max_pool2x2`].
#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    type State = PoolState;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        unary_backward(ops, grads, |s, dy| {
            flex_from_vec(pool::backward(s.dims, &s.indices, dy), s.dims)
        });
    }
}

/// The 2×2 max-pool on an autodiff-over-flex tensor of shape `dims`; `None` when it is not one
/// or is not float32.
pub(super) fn max_pool2x2(dims: [usize; 4], input: &Tensor<4>) -> Option<Tensor<4>> {
    let x = primitive(input)?;
    let xv = f32_values(x.primitive())?;
    let output = match MaxPoolBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, indices) = pool::forward(dims, &xv, true);
            let state = PoolState {
                dims,
                indices: Arc::new(indices),
            };
            prep.finish(state, flex_from_vec(out, pool::output_dims(dims)))
        }
        OpsKind::UnTracked(prep) => {
            let (out, _) = pool::forward(dims, &xv, false);
            prep.finish(flex_from_vec(out, pool::output_dims(dims)))
        }
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

/// What the linear product's backward step needs from its forward pass.
#[derive(Clone, Debug)]
struct ProductState {
    input: FlexTensor,
    weight: FlexTensor,
    /// Sequences in the input (1 for a plain matrix); `rows` is a multiple of it.
    batch: usize,
    rows: usize,
    d_in: usize,
    d_out: usize,
}

/// The backward step of [`linear_product`].
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
        let [node_input, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let dy = values(&grad);
        if let Some(node) = node_input {
            let w = values(&s.weight);
            let dx = linear::backward_input(&dy, &w, s.batch, [s.rows, s.d_in, s.d_out]);
            grads.register::<Flex>(node.id, flex_from_vec(dx, [s.rows, s.d_in]));
        }
        if let Some(node) = node_weight {
            let x = values(&s.input);
            let dw = if s.batch == 1 {
                linear::backward_weight(&x, &dy, [s.rows, s.d_in, s.d_out])
            } else {
                let shape = [s.batch, s.rows / s.batch, s.d_in, s.d_out];
                linear::weight_gradient_by_sequence(&x, &dy, shape)
            };
            let dw = flex_from_vec(dw, [s.d_in, s.d_out]);
            grads.register::<Flex>(node.id, dw);
        }
    }
}

/// `input · weight` on autodiff-over-flex tensors (`[rows, d_in]` and `[d_in, d_out]`), the
/// rows being `batch` sequences of equal length; `None` when either is not one or is not
/// float32.
pub(super) fn linear_product(
    input: &Tensor<2>,
    weight: &Tensor<2>,
    batch: usize,
) -> Option<Tensor<2>> {
    let (x, w) = (primitive(input)?, primitive(weight)?);
    let (xp, wp) = (x.primitive(), w.primitive());
    let (xv, wv) = (f32_values(xp)?, f32_values(wp)?);
    let [rows, d_in] = input.dims();
    let d_out = weight.dims()[1];
    let out = linear::forward(&xv, &wv, batch, [rows, d_in, d_out]);
    let out = flex_from_vec(out, [rows, d_out]);
    let output = match ProductBackward
        .prepare::<NoCheckpointing>([x.node(), w.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = ProductState {
                input: xp.clone(),
                weight: wp.clone(),
                batch,
                rows,
                d_in,
                d_out,
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

/// What GELU's backward step needs: its input, `1 + erf(x / √2)` of each element, and the
/// dimensions.
#[derive(Clone, Debug)]
struct GeluState {
    input: FlexTensor,
    one_plus_erf: Arc<Vec<f32>>,
    dims: Vec<usize>,
}

/// The backward step of [`gelu_on_autodiff`].
#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = GeluState;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        unary_backward(ops, grads, |s, dy| {
            let dx = gelu::backward(&values(&s.input), &s.one_plus_erf, dy);
            FlexTensor::from_data(TensorData::new(dx, s.dims))
        });
    }
}

/// GELU of an autodiff-over-flex tensor on every core; `None` when it is not one or is not
/// float32.
pub(super) fn gelu_on_autodiff<const D: usize>(input: &Tensor<D>) -> Option<Tensor<D>> {
    let x = primitive(input)?;
    let xp = x.primitive();
    let xv = f32_values(xp)?;
    // Without checkpointing burn never recomputes a forward pass, so the bound is a formality;
    // a compute-bound operation needs no recomputation step.
    let output = match GeluBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, kept) = gelu::forward(&xv, true);
            let state = GeluState {
                input: xp.clone(),
                one_plus_erf: Arc::new(kept.expect("kept when asked")),
                dims: input.dims().to_vec(),
            };
            prep.finish(state, flex_from_vec(out, input.dims()))
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(flex_from_vec(gelu::forward(&xv, false).0, input.dims()))
        }
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

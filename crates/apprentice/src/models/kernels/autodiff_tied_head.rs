//! A language model's tied output projection (see the `tied_head` module) as one operation of
//! burn's autodiff graph on the flex backend.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;

use super::autodiff::{AutodiffFlex, primitive, values};
use super::flex_from_vec;
use super::tied_head;

/// What the projection's backward step needs.
#[derive(Clone, Debug)]
struct HeadState {
    x: FlexTensor,
    table: FlexTensor,
    /// `[batch, len, width, vocab]`.
    dims: [usize; 4],
}

/// The backward step of [`tied_head_on_autodiff`].
#[derive(Debug)]
struct HeadBackward;

impl Backward<Flex, 2> for HeadBackward {
    type State = HeadState;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_table] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let [batch, len, width, vocab] = s.dims;
        let (dx, de) = tied_head::backward(
            &values(&grad),
            &values(&s.x),
            &values(&s.table),
            [batch * len, width, vocab],
            node_x.is_some(),
            node_table.is_some(),
        );
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, flex_from_vec(dx, [batch, len, width]));
        }
        if let (Some(node), Some(de)) = (node_table, de) {
            grads.register::<Flex>(node.id, flex_from_vec(de, [vocab, width]));
        }
    }
}

/// `x · tableᵀ` for `x` `[batch, len, width]` and the table `[vocab, width]`; `None` when
/// either is not a float32 autodiff-over-flex tensor or the shapes are not ones
/// [`tied_head::covers`].
pub(super) fn tied_head_on_autodiff(x: &Tensor<3>, table: &Tensor<2>) -> Option<Tensor<3>> {
    let [batch, len, width] = x.dims();
    let [vocab, table_width] = table.dims();
    if table_width != width || !tied_head::covers([batch * len, width, vocab]) {
        return None;
    }
    let (xa, ta) = (primitive(x)?, primitive(table)?);
    let (xp, tp) = (xa.primitive(), ta.primitive());
    let (xv, tv) = (super::f32_values(xp)?, super::f32_values(tp)?);
    let logits = tied_head::forward(&xv, &tv, [batch * len, width, vocab]);
    let out = flex_from_vec(logits, [batch, len, vocab]);
    let output = match HeadBackward
        .prepare::<NoCheckpointing>([xa.node(), ta.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = HeadState {
                x: xp.clone(),
                table: tp.clone(),
                dims: [batch, len, width, vocab],
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

//! An embedding lookup as one operation of burn's autodiff graph on the flex backend, its
//! gradient table zeroed on every core (see the `embedding` module).

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::{Int, Tensor, TensorData};

use super::autodiff::{AutodiffFlex, primitive, unary_backward};
use super::embedding;

/// What the lookup's backward step needs.
#[derive(Clone, Debug)]
struct LookupState {
    ids: Arc<Vec<usize>>,
    rows: usize,
    width: usize,
}

/// The backward step of [`lookup_on_autodiff`].
#[derive(Debug)]
struct LookupBackward;

impl Backward<Flex, 1> for LookupBackward {
    type State = LookupState;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        unary_backward(ops, grads, |s, dy| {
            let table = embedding::scatter_add(s.rows, s.width, &s.ids, dy);
            FlexTensor::from_data(TensorData::new(table, [s.rows, s.width]))
        });
    }
}

/// The rows `ids` (`[batch, len]`) of an autodiff-over-flex float32 table, `[batch, len,
/// width]`; `None` when the table is not one or an id is outside it (the ids are read only
/// once the table is known to be one).
pub(super) fn lookup_on_autodiff(table: &Tensor<2>, ids: &Tensor<2, Int>) -> Option<Tensor<3>> {
    let [rows, width] = table.dims();
    let [batch, len] = ids.dims();
    let t = primitive(table)?;
    let tv = super::f32_values(t.primitive())?;
    let ids: Vec<usize> = ids
        .to_data()
        .iter::<i64>()
        .map(|id| usize::try_from(id).ok().filter(|&id| id < rows))
        .collect::<Option<_>>()?;
    let ids = Arc::new(ids);
    let out = embedding::gather(&tv, width, &ids);
    let out = FlexTensor::from_data(TensorData::new(out, [batch, len, width]));
    let output = match LookupBackward
        .prepare::<NoCheckpointing>([t.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(LookupState { ids, rows, width }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

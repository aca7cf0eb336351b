//! A language model's next-token losses (see the `token_loss` module) as operations of burn's
//! autodiff graph on the flex backend: each takes `[batch, len, vocab]` logits and gives one
//! value per position, `[batch, len]`.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::{Int, Tensor, TensorData};

use super::autodiff::{AutodiffFlex, primitive, unary_backward};
use super::token_loss::{self, KlForward, PickForward, ReverseKlForward};

/// Which KL, with what its backward step needs.
enum Kept {
    /// `KL(teacher ‖ student)`.
    Forward(KlForward),
    /// `KL(student ‖ teacher)`.
    Reverse(ReverseKlForward),
}

/// The direction of the KL computed by [`kl_on_autodiff`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    /// `KL(teacher ‖ student)`.
    Forward,
    /// `KL(student ‖ teacher)`.
    Reverse,
}

/// What a KL's backward step needs.
#[derive(Clone)]
struct KlState {
    kept: Arc<Kept>,
    dims: [usize; 3],
}

impl std::fmt::Debug for KlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KlState({:?})", self.dims)
    }
}

/// The backward step of [`kl_on_autodiff`].
#[derive(Debug)]
struct KlBackward;

impl Backward<Flex, 1> for KlBackward {
    type State = KlState;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        unary_backward(ops, grads, |s, dy| {
            let width = s.dims[2];
            let dx = match &*s.kept {
                Kept::Forward(kept) => token_loss::backward_kl(dy, kept, width),
                Kept::Reverse(kept) => token_loss::backward_reverse_kl(dy, kept, width),
            };
            FlexTensor::from_data(TensorData::new(dx, s.dims))
        });
    }
}

/// The KL between `softmax(teacher / τ)` and `softmax(student)` in `direction` at every
/// position, the student's logits already divided by `τ` and tracked, the teacher's not
/// tracked; `None` when either is not a float32 autodiff-over-flex tensor, the shapes differ,
/// or the vocabulary is empty.
pub(super) fn kl_on_autodiff(
    student: &Tensor<3>,
    teacher: &Tensor<3>,
    temperature: f32,
    direction: Direction,
) -> Option<Tensor<2>> {
    let dims = student.dims();
    if teacher.dims() != dims || dims[2] == 0 {
        return None;
    }
    let (x, t) = (primitive(student)?, primitive(teacher)?);
    let xv = super::f32_values(x.primitive())?;
    let tv = super::f32_values(t.primitive())?;
    let (divergence, kept) = match direction {
        Direction::Forward => {
            let kept = token_loss::forward_kl(&xv, &tv, temperature, dims[2]);
            (kept.divergence.clone(), Kept::Forward(kept))
        }
        Direction::Reverse => {
            let kept = token_loss::forward_reverse_kl(&xv, &tv, temperature, dims[2]);
            (kept.divergence.clone(), Kept::Reverse(kept))
        }
    };
    let out = FlexTensor::from_data(TensorData::new(divergence, [dims[0], dims[1]]));
    let output = match KlBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = KlState {
                kept: Arc::new(kept),
                dims,
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

/// What the picked log-probability's backward step needs.
#[derive(Clone)]
struct PickState {
    kept: Arc<PickForward>,
    targets: Arc<Vec<usize>>,
    dims: [usize; 3],
}

impl std::fmt::Debug for PickState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PickState({:?})", self.dims)
    }
}

/// The backward step of [`log_softmax_pick_on_autodiff`].
#[derive(Debug)]
struct PickBackward;

impl Backward<Flex, 1> for PickBackward {
    type State = PickState;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        unary_backward(ops, grads, |s, dy| {
            let dx = token_loss::backward_pick(dy, &s.targets, &s.kept, s.dims[2]);
            FlexTensor::from_data(TensorData::new(dx, s.dims))
        });
    }
}

/// `log_softmax(logits)[target]` at every position; `None` when the logits are not a float32
/// autodiff-over-flex tensor, the targets' shape is not theirs without the vocabulary, or a
/// target is outside the vocabulary (the targets are read only once the logits are known to
/// be one).
pub(super) fn log_softmax_pick_on_autodiff(
    logits: &Tensor<3>,
    targets: &Tensor<2, Int>,
) -> Option<Tensor<2>> {
    let dims = logits.dims();
    if targets.dims() != [dims[0], dims[1]] || dims[2] == 0 {
        return None;
    }
    let x = primitive(logits)?;
    let xv = super::f32_values(x.primitive())?;
    let targets: Vec<usize> = targets
        .to_data()
        .iter::<i64>()
        .map(|id| usize::try_from(id).ok().filter(|&id| id < dims[2]))
        .collect::<Option<_>>()?;
    let kept = token_loss::forward_pick(&xv, &targets, dims[2]);
    let out = FlexTensor::from_data(TensorData::new(kept.picked.clone(), [dims[0], dims[1]]));
    let output = match PickBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = PickState {
                kept: Arc::new(kept),
                targets: Arc::new(targets),
                dims,
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<AutodiffFlex>(output))
}

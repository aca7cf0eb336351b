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
use super::mixed_divergence::{self, MixedDivergence, Rows};
use super::token_loss::{self, KlForward, PickForward, ReverseKlForward};

/// A float tensor of the autodiff-over-flex backend, as the kernels take it.
type Primitive = <AutodiffFlex as burn::backend::BackendTypes>::FloatTensorPrimitive;

/// The direction of the KL computed by [`kl_on_autodiff`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    /// `KL(teacher ‖ student)`.
    Forward,
    /// `KL(student ‖ teacher)`.
    Reverse,
}

/// Which loss ran, with what its backward step needs.
enum Kept {
    /// `KL(teacher ‖ student)`.
    Forward(KlForward),
    /// `KL(student ‖ teacher)`.
    Reverse(ReverseKlForward),
    /// The target's log-probability.
    Pick(PickForward, Vec<usize>),
    /// A divergence through the mixture, or the total variation.
    Mixed(MixedDivergence, Vec<Rows>),
}

/// What a loss's backward step needs.
#[derive(Clone)]
struct LossState {
    kept: Arc<Kept>,
    dims: [usize; 3],
}

impl std::fmt::Debug for LossState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LossState({:?})", self.dims)
    }
}

/// The backward step of the losses here.
#[derive(Debug)]
struct LossBackward;

impl Backward<Flex, 1> for LossBackward {
    type State = LossState;

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
                Kept::Pick(kept, targets) => token_loss::backward_pick(dy, targets, kept, width),
                Kept::Mixed(kind, kept) => mixed_divergence::backward(*kind, dy, kept, width),
            };
            FlexTensor::from_data(TensorData::new(dx, s.dims))
        });
    }
}

/// Records a loss of the logits `x` (`dims`), whose values per position are `values`, in the
/// graph; `kept` is kept for the backward step only when `x` is tracked.
fn record(x: Primitive, values: Vec<f32>, kept: Kept, dims: [usize; 3]) -> Tensor<2> {
    let out = FlexTensor::from_data(TensorData::new(values, [dims[0], dims[1]]));
    let output = match LossBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = LossState {
                kept: Arc::new(kept),
                dims,
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive::<AutodiffFlex>(output)
}

/// The tracked student logits, the teacher's and their shape, for the divergence kernels;
/// `None` when either is not a float32 autodiff-over-flex tensor, the shapes differ, or the
/// vocabulary is empty. (Their values borrow from them, so each kernel reads those itself.)
fn student_and_teacher(
    student: &Tensor<3>,
    teacher: &Tensor<3>,
) -> Option<(Primitive, Primitive, [usize; 3])> {
    let dims = student.dims();
    if teacher.dims() != dims || dims[2] == 0 {
        return None;
    }
    Some((primitive(student)?, primitive(teacher)?, dims))
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
    let (x, t, dims) = student_and_teacher(student, teacher)?;
    let xv = super::f32_values(x.primitive())?;
    let tv = super::f32_values(t.primitive())?;
    let (values, kept) = match direction {
        Direction::Forward => {
            let kept = token_loss::forward_kl(&xv, &tv, temperature, dims[2]);
            (kept.divergence.clone(), Kept::Forward(kept))
        }
        Direction::Reverse => {
            let kept = token_loss::forward_reverse_kl(&xv, &tv, temperature, dims[2]);
            (kept.divergence.clone(), Kept::Reverse(kept))
        }
    };
    drop((xv, tv));
    Some(record(x, values, kept, dims))
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
    drop(xv);
    let values = kept.picked.clone();
    Some(record(x, values, Kept::Pick(kept, targets), dims))
}

/// `kind` between `softmax(teacher / τ)` and `softmax(student)` at every position, the
/// student's logits already divided by `τ` and tracked, the teacher's not tracked; `None` when
/// either is not a float32 autodiff-over-flex tensor, the shapes differ, the vocabulary is
/// empty, or `kind`'s weight is 0 or 1.
pub(super) fn mixed_on_autodiff(
    student: &Tensor<3>,
    teacher: &Tensor<3>,
    temperature: f32,
    kind: MixedDivergence,
) -> Option<Tensor<2>> {
    if !kind.covered() {
        return None;
    }
    let (x, t, dims) = student_and_teacher(student, teacher)?;
    let xv = super::f32_values(x.primitive())?;
    let tv = super::f32_values(t.primitive())?;
    let (values, kept) = mixed_divergence::forward(kind, &xv, &tv, temperature, dims[2]);
    drop((xv, tv));
    Some(record(x, values, Kept::Mixed(kind, kept), dims))
}

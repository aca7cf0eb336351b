//! What a training run learns from: labels, a teacher's logits (cached, live, or changing with
//! the epoch), a teacher's features, or the peers of a cohort.

use std::sync::Arc;

use super::loss::LogitLoss;
use super::objective::{ResolvedFeatures, TeacherViews};
use crate::models::Network;

/// Where the distillation targets come from.
pub enum TeacherSignal<'a> {
    /// Teacher logits computed once, row `i` for training sample `i` (exact when the inputs
    /// are not augmented).
    Cached(&'a [f32]),
    /// Teacher logits and feature views computed once, row `i` for training sample `i`.
    CachedWithViews {
        /// Logits, row-major.
        logits: &'a [f32],
        /// The views a feature objective compares with.
        views: &'a TeacherViews,
    },
    /// The teacher itself (inference mode), run on each augmented batch so that it sees the
    /// same view as the student.
    Live(&'a Network),
    /// Cached logits that change with the epoch: entry `e` (0-based) teaches epoch `e + 1`
    /// (online distillation from the teacher's checkpoints along its training; see
    /// [`teacher_epoch_for`]).
    PerEpoch(&'a [&'a [f32]]),
}

/// The teacher checkpoint (1-based epoch of the teacher's training) that teaches student epoch
/// `student_epoch` (1-based) in online distillation: the same fraction of training, rounded up,
/// then up to the next saved checkpoint (one every `every` teacher epochs, and the last one),
/// so the student's last epoch always learns from the finished teacher.
pub fn teacher_epoch_for(
    student_epoch: usize,
    student_epochs: usize,
    teacher_epochs: usize,
    every: usize,
) -> usize {
    let every = every.max(1);
    let teacher_epochs = teacher_epochs.max(1);
    let fraction = (student_epoch.max(1) * teacher_epochs).div_ceil(student_epochs.max(1));
    (fraction.div_ceil(every) * every).clamp(1, teacher_epochs)
}

/// What the loss compares the student's logits with.
pub enum Supervision<'a> {
    /// Cross-entropy with the labels.
    Labels,
    /// A distillation loss against a teacher.
    Distill {
        /// The teacher's outputs.
        teacher: TeacherSignal<'a>,
        /// The method and its settings.
        objective: Arc<dyn LogitLoss>,
    },
    /// Cross-entropy plus a feature-based distillation term against a teacher.
    Features {
        /// The teacher's outputs (its feature views when cached).
        teacher: TeacherSignal<'a>,
        /// The method, with the compared features chosen.
        objective: ResolvedFeatures,
    },
    /// Deep mutual learning (Zhang et al., 2018): every member of a cohort learns its labels
    /// and, by `T²·KL(p_peer ‖ p_self)` averaged over its peers, from the others' predictions.
    /// No pretrained teacher.
    Mutual {
        /// Softening temperature of the mutual terms (1 in the paper).
        temperature: f64,
    },
}

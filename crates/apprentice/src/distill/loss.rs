//! Training objectives on logits: cross-entropy and Hinton's knowledge-distillation loss.
//!
//! Every loss is a batch mean, computed with log-softmax so that logits of magnitude 1e4 stay
//! finite. Temperatures apply to logits, never to probabilities; the soft term is scaled by T²
//! so that its gradient keeps the same size as T changes (Hinton et al., 2015).

use burn::tensor::{Int, Tensor, activation};

use super::method_error::MethodError;

/// Cross-entropy of `logits` `[batch, classes]` against class `labels` `[batch]`.
///
/// With a `mask` (`[batch]`, 1 for labelled samples, 0 otherwise) the mean runs over the labelled
/// samples only, and a batch with none contributes zero: this is how scarce-label training mixes
/// labelled and unlabelled inputs in one batch.
pub fn cross_entropy(
    logits: Tensor<2>,
    labels: Tensor<1, Int>,
    mask: Option<Tensor<1>>,
) -> Tensor<1> {
    let log_probs = activation::log_softmax(logits, 1);
    let picked: Tensor<1> = log_probs.gather(1, labels.unsqueeze_dim(1)).squeeze_dim(1);
    match mask {
        None => picked.mean().neg(),
        Some(mask) => {
            // max(count, 1) keeps an all-unlabelled batch at exactly zero instead of 0/0.
            let count = mask.clone().sum().clamp_min(1.0);
            (picked * mask).sum().neg() / count
        }
    }
}

/// T² · mean over the batch of KL(softmax(teacher/T) ‖ softmax(student/T)).
///
/// This is forward KL from the teacher's distribution: the student is pulled to cover every class
/// the teacher gives mass to. The teacher's logits carry no gradient.
pub fn soft_target_kl(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [batch, _] = student.dims();
    let teacher_log_probs = activation::log_softmax(teacher.detach() / temperature, 1);
    let student_log_probs = activation::log_softmax(student / temperature, 1);
    let teacher_probs = teacher_log_probs.clone().exp();
    let kl = (teacher_probs * (teacher_log_probs - student_log_probs)).sum();
    kl * (temperature * temperature / batch as f64)
}

/// The settings of Hinton's KD loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdWeights {
    /// Softening temperature T (> 0).
    pub temperature: f64,
    /// Weight α of the hard-label cross-entropy; the soft term gets 1 − α.
    pub alpha: f64,
}

/// Hinton's loss: `α·CE(s, y) + (1−α)·T²·KL(softmax(t/T) ‖ softmax(s/T))`, batch means.
///
/// `mask` restricts the cross-entropy to labelled samples (see [`cross_entropy`]); the soft term
/// always uses every sample, which is what lets a teacher teach on unlabelled inputs.
pub fn kd_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    labels: Tensor<1, Int>,
    mask: Option<Tensor<1>>,
    weights: KdWeights,
) -> Tensor<1> {
    let mut total =
        soft_target_kl(student.clone(), teacher, weights.temperature) * (1.0 - weights.alpha);
    if weights.alpha > 0.0 {
        total = total + cross_entropy(student, labels, mask) * weights.alpha;
    }
    total
}

/// The labels of `batch` (indices into the training texts) and, when some of them are past the
/// first `labelled` texts, the mask that keeps those out of the label term (their labels are
/// replaced by class 0, which the mask then ignores).
pub fn labelled_mask(
    batch: &[usize],
    labels: &[u32],
    labelled: usize,
    device: &burn::tensor::Device,
) -> (Vec<u32>, Option<Tensor<1>>) {
    if batch.iter().all(|&i| i < labelled) {
        return (labels.to_vec(), None);
    }
    let mask: Vec<f32> = batch.iter().map(|&i| f32::from(i < labelled)).collect();
    let labels = batch
        .iter()
        .zip(labels)
        .map(|(&i, &label)| if i < labelled { label } else { 0 })
        .collect();
    (labels, Some(crate::backend::vector(mask, device)))
}

/// Learning without Forgetting's settings (Li & Hoiem, 2016): the previous model teaches the
/// current one on the classes it knew, while the new labels are learned with cross-entropy.
#[derive(Debug, Clone, PartialEq)]
pub struct LwfSettings {
    /// Softening temperature T of the old-class outputs (the paper uses 2).
    pub temperature: f64,
    /// Weight λ of the distillation term.
    pub weight: f64,
    /// The old classes: the columns of the logits the previous model was trained on.
    pub old_classes: Vec<usize>,
}

/// LwF's loss: `CE(s, y) + λ·T²·KL(softmax(t_old/T) ‖ softmax(s_old/T))`, where `_old` keeps only
/// the old-class columns, so the distillation term says nothing about the new classes.
///
/// The T² factor is not Li & Hoiem's (their distillation term is the plain cross-entropy of the
/// softened distributions, weighted by λ_o): it is Hinton's, kept so that the term's gradient
/// keeps its size as T changes. λ here is therefore the paper's λ_o times T².
///
/// `mask` restricts the cross-entropy to labelled samples (see [`cross_entropy`]).
pub fn lwf_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    labels: Tensor<1, Int>,
    mask: Option<Tensor<1>>,
    settings: &LwfSettings,
) -> Tensor<1> {
    let hard = cross_entropy(student.clone(), labels, mask);
    if settings.old_classes.is_empty() || settings.weight == 0.0 {
        return hard;
    }
    let device = student.device();
    let columns: Vec<i64> = settings.old_classes.iter().map(|&c| c as i64).collect();
    let columns = Tensor::<1, Int>::from_data(
        burn::tensor::TensorData::new(columns, [settings.old_classes.len()]),
        &device,
    );
    let student_old = student.select(1, columns.clone());
    let teacher_old = teacher.select(1, columns);
    hard + soft_target_kl(student_old, teacher_old, settings.temperature) * settings.weight
}

/// A distillation loss on logits: what a logit method's student minimises.
///
/// Each logit method implements it in its own module; the training loop only calls
/// [`LogitLoss::loss`].
pub trait LogitLoss: std::fmt::Debug + Send + Sync {
    /// The method's short name, as in experiment files.
    fn name(&self) -> &'static str;

    /// The loss of one batch at 1-based `epoch` (a warm-up may depend on it). `mask` limits
    /// any cross-entropy to labelled samples. A relation term that needs more samples than the
    /// batch holds is left out of that batch.
    fn loss(
        &self,
        student: Tensor<2>,
        teacher: Tensor<2>,
        labels: Tensor<1, Int>,
        mask: Option<Tensor<1>>,
        epoch: usize,
    ) -> Result<Tensor<1>, MethodError>;
}

/// `CE(student, labels) + term`, where a term that needs a larger batch is left out (the
/// convention of every method that adds a distillation term to the cross-entropy).
pub fn cross_entropy_plus(
    student: Tensor<2>,
    labels: Tensor<1, Int>,
    mask: Option<Tensor<1>>,
    term: Result<Tensor<1>, MethodError>,
) -> Result<Tensor<1>, MethodError> {
    let hard = cross_entropy(student, labels, mask);
    match term {
        Ok(term) => Ok(hard + term),
        Err(MethodError::BatchTooSmall { .. }) => Ok(hard),
        Err(error) => Err(error),
    }
}

impl LogitLoss for KdWeights {
    fn name(&self) -> &'static str {
        "kd"
    }

    fn loss(
        &self,
        student: Tensor<2>,
        teacher: Tensor<2>,
        labels: Tensor<1, Int>,
        mask: Option<Tensor<1>>,
        _epoch: usize,
    ) -> Result<Tensor<1>, MethodError> {
        Ok(kd_loss(student, teacher, labels, mask, *self))
    }
}

impl LogitLoss for LwfSettings {
    fn name(&self) -> &'static str {
        "lwf"
    }

    fn loss(
        &self,
        student: Tensor<2>,
        teacher: Tensor<2>,
        labels: Tensor<1, Int>,
        mask: Option<Tensor<1>>,
        _epoch: usize,
    ) -> Result<Tensor<1>, MethodError> {
        Ok(lwf_loss(student, teacher, labels, mask, self))
    }
}

//! The supervision-complexity study: which targets are easy for a student to learn.
//!
//! One kernel of the student, many sets of targets: [`measure_targets`] computes the student's
//! empirical NTK on the inputs once, factorises it once and measures every target against it,
//! so that the complexities of one-hot labels, random labels, a teacher's predictions at several
//! temperatures and a teacher's checkpoints along its training are directly comparable. The
//! functions here build those targets ([`NamedTargets`]), score them against the labels
//! ([`target_accuracy`]) and draw the fixed, stratified subset of training inputs they are
//! measured on ([`stratified_subset`]). [`report`] holds the `complexity.json` document and its
//! table, [`plot`] its chart and [`dump`] the kernel file read by the PyTorch reference.

pub mod dump;
pub mod plot;
pub mod report;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::ntk::{KernelKind, Ntk, empirical_ntk};
use super::supervision::{ConditionMethod, FactoredKernel, SolverOptions, Targets};
use super::{ComplexityError, Result};
use crate::data::batch::mix_seed;
use crate::models::Network;

/// Keeps the subset generator apart from every other generator derived from the same seed.
const SUBSET_STREAM: u64 = 0x636f_6d70_6c78_7375; // "complxsu"

/// Keeps the random labels apart from the subset and from the experiment's generators.
const RANDOM_LABEL_STREAM: u64 = 0x636f_6d70_6c78_726c; // "complxrl"

/// A set of targets with the name it is reported under (`labels`, `teacher T=4`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTargets {
    /// How the targets are shown in tables and plots.
    pub name: String,
    /// The `n × C` targets.
    pub targets: Targets,
}

impl NamedTargets {
    /// One-hot labels, named `labels`.
    pub fn labels(labels: &[u32], classes: usize) -> Result<Self> {
        Ok(Self {
            name: "labels".to_owned(),
            targets: Targets::one_hot(labels, classes)?,
        })
    }

    /// One-hot labels drawn uniformly at random from `seed`, named `random`: the targets a
    /// student can only memorise, the upper reference of the study.
    pub fn random_labels(examples: usize, classes: usize, seed: u64) -> Result<Self> {
        Ok(Self {
            name: "random".to_owned(),
            targets: Targets::random_labels(examples, classes, seed)?,
        })
    }

    /// `1/C` for every example and class, named `uniform`: the limit of softened predictions as
    /// the temperature grows, a floor for the temperature curve (constant targets are the
    /// easiest to fit, and carry no information about the examples).
    pub fn uniform(examples: usize, classes: usize) -> Result<Self> {
        if classes == 0 {
            return Err(ComplexityError::Empty("classes"));
        }
        let values = vec![1.0 / classes as f64; examples.saturating_mul(classes)];
        Ok(Self {
            name: "uniform".to_owned(),
            targets: Targets::new(values, examples, classes)?,
        })
    }

    /// A teacher's predictions softened at `temperature`, named `teacher T=<temperature>`.
    pub fn teacher(logits: &[f32], classes: usize, temperature: f64) -> Result<Self> {
        Self::softened(
            format!("teacher T={}", format_number(temperature)),
            logits,
            classes,
            temperature,
        )
    }

    /// Any model's predictions `softmax(z / T)` under a name of the caller's choosing, e.g. a
    /// teacher checkpoint along its training.
    pub fn softened(
        name: impl Into<String>,
        logits: &[f32],
        classes: usize,
        temperature: f64,
    ) -> Result<Self> {
        Ok(Self {
            name: name.into(),
            targets: Targets::softened(logits, classes, temperature)?,
        })
    }

    /// The targets of Hinton et al.'s KD loss, `α · one-hot + (1 − α) · softmax(z / T)`, named
    /// `kd α=<alpha> T=<temperature>`. At `T = 1` the KD loss is, up to a constant, the
    /// cross-entropy with exactly these targets; at other temperatures its two terms see the
    /// student at different temperatures and this mixture is the natural single-matrix summary.
    pub fn kd_mixture(
        labels: &[u32],
        logits: &[f32],
        classes: usize,
        alpha: f64,
        temperature: f64,
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(ComplexityError::Invalid(format!(
                "the KD weight α must lie in [0, 1], not {alpha}"
            )));
        }
        let hard = Targets::one_hot(labels, classes)?;
        let soft = Targets::softened(logits, classes, temperature)?;
        if soft.examples() != hard.examples() {
            return Err(ComplexityError::Shape {
                what: "teacher logit rows",
                expected: hard.examples(),
                found: soft.examples(),
            });
        }
        let values = hard
            .values()
            .iter()
            .zip(soft.values())
            .map(|(h, s)| alpha * h + (1.0 - alpha) * s)
            .collect();
        Ok(Self {
            name: format!(
                "kd α={} T={}",
                format_number(alpha),
                format_number(temperature)
            ),
            targets: Targets::new(values, hard.examples(), classes)?,
        })
    }
}

/// The teacher's predictions at each of `temperatures`, in that order.
pub fn teacher_at_temperatures(
    logits: &[f32],
    classes: usize,
    temperatures: &[f64],
) -> Result<Vec<NamedTargets>> {
    temperatures
        .iter()
        .map(|&t| NamedTargets::teacher(logits, classes, t))
        .collect()
}

/// The study's standard list: one-hot labels, random labels (from `random_seed`), then the
/// teacher's predictions at each temperature when its logits are given.
pub fn standard_targets(
    labels: &[u32],
    classes: usize,
    random_seed: u64,
    teacher_logits: Option<&[f32]>,
    temperatures: &[f64],
) -> Result<Vec<NamedTargets>> {
    let mut targets = vec![
        NamedTargets::labels(labels, classes)?,
        NamedTargets::random_labels(labels.len(), classes, random_seed)?,
    ];
    if let Some(logits) = teacher_logits {
        targets.extend(teacher_at_temperatures(logits, classes, temperatures)?);
    }
    Ok(targets)
}

/// The seed of the random labels in the study of experiment seed `seed`.
pub fn random_label_seed(seed: u64) -> u64 {
    mix_seed(seed, RANDOM_LABEL_STREAM)
}

/// The seed of the measured subset in the study of experiment seed `seed`.
pub fn subset_seed(seed: u64) -> u64 {
    mix_seed(seed, SUBSET_STREAM)
}

/// The share of examples whose largest target is their label (ties go to the lowest class):
/// the accuracy of the model the targets come from, 1 for one-hot labels, about `1/C` for
/// random ones.
pub fn target_accuracy(targets: &Targets, labels: &[u32]) -> Result<f64> {
    if labels.len() != targets.examples() {
        return Err(ComplexityError::Shape {
            what: "labels for the target accuracy",
            expected: targets.examples(),
            found: labels.len(),
        });
    }
    let correct = targets
        .values()
        .chunks(targets.outputs())
        .zip(labels)
        .filter(|(row, label)| {
            let best = row
                .iter()
                .enumerate()
                .fold(0, |best, (i, &v)| if v > row[best] { i } else { best });
            best == **label as usize
        })
        .count();
    Ok(correct as f64 / labels.len() as f64)
}

/// Exactly `size` indices of `labels`, stratified by class and drawn from `seed`, ascending.
///
/// Each class gets its share of `size` in proportion to its count, rounded by largest
/// remainder (ties to the lower class), so the counts add up to `size` exactly; within a class
/// the samples are a seeded shuffle's first ones. The same labels, size and seed always give
/// the same indices. Labels at or above `classes` are never chosen.
pub fn stratified_subset(
    labels: &[u32],
    classes: usize,
    size: usize,
    seed: u64,
) -> Result<Vec<usize>> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (index, &label) in labels.iter().enumerate() {
        if let Some(members) = by_class.get_mut(label as usize) {
            members.push(index);
        }
    }
    let available: usize = by_class.iter().map(Vec::len).sum();
    if size == 0 {
        return Err(ComplexityError::Empty("the subset"));
    }
    if size > available {
        return Err(ComplexityError::Invalid(format!(
            "a subset of {size} examples was asked for, but only {available} are available"
        )));
    }
    let exact: Vec<f64> = by_class
        .iter()
        .map(|members| size as f64 * members.len() as f64 / available as f64)
        .collect();
    let mut quotas: Vec<usize> = exact.iter().map(|q| q.floor() as usize).collect();
    let mut order: Vec<usize> = (0..classes).collect();
    // Largest remainder first; the stable sort keeps lower classes first among equals.
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra)
    });
    let mut missing = size - quotas.iter().sum::<usize>();
    for &class in order.iter().cycle() {
        if missing == 0 {
            break;
        }
        if quotas[class] < by_class[class].len() {
            quotas[class] += 1;
            missing -= 1;
        }
    }
    let mut chosen = Vec::with_capacity(size);
    for (class, (mut members, quota)) in by_class.into_iter().zip(quotas).enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, class as u64));
        members.shuffle(&mut rng);
        chosen.extend_from_slice(&members[..quota]);
    }
    chosen.sort_unstable();
    Ok(chosen)
}

/// The measures of one named set of targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetComplexity {
    /// The targets' name.
    pub name: String,
    /// `Yᵀ(K + λI)⁻¹Y`: the squared norm of the minimum-norm interpolant of the targets.
    pub complexity: f64,
    /// `(1/n) · sqrt(complexity · tr K)`, comparable across kernels of different scale.
    pub adjusted: f64,
    /// `tr K`, without the ridge.
    pub kernel_trace: f64,
    /// The ridge `λ` added to the diagonal.
    pub ridge: f64,
    /// `λ` relative to the mean diagonal of `K`.
    pub relative_ridge: f64,
    /// Condition number of `K + λI` (written as `null` when infinite, read back as NaN).
    #[serde(deserialize_with = "crate::nullable::number")]
    pub condition_number: f64,
    /// Whether the condition number is exact or a lower bound.
    pub condition_method: ConditionMethod,
}

/// The supervision complexity of every set of `targets` with `network`'s empirical NTK on
/// row-major `inputs`: the kernel is computed once and factorised once, whatever the number of
/// targets. Each set of targets must have one row per input.
///
/// For the 64-32-10 digits student and 500 inputs this takes well under a second, most of it
/// the exact condition number; set `options.exact_condition_limit` below `n` to skip that when
/// measuring often (the Cholesky bound is then reported).
pub fn measure_targets(
    network: &Network,
    inputs: &[f32],
    targets: &[NamedTargets],
    kind: KernelKind,
    options: &SolverOptions,
) -> Result<Vec<TargetComplexity>> {
    let kernel = empirical_ntk(network, inputs, kind)?;
    measure_with_kernel(&kernel, targets, options)
}

/// [`measure_targets`] with a kernel already computed (e.g. timed or saved by the caller).
pub fn measure_with_kernel(
    kernel: &Ntk,
    targets: &[NamedTargets],
    options: &SolverOptions,
) -> Result<Vec<TargetComplexity>> {
    let factored = FactoredKernel::new(kernel, options)?;
    targets
        .iter()
        .map(|named| {
            let measured = factored.measure(&named.targets)?;
            Ok(TargetComplexity {
                name: named.name.clone(),
                complexity: measured.complexity,
                adjusted: measured.adjusted,
                kernel_trace: measured.kernel_trace,
                ridge: measured.ridge,
                relative_ridge: measured.relative_ridge,
                condition_number: measured.condition_number,
                condition_method: measured.condition_method,
            })
        })
        .collect()
}

/// A number as short as it can be written without losing it (`4`, `0.5`, `1e-6`), for names.
pub fn format_number(value: f64) -> String {
    format!("{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_have_the_exact_size_and_keep_proportions() {
        // 60 of class 0, 30 of class 1, 10 of class 2.
        let labels: Vec<u32> = (0..100)
            .map(|i| match i % 10 {
                0..=5 => 0,
                6..=8 => 1,
                _ => 2,
            })
            .collect();
        for size in [1, 7, 10, 33, 99, 100] {
            let subset = stratified_subset(&labels, 3, size, 11).unwrap();
            assert_eq!(subset.len(), size);
            assert!(subset.windows(2).all(|w| w[0] < w[1]));
            let mut counts = [0usize; 3];
            for &i in &subset {
                counts[labels[i] as usize] += 1;
            }
            for (class, share) in [0.6, 0.3, 0.1].into_iter().enumerate() {
                let expected = share * size as f64;
                assert!(
                    (counts[class] as f64 - expected).abs() < 1.0,
                    "size {size}: {counts:?}"
                );
            }
        }
        assert_eq!(
            stratified_subset(&labels, 3, 40, 5).unwrap(),
            stratified_subset(&labels, 3, 40, 5).unwrap()
        );
        assert_ne!(
            stratified_subset(&labels, 3, 40, 5).unwrap(),
            stratified_subset(&labels, 3, 40, 6).unwrap()
        );
        assert!(stratified_subset(&labels, 3, 101, 5).is_err());
        assert!(stratified_subset(&labels, 3, 0, 5).is_err());
    }

    #[test]
    fn target_accuracy_reads_the_largest_target() {
        let targets = Targets::new(vec![0.2, 0.8, 0.6, 0.4, 0.5, 0.5], 3, 2).unwrap();
        assert_eq!(target_accuracy(&targets, &[1, 0, 1]).unwrap(), 2.0 / 3.0);
        assert!(target_accuracy(&targets, &[1, 0]).is_err());
    }

    #[test]
    fn the_kd_mixture_weighs_labels_and_softened_predictions() {
        let logits = [0.0f32, 2.0_f32.ln()];
        let mixed = NamedTargets::kd_mixture(&[0], &logits, 2, 0.25, 1.0).unwrap();
        // softmax = (1/3, 2/3): 0.25·(1, 0) + 0.75·(1/3, 2/3) = (0.5, 0.5).
        for (value, expected) in mixed.targets.values().iter().zip([0.5, 0.5]) {
            assert!((value - expected).abs() < 1e-7);
        }
        assert_eq!(mixed.name, "kd α=0.25 T=1");
        assert!(NamedTargets::kd_mixture(&[0], &logits, 2, 1.5, 1.0).is_err());
    }
}

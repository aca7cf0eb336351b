//! Choosing the distillation temperature from the student's supervision complexity.
//!
//! Softening the teacher's predictions makes them easier for the student to fit (lower
//! supervision complexity, Harutyunyan et al., 2023) but also flattens them: the margin by which
//! the targets favour the true class shrinks. The paper's bound on the distilled student's risk
//! grows with the complexity's square root over that margin, so the rule scores each candidate
//! temperature `T` by
//!
//! ```text
//! score(T) = adjusted complexity of Y_T / margin(Y_T)
//! ```
//!
//! where `Y_T = α·one-hot + (1 − α)·softmax(z/T)` are the KD loss's targets, the adjusted
//! complexity is measured with the student's empirical NTK at its initial weights (the very
//! weights every student of the seed starts from, trace kernel), and `margin(Y_T)` is the mean,
//! over the inputs, of the target of the true class minus the largest other target (negative
//! where the teacher is wrong). Both are measured on a stratified subset of the validation split,
//! which neither model trains on. The lowest score wins (ties to the lower temperature); a
//! temperature whose targets have no positive margin is never chosen.

use serde::{Deserialize, Serialize};

use super::seeds::student_init_seed;
use crate::backend::ComputeDevice;
use crate::complexity::ntk::{KernelKind, empirical_ntk};
use crate::complexity::study::{self, NamedTargets};
use crate::complexity::supervision::{FactoredKernel, SolverOptions};
use crate::config::ExperimentConfig;
use crate::data::prepare::PreparedData;
use crate::distill::train::predict_logits;
use crate::error::{Error, Result};
use crate::models::Network;

/// Inputs measured when choosing (fewer when the validation split is smaller).
pub const SUBSET: usize = 500;

/// One candidate temperature's measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperatureScore {
    /// The temperature.
    pub temperature: f64,
    /// Adjusted supervision complexity of the KD targets at this temperature.
    pub adjusted_complexity: f64,
    /// Mean margin of the targets on the true class.
    pub margin: f64,
    /// `adjusted_complexity / margin` (`null`, read as infinite, when the margin is not
    /// positive).
    #[serde(deserialize_with = "crate::nullable::number")]
    pub score: f64,
}

/// What `"auto"` measured for one seed and what it chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperatureChoice {
    /// The experiment seed.
    pub seed: u64,
    /// Inputs measured.
    pub inputs: usize,
    /// The teacher's accuracy on them.
    pub teacher_accuracy: f64,
    /// Weight α of the KD targets' one-hot part.
    pub alpha: f64,
    /// Every candidate, in the configured order.
    pub candidates: Vec<TemperatureScore>,
    /// The chosen temperature.
    pub chosen: f64,
}

/// Measures every temperature of `distill.auto_temperatures` for the experiment of `seed` and
/// chooses one by the rule of this module.
pub fn choose_temperature(
    config: &ExperimentConfig,
    data: &PreparedData,
    teacher: &Network,
    seed: u64,
    device: &ComputeDevice,
) -> Result<TemperatureChoice> {
    choose_temperature_with(config, data, seed, device, &|measured, _| {
        predict_logits(teacher, measured, device)
    })
}

/// [`choose_temperature`] for any teacher: `teacher_logits(measured, rows)` gives its logits
/// on the measured samples, which are rows `rows` of the validation split (of the training
/// split when there is no validation split).
pub(super) fn choose_temperature_with(
    config: &ExperimentConfig,
    data: &PreparedData,
    seed: u64,
    device: &ComputeDevice,
    teacher_logits: &dyn Fn(&crate::data::Dataset, &[usize]) -> Vec<f32>,
) -> Result<TemperatureChoice> {
    let invalid = |e: crate::complexity::ComplexityError| {
        Error::Invalid(format!("distill.temperature = \"auto\": {e}"))
    };
    let split = if data.validation.is_empty() {
        &data.train
    } else {
        &data.validation
    };
    let classes = split.num_classes;
    let size = SUBSET.min(split.len());
    let subset = study::stratified_subset(&split.labels, classes, size, study::subset_seed(seed))
        .map_err(invalid)?;
    let width = split.shape.len();
    let inputs: Vec<f32> = subset
        .iter()
        .flat_map(|&i| split.sample(i).iter().copied())
        .collect();
    let labels: Vec<u32> = subset.iter().map(|&i| split.labels[i]).collect();
    let measured = crate::data::Dataset {
        name: format!("{}/auto-temperature", split.name),
        features: inputs.clone(),
        labels: labels.clone(),
        shape: split.shape,
        num_classes: classes,
    };
    let logits = teacher_logits(&measured, &subset);
    let student = Network::new(
        &config.student.model,
        split.shape,
        classes,
        student_init_seed(seed),
        &device.inference(),
    )
    .map_err(Error::Invalid)?;
    debug_assert_eq!(inputs.len(), size * width);
    let kernel = empirical_ntk(&student, &inputs, KernelKind::Trace).map_err(invalid)?;
    let factored = FactoredKernel::new(
        &kernel,
        &SolverOptions {
            exact_condition_limit: 0,
            ..SolverOptions::default()
        },
    )
    .map_err(invalid)?;
    let alpha = config.distill.alpha;
    let mut candidates = Vec::new();
    for &temperature in &config.distill.auto_temperatures {
        let targets = NamedTargets::kd_mixture(&labels, &logits, classes, alpha, temperature)
            .map_err(invalid)?;
        let adjusted = factored
            .measure(&targets.targets)
            .map_err(invalid)?
            .adjusted;
        let margin = true_class_margin(targets.targets.values(), &labels, classes);
        candidates.push(TemperatureScore {
            temperature,
            adjusted_complexity: adjusted,
            margin,
            score: if margin > 0.0 {
                adjusted / margin
            } else {
                f64::INFINITY
            },
        });
    }
    let chosen = candidates
        .iter()
        .filter(|c| c.score.is_finite())
        .min_by(|a, b| {
            a.score
                .total_cmp(&b.score)
                .then(a.temperature.total_cmp(&b.temperature))
        })
        .map(|c| c.temperature)
        .ok_or_else(|| {
            Error::Invalid(
                "distill.temperature = \"auto\": at no candidate temperature do the teacher's targets favour the true class on average; give a number".into(),
            )
        })?;
    let teacher_accuracy = crate::eval::metrics::accuracy(&logits, classes, &labels);
    Ok(TemperatureChoice {
        seed,
        inputs: size,
        teacher_accuracy,
        alpha,
        candidates,
        chosen,
    })
}

/// Mean over rows of the true class's target minus the largest other target.
fn true_class_margin(values: &[f64], labels: &[u32], classes: usize) -> f64 {
    let total: f64 = values
        .chunks(classes)
        .zip(labels)
        .map(|(row, &label)| {
            let own = row[label as usize];
            let other = row
                .iter()
                .enumerate()
                .filter(|&(c, _)| c != label as usize)
                .map(|(_, &v)| v)
                .fold(f64::NEG_INFINITY, f64::max);
            own - other
        })
        .sum();
    total / labels.len().max(1) as f64
}

/// The choice as a table: one line per candidate, the chosen one marked.
pub fn choice_table(choice: &TemperatureChoice) -> String {
    let mut lines = vec![
        format!(
            "seed {}: {} validation inputs, teacher accuracy {:.2}%, KD targets α·one-hot + (1 − α)·softmax(z/T) with α = {}",
            choice.seed,
            choice.inputs,
            choice.teacher_accuracy * 100.0,
            choice.alpha
        ),
        format!(
            "{:>6}  {:>12}  {:>8}  {:>10}",
            "T", "complexity", "margin", "score"
        ),
    ];
    for c in &choice.candidates {
        lines.push(format!(
            "{:>6}  {:>12.4}  {:>8.4}  {:>10.4}{}",
            study::format_number(c.temperature),
            c.adjusted_complexity,
            c.margin,
            c.score,
            if c.temperature == choice.chosen {
                "  ← chosen"
            } else {
                ""
            }
        ));
    }
    lines.join("\n") + "\n"
}

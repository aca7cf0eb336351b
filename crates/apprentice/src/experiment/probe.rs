//! Supervision complexity tracked while students train (`[complexity]`): a fixed, stratified
//! subset of training inputs and the targets measured on it, and how the measurements are
//! written into `results.json`.

use std::collections::BTreeMap;

use crate::complexity::ntk::KernelKind;
use crate::complexity::study::{self, NamedTargets};
use crate::complexity::supervision::SolverOptions;
use crate::config::ExperimentConfig;
use crate::data::prepare::PreparedData;
use crate::distill::record::StudentRecord;
use crate::error::{Error, Result};
use crate::models::Network;
use crate::task::ModelSeeds;

/// The fixed subset and targets every student of a seed is probed with.
pub(super) struct ProbeSet {
    inputs: Vec<f32>,
    pub(super) targets: Vec<NamedTargets>,
    pub(super) every: usize,
}

impl ProbeSet {
    /// The probe of `seed`: `None` unless `[complexity]` asks for one. `temperature` is the
    /// seed's distillation temperature, whose teacher targets are always among those probed.
    pub(super) fn new(
        config: &ExperimentConfig,
        data: &PreparedData,
        seed: u64,
        teacher_train_logits: &[f32],
        temperature: f64,
    ) -> Result<Option<Self>> {
        let tracking = &config.complexity;
        if tracking.every_epochs == 0 {
            return Ok(None);
        }
        let train = &data.train;
        let classes = train.num_classes;
        let invalid =
            |e: crate::complexity::ComplexityError| Error::Invalid(format!("complexity: {e}"));
        let subset = study::stratified_subset(
            &train.labels,
            classes,
            tracking.subset.min(train.len()),
            study::subset_seed(seed),
        )
        .map_err(invalid)?;
        let width = train.shape.len();
        let inputs = rows_of(&train.features, &subset, width);
        let labels: Vec<u32> = subset.iter().map(|&i| train.labels[i]).collect();
        let logits = rows_of(teacher_train_logits, &subset, classes);
        let mut temperatures = tracking.temperatures.clone();
        if !temperatures.contains(&temperature) {
            temperatures.push(temperature);
        }
        let targets = study::standard_targets(
            &labels,
            classes,
            study::random_label_seed(seed),
            Some(&logits),
            &temperatures,
        )
        .map_err(invalid)?;
        Ok(Some(Self {
            inputs,
            targets,
            every: tracking.every_epochs,
        }))
    }

    /// Adjusted complexity of every target with `network`'s trace kernel.
    pub(super) fn measure(&self, network: &Network) -> std::result::Result<Vec<f64>, String> {
        let options = SolverOptions {
            // The Cholesky bound is enough during training; exact eigenvalues cost more than
            // the kernel.
            exact_condition_limit: 0,
            ..SolverOptions::default()
        };
        study::measure_targets(
            network,
            &self.inputs,
            &self.targets,
            KernelKind::Trace,
            &options,
        )
        .map(|measured| measured.iter().map(|m| m.adjusted).collect())
        .map_err(|e| format!("supervision complexity: {e}"))
    }
}

/// The tracked complexity as extra keys of the curves of `results.json`, by (model index,
/// curve index): the optional `supervision_complexity` list (the adjusted complexity of the
/// model's own targets after each epoch, `null` where not measured) and
/// `supervision_complexity_targets` (every measured target, with the epochs of the
/// measurements, the initial weights included).
pub(super) fn complexity_sections(
    models: &[ModelSeeds<StudentRecord>],
) -> BTreeMap<(usize, usize), serde_json::Map<String, serde_json::Value>> {
    use serde_json::{Value, json};
    let mut sections = BTreeMap::new();
    for (model_index, model) in models.iter().enumerate() {
        for (curve_index, record) in model.records().enumerate() {
            let Some(track) = &record.complexity else {
                continue;
            };
            let number = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
            let own = track.targets.iter().position(|t| t == &track.own);
            let mut per_epoch = vec![Value::Null; record.epochs_run];
            for (epoch, values) in track.epochs.iter().zip(&track.values) {
                if let (Some(slot), Some(own)) = (epoch.checked_sub(1), own)
                    && slot < per_epoch.len()
                {
                    per_epoch[slot] = number(values[own]);
                }
            }
            let mut targets = serde_json::Map::new();
            for (index, target) in track.targets.iter().enumerate() {
                targets.insert(
                    target.clone(),
                    Value::Array(track.values.iter().map(|v| number(v[index])).collect()),
                );
            }
            let mut keys = serde_json::Map::new();
            keys.insert(
                crate::report::extensions::COMPLEXITY_KEY.to_string(),
                Value::Array(per_epoch),
            );
            keys.insert(
                "supervision_complexity_targets".to_string(),
                json!({
                    "own": track.own,
                    "epochs": track.epochs,
                    "adjusted": targets,
                }),
            );
            sections.insert((model_index, curve_index), keys);
        }
    }
    sections
}

/// Rows `subset` of row-major `values` with `width` values per row.
pub(super) fn rows_of(values: &[f32], subset: &[usize], width: usize) -> Vec<f32> {
    subset
        .iter()
        .flat_map(|&i| values[i * width..(i + 1) * width].iter().copied())
        .collect()
}

//! `complexity.json`: what one study measured, on which student, teacher and inputs, and the
//! table printed from it.
//!
//! The document is versioned ([`SCHEMA_VERSION`]); a reader rejects a newer version rather than
//! misreading it. Every number is stored as computed (`f64`); an infinite condition number is
//! written as `null`.

use serde::{Deserialize, Serialize};

use super::TargetComplexity;
use crate::complexity::{ConditionMethod, KernelKind};

/// Version of the `complexity.json` layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Where a set of targets comes from, so that plots can group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetSource {
    /// One-hot labels.
    Labels,
    /// Seeded random one-hot labels.
    Random,
    /// The teacher's predictions softened at a temperature.
    Teacher,
    /// A teacher checkpoint along its training, at temperature 1.
    TeacherCheckpoint,
    /// The targets of a distillation method (e.g. KD's mixture of labels and predictions).
    Method,
    /// The uniform distribution `1/C` on every example: where softened predictions end as the
    /// temperature grows.
    Uniform,
}

/// One measured set of targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRow {
    /// Where the targets come from.
    pub source: TargetSource,
    /// Temperature of softened predictions (teacher and method targets).
    pub temperature: Option<f64>,
    /// The checkpoint file, for teacher checkpoints.
    pub checkpoint: Option<String>,
    /// Training epoch of a teacher checkpoint, when its file name says it (`epoch-0007`).
    pub epoch: Option<usize>,
    /// Share of the subset whose largest target is the label (the source model's accuracy);
    /// absent for targets without a largest value (uniform).
    pub accuracy: Option<f64>,
    /// The measures.
    #[serde(flatten)]
    pub measured: TargetComplexity,
}

/// The data the subset was drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyData {
    /// Name of the training split (e.g. `digits/train`).
    pub name: String,
    /// Number of classes.
    pub classes: usize,
    /// Samples in the training split.
    pub train_samples: usize,
    /// The experiment seed that made the split.
    pub seed: u64,
    /// Size of the measured subset.
    pub subset_size: usize,
    /// Seed of the subset draw.
    pub subset_seed: u64,
    /// Indices of the subset within the training split, ascending.
    pub subset_indices: Vec<usize>,
}

/// A model taking part in the study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyModel {
    /// Where its weights come from: a checkpoint path, or how they were made.
    pub source: String,
    /// Short description, e.g. `mlp 64-32-10`.
    pub architecture: String,
    /// Trainable values.
    pub parameters: usize,
    /// Accuracy on the measured subset (the teacher's; absent for a student at initialisation).
    pub subset_accuracy: Option<f64>,
}

/// The student's kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyKernel {
    /// Trace or block kernel.
    pub kind: KernelKind,
    /// Examples `n`.
    pub examples: usize,
    /// Network outputs `C`.
    pub outputs: usize,
    /// `tr K`.
    pub trace: f64,
    /// Ridge `λ`.
    pub ridge: f64,
    /// `λ` relative to the mean diagonal.
    pub relative_ridge: f64,
    /// Condition number of `K + λI` (written as `null` when infinite, read back as NaN).
    #[serde(deserialize_with = "crate::nullable::number")]
    pub condition_number: f64,
    /// Exact, or the Cholesky lower bound.
    pub condition_method: ConditionMethod,
    /// Seconds to compute the kernel.
    pub seconds: f64,
}

/// The whole `complexity.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Experiment name of the config.
    pub experiment: String,
    /// The data and the subset.
    pub data: StudyData,
    /// The student whose kernel is measured.
    pub student: StudyModel,
    /// The teacher, when any target needed one.
    pub teacher: Option<StudyModel>,
    /// The kernel.
    pub kernel: StudyKernel,
    /// Every measured set of targets, in the order asked for.
    pub targets: Vec<TargetRow>,
}

impl StudyReport {
    /// The document as pretty JSON.
    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string_pretty(self).map_err(|e| e.to_string())
    }

    /// Reads a document, rejecting a newer schema; `source` names it in errors.
    pub fn from_json(text: &str, source: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{source}: not JSON: {e}"))?;
        let version = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| format!("{source}: no schema_version"))?;
        if version > u64::from(SCHEMA_VERSION) {
            return Err(format!(
                "{source}: schema_version {version} is newer than this apprentice reads ({SCHEMA_VERSION})"
            ));
        }
        serde_json::from_value(value).map_err(|e| format!("{source}: {e}"))
    }

    /// The table printed by `apprentice complexity`: one row per set of targets.
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "targets".to_owned(),
            "complexity".to_owned(),
            "adjusted".to_owned(),
            "accuracy %".to_owned(),
            "ridge".to_owned(),
            "condition".to_owned(),
        ]];
        for row in &self.targets {
            let m = &row.measured;
            let condition = match m.condition_method {
                ConditionMethod::Eigenvalues => format!("{:.3e}", m.condition_number),
                ConditionMethod::CholeskyBound => format!("≥ {:.3e}", m.condition_number),
            };
            rows.push([
                m.name.clone(),
                format!("{:.4e}", m.complexity),
                format!("{:.4}", m.adjusted),
                row.accuracy
                    .map_or_else(|| "—".to_owned(), |a| format!("{:.2}", a * 100.0)),
                format!("{:.2e}", m.ridge),
                condition,
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let k = &self.kernel;
        let mut text = format!(
            "{}: {} ({} classes), {} of {} training inputs (seed {})\n\
             student {} ({}, {} parameters); {} kernel, tr K = {:.4e}, relative ridge {:e}, {:.2} s\n",
            self.experiment,
            self.data.name,
            self.data.classes,
            self.data.subset_size,
            self.data.train_samples,
            self.data.seed,
            self.student.source,
            self.student.architecture,
            self.student.parameters,
            match k.kind {
                KernelKind::Trace => "trace",
                KernelKind::Block => "block",
            },
            k.trace,
            k.relative_ridge,
            k.seconds,
        );
        if let Some(teacher) = &self.teacher {
            text.push_str(&format!(
                "teacher {} ({}, {} parameters)\n",
                teacher.source, teacher.architecture, teacher.parameters
            ));
        }
        text.push('\n');
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, &width))| {
                    let pad = width - cell.chars().count();
                    if c == 0 {
                        format!("{cell}{}", " ".repeat(pad))
                    } else {
                        format!("{}{cell}", " ".repeat(pad))
                    }
                })
                .collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
        text.push_str(
            "\n(lower is easier to learn; adjusted = sqrt(complexity · tr K)/n; accuracy: how often the largest target is the label)\n",
        );
        text
    }
}

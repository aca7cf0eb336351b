//! Online distillation (Harutyunyan et al., "Supervision Complexity and its Role in Knowledge
//! Distillation", ICLR 2023): the student learns, epoch by epoch, from the teacher's checkpoints
//! along the teacher's own training, at the same fraction of training, so its targets start
//! simple and grow harder.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::distill::loss::KdWeights;
use crate::distill::method::{
    DistilJob, HyperParameter, Method, MethodInfo, MethodSettings, SchemeError, Shared, Students,
    TeacherSource, ValidationContext,
};
use crate::distill::record::Row;
use crate::distill::state::sha256_hex;
use crate::distill::train::teacher_epoch_for;

/// Online distillation (Harutyunyan et al., 2023): the student learns, epoch by epoch, from the
/// teacher's checkpoints along the teacher's own training, at the same fraction of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineSettings {
    /// Temperature of the teacher's probabilities (1 in the paper).
    #[serde(default = "default_online_temperature")]
    pub temperature: f64,
    /// Weight of the hard-label cross-entropy (0: the teacher's probabilities only).
    #[serde(default)]
    pub alpha: f64,
    /// The teacher keeps a checkpoint every this many epochs (and its last).
    #[serde(default = "default_online_every")]
    pub every_epochs: usize,
}

fn default_online_temperature() -> f64 {
    1.0
}
fn default_online_every() -> usize {
    1
}

impl Default for OnlineSettings {
    fn default() -> Self {
        Self {
            temperature: default_online_temperature(),
            alpha: 0.0,
            every_epochs: default_online_every(),
        }
    }
}

/// Online distillation from the teacher's checkpoints along its training.
pub const INFO: MethodInfo = MethodInfo {
    name: "online",
    title: "Online distillation (teacher checkpoints of rising difficulty)",
    paper: "Harutyunyan, Rawat, Menon, Kim, Kumar: Supervision Complexity and its Role in Knowledge Distillation, ICLR 2023",
    inputs: "the teacher's checkpoints along its training (kept by the run, or teacher.checkpoints for a loaded teacher)",
    conventions: "student epoch e learns from the teacher checkpoint at the same fraction of training, rounded up to a kept one; KD loss at online.temperature with label weight online.alpha",
    hyper_parameters: &[
        HyperParameter {
            key: "online.temperature",
            default: 1.0,
            meaning: "temperature of the teacher's probabilities",
        },
        HyperParameter {
            key: "online.alpha",
            default: 0.0,
            meaning: "weight of the hard-label cross-entropy",
        },
        HyperParameter {
            key: "online.every_epochs",
            default: 1.0,
            meaning: "the teacher keeps a checkpoint every this many epochs (and its last)",
        },
    ],
};

impl MethodSettings for OnlineSettings {
    const INFO: &'static MethodInfo = &INFO;

    fn validate(&self, context: &ValidationContext<'_>) -> Result<(), String> {
        let key = context.key;
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "distill.online.temperature: expected a positive number, found {}",
                self.temperature
            ));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(format!(
                "distill.online.alpha: expected a value in [0, 1], found {}",
                self.alpha
            ));
        }
        if self.every_epochs == 0 {
            return Err("distill.online.every_epochs: expected at least 1".into());
        }
        if context.augmented {
            return Err(format!(
                "{key}: online distillation caches each teacher checkpoint's predictions, which augmentation would make inexact; turn augmentation off for it"
            ));
        }
        if context.teacher_onnx {
            return Err(format!(
                "{key}: online distillation learns from the teacher's checkpoints along its training, which an ONNX teacher does not have"
            ));
        }
        if context.teacher_loaded && !context.teacher_checkpoints {
            return Err(format!(
                "{key}: online distillation from a loaded teacher needs teacher.checkpoints, the folder of its checkpoints along training"
            ));
        }
        Ok(())
    }

    fn build(&self, _shared: &Shared) -> Box<dyn Method> {
        Box::new(Online(self.clone()))
    }

    fn teacher_snapshots_every(&self) -> Option<usize> {
        Some(self.every_epochs)
    }
}

/// Online distillation of one seed.
#[derive(Debug)]
struct Online(OnlineSettings);

impl Method for Online {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run(&self, students: &mut dyn Students) -> Result<Vec<Row>, SchemeError> {
        let (dir, saved) = students.teacher_checkpoints()?;
        let teacher_epochs = saved.last().map(|(epoch, _)| *epoch).unwrap_or(0);
        let student_epochs = students.student_epochs();
        // Each checkpoint's predictions, computed once, and the one each epoch uses.
        let mut predictions: Vec<(usize, Vec<f32>)> = Vec::new();
        let mut schedule = Vec::with_capacity(student_epochs);
        let mut digest = String::new();
        for epoch in 1..=student_epochs {
            let wanted =
                teacher_epoch_for(epoch, student_epochs, teacher_epochs, self.0.every_epochs);
            let Some((found, path)) = saved.iter().find(|(e, _)| *e >= wanted) else {
                return Err(SchemeError::Method {
                    method: INFO.name,
                    message: format!(
                        "no teacher checkpoint for epoch {wanted} or later in {}",
                        dir.display()
                    ),
                });
            };
            if predictions.last().is_none_or(|(e, _)| e != found) {
                let network = students.load_teacher_checkpoint(path)?;
                digest.push_str(&students.digest(&network)?);
                let logits = students
                    .logits_of(&network)
                    .ok_or_else(|| SchemeError::Method {
                        method: INFO.name,
                        message: "needs teacher logits computed once (no augmentation)".into(),
                    })?;
                predictions.push((*found, logits));
            }
            schedule.push(predictions.len() - 1);
        }
        let per_epoch: Vec<&[f32]> = schedule
            .iter()
            .map(|&i| predictions[i].1.as_slice())
            .collect();
        let kd = KdWeights {
            temperature: self.0.temperature,
            alpha: self.0.alpha,
        };
        let (_, row) = students.distil(DistilJob {
            name: students.name(INFO.name),
            method: INFO.name,
            objective: Arc::new(kd),
            teacher: TeacherSource::PerEpoch {
                per_epoch: &per_epoch,
                digest: sha256_hex(digest.as_bytes()),
            },
        })?;
        Ok(vec![row])
    }
}

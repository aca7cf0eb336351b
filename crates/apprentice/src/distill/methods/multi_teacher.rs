//! Multi-teacher distillation: the student learns, by KD, the weighted mean of several teachers'
//! softened predictions (Hinton et al., 2015, with an ensemble teacher; You et al., "Learning from
//! Multiple Teacher Networks", KDD 2017).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::distill::loss::KdWeights;
use crate::distill::method::{
    DistilJob, HyperParameter, Method, MethodInfo, MethodSettings, SchemeError, Shared, Students,
    TeacherSource, ValidationContext,
};
use crate::distill::record::Row;
use crate::distill::settings::ModelConfig;
use crate::distill::state::sha256_hex;

/// Several teachers: the student learns the weighted mean of their softened predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiTeacherSettings {
    /// Teachers: the run's teacher, plus this many minus one more of the same architecture
    /// and schedule from other seeds. Ignored when `extra` is given.
    #[serde(default = "default_teachers")]
    pub teachers: usize,
    /// Extra teachers of their own architectures and schedules (`[[distill.multi_teacher.extra]]`),
    /// trained on every label beside the run's teacher: an ensemble of different models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<ModelConfig>,
    /// Weight of each teacher's probabilities (normalised to sum to 1); default equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
}

fn default_teachers() -> usize {
    3
}

impl MultiTeacherSettings {
    /// Teachers in the ensemble, the run's own included.
    pub fn count(&self) -> usize {
        if self.extra.is_empty() {
            self.teachers
        } else {
            1 + self.extra.len()
        }
    }
}

impl Default for MultiTeacherSettings {
    fn default() -> Self {
        Self {
            teachers: default_teachers(),
            extra: Vec::new(),
            weights: None,
        }
    }
}

/// Multi-teacher distillation.
pub const INFO: MethodInfo = MethodInfo {
    name: "multi-teacher",
    title: "Multi-teacher distillation (averaged soft targets)",
    paper: "Hinton, Vinyals, Dean 2015 (ensemble teachers); You, Xu, Xu, Tao: Learning from Multiple Teacher Networks, KDD 2017",
    inputs: "the run's teacher plus extra teachers of its architecture trained from other seeds",
    conventions: "KD against the weighted mean of the teachers' probabilities at temperature T (as logits T·log Σ w_k softmax(t_k/T))",
    hyper_parameters: &[HyperParameter {
        key: "multi_teacher.teachers",
        default: 3.0,
        meaning: "teachers, the run's own included; multi_teacher.weights optional",
    }],
};

impl MethodSettings for MultiTeacherSettings {
    const INFO: &'static MethodInfo = &INFO;

    fn validate(&self, context: &ValidationContext<'_>) -> Result<(), String> {
        let key = context.key;
        for (index, extra) in self.extra.iter().enumerate() {
            extra.validate(&format!("distill.multi_teacher.extra[{index}]"))?;
        }
        if self.count() < 2 {
            return Err(format!(
                "distill.multi_teacher.teachers: expected at least 2, found {}",
                self.teachers
            ));
        }
        if context.teacher_loaded {
            return Err(format!(
                "{key}: multi-teacher trains its extra teachers from teacher.model, so it needs a trained teacher, not a loaded one (teacher.checkpoint or teacher.onnx)"
            ));
        }
        if context.augmented {
            return Err(format!(
                "{key}: multi-teacher averages cached teacher predictions, which augmentation would make inexact; turn augmentation off for it"
            ));
        }
        if let Some(weights) = &self.weights
            && (weights.len() != self.count()
                || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
                || weights.iter().sum::<f64>() <= 0.0)
        {
            return Err(format!(
                "distill.multi_teacher.weights: expected {} non-negative numbers (one per teacher, the run's own first), not all zero, found {weights:?}",
                self.count()
            ));
        }
        Ok(())
    }

    fn build(&self, shared: &Shared) -> Box<dyn Method> {
        Box::new(MultiTeacher {
            settings: self.clone(),
            kd: shared.kd(),
        })
    }
}

/// Multi-teacher distillation of one seed.
#[derive(Debug)]
struct MultiTeacher {
    settings: MultiTeacherSettings,
    kd: KdWeights,
}

impl Method for MultiTeacher {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run(&self, students: &mut dyn Students) -> Result<Vec<Row>, SchemeError> {
        let settings = &self.settings;
        let teachers = students.extra_teachers(settings.count() - 1, &settings.extra)?;
        let missing = || SchemeError::Method {
            method: INFO.name,
            message: "needs teacher logits computed once (no augmentation)".into(),
        };
        let mut member_logits = vec![students.teacher_logits().ok_or_else(missing)?];
        let mut digest = students.teacher_digest();
        for (_, extra) in &teachers {
            member_logits.push(students.logits_of(extra).ok_or_else(missing)?);
            digest.push_str(&students.digest(extra)?);
        }
        let members: Vec<&[f32]> = member_logits.iter().map(Vec::as_slice).collect();
        let weights = settings
            .weights
            .clone()
            .unwrap_or_else(|| vec![1.0; members.len()]);
        let mixed = mixture_logits(&members, &weights, students.classes(), self.kd.temperature);
        let (_, row) = students.distil(DistilJob {
            name: students.name(INFO.name),
            method: INFO.name,
            objective: Arc::new(self.kd),
            teacher: TeacherSource::Logits {
                logits: &mixed,
                digest: sha256_hex(digest.as_bytes()),
            },
        })?;
        Ok(vec![row])
    }
}

/// Logits whose softmax at `temperature` is the weighted mean of the given logits' softmaxes at
/// `temperature`: `T·log Σ_k w_k softmax(t_k/T)`. KD against them is KD against the teachers'
/// averaged softened predictions.
pub fn mixture_logits(
    members: &[&[f32]],
    weights: &[f64],
    classes: usize,
    temperature: f64,
) -> Vec<f32> {
    let total: f64 = weights.iter().sum();
    let rows = members.first().map_or(0, |m| m.len() / classes.max(1));
    let mut out = Vec::with_capacity(rows * classes);
    let mut mixed = vec![0.0f64; classes];
    for row in 0..rows {
        mixed.iter_mut().for_each(|v| *v = 0.0);
        for (member, &weight) in members.iter().zip(weights) {
            let logits = &member[row * classes..(row + 1) * classes];
            let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let exps: Vec<f64> = logits
                .iter()
                .map(|&l| ((l as f64 - max) / temperature).exp())
                .collect();
            let sum: f64 = exps.iter().sum();
            for (m, e) in mixed.iter_mut().zip(exps) {
                *m += weight / total * e / sum;
            }
        }
        out.extend(
            mixed
                .iter()
                .map(|&p| (temperature * p.max(f64::MIN_POSITIVE).ln()) as f32),
        );
    }
    out
}

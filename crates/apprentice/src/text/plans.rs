//! The models of a text run, in order (the teacher, then each student architecture's scratch
//! baseline before its distilled students), and how their per-seed records become the rows
//! of `results.json`.

use super::config::{StudentKind, TextExperimentConfig};
use crate::distill::record::StudentRecord;
use crate::report::results::{ModelResult, Role, Summary, TestSummary};

/// How one student is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Cross-entropy with the labels.
    Labels,
    /// Hinton's KD from the teacher's logits.
    Kd,
    /// Cosine regression of the teacher's sentence embeddings, no labels.
    Embedding,
}

/// One student of the run.
#[derive(Debug, Clone)]
pub struct StudentPlan {
    /// Its name in the results (`cnn-kd`).
    pub name: &'static str,
    /// Its architecture.
    pub architecture: StudentKind,
    /// Scratch baseline or distilled.
    pub role: Role,
    /// The method named in the results.
    pub method: &'static str,
    /// Whether its token vectors start from the teacher's (the static student).
    pub from_teacher_tokens: bool,
    /// What it learns from.
    pub objective: Objective,
}

impl StudentPlan {
    /// Whether it is a BERT (shallow or narrow) rather than a small student.
    pub fn is_transformer(&self) -> bool {
        matches!(
            self.architecture,
            StudentKind::Shallow | StudentKind::Narrow
        )
    }
}

/// The students a config asks for, each architecture's scratch baseline before its distilled
/// students.
pub fn student_plans(config: &TextExperimentConfig) -> Vec<StudentPlan> {
    use Objective::{Embedding, Kd, Labels};
    let kinds = &config.students.kinds;
    let plan = |name, architecture, role, method, from_teacher_tokens, objective| StudentPlan {
        name,
        architecture,
        role,
        method,
        from_teacher_tokens,
        objective,
    };
    let (scratch, distilled) = (Role::Scratch, Role::Distilled);
    let mut plans = Vec::new();
    if kinds.contains(&StudentKind::Shallow) {
        plans.push(plan(
            "shallow",
            StudentKind::Shallow,
            scratch,
            "ce",
            false,
            Labels,
        ));
        plans.push(plan(
            "shallow-kd",
            StudentKind::Shallow,
            distilled,
            "kd",
            false,
            Kd,
        ));
    }
    if kinds.contains(&StudentKind::Narrow) {
        plans.push(plan(
            "narrow",
            StudentKind::Narrow,
            scratch,
            "ce",
            false,
            Labels,
        ));
        plans.push(plan(
            "narrow-kd",
            StudentKind::Narrow,
            distilled,
            "kd",
            false,
            Kd,
        ));
    }
    if kinds.contains(&StudentKind::Bag) {
        plans.push(plan("bag", StudentKind::Bag, scratch, "ce", false, Labels));
        plans.push(plan("bag-kd", StudentKind::Bag, distilled, "kd", false, Kd));
    }
    if kinds.contains(&StudentKind::Static) {
        plans.push(plan(
            "static-kd",
            StudentKind::Bag,
            distilled,
            "kd",
            true,
            Kd,
        ));
    }
    if config.embedding_student() {
        plans.push(plan(
            "bag-embed",
            StudentKind::Bag,
            distilled,
            "embedding-cosine",
            false,
            Embedding,
        ));
    }
    if kinds.contains(&StudentKind::Cnn) {
        plans.push(plan("cnn", StudentKind::Cnn, scratch, "ce", false, Labels));
        plans.push(plan("cnn-kd", StudentKind::Cnn, distilled, "kd", false, Kd));
    }
    plans
}

/// The scratch model each distilled model of a text run is compared with: the scratch
/// student of the same architecture (`bag` for `bag-kd`, `static-kd` and `bag-embed`).
pub fn scratch_baseline(name: &str) -> Option<&'static str> {
    match name {
        "bag-kd" | "static-kd" | "bag-embed" => Some("bag"),
        "cnn-kd" => Some("cnn"),
        "shallow-kd" => Some("shallow"),
        "narrow-kd" => Some("narrow"),
        _ => None,
    }
}

/// One model's records over the seeds, in seed order.
pub struct ModelRecords {
    role: Role,
    name: String,
    method: String,
    records: Vec<StudentRecord>,
}

impl ModelRecords {
    /// No seeds yet.
    pub fn new(role: Role, name: &str, method: &str) -> Self {
        Self {
            role,
            name: name.to_string(),
            method: method.to_string(),
            records: Vec::new(),
        }
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds the record of the next seed.
    pub fn add(&mut self, record: StudentRecord) {
        self.records.push(record);
    }

    /// The record of the first seed.
    pub fn first(&self) -> Option<&StudentRecord> {
        self.records.first()
    }

    /// The row of `results.json`: every measure as mean ± std over the seeds.
    pub fn into_result(self) -> ModelResult {
        let values = |f: &dyn Fn(&StudentRecord) -> Option<f64>| -> Vec<f64> {
            self.records.iter().filter_map(f).collect()
        };
        let optional =
            |values: Vec<f64>| (!values.is_empty()).then(|| Summary::from_values(&values));
        let last = self.records.last();
        ModelResult {
            role: self.role,
            name: self.name.clone(),
            method: self.method.clone(),
            label_fraction: 1.0,
            transfer: (self.role == Role::Distilled).then(|| "all".to_string()),
            architecture: last.map(|r| r.architecture.clone()).unwrap_or_default(),
            params: last.map_or(0, |r| r.params),
            test: TestSummary {
                accuracy: Summary::from_values(&values(&|r| Some(r.metrics.accuracy))),
                nll: Summary::from_values(&values(&|r| Some(r.metrics.nll))),
                ece: Summary::from_values(&values(&|r| Some(r.metrics.ece))),
                agreement: optional(values(&|r| r.metrics.agreement)),
                kl_from_teacher: optional(values(&|r| r.metrics.kl_from_teacher)),
            },
            validation_accuracy: Summary::from_values(&values(&|r| Some(r.validation_accuracy))),
            train_time_s: Summary::from_values(&values(&|r| Some(r.wall_time_s))),
            epochs_run: Summary::from_values(&values(&|r| Some(r.epochs_run as f64))),
            curves: self.records.into_iter().map(|r| r.curve).collect(),
        }
    }
}

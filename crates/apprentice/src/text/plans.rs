//! The models of a text run, in order (the teacher, then each student architecture's scratch
//! baseline before its distilled students).

use super::config::{StudentKind, TextExperimentConfig};
use crate::distill::record::Role;

/// How one student is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Cross-entropy with the labels.
    Labels,
    /// Hinton's KD from the teacher's logits.
    Kd,
    /// Cosine regression of the teacher's sentence embeddings, no labels.
    Embedding,
    /// The inner-layer loss of `[[distill.layers]]` entry `index` with logit KD, summed or
    /// in two stages (transformer students only).
    KdLayers {
        /// The entry's position in `distill.layers`.
        index: usize,
    },
}

/// One student of the run.
#[derive(Debug, Clone)]
pub struct StudentPlan {
    /// Its name in the results (`cnn-kd`).
    pub name: String,
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
    let plan =
        |name: &str, architecture, role, method, from_teacher_tokens, objective| StudentPlan {
            name: name.to_string(),
            architecture,
            role,
            method,
            from_teacher_tokens,
            objective,
        };
    let (scratch, distilled) = (Role::Scratch, Role::Distilled);
    let mut plans = Vec::new();
    for kind in [StudentKind::Shallow, StudentKind::Narrow] {
        if !kinds.contains(&kind) {
            continue;
        }
        let (name, kd) = match kind {
            StudentKind::Shallow => ("shallow", "shallow-kd"),
            _ => ("narrow", "narrow-kd"),
        };
        plans.push(plan(name, kind, scratch, "ce", false, Labels));
        plans.push(plan(kd, kind, distilled, "kd", false, Kd));
        for (index, entry) in config.distill.layers.iter().enumerate() {
            if !entry.teaches(kind) {
                continue;
            }
            plans.push(plan(
                &entry.student_name(kind),
                kind,
                distilled,
                entry.method(),
                false,
                Objective::KdLayers { index },
            ));
        }
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
        _ if name.starts_with("shallow-") => Some("shallow"),
        _ if name.starts_with("narrow-") => Some("narrow"),
        _ => None,
    }
}

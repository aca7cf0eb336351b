//! Born-again networks (Furlanello et al., "Born-Again Neural Networks", ICML 2018): the teacher
//! of generation k is generation k − 1 of the student's own architecture, generation 0 being the
//! scratch student; each generation learns by KD, and the generations' ensemble is reported too.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::distill::loss::KdWeights;
use crate::distill::method::{
    DistilJob, HyperParameter, Method, MethodInfo, MethodSettings, SchemeError, Shared, Students,
    TeacherSource, ValidationContext,
};
use crate::distill::record::Row;

/// Born-again networks (Furlanello et al., 2018): the teacher of generation k is generation
/// k − 1 of the student's own architecture, generation 0 being the scratch student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BornAgainSettings {
    /// Generations distilled after the scratch student.
    #[serde(default = "default_generations")]
    pub generations: usize,
}

fn default_generations() -> usize {
    3
}

impl Default for BornAgainSettings {
    fn default() -> Self {
        Self {
            generations: default_generations(),
        }
    }
}

/// Born-again networks.
pub const INFO: MethodInfo = MethodInfo {
    name: "born-again",
    title: "Born-again networks (self-distillation over generations)",
    paper: "Furlanello, Lipton, Tschannen, Itti, Anandkumar: Born-Again Neural Networks, ICML 2018",
    inputs: "no separate teacher: generation k is taught by generation k − 1 of the student's own architecture, generation 0 being the scratch student",
    conventions: "each generation trains with KD (distill.temperature, distill.alpha) from the previous one's logits; the ensemble row averages the generations' probabilities",
    hyper_parameters: &[HyperParameter {
        key: "born_again.generations",
        default: 3.0,
        meaning: "generations distilled after the scratch student",
    }],
};

impl MethodSettings for BornAgainSettings {
    const INFO: &'static MethodInfo = &INFO;

    fn validate(&self, _context: &ValidationContext<'_>) -> Result<(), String> {
        if self.generations == 0 {
            return Err("distill.born_again.generations: expected at least 1".into());
        }
        Ok(())
    }

    fn build(&self, shared: &Shared) -> Box<dyn Method> {
        Box::new(BornAgain {
            generations: self.generations,
            kd: shared.kd(),
        })
    }
}

/// Born-again distillation of one seed.
#[derive(Debug)]
struct BornAgain {
    generations: usize,
    kd: KdWeights,
}

impl Method for BornAgain {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run(&self, students: &mut dyn Students) -> Result<Vec<Row>, SchemeError> {
        let mut previous = students.scratch();
        let mut test_logits = Vec::new();
        let mut rows = Vec::new();
        for generation in 1..=self.generations {
            let (model, row) = students.distil(DistilJob {
                name: students.name(&format!("born-again-{generation}")),
                method: INFO.name,
                objective: Arc::new(self.kd),
                teacher: TeacherSource::Network(&previous),
            })?;
            test_logits.push(students.test_logits(&model));
            rows.push(row);
            previous = model;
        }
        // The ensemble of the generations, as Furlanello et al. also report.
        let ensemble = students.ensemble_row(
            students.name("born-again-ensemble"),
            INFO.name,
            &rows,
            &test_logits,
        );
        rows.push(ensemble);
        Ok(rows)
    }
}

//! Deep mutual learning (Zhang et al., "Deep Mutual Learning", CVPR 2018): a cohort of students
//! trained together from scratch, each learning its labels and its peers' predictions; no
//! pretrained teacher. The cohort loss itself is part of the training loop.

use serde::{Deserialize, Serialize};

use crate::distill::method::{
    HyperParameter, Method, MethodInfo, MethodSettings, SchemeError, Shared, Students,
    ValidationContext,
};
use crate::distill::record::Row;

/// Deep mutual learning (Zhang et al., 2018): a cohort of students teach each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmlSettings {
    /// Students in the cohort (the first is reported).
    #[serde(default = "default_cohort")]
    pub students: usize,
    /// Temperature of the mutual KL terms.
    #[serde(default = "default_dml_temperature")]
    pub temperature: f64,
}

fn default_cohort() -> usize {
    2
}
fn default_dml_temperature() -> f64 {
    1.0
}

impl Default for DmlSettings {
    fn default() -> Self {
        Self {
            students: default_cohort(),
            temperature: default_dml_temperature(),
        }
    }
}

/// Deep mutual learning.
pub const INFO: MethodInfo = MethodInfo {
    name: "dml",
    title: "Deep mutual learning",
    paper: "Zhang, Xiang, Hospedales, Lu: Deep Mutual Learning, CVPR 2018",
    inputs: "a cohort of students trained together from scratch, no pretrained teacher",
    conventions: "each member minimises CE + mean over peers of T²·KL(p_peer ‖ p_self), peers detached, all members updated at every step (the paper alternates); the first member is reported",
    hyper_parameters: &[
        HyperParameter {
            key: "dml.students",
            default: 2.0,
            meaning: "students in the cohort",
        },
        HyperParameter {
            key: "dml.temperature",
            default: 1.0,
            meaning: "temperature of the mutual KL terms (the paper uses plain softmax)",
        },
    ],
};

impl MethodSettings for DmlSettings {
    const INFO: &'static MethodInfo = &INFO;

    fn validate(&self, _context: &ValidationContext<'_>) -> Result<(), String> {
        if self.students < 2 {
            return Err(format!(
                "distill.dml.students: expected at least 2 (a cohort), found {}",
                self.students
            ));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "distill.dml.temperature: expected a positive number, found {}",
                self.temperature
            ));
        }
        Ok(())
    }

    fn build(&self, _shared: &Shared) -> Box<dyn Method> {
        Box::new(Dml(self.clone()))
    }
}

/// Deep mutual learning of one seed.
#[derive(Debug)]
struct Dml(DmlSettings);

impl Method for Dml {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run(&self, students: &mut dyn Students) -> Result<Vec<Row>, SchemeError> {
        let name = students.name(INFO.name);
        let row = students.train_cohort(name, INFO.name, self.0.students, self.0.temperature)?;
        Ok(vec![row])
    }
}

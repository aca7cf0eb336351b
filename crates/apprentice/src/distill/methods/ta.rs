//! Teacher-assistant distillation (Mirzadeh et al., "Improved Knowledge Distillation via Teacher
//! Assistant", AAAI 2020): teacher → assistant → student, each step by KD, so that the student
//! learns from a model closer to its own size.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::distill::loss::KdWeights;
use crate::distill::method::{
    DistilJob, Method, MethodInfo, MethodSettings, SchemeError, Shared, Students, TeacherSource,
    ValidationContext,
};
use crate::distill::optim::OptimizerSpec;
use crate::distill::record::Row;
use crate::distill::settings::{ModelConfig, TrainConfig};
use crate::models::ModelSpec;

/// Teacher-assistant KD (Mirzadeh et al., 2020): teacher → assistant → student, each by KD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssistantConfig {
    /// The assistant's architecture, between the teacher's and the student's in size.
    pub model: ModelSpec,
    /// Its schedule (default: the student's).
    #[serde(default)]
    pub train: Option<TrainConfig>,
    /// Its optimiser (default: the student's).
    #[serde(default)]
    pub optimizer: Option<OptimizerSpec>,
}

/// The `[distill.assistant]` table: required when `ta` runs, absent otherwise.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AssistantSettings(pub Option<AssistantConfig>);

/// Teacher-assistant distillation.
pub const INFO: MethodInfo = MethodInfo {
    name: "ta",
    title: "Teacher-assistant knowledge distillation",
    paper: "Mirzadeh, Farajtabar, Li, Levine, Matsukawa, Ghasemzadeh: Improved Knowledge Distillation via Teacher Assistant, AAAI 2020",
    inputs: "an assistant architecture between teacher and student ([distill.assistant] model)",
    conventions: "the assistant learns from the teacher by KD on the student's schedule (unless distill.assistant.train says otherwise), then the student learns from the assistant by KD",
    hyper_parameters: &[],
};

impl MethodSettings for AssistantSettings {
    const INFO: &'static MethodInfo = &INFO;

    fn validate(&self, context: &ValidationContext<'_>) -> Result<(), String> {
        let Some(assistant) = &self.0 else {
            return Err(format!(
                "{}: ta needs a [distill.assistant] table with the assistant's model",
                context.key
            ));
        };
        assistant.model.validate("distill.assistant.model")?;
        if let Some(train) = &assistant.train {
            train.validate("distill.assistant.train")?;
        }
        if let Some(optimizer) = &assistant.optimizer {
            optimizer.validate("distill.assistant.optimizer")?;
        }
        Ok(())
    }

    fn build(&self, shared: &Shared) -> Box<dyn Method> {
        Box::new(TeacherAssistant {
            assistant: self.0.clone(),
            kd: shared.kd(),
        })
    }
}

/// Teacher-assistant distillation of one seed.
#[derive(Debug)]
struct TeacherAssistant {
    assistant: Option<AssistantConfig>,
    kd: KdWeights,
}

impl Method for TeacherAssistant {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run(&self, students: &mut dyn Students) -> Result<Vec<Row>, SchemeError> {
        let assistant = self.assistant.as_ref().ok_or_else(|| SchemeError::Method {
            method: INFO.name,
            message: "no [distill.assistant] table".into(),
        })?;
        // The assistant's schedule and optimiser default to the student's.
        let student = students.student_model();
        let model = ModelConfig {
            model: assistant.model.clone(),
            train: assistant.train.clone().unwrap_or(student.train),
            optimizer: assistant.optimizer.clone().unwrap_or(student.optimizer),
        };
        let objective = Arc::new(self.kd);
        let (assistant_model, assistant_row) =
            students.train_assistant(students.name("assistant"), &model, objective.clone())?;
        let (_, row) = students.distil(DistilJob {
            name: students.name(INFO.name),
            method: INFO.name,
            objective,
            teacher: TeacherSource::Network(&assistant_model),
        })?;
        Ok(vec![assistant_row, row])
    }
}

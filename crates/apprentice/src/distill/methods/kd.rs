//! Hinton's knowledge distillation (Hinton, Vinyals, Dean, "Distilling the Knowledge in a
//! Neural Network", 2015): the loss itself is [`crate::distill::loss::kd_loss`], shared with
//! the schemes built on it; this module makes it a method. Its settings are the run-wide
//! `distill.temperature` and `distill.alpha`, so its own table `[distill.kd]` is empty.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::distill::method::{
    HyperParameter, LogitMethod, Method, MethodInfo, MethodSettings, Shared, ValidationContext,
};

/// KD's own settings: none beyond `distill.temperature` and `distill.alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdSettings {}

/// Hinton et al.'s KD in the method listing (`apprentice methods`).
pub const INFO: MethodInfo = MethodInfo {
    name: "kd",
    title: "Knowledge distillation",
    paper: "Hinton, Vinyals, Dean: Distilling the Knowledge in a Neural Network (2015)",
    inputs: "student and teacher logits, labels (a mask limits the cross-entropy to labelled inputs)",
    conventions: "forward KL from the teacher, temperature on logits, soft term scaled by T², batch means",
    hyper_parameters: &[
        HyperParameter {
            key: "temperature",
            default: 4.0,
            meaning: "T, softens teacher and student logits",
        },
        HyperParameter {
            key: "alpha",
            default: 0.5,
            meaning: "weight of the hard-label cross-entropy; the soft term gets 1 − α",
        },
    ],
};

impl MethodSettings for KdSettings {
    const INFO: &'static MethodInfo = &INFO;

    fn validate(&self, _context: &ValidationContext<'_>) -> Result<(), String> {
        Ok(())
    }

    fn build(&self, shared: &Shared) -> Box<dyn Method> {
        Box::new(LogitMethod {
            info: &INFO,
            objective: Arc::new(shared.kd()),
        })
    }
}

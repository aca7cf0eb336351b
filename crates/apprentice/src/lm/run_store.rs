//! The students a language-model run keeps, so that an interrupted run resumes: each finished
//! student's checkpoint (weights and description, [`super::checkpoint`]) and, written last,
//! its training record (`seed-N/<name>.record.json`: its curve, training time and speed). A
//! student with both is read back instead of trained; one without (the student in training
//! when the run was killed) trains again from its seeded initial weights, which gives the same
//! weights, so a resumed run ends with the metrics of an uninterrupted one.

use serde::{Deserialize, Serialize};

use super::checkpoint::{LmCheckpointMeta, load_student, save_student};
use super::error::LmError;
use super::llama::Llama;
use super::train::LmCurve;
use crate::backend::ComputeDevice;
use crate::fsutil::write_atomic;
use crate::layout::RunLayout;

/// What training a student measured, kept beside its checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// Held-out perplexity and accuracy over training.
    pub curve: LmCurve,
    /// Seconds of training.
    pub train_time_s: f64,
    /// Training tokens per second.
    pub tokens_per_s: f64,
}

/// Where a run keeps its students; `None`: nothing is kept.
pub struct LmRunStore<'a> {
    layout: Option<&'a RunLayout>,
}

impl<'a> LmRunStore<'a> {
    /// Keeps students under `layout` (when given).
    pub fn new(layout: Option<&'a RunLayout>) -> Self {
        Self { layout }
    }

    /// The student `meta` describes, read back with its record when an earlier session of
    /// the run finished it with the same description (name, objective, seed, decoder, teacher
    /// and tokenizer); `None` when it has to be trained.
    pub fn finished(
        &self,
        meta: &LmCheckpointMeta,
        device: &ComputeDevice,
    ) -> Result<Option<(Llama, TrainingRecord)>, LmError> {
        let Some(layout) = self.layout else {
            return Ok(None);
        };
        let files = layout.seed(meta.seed);
        let (weights, record) = (files.checkpoint(&meta.name), files.record(&meta.name));
        if !weights.is_file() || !record.is_file() {
            return Ok(None);
        }
        // Without gradient tracking, as a freshly trained student leaves training.
        let loaded = load_student(&weights, &device.inference())?;
        if loaded.meta != *meta {
            // Another student under the same name (a changed config): train this one.
            return Ok(None);
        }
        let text = std::fs::read_to_string(&record)
            .map_err(|e| LmError::Invalid(format!("{}: {e}", record.display())))?;
        let record: TrainingRecord = serde_json::from_str(&text).map_err(|e| {
            LmError::Invalid(format!("{}: not a training record: {e}", record.display()))
        })?;
        Ok(Some((loaded.model, record)))
    }

    /// Saves a finished student: its checkpoint, then its record (a student with a record is
    /// complete).
    pub fn keep(
        &self,
        model: &Llama,
        meta: &LmCheckpointMeta,
        record: &TrainingRecord,
    ) -> Result<(), LmError> {
        let Some(layout) = self.layout else {
            return Ok(());
        };
        let files = layout.seed(meta.seed);
        std::fs::create_dir_all(files.dir())
            .map_err(|e| LmError::Invalid(format!("{}: {e}", files.dir().display())))?;
        save_student(&files.checkpoint(&meta.name), model, meta)?;
        let path = files.record(&meta.name);
        let mut text = serde_json::to_string_pretty(record)
            .map_err(|e| LmError::Invalid(format!("{}: {e}", path.display())))?;
        text.push('\n');
        write_atomic(&path, text.as_bytes())
            .map_err(|e| LmError::Invalid(format!("{}: {e}", path.display())))
    }
}

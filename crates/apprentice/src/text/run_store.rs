//! The models of a text run on disk, so that a killed run resumes where it stopped: each
//! finished model of a seed is saved with its record (`seed-N/<model>.record.json`), its
//! weights beside it (and `seed-N/split.json`, the texts each split holds) (`<model>.safetensors` for the small students and the head,
//! `<model>.hf/`, a Hugging Face `BertForSequenceClassification` folder, for transformers).
//!
//! The record is written last and atomically, so a record on disk means the model finished
//! and its weights are complete; a model without one is trained again from its start. Training
//! is deterministic for a seed, so the resumed run ends with the uninterrupted run's metrics.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;

use super::bert::BertConfig;
use super::classifier::BertClassifier;
use super::classifier_folder::{load_classifier, save_classifier};
use super::error::TextError;
use crate::checkpoint::{load_weights, weights_to_bytes};
use crate::distill::record::StudentRecord;
use crate::fsutil::write_atomic;
use crate::layout::RunLayout;

/// Where a text run keeps its models; without a run folder nothing is kept.
#[derive(Debug, Clone, Default)]
pub struct TextRunStore {
    layout: Option<RunLayout>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TextError + '_ {
    move |source| TextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl TextRunStore {
    /// A store in the run folder `run_dir`, or none.
    pub fn new(run_dir: Option<&Path>) -> Self {
        Self {
            layout: run_dir.map(RunLayout::new),
        }
    }

    /// Whether models are kept (a run folder was given).
    pub fn is_active(&self) -> bool {
        self.layout.is_some()
    }

    /// The record of model `name` of `seed`, when it finished in an earlier attempt of the
    /// run; `warn` hears about a record that cannot be read (the model is then trained again).
    pub fn record(
        &self,
        seed: u64,
        name: &str,
        warn: &mut dyn FnMut(&str),
    ) -> Option<StudentRecord> {
        let path = self.layout.as_ref()?.seed(seed).record(name);
        let text = std::fs::read_to_string(&path).ok()?;
        match serde_json::from_str(&text) {
            Ok(record) => Some(record),
            Err(error) => {
                warn(&format!(
                    "warning: {}: not a model record ({error}); training {name} again",
                    path.display()
                ));
                None
            }
        }
    }

    /// Writes the record of a finished model (after its weights).
    pub fn save_record(
        &self,
        seed: u64,
        name: &str,
        record: &StudentRecord,
    ) -> Result<(), TextError> {
        let Some(layout) = &self.layout else {
            return Ok(());
        };
        let path = layout.seed(seed).record(name);
        let text = serde_json::to_string_pretty(record)
            .map_err(|e| TextError::Invalid(format!("{}: {e}", path.display())))?;
        write_atomic(&path, text.as_bytes()).map_err(io(&path))
    }

    /// Saves a module's weights as `<model>.safetensors`.
    pub fn save_module<M: Module>(
        &self,
        seed: u64,
        name: &str,
        module: &M,
    ) -> Result<(), TextError> {
        let Some(layout) = &self.layout else {
            return Ok(());
        };
        let seed_layout = layout.seed(seed);
        let path = seed_layout.checkpoint(name);
        std::fs::create_dir_all(seed_layout.dir()).map_err(io(seed_layout.dir()))?;
        let bytes = weights_to_bytes(module)
            .map_err(|e| TextError::Invalid(format!("{}: {e}", path.display())))?;
        write_atomic(&path, &bytes).map_err(io(&path))
    }

    /// Loads the weights saved by [`Self::save_module`] into `module` (of the same
    /// architecture); an error names the file.
    pub fn load_module<M: Module>(&self, seed: u64, name: &str, module: M) -> Result<M, TextError> {
        let path = self.require()?.seed(seed).checkpoint(name);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        load_weights(module, bytes).map_err(|e| TextError::model(&path, e))
    }

    /// The Hugging Face folder of transformer model `name` of `seed`.
    pub fn classifier_dir(&self, seed: u64, name: &str) -> Option<PathBuf> {
        Some(self.layout.as_ref()?.seed(seed).model_folder(name))
    }

    /// Saves a transformer classifier as a `BertForSequenceClassification` folder, written
    /// beside its place and renamed into it, with the tokenizer files of `tokenizer_from`.
    pub fn save_classifier(
        &self,
        seed: u64,
        name: &str,
        model: &BertClassifier,
        config: &BertConfig,
        labels: &[String],
        tokenizer_from: &Path,
    ) -> Result<(), TextError> {
        let Some(dir) = self.classifier_dir(seed, name) else {
            return Ok(());
        };
        let partial = dir.with_extension("hf.partial");
        for stale in [&partial, &dir] {
            if stale.exists() {
                std::fs::remove_dir_all(stale).map_err(io(stale))?;
            }
        }
        save_classifier(model, config, labels, Some(tokenizer_from), &partial)?;
        std::fs::rename(&partial, &dir).map_err(io(&dir))
    }

    /// Loads the classifier saved by [`Self::save_classifier`] on `device`.
    pub fn load_classifier(
        &self,
        seed: u64,
        name: &str,
        device: &Device,
    ) -> Result<(BertClassifier, BertConfig), TextError> {
        let dir = self.require()?.seed(seed).model_folder(name);
        let loaded = load_classifier(&dir, device)?;
        Ok((loaded.model, loaded.config))
    }

    /// Writes the seed's split (`seed-N/split.json`: the row indices of the training,
    /// validation and test texts, the `unlabelled` ones distilled students also learn from when
    /// there are any, and the number of rows), so that a reference
    /// implementation can train on exactly the same texts.
    pub fn save_split(
        &self,
        seed: u64,
        [train, validation, test]: [&[usize]; 3],
        unlabelled: &[usize],
        rows: usize,
    ) -> Result<(), TextError> {
        let Some(layout) = &self.layout else {
            return Ok(());
        };
        let seed_layout = layout.seed(seed);
        std::fs::create_dir_all(seed_layout.dir()).map_err(io(seed_layout.dir()))?;
        let path = seed_layout.split();
        let mut value = serde_json::json!({
            "seed": seed,
            "rows": rows,
            "train": train,
            "validation": validation,
            "test": test,
        });
        if !unlabelled.is_empty() {
            value["unlabelled"] = serde_json::json!(unlabelled);
        }
        write_atomic(&path, value.to_string().as_bytes()).map_err(io(&path))
    }

    fn require(&self) -> Result<&RunLayout, TextError> {
        self.layout
            .as_ref()
            .ok_or_else(|| TextError::Invalid("no run folder to load models from".to_string()))
    }
}

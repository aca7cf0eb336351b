//! `apprentice eval` for a model of a text run: the model read back, the run's texts read
//! again, and the model scored on its seed's test split (exactly the texts, and the logits,
//! its record's test metrics come from) or on every text.

use std::path::Path;

use super::error::TextError;
use super::run_model::{load_run_model, load_run_texts};
use super::saved_model::run_config;
use crate::eval::metrics::{Metrics, evaluate};
pub use crate::eval::split::EvalSplit;

/// A text model's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct TextEvaluation {
    /// The model's name in its run (`cnn-kd`).
    pub model: String,
    /// Its architecture.
    pub architecture: String,
    /// Its parameters (the teacher's include its encoder).
    pub params: usize,
    /// The data set's name.
    pub data: String,
    /// The seed whose split was read.
    pub seed: u64,
    /// Which texts.
    pub split: EvalSplit,
    /// How many texts were scored.
    pub texts: usize,
    /// Accuracy, NLL and ECE (no teacher agreement).
    pub metrics: Metrics,
}

/// Scores the model of a text run saved at `model` (`<run>/seed-N/<model>.safetensors`) on
/// `split`, reading the run's texts and encoder from `data_root` (the command's `--data`)
/// or else from the folder the run recorded. On the test split the metrics are the ones the
/// run recorded for the model (`<model>.record.json`).
pub fn evaluate_text_model(
    model: &Path,
    data_root: Option<&Path>,
    split: EvalSplit,
) -> Result<TextEvaluation, TextError> {
    // The split and the texts first: they fail fast, before the encoder is read.
    let (data, saved) = load_run_texts(model, &run_config(model)?, data_root)?;
    let loaded = load_run_model(model, data_root)?;
    let classes = data.classes.len();
    if loaded.num_classes() != classes {
        return Err(TextError::model(
            model,
            format!(
                "the model predicts {} classes, the data {} has {classes} ({:?})",
                loaded.num_classes(),
                data.name,
                data.classes
            ),
        ));
    }
    let indices: Vec<usize> = match split {
        EvalSplit::Test => saved.test.clone(),
        EvalSplit::All => (0..data.len()).collect(),
    };
    let texts: Vec<&str> = indices.iter().map(|&i| data.texts[i].as_str()).collect();
    let labels: Vec<u32> = indices.iter().map(|&i| data.labels[i]).collect();
    let sequences = loaded.encoder.tokenizer.encode_all(&texts)?;
    let logits = loaded.logits(&sequences);
    let metrics = evaluate(&logits, classes, &labels, None);
    Ok(TextEvaluation {
        model: loaded.name,
        architecture: loaded.architecture,
        params: loaded.params,
        data: data.name,
        seed: saved.seed,
        split,
        texts: indices.len(),
        metrics,
    })
}

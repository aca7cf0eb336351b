//! A text run's saved bag or CNN student out to ONNX: the student is rebuilt from the run's
//! `config.toml` as the run rebuilds it to load its weights (`<run>/seed-N/<model>.safetensors`
//! carries no metadata of its own), the pad id comes from the run's encoder folder, whose
//! `tokenizer.json` makes the graph's ids, and the graph is [`crate::onnx::export_text`]'s.
//! [`export_student`] tells such a student from an image checkpoint for `apprentice export`.

use std::path::{Path, PathBuf};

use super::error::TextError;
use super::onnx_export_bert::{BertExportSummary, export_classifier_folder};
use super::pretrained::{CONFIG_FILE, TOKENIZER_FILE, read_config};
use super::saved_model::{
    SavedModelKind, SavedStudent, load_small_student, needs_teacher_head, saved_model_kind,
    sibling_teacher_head,
};
use super::students::TextStudent;
use crate::backend::ComputeDevice;
use crate::onnx::export_text::{TextGraphOptions, TextStudentWeights, text_student_to_onnx};
use crate::onnx::{ExportSummary, OnnxError, export_checkpoint};

/// The weights of `student` as the ONNX graph takes them.
pub fn student_weights(student: &TextStudent) -> TextStudentWeights<'_> {
    TextStudentWeights {
        embedding: student.embedding.val(),
        conv: student
            .conv
            .as_ref()
            .map(|conv| (conv.weight.val(), conv.bias.val())),
        head: &student.head,
    }
}

/// What [`export_text_checkpoint`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct TextExportSummary {
    /// The student's name in its run (`cnn-kd`).
    pub model: String,
    /// Its architecture (`cnn 30522×64 c128k3 → 2`).
    pub architecture: String,
    /// The tokenizer whose ids the graph takes: the run's `text.model` folder's
    /// `tokenizer.json`, as the run names it.
    pub tokenizer: PathBuf,
    /// Pieces read at most (longer inputs are cut inside the graph).
    pub max_tokens: usize,
    /// The id padded positions are read as.
    pub pad_id: u32,
    /// Number of classes (the logits' width).
    pub num_classes: usize,
    /// Operators in the graph.
    pub nodes: usize,
    /// Bytes written.
    pub bytes: usize,
}

/// What [`export_student`] found and wrote.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportedStudent {
    /// An image (or feature) MLP or CNN checkpoint.
    Network(ExportSummary),
    /// A bag or CNN student of a text run.
    Text(TextExportSummary),
    /// A BERT classifier folder: a text run's fine-tuned teacher or transformer student, or
    /// one fine-tuned elsewhere.
    Bert(BertExportSummary),
}

/// Writes `checkpoint` as an ONNX file at `out`, whichever kind it is: a Hugging Face model
/// folder (a `BertForSequenceClassification`, [`export_classifier_folder`]), a checkpoint with
/// apprentice's metadata (image and feature models, [`export_checkpoint`]) or a small student
/// of a text run, told by its run's `config.toml` ([`export_text_checkpoint`]). Anything
/// else is refused with one line naming the file.
pub fn export_student(checkpoint: &Path, out: &Path) -> Result<ExportedStudent, OnnxError> {
    if checkpoint.is_dir() && checkpoint.join(CONFIG_FILE).is_file() {
        return export_classifier_folder(checkpoint, out).map(ExportedStudent::Bert);
    }
    match saved_model_kind(checkpoint)? {
        SavedModelKind::Checkpoint => {
            export_checkpoint(checkpoint, out).map(ExportedStudent::Network)
        }
        SavedModelKind::TextRun => {
            export_text_checkpoint(checkpoint, out).map(ExportedStudent::Text)
        }
    }
}

/// A text run's model that could not be read, as an export error (the message already names
/// the file).
fn onnx_error(error: TextError) -> OnnxError {
    match error {
        TextError::Model { path, message } => OnnxError::Invalid { path, message },
        TextError::Io { path, source } => OnnxError::Io { path, source },
        other => OnnxError::Export(other.to_string()),
    }
}

/// Reads the bag or CNN student saved by a text run at `checkpoint`
/// (`<run>/seed-N/<model>.safetensors`), rebuilt from the run's `config.toml` as the run
/// rebuilds it, and writes it as an ONNX file at `out` (atomically). The pad id comes from the
/// run's `text.model` folder (`config.json`), whose `tokenizer.json` gives the graph's ids.
pub fn export_text_checkpoint(
    checkpoint: &Path,
    out: &Path,
) -> Result<TextExportSummary, OnnxError> {
    let device = ComputeDevice::cpu().inference();
    let SavedStudent {
        config,
        plan,
        student,
        outputs,
    } = load_small_student(checkpoint, &device).map_err(onnx_error)?;
    let head = if needs_teacher_head(&plan) {
        Some(sibling_teacher_head(checkpoint, &config, outputs, &device).map_err(onnx_error)?)
    } else {
        None
    };
    let model_dir = match &config.data_root {
        Some(root) => root.join(&config.text.model),
        None => config.text.model.clone(),
    };
    let bert = read_config(&model_dir.join(CONFIG_FILE))
        .map_err(|e| OnnxError::Export(format!("the pad id of the run's tokenizer: {e}")))?;
    let tokenizer = model_dir.join(TOKENIZER_FILE);
    let max_tokens = config.students.max_tokens;
    let options = TextGraphOptions {
        pad_id: bert.pad_token_id,
        max_tokens: Some(max_tokens),
        head: head.as_ref(),
    };
    let description = format!(
        "{} ({}{}) of the text run {} trained by apprentice; inputs: input_ids and \
         attention_mask, int64 [N, L], from the tokenizer {} (special tokens included), cut \
         at {max_tokens} pieces inside the graph",
        plan.name,
        student.describe(),
        if head.is_some() {
            " + the teacher's head"
        } else {
            ""
        },
        config.name,
        tokenizer.display()
    );
    let model = text_student_to_onnx(&student_weights(&student), &options, &description)?;
    let bytes = crate::onnx::export::write_model(&model, out)?;
    Ok(TextExportSummary {
        model: plan.name.to_string(),
        architecture: student.describe(),
        tokenizer,
        max_tokens,
        pad_id: bert.pad_token_id,
        num_classes: head.as_ref().map_or(outputs, |h| h.num_classes),
        nodes: model.graph.as_ref().map_or(0, |g| g.node.len()),
        bytes,
    })
}

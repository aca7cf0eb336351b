//! A text run's saved bag or CNN student out to ONNX: the student is rebuilt from the run's
//! `config.toml` as the run rebuilds it to load its weights (`<run>/seed-N/<model>.safetensors`
//! carries no metadata of its own), the pad id comes from the run's encoder folder, whose
//! `tokenizer.json` makes the graph's ids, and the graph is [`crate::onnx::export_text`]'s.
//! [`export_student`] tells such a student from an image checkpoint for `apprentice export`.

use std::path::{Path, PathBuf};

use prost::Message;

use super::config::TextExperimentConfig;
use super::plans::{Objective, student_plans};
use super::pretrained::{CONFIG_FILE, TOKENIZER_FILE, read_config};
use super::students::TextStudent;
use super::teacher_stage::TEACHER;
use crate::backend::ComputeDevice;
use crate::checkpoint::{self, CheckpointError, load_weights};
use crate::data::SampleShape;
use crate::layout::{self, RunLayout};
use crate::models::{Activation, MlpSpec, ModelSpec, Network};
use crate::onnx::export_text::{TextGraphOptions, TextStudentWeights, text_student_to_onnx};
use crate::onnx::{ExportSummary, OnnxError, export_checkpoint};
use crate::task::TaskKind;

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
}

/// Writes `checkpoint` as an ONNX file at `out`, whichever kind it is: a checkpoint with
/// apprentice's metadata (image and feature models, [`export_checkpoint`]) or a small student
/// of a text run, told by its run's `config.toml` ([`export_text_checkpoint`]). Anything
/// else is refused with one line naming the file.
pub fn export_student(checkpoint: &Path, out: &Path) -> Result<ExportedStudent, OnnxError> {
    let reason = match checkpoint::read_meta(checkpoint) {
        Ok(_) => return export_checkpoint(checkpoint, out).map(ExportedStudent::Network),
        Err(CheckpointError::Invalid { message, .. }) => message,
        Err(error) => return Err(error.into()),
    };
    let config = run_config_path(checkpoint);
    let is_text = std::fs::read_to_string(&config)
        .is_ok_and(|text| TaskKind::of_toml(&text) == TaskKind::Text);
    if !is_text {
        return Err(OnnxError::Invalid {
            path: checkpoint.to_path_buf(),
            message: format!(
                "neither an apprentice checkpoint ({reason}) nor a student of a text run (no \
                 text experiment at {})",
                config.display()
            ),
        });
    }
    export_text_checkpoint(checkpoint, out).map(ExportedStudent::Text)
}

/// `<run>/config.toml` for a model saved as `<run>/seed-N/<model>.safetensors` (also when
/// the path is given from inside the seed's folder).
fn run_config_path(checkpoint: &Path) -> PathBuf {
    let absolute = std::path::absolute(checkpoint).unwrap_or_else(|_| checkpoint.to_path_buf());
    let run = absolute
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new(""));
    RunLayout::new(run).config()
}

/// Reads the bag or CNN student saved by a text run at `checkpoint`
/// (`<run>/seed-N/<model>.safetensors`), rebuilt from the run's `config.toml` as the run
/// rebuilds it, and writes it as an ONNX file at `out` (atomically). The pad id comes from the
/// run's `text.model` folder (`config.json`), whose `tokenizer.json` gives the graph's ids.
pub fn export_text_checkpoint(
    checkpoint: &Path,
    out: &Path,
) -> Result<TextExportSummary, OnnxError> {
    let invalid = |path: &Path, message: String| OnnxError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let config_path = run_config_path(checkpoint);
    let config = TextExperimentConfig::from_file(&config_path)
        .map_err(|e| invalid(checkpoint, format!("the run's experiment: {e}")))?;
    let stem = checkpoint
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let plans = student_plans(&config);
    let small: Vec<_> = plans.iter().filter(|p| !p.is_transformer()).collect();
    let plan = small
        .iter()
        .find(|p| layout::file_stem(p.name) == stem)
        .ok_or_else(|| {
            let names: Vec<&str> = small.iter().map(|p| p.name).collect();
            invalid(
                checkpoint,
                format!(
                    "not a bag or CNN student of the text run {}; its small students are {}",
                    config_path.display(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        })?;
    let device = ComputeDevice::cpu().inference();
    let bytes = std::fs::read(checkpoint).map_err(|source| OnnxError::Io {
        path: checkpoint.to_path_buf(),
        source,
    })?;
    let shapes = tensor_shapes(checkpoint, &bytes)?;
    let shape_of = |name: &str| -> Result<&Vec<usize>, OnnxError> {
        shapes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .ok_or_else(|| invalid(checkpoint, format!("no tensor {name:?}")))
    };
    let &[vocab, _] = shape_of("embedding")?.as_slice() else {
        return Err(invalid(
            checkpoint,
            "tensor \"embedding\": expected 2 dimensions".into(),
        ));
    };
    let last = format!("head.{}.weight", config.students.hidden.len());
    let &[_, outputs] = shape_of(&last)?.as_slice() else {
        return Err(invalid(
            checkpoint,
            format!("tensor {last:?}: expected 2 dimensions"),
        ));
    };
    let fresh = TextStudent::new(
        plan.architecture,
        &config.students,
        vocab,
        outputs,
        None,
        0,
        &device,
    );
    let student = load_weights(fresh, bytes).map_err(|e| invalid(checkpoint, e))?;

    let head = if plan.objective == Objective::Embedding {
        let path = checkpoint
            .with_file_name(layout::file_stem(TEACHER))
            .with_extension("safetensors");
        Some(teacher_head(&path, &config, outputs, &device)?)
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
    let encoded = model.encode_to_vec();
    crate::fsutil::write_atomic(out, &encoded).map_err(|source| OnnxError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(TextExportSummary {
        model: plan.name.to_string(),
        architecture: student.describe(),
        tokenizer,
        max_tokens,
        pad_id: bert.pad_token_id,
        num_classes: head.as_ref().map_or(outputs, |h| h.num_classes),
        nodes: model.graph.as_ref().map_or(0, |g| g.node.len()),
        bytes: encoded.len(),
    })
}

/// The frozen-encoder teacher's head saved beside an embedding student, as the run builds it.
fn teacher_head(
    path: &Path,
    config: &TextExperimentConfig,
    dim: usize,
    device: &burn::tensor::Device,
) -> Result<Network, OnnxError> {
    let invalid = |message: String| OnnxError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let shapes = tensor_shapes(path, &bytes)?;
    let last = format!("dense.{}.weight", config.teacher.hidden.len());
    let classes = match shapes.iter().find(|(n, _)| *n == last) {
        Some((_, shape)) if shape.len() == 2 => shape[1],
        _ => {
            return Err(invalid(format!(
                "no 2-D tensor {last:?} (the head's last layer)"
            )));
        }
    };
    let spec = ModelSpec::Mlp(MlpSpec {
        hidden: config.teacher.hidden.clone(),
        activation: Activation::Relu,
        dropout: config.teacher.dropout,
    });
    let fresh = Network::new(&spec, SampleShape::flat(dim), classes, 0, device).map_err(invalid)?;
    load_weights(fresh, bytes).map_err(invalid)
}

/// The name and shape of every tensor of a safetensors file.
fn tensor_shapes(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Vec<usize>)>, OnnxError> {
    let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(|e| OnnxError::Invalid {
        path: path.to_path_buf(),
        message: format!("not a safetensors file: {e}"),
    })?;
    Ok(tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec()))
        .collect())
}

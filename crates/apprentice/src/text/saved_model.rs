//! A model file of a text run read back outside the run: `<run>/seed-N/<model>.safetensors`
//! carries no metadata of its own, so the model is rebuilt from the run's `config.toml` as the
//! run rebuilds it to load its weights. `apprentice export`, `apprentice eval` and
//! `apprentice bench-model` all load a text run's models through this one reader.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::config::TextExperimentConfig;
use super::error::TextError;
use super::plans::{Objective, StudentPlan, student_plans};
use super::students::TextStudent;
use super::teacher_stage::TEACHER;
use crate::checkpoint::{self, CheckpointError, load_weights};
use crate::data::SampleShape;
use crate::layout::{self, RunLayout};
use crate::models::{Activation, MlpSpec, ModelSpec, Network};
use crate::task::TaskKind;

/// `<run>/config.toml` for a model saved as `<run>/seed-N/<model>.safetensors` (also when
/// the path is given from inside the seed's folder).
pub fn run_config_path(model: &Path) -> PathBuf {
    let absolute = std::path::absolute(model).unwrap_or_else(|_| model.to_path_buf());
    let run = absolute
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new(""));
    RunLayout::new(run).config()
}

/// Whether `model` sits in the seed folder of a text run: its run's `config.toml` describes
/// a text experiment. This is how the commands tell a text run's model from an image
/// checkpoint, whose metadata a text run's files do not carry.
pub fn is_text_run_model(model: &Path) -> bool {
    std::fs::read_to_string(run_config_path(model))
        .is_ok_and(|text| TaskKind::of_toml(&text) == TaskKind::Text)
}

/// What kind of saved model a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedModelKind {
    /// A checkpoint with apprentice's metadata (image and feature models).
    Checkpoint,
    /// A model in the seed folder of a text run, told by the run's `config.toml`.
    TextRun,
}

/// Tells an image checkpoint from a model of a text run, as `apprentice export`, `eval` and
/// `bench-model` do: a file with apprentice's metadata is a checkpoint; else a file (or a
/// transformer's folder) whose run's `config.toml` is a text experiment is a text run's
/// model; anything else is an error naming the file and both reasons.
pub fn saved_model_kind(path: &Path) -> Result<SavedModelKind, CheckpointError> {
    let reason = if path.is_dir() {
        "a folder".to_string()
    } else {
        match checkpoint::read_meta(path) {
            Ok(_) => return Ok(SavedModelKind::Checkpoint),
            Err(CheckpointError::Invalid { message, .. }) => message,
            Err(error) => return Err(error),
        }
    };
    if is_text_run_model(path) {
        return Ok(SavedModelKind::TextRun);
    }
    Err(CheckpointError::Invalid {
        path: path.to_path_buf(),
        message: format!(
            "neither an apprentice checkpoint ({reason}) nor a model of a text run (no text \
             experiment at {})",
            run_config_path(path).display()
        ),
    })
}

/// The experiment of the text run that saved `model`; an error names the model file.
pub fn run_config(model: &Path) -> Result<TextExperimentConfig, TextError> {
    TextExperimentConfig::from_file(&run_config_path(model))
        .map_err(|e| TextError::model(model, format!("the run's experiment: {e}")))
}

/// A small (bag, CNN or static) student of a text run, read back.
pub struct SavedStudent {
    /// The run's experiment.
    pub config: TextExperimentConfig,
    /// The student's plan in its run (its name, architecture and objective).
    pub plan: StudentPlan,
    /// The student with its trained weights, on the CPU's inference device.
    pub student: TextStudent,
    /// Width of the student's outputs (the classes, or the teacher's embedding width for an
    /// embedding student).
    pub outputs: usize,
}

/// Reads the bag, CNN or static student saved by a text run at `checkpoint`
/// (`<run>/seed-N/<model>.safetensors`), rebuilt from the run's `config.toml` with the
/// vocabulary and output widths its tensors give.
pub fn load_small_student(checkpoint: &Path, device: &Device) -> Result<SavedStudent, TextError> {
    let invalid = |message: String| TextError::model(checkpoint, message);
    let config_path = run_config_path(checkpoint);
    let config = run_config(checkpoint)?;
    let stem = checkpoint
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let plans = student_plans(&config);
    let small: Vec<_> = plans.iter().filter(|p| !p.is_transformer()).collect();
    let plan = small
        .iter()
        .find(|p| layout::file_stem(&p.name) == stem)
        .map(|p| (*p).clone())
        .ok_or_else(|| {
            let names: Vec<&str> = small.iter().map(|p| p.name.as_str()).collect();
            invalid(format!(
                "not a bag or CNN student of the text run {}; its small students are {}",
                config_path.display(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })?;
    let bytes = std::fs::read(checkpoint).map_err(|source| TextError::Io {
        path: checkpoint.to_path_buf(),
        source,
    })?;
    let shapes = tensor_shapes(checkpoint, &bytes)?;
    let shape_of = |name: &str| -> Result<&Vec<usize>, TextError> {
        shapes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .ok_or_else(|| invalid(format!("no tensor {name:?}")))
    };
    let &[vocab, _] = shape_of("embedding")?.as_slice() else {
        return Err(invalid(
            "tensor \"embedding\": expected 2 dimensions".into(),
        ));
    };
    let last = format!("head.{}.weight", config.students.hidden.len());
    let &[_, outputs] = shape_of(&last)?.as_slice() else {
        return Err(invalid(format!("tensor {last:?}: expected 2 dimensions")));
    };
    let fresh = TextStudent::new(
        plan.architecture,
        &config.students,
        vocab,
        outputs,
        None,
        0,
        device,
    );
    let student = load_weights(fresh, bytes).map_err(invalid)?;
    Ok(SavedStudent {
        config,
        plan,
        student,
        outputs,
    })
}

/// The teacher's head saved beside `model` (`teacher.safetensors` in the same seed folder),
/// which an embedding student's outputs go through: an error names the head's file.
pub fn sibling_teacher_head(
    model: &Path,
    config: &TextExperimentConfig,
    dim: usize,
    device: &Device,
) -> Result<Network, TextError> {
    let path = model
        .with_file_name(layout::file_stem(TEACHER))
        .with_extension("safetensors");
    load_teacher_head(&path, config, dim, device)
}

/// Whether a student of this plan predicts through the teacher's head.
pub fn needs_teacher_head(plan: &StudentPlan) -> bool {
    plan.objective == Objective::Embedding
}

/// The frozen-encoder teacher's head saved at `path`, as the run builds it: an MLP of
/// `teacher.hidden` from `dim` inputs to as many classes as its last tensor has.
pub fn load_teacher_head(
    path: &Path,
    config: &TextExperimentConfig,
    dim: usize,
    device: &Device,
) -> Result<Network, TextError> {
    let invalid = |message: String| TextError::model(path, message);
    let bytes = std::fs::read(path).map_err(|source| TextError::Io {
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
fn tensor_shapes(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Vec<usize>)>, TextError> {
    let tensors = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| TextError::model(path, format!("not a safetensors file: {e}")))?;
    Ok(tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec()))
        .collect())
}

//! Runs an ONNX teacher (see [`super::frozen_teacher`]) over one seed's splits.
//!
//! The graph expects raw inputs with its own preprocessing, while the seed's splits are
//! standardised for the students, so the splits are restored to raw values first.

use std::path::Path;
use std::time::Instant;

use super::frozen_teacher::{FrozenTeacher, onnx_teacher_digest};
use super::job::SeedContext;
use crate::data::Dataset;
use crate::data::prepare::PreparedData;
use crate::distill::record::{Curve, Role, StudentRecord};
use crate::error::{Error, Result};
use crate::eval::metrics::{accuracy, evaluate};
use crate::onnx::{OnnxTeacher, OnnxTeacherConfig};

/// Loads the ONNX teacher of `settings`, checking that it takes the data's samples and
/// predicts its classes.
pub fn load_onnx_teacher(settings: &OnnxTeacherConfig, data: &Dataset) -> Result<OnnxTeacher> {
    let teacher = OnnxTeacher::load(settings).map_err(|e| Error::Invalid(e.to_string()))?;
    let path = settings.path.display();
    let shape = data.shape;
    let expected: Vec<usize> = if shape.is_image() {
        vec![shape.channels, shape.height, shape.width]
    } else {
        vec![shape.len()]
    };
    if settings.input.shape != expected && settings.input.sample_len() != shape.len() {
        return Err(Error::Invalid(format!(
            "teacher.input.shape: {path} is set to take samples of {:?}, but the data's samples are {expected:?}",
            settings.input.shape
        )));
    }
    if teacher.num_classes() != data.num_classes {
        return Err(Error::Invalid(format!(
            "teacher.onnx: {path} predicts {} classes, but the data has {}",
            teacher.num_classes(),
            data.num_classes
        )));
    }
    Ok(teacher)
}

/// The raw (un-standardised) features of `split`, one of `data`'s splits.
fn raw_features(data: &PreparedData, split: &Dataset) -> Vec<f32> {
    let mut features = split.features.clone();
    data.normalizer.restore_to(&mut features);
    features
}

/// The logits of the ONNX teacher of `settings` on `split`, one of `data`'s splits (restored
/// to raw values first), as `apprentice cache-teacher` stores them.
pub fn onnx_teacher_logits(
    settings: &OnnxTeacherConfig,
    data: &PreparedData,
    split: &Dataset,
) -> Result<Vec<f32>> {
    let teacher = load_onnx_teacher(settings, split)?;
    teacher
        .logits(&raw_features(data, split))
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// Runs the ONNX teacher once over the seed's splits; returns its outputs and its row of the
/// table (evaluated on the test split like any teacher).
pub(super) fn frozen_teacher_for_seed(
    context: &SeedContext<'_>,
    settings: &OnnxTeacherConfig,
) -> Result<(FrozenTeacher, StudentRecord)> {
    let data = context.data;
    let started = Instant::now();
    let teacher = load_onnx_teacher(settings, &data.train)?;
    let run = |split: &Dataset| {
        teacher
            .forward(&raw_features(data, split))
            .map_err(|e| Error::Invalid(e.to_string()))
    };
    let train = run(&data.train)?;
    let validation = run(&data.validation)?.logits;
    let test = run(&data.test)?.logits;
    let feature = match (train.feature, &settings.feature) {
        (Some(output), _) => Some((output.shape, output.values)),
        (None, Some(name)) => {
            return Err(Error::Invalid(format!(
                "teacher.feature: {} gave no value for {name:?}",
                settings.path.display()
            )));
        }
        (None, None) => None,
    };
    let classes = data.train.num_classes;
    let record = StudentRecord {
        role: Role::Teacher,
        method: "onnx".into(),
        label_fraction: 1.0,
        transfer: None,
        architecture: describe(&settings.path),
        params: teacher.parameter_count(),
        metrics: evaluate(&test, classes, &data.test.labels, None),
        validation_accuracy: accuracy(&validation, classes, &data.validation.labels),
        wall_time_s: started.elapsed().as_secs_f64(),
        epochs_run: 0,
        skipped_batches: 0,
        curve: Curve {
            seed: context.seed,
            train_loss: vec![],
            validation_accuracy: vec![],
            learning_rate: vec![],
        },
        complexity: None,
    };
    let frozen = FrozenTeacher {
        digest: onnx_teacher_digest(settings)?,
        train: train.logits,
        validation,
        test,
        feature,
    };
    Ok((frozen, record))
}

fn describe(path: &Path) -> String {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    format!("ONNX {name}")
}

//! Measurements made from a finished run's checkpoints: the efficiency of every model and how
//! each student's predictions relate to the teacher's.
//!
//! Both use the checkpoints of the run's first seed (`<run>/seed-<s>/<model>.safetensors`);
//! a run made without checkpoints has nothing to measure, which is a note, not an error.

use std::path::{Path, PathBuf};

use super::extensions::{
    AgreementMatrix, EfficiencySection, ModelEfficiency, TeacherAgreementSection,
};
use super::results::{Results, Role};
use crate::backend::ComputeDevice;
use crate::checkpoint;
use crate::data::prepare::{load_raw, prepare};
use crate::distill::train::predict_logits;
use crate::eval::efficiency::{BenchSettings, Efficiency, measure_checkpoint};
use crate::eval::metrics::{argmax_rows, confusion_matrix};
use crate::layout::{RunLayout, file_stem};

/// How to measure a run.
#[derive(Debug, Clone)]
pub struct MeasureOptions {
    /// The device models run on while timed.
    pub device: ComputeDevice,
    /// The data location when the run's configuration does not record it (it was given
    /// with `--data`); only the teacher–student confusion needs data.
    pub data_path: Option<PathBuf>,
    /// Benchmark settings.
    pub bench: BenchSettings,
    /// Name of the settings (`quick` or `standard`), stored with the measurements.
    pub bench_name: String,
}

/// What [`measure_run`] found.
#[derive(Debug, Clone, Default)]
pub struct Measurements {
    /// Efficiency of every model with a checkpoint, when at least one had one.
    pub efficiency: Option<EfficiencySection>,
    /// The students' predictions against the teacher's, when the teacher and data could be
    /// loaded.
    pub teacher_agreement: Option<TeacherAgreementSection>,
    /// One line for each thing that could not be measured, and why.
    pub notes: Vec<String>,
}

/// The checkpoint file of `model` in `seed_dir`: the name the experiment gives it
/// (`kd-all@5%` → `kd-all-at-5pct.safetensors`) when its metadata confirms the model, else
/// any checkpoint in the folder whose metadata names the model.
pub fn find_checkpoint(seed_dir: &Path, model: &str) -> Option<PathBuf> {
    let stem = file_stem(model);
    let names_model = |path: &Path| {
        checkpoint::read_meta(path)
            .map(|(meta, _)| meta.name == model)
            .unwrap_or(false)
    };
    let expected = seed_dir.join(format!("{stem}.safetensors"));
    if expected.is_file() && names_model(&expected) {
        return Some(expected);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(seed_dir)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "safetensors"))
        .collect();
    candidates.sort();
    candidates.into_iter().find(|path| names_model(path))
}

/// Measures the models of the run in `run_dir` whose results are `results`; `progress` is
/// told the name of each model before it is measured.
pub fn measure_run(
    run_dir: &Path,
    results: &Results,
    options: &MeasureOptions,
    progress: &mut dyn FnMut(&str),
) -> Measurements {
    let mut out = Measurements::default();
    let Some(&seed) = results.seeds.first() else {
        out.notes
            .push("nothing to measure: the results list no seeds".to_string());
        return out;
    };
    let files = RunLayout::new(run_dir).seed(seed);
    let seed_dir = files.dir();
    if !seed_dir.is_dir() {
        out.notes.push(format!(
            "no checkpoints in {} (the run was made without them), so nothing was measured",
            seed_dir.display()
        ));
        return out;
    }

    let mut measured: Vec<(Role, Efficiency)> = Vec::new();
    let mut files: Vec<(String, Role, PathBuf)> = Vec::new();
    for model in &results.models {
        // An ensemble has no single checkpoint; its members are measured on their own rows.
        if model.architecture.starts_with("ensemble of") {
            continue;
        }
        let Some(path) = find_checkpoint(seed_dir, &model.name) else {
            out.notes.push(format!(
                "{}: no checkpoint in {}, so it was not measured",
                model.name,
                seed_dir.display()
            ));
            continue;
        };
        files.push((model.name.clone(), model.role, path.clone()));
        progress(&model.name);
        match measure_checkpoint(&path, &options.device, &options.bench) {
            Ok(mut efficiency) => {
                // The results' name is the one the report joins on.
                efficiency.name = model.name.clone();
                measured.push((model.role, efficiency));
            }
            Err(error) => out
                .notes
                .push(format!("{}: not measured: {error}", model.name)),
        }
    }
    if !measured.is_empty() {
        let teacher = measured
            .iter()
            .find(|(role, _)| *role == Role::Teacher)
            .map(|(_, efficiency)| efficiency.clone());
        let models = measured
            .into_iter()
            .map(|(role, measured)| ModelEfficiency {
                ratio_to_teacher: teacher
                    .as_ref()
                    .filter(|_| role != Role::Teacher)
                    .map(|teacher| measured.ratios_to(teacher)),
                measured,
            })
            .collect();
        out.efficiency = Some(EfficiencySection {
            seed,
            bench: options.bench_name.clone(),
            models,
        });
    }

    match teacher_agreement(seed, &files, options) {
        Ok(section) => out.teacher_agreement = section,
        Err(error) => out
            .notes
            .push(format!("teacher–student confusion not measured: {error}")),
    }
    out
}

/// Every student's predicted classes against the teacher's on the seed's test split; `None`
/// when there is no teacher checkpoint or no student checkpoint.
fn teacher_agreement(
    seed: u64,
    files: &[(String, Role, PathBuf)],
    options: &MeasureOptions,
) -> Result<Option<TeacherAgreementSection>, String> {
    let Some((_, _, teacher_path)) = files.iter().find(|(_, role, _)| *role == Role::Teacher)
    else {
        return Ok(None);
    };
    let students: Vec<&(String, Role, PathBuf)> = files
        .iter()
        .filter(|(_, role, _)| *role != Role::Teacher)
        .collect();
    if students.is_empty() {
        return Ok(None);
    }
    let device = &options.device;
    let (teacher, meta) =
        checkpoint::load(teacher_path, device).map_err(|error| error.to_string())?;
    let raw = load_raw(&meta.data_config, options.data_path.as_deref())
        .map_err(|error| error.to_string())?;
    let test = prepare(&raw, &meta.data_config, meta.seed)
        .map_err(|error| error.to_string())?
        .test;
    if test.shape.len() != meta.input_shape.len() {
        return Err(format!(
            "{}: the teacher takes {} features but the data has {}",
            teacher_path.display(),
            meta.input_shape.len(),
            test.shape.len()
        ));
    }
    let classes = meta.num_classes;
    let teacher_classes = argmax_rows(&predict_logits(&teacher, &test, device), classes);
    let mut models = Vec::new();
    for (name, _, path) in students {
        let (student, student_meta) =
            checkpoint::load(path, device).map_err(|error| error.to_string())?;
        if student_meta.num_classes != classes || student_meta.input_shape.len() != test.shape.len()
        {
            return Err(format!(
                "{}: the model's inputs or classes differ from the teacher's",
                path.display()
            ));
        }
        let student_classes = argmax_rows(&predict_logits(&student, &test, device), classes);
        // `confusion_matrix(predicted, actual)` puts `actual` on the rows: the teacher's here.
        let matrix = confusion_matrix(&student_classes, &teacher_classes, classes);
        let agreeing: u64 = (0..classes).map(|class| matrix[class][class]).sum();
        models.push(AgreementMatrix {
            name: name.clone(),
            agreement: if test.is_empty() {
                0.0
            } else {
                agreeing as f64 / test.len() as f64
            },
            matrix,
        });
    }
    Ok(Some(TeacherAgreementSection {
        seed,
        split: "test".to_string(),
        samples: test.len(),
        models,
    }))
}

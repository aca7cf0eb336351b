//! The models of a study (the student whose kernel is measured, the teacher whose predictions
//! are targets) and the measured subset of inputs as each of them expects it.

use std::path::{Path, PathBuf};

use super::{StudyError, StudyRequest, TargetSpec, invalid, run_teacher};
use crate::backend::ComputeDevice;
use crate::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CheckpointMeta};
use crate::complexity::study::report::StudyModel;
use crate::config::ExperimentConfig;
use crate::data::Dataset;
use crate::data::prepare::PreparedData;
use crate::distill::train::{TrainObserver, predict_logits};
use crate::eval::metrics::accuracy;
use crate::experiment::{RunOptions, seed_teacher_with_snapshots, student_init_seed};
use crate::layout::RunLayout;
use crate::models::Network;

/// Everything a study reads from the data.
pub(super) struct StudyInputs {
    /// The seed's splits, normalised as a run normalises them.
    pub data: PreparedData,
    /// The measured subset before normalisation, so that every checkpoint can apply its own.
    pub raw_subset: Dataset,
    /// The subset's places in the training split.
    pub indices: Vec<usize>,
    /// The seed the subset was drawn with.
    pub subset_seed: u64,
}

impl StudyInputs {
    /// The subset normalised with the statistics a checkpoint recorded.
    pub fn for_checkpoint(
        &self,
        path: &Path,
        meta: &CheckpointMeta,
    ) -> Result<Dataset, StudyError> {
        let train = &self.data.train;
        if meta.input_shape != train.shape || meta.num_classes != train.num_classes {
            return Err(invalid(format!(
                "{}: the model takes {} inputs and {} classes, but {} has {} inputs and {} classes",
                path.display(),
                meta.input_shape.len(),
                meta.num_classes,
                train.name,
                train.shape.len(),
                train.num_classes
            )));
        }
        let mut inputs = self.raw_subset.clone();
        meta.normalizer.apply(&mut inputs);
        Ok(inputs)
    }

    /// The subset normalised as the seed's run normalises it.
    fn for_run(&self) -> Dataset {
        self.data
            .train
            .subset(&self.indices, format!("{} (subset)", self.data.train.name))
    }
}

/// A model used in the study, with the inputs of the subset as it expects them.
pub(super) struct Participant {
    pub network: Network,
    /// The subset's inputs normalised with the model's own statistics.
    pub inputs: Dataset,
    pub description: StudyModel,
    pub checkpoint: Option<PathBuf>,
}

/// The checkpoint at `path`, with its accuracy on the subset when `with_accuracy`.
pub(super) fn load_participant(
    path: &Path,
    inputs: &StudyInputs,
    device: &ComputeDevice,
    with_accuracy: bool,
) -> Result<Participant, StudyError> {
    let (network, meta) = checkpoint::load(path, device)?;
    let subset = inputs.for_checkpoint(path, &meta)?;
    let subset_accuracy = with_accuracy.then(|| {
        let logits = predict_logits(&network, &subset, device);
        accuracy(&logits, meta.num_classes, &subset.labels)
    });
    Ok(Participant {
        description: StudyModel {
            source: path.display().to_string(),
            architecture: meta.spec.describe(meta.input_shape.len(), meta.num_classes),
            parameters: network.parameter_count(),
            subset_accuracy,
        },
        network,
        inputs: subset,
        checkpoint: Some(path.to_path_buf()),
    })
}

/// The config's student at the weights a run of `seed` starts it from.
pub(super) fn student_at_init(
    config: &ExperimentConfig,
    inputs: &StudyInputs,
    seed: u64,
    device: &ComputeDevice,
) -> Result<Participant, StudyError> {
    let shape = inputs.data.train.shape;
    let classes = inputs.data.train.num_classes;
    let network = Network::new(
        &config.student.model,
        shape,
        classes,
        student_init_seed(seed),
        &device.inference(),
    )
    .map_err(|message| invalid(format!("student.model: {message}")))?;
    Ok(Participant {
        description: StudyModel {
            source: format!("initial weights of seed {seed}"),
            architecture: config.student.model.describe(shape.len(), classes),
            parameters: network.parameter_count(),
            subset_accuracy: None,
        },
        network,
        inputs: inputs.for_run(),
        checkpoint: None,
    })
}

/// The metadata of a checkpoint of the config's student for the seed's data.
pub(super) fn checkpoint_meta(
    config: &ExperimentConfig,
    data: &PreparedData,
    name: &str,
    seed: u64,
) -> CheckpointMeta {
    CheckpointMeta {
        format_version: CHECKPOINT_FORMAT_VERSION,
        spec: config.student.model.clone(),
        input_shape: data.train.shape,
        num_classes: data.train.num_classes,
        normalizer: data.normalizer.clone(),
        name: name.to_string(),
        seed,
        data: data.train.name.clone(),
        data_config: config.data.clone(),
        class_names: Vec::new(),
    }
}

/// Every `*.safetensors` in `dir`, in name order.
pub(super) fn checkpoints_in(dir: &Path) -> Result<Vec<PathBuf>, StudyError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        invalid(format!(
            "teacher-checkpoints: {}: expected a folder of checkpoints ({e})",
            dir.display()
        ))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(invalid(format!(
            "teacher-checkpoints: {}: no .safetensors files in it",
            dir.display()
        )));
    }
    Ok(files)
}

/// What the study knows of its teacher.
pub(super) struct StudyTeacher {
    /// What the report says about it (`None`: no target needs a teacher).
    pub description: Option<StudyModel>,
    /// Its logits on the subset, row-major.
    pub logits: Option<Vec<f32>>,
    /// The folder of its snapshots along training, when known.
    pub snapshots: Option<PathBuf>,
}

/// The teacher's description, its logits on the subset (when a target needs them) and the
/// folder of its snapshots along training (when known): a checkpoint, a run's teacher, the
/// config's ONNX or checkpoint teacher, or the config's teacher trained here into `out`.
pub(super) fn teacher(
    request: &StudyRequest<'_>,
    inputs: &StudyInputs,
    device: &ComputeDevice,
    observer: &mut dyn TrainObserver,
    note: &mut dyn FnMut(&str),
) -> Result<StudyTeacher, StudyError> {
    let config = request.config;
    let seed = request.seed;
    let specs = request.targets;
    let run_teacher = request.run.map(|run| run_teacher(run, seed));
    let wants_snapshots = specs
        .iter()
        .any(|s| matches!(s, TargetSpec::TeacherCheckpoints(None)));
    let mut snapshot_dir = request
        .run
        .map(|run| RunLayout::new(run).seed(seed).epochs("teacher"));
    let needs_teacher = specs.iter().any(TargetSpec::needs_teacher) || wants_snapshots;
    let checkpoint = request
        .teacher
        .map(Path::to_path_buf)
        .or(run_teacher)
        .or_else(|| config.teacher.checkpoint.clone());
    if !needs_teacher {
        return Ok(StudyTeacher {
            description: None,
            logits: None,
            snapshots: snapshot_dir,
        });
    }
    if checkpoint.is_none()
        && let Some(settings) = config.teacher.onnx_config()
    {
        if wants_snapshots {
            return Err(invalid(format!(
                "teacher-checkpoints: the ONNX teacher {} has no checkpoints along its training",
                settings.path.display()
            )));
        }
        let (description, logits) = onnx_teacher_on_subset(&settings, inputs)?;
        return Ok(StudyTeacher {
            description: Some(description),
            logits: Some(logits),
            snapshots: snapshot_dir,
        });
    }
    let path = match checkpoint {
        Some(path) => path,
        None => {
            note(&format!(
                "training the teacher of seed {seed} (its checkpoints go to {})",
                request.out.display()
            ));
            let options = RunOptions {
                run_dir: request.out.to_path_buf(),
                data_path: None,
                device: device.clone(),
                save_checkpoints: true,
            };
            seed_teacher_with_snapshots(config, &options, &inputs.data, seed, Some(1), observer)?;
            let files = RunLayout::new(request.out).seed(seed);
            snapshot_dir = Some(files.epochs("teacher"));
            files.checkpoint("teacher")
        }
    };
    let teacher = load_participant(&path, inputs, device, true)?;
    let logits = predict_logits(&teacher.network, &teacher.inputs, device);
    Ok(StudyTeacher {
        description: Some(teacher.description),
        logits: Some(logits),
        snapshots: snapshot_dir,
    })
}

/// The ONNX teacher of `settings` on the measured subset (which it sees raw, with its own
/// preprocessing): its description and logits.
#[cfg(feature = "onnx")]
fn onnx_teacher_on_subset(
    settings: &crate::onnx::OnnxTeacherConfig,
    inputs: &StudyInputs,
) -> Result<(StudyModel, Vec<f32>), StudyError> {
    let subset = &inputs.raw_subset;
    let teacher = crate::experiment::load_onnx_teacher(settings, subset)?;
    let logits = teacher
        .logits(&subset.features)
        .map_err(|e| invalid(e.to_string()))?;
    let description = StudyModel {
        source: settings.path.display().to_string(),
        architecture: format!(
            "ONNX {}",
            settings
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ),
        parameters: teacher.parameter_count(),
        subset_accuracy: Some(accuracy(&logits, subset.num_classes, &subset.labels)),
    };
    Ok((description, logits))
}

/// Without the `onnx` feature an ONNX teacher cannot be run.
#[cfg(not(feature = "onnx"))]
fn onnx_teacher_on_subset(
    settings: &crate::onnx::OnnxTeacherConfig,
    _inputs: &StudyInputs,
) -> Result<(StudyModel, Vec<f32>), StudyError> {
    Err(invalid(format!(
        "teacher.onnx {}: this build has no ONNX support (the `onnx` feature)",
        settings.path.display()
    )))
}

//! The supervision-complexity study of one seed: how hard each set of targets is for the
//! student to learn, measured with the student's empirical NTK on a fixed subset of the
//! training inputs (see [`crate::complexity`]).
//!
//! The data are prepared exactly as a run prepares them for the seed; the student is a
//! checkpoint or the config's student at the very weights a run starts it from; the teacher is
//! a checkpoint, a finished run's, an ONNX model, or trained here exactly as a run trains it.
//! The study lives beside the runner, not under `complexity`, because training the teacher is
//! the runner's (and the runner imports `complexity`).

mod participants;
pub mod targets;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::backend::ComputeDevice;
use crate::checkpoint;
use crate::complexity::study::dump::{DumpInfo, write_kernel_dump};
use crate::complexity::study::report::{
    SCHEMA_VERSION, StudyData, StudyKernel, StudyReport, TargetRow, TargetSource,
};
use crate::complexity::study::{
    NamedTargets, measure_with_kernel, random_label_seed, stratified_subset, subset_seed,
    target_accuracy,
};
use crate::complexity::{KernelKind, Ntk, SolverOptions, empirical_ntk};
use crate::config::ExperimentConfig;
use crate::data::normalize::Normalization;
use crate::data::prepare::{load_raw, prepare};
use crate::distill::train::{TrainObserver, predict_logits};
use crate::fsutil::write_atomic;
use crate::layout::{RunLayout, epoch_of_checkpoint};

use participants::{StudyInputs, checkpoints_in, load_participant, student_at_init, teacher};
pub use targets::{DEFAULT_TARGETS, TargetList, TargetSpec, TargetsError};

/// Why a study stopped.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The subset cannot be drawn from the training split (e.g. larger than it).
    #[error("subset of {requested}: {message}")]
    Subset {
        /// Inputs asked for.
        requested: usize,
        /// Why.
        message: String,
    },
    /// Data, checkpoints, kernels, training.
    #[error(transparent)]
    Run(#[from] crate::Error),
}

impl From<crate::complexity::ComplexityError> for StudyError {
    fn from(error: crate::complexity::ComplexityError) -> Self {
        Self::Run(error.into())
    }
}

impl From<crate::checkpoint::CheckpointError> for StudyError {
    fn from(error: crate::checkpoint::CheckpointError) -> Self {
        Self::Run(error.into())
    }
}

impl From<crate::data::DataError> for StudyError {
    fn from(error: crate::data::DataError) -> Self {
        Self::Run(error.into())
    }
}

/// A setting or input the study cannot use.
fn invalid(message: impl Into<String>) -> StudyError {
    StudyError::Run(crate::Error::Invalid(message.into()))
}

/// What to measure, and where.
pub struct StudyRequest<'a> {
    /// The experiment (its data already pointing where they are).
    pub config: &'a ExperimentConfig,
    /// The experiment seed: the split, the student's initial weights and the teacher's training
    /// are those of a run with this seed.
    pub seed: u64,
    /// Number of training inputs measured (a seeded, stratified subset).
    pub subset: usize,
    /// The targets, in the order they are reported.
    pub targets: &'a [TargetSpec],
    /// A teacher checkpoint instead of the config's teacher.
    pub teacher: Option<&'a Path>,
    /// A finished run folder: its teacher of this seed, and its teacher snapshots.
    pub run: Option<&'a Path>,
    /// A student checkpoint (default: the config's student at its initial weights).
    pub student: Option<&'a Path>,
    /// The kernel.
    pub kernel: KernelKind,
    /// Ridge relative to the mean diagonal of the kernel.
    pub ridge: f64,
    /// Folder for complexity.json, complexity.png and a teacher trained here.
    pub out: &'a Path,
    /// Also write the inputs and the kernel to this safetensors file, and time the kernel as
    /// the median of three after a warm-up.
    pub dump_kernel: Option<&'a Path>,
}

/// What a study wrote.
pub struct StudyOutcome {
    /// The report, as written to `json`.
    pub report: StudyReport,
    /// `complexity.json`.
    pub json: PathBuf,
    /// `complexity.png`.
    pub png: PathBuf,
    /// The kernel file, when one was asked for.
    pub dump: Option<KernelDump>,
}

/// A kernel written for the PyTorch reference.
pub struct KernelDump {
    /// The file.
    pub path: PathBuf,
    /// The student checkpoint the reference rebuilds the network from.
    pub student: PathBuf,
    /// Rows (and columns) of the kernel.
    pub dim: usize,
}

/// The teacher checkpoint of `seed` in the run folder `run`.
pub fn run_teacher(run: &Path, seed: u64) -> PathBuf {
    RunLayout::new(run).seed(seed).checkpoint("teacher")
}

/// A set of targets with what the report says about its source.
struct Measured {
    targets: NamedTargets,
    source: TargetSource,
    temperature: Option<f64>,
    checkpoint: Option<String>,
    epoch: Option<usize>,
}

impl Measured {
    fn plain(targets: NamedTargets, source: TargetSource) -> Self {
        Self {
            targets,
            source,
            temperature: None,
            checkpoint: None,
            epoch: None,
        }
    }
}

/// Runs the study and writes `complexity.json` and `complexity.png` into `request.out` (and the
/// kernel file when asked). `observer` follows a teacher trained here; `note` hears where its
/// checkpoints go before it starts.
pub fn run_study(
    request: &StudyRequest<'_>,
    device: &ComputeDevice,
    observer: &mut dyn TrainObserver,
    note: &mut dyn FnMut(&str),
) -> Result<StudyOutcome, StudyError> {
    let config = request.config;
    let seed = request.seed;
    let specs = request.targets;

    // The seed's splits, normalised as a run does, and the same split unnormalised so that
    // each checkpoint sees the subset through its own recorded statistics.
    let raw = load_raw(&config.data, None)?;
    let data = prepare(&raw, &config.data, seed)?;
    let mut raw_config = config.data.clone();
    raw_config.normalization = Normalization::None;
    let raw_train = prepare(&raw, &raw_config, seed)?.train;
    drop(raw);
    let classes = data.train.num_classes;
    let subset_seed = subset_seed(seed);
    let indices = stratified_subset(&data.train.labels, classes, request.subset, subset_seed)
        .map_err(|e| StudyError::Subset {
            requested: request.subset,
            message: e.to_string(),
        })?;
    let inputs = StudyInputs {
        raw_subset: raw_train.subset(&indices, "subset"),
        data,
        indices,
        subset_seed,
    };
    let labels = inputs.raw_subset.labels.clone();

    let student = match request.student {
        Some(path) => load_participant(path, &inputs, device, false)?,
        None => student_at_init(config, &inputs, seed, device)?,
    };
    let teacher = teacher(request, &inputs, device, observer, note)?;
    let (teacher_logits, snapshot_dir) = (teacher.logits, teacher.snapshots);

    // The targets, in the order asked for.
    let mut measured: Vec<Measured> = Vec::new();
    for spec in specs {
        match spec {
            TargetSpec::Labels => measured.push(Measured::plain(
                NamedTargets::labels(&labels, classes)?,
                TargetSource::Labels,
            )),
            TargetSpec::Random => measured.push(Measured::plain(
                NamedTargets::random_labels(labels.len(), classes, random_label_seed(seed))?,
                TargetSource::Random,
            )),
            TargetSpec::Uniform => measured.push(Measured::plain(
                NamedTargets::uniform(labels.len(), classes)?,
                TargetSource::Uniform,
            )),
            TargetSpec::Teacher(temperatures) => {
                let logits = teacher_logits.as_deref().unwrap_or_default();
                for &t in temperatures {
                    measured.push(Measured {
                        temperature: Some(t),
                        ..Measured::plain(
                            NamedTargets::teacher(logits, classes, t)?,
                            TargetSource::Teacher,
                        )
                    });
                }
            }
            TargetSpec::Kd => {
                let logits = teacher_logits.as_deref().unwrap_or_default();
                let t = config.distill.temperature.fixed().ok_or_else(|| {
                    invalid(
                        "distill.temperature: the kd target needs a number, not \"auto\" (give --targets teacher:T for a grid)",
                    )
                })?;
                let alpha = config.distill.alpha;
                measured.push(Measured {
                    temperature: Some(t),
                    ..Measured::plain(
                        NamedTargets::kd_mixture(&labels, logits, classes, alpha, t)?,
                        TargetSource::Method,
                    )
                });
            }
            TargetSpec::TeacherCheckpoints(dir) => {
                let dir = match dir.as_ref().or(snapshot_dir.as_ref()) {
                    Some(dir) => dir.clone(),
                    None => {
                        return Err(invalid(
                            "teacher-checkpoints needs a folder (teacher-checkpoints:DIR) unless the teacher \
                             is trained here or comes from a run folder",
                        ));
                    }
                };
                for path in checkpoints_in(&dir)? {
                    let (network, meta) = checkpoint::load(&path, device)?;
                    let subset = inputs.for_checkpoint(&path, &meta)?;
                    let logits = predict_logits(&network, &subset, device);
                    let stem = path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    measured.push(Measured {
                        temperature: Some(1.0),
                        checkpoint: Some(path.display().to_string()),
                        epoch: epoch_of_checkpoint(&path),
                        ..Measured::plain(
                            NamedTargets::softened(
                                format!("teacher {stem}"),
                                &logits,
                                classes,
                                1.0,
                            )?,
                            TargetSource::TeacherCheckpoint,
                        )
                    });
                }
            }
        }
    }

    // The kernel: timed once, or as the median of three after a warm-up when it is dumped for
    // the speed comparison.
    let student_inputs = &student.inputs.features;
    let timed = || -> Result<(Ntk, f64), StudyError> {
        let started = Instant::now();
        let kernel = empirical_ntk(&student.network, student_inputs, request.kernel)?;
        Ok((kernel, started.elapsed().as_secs_f64()))
    };
    let (kernel, seconds) = if request.dump_kernel.is_some() {
        timed()?;
        let mut runs = vec![timed()?, timed()?, timed()?];
        runs.sort_by(|a, b| a.1.total_cmp(&b.1));
        runs.swap_remove(1)
    } else {
        timed()?
    };
    let options = SolverOptions {
        relative_ridge: request.ridge,
        ..SolverOptions::default()
    };
    let named: Vec<NamedTargets> = measured.iter().map(|m| m.targets.clone()).collect();
    let results = measure_with_kernel(&kernel, &named, &options)?;
    let first = &results[0];

    let mut rows = Vec::with_capacity(results.len());
    for (m, result) in measured.iter().zip(results.iter()) {
        rows.push(TargetRow {
            source: m.source,
            temperature: m.temperature,
            checkpoint: m.checkpoint.clone(),
            epoch: m.epoch,
            accuracy: match m.source {
                TargetSource::Uniform => None,
                _ => Some(target_accuracy(&m.targets.targets, &labels)?),
            },
            measured: result.clone(),
        });
    }
    let report = StudyReport {
        schema_version: SCHEMA_VERSION,
        experiment: config.name.clone(),
        data: StudyData {
            name: inputs.data.train.name.clone(),
            classes,
            train_samples: inputs.data.train.len(),
            seed,
            subset_size: inputs.indices.len(),
            subset_seed: inputs.subset_seed,
            subset_indices: inputs.indices.clone(),
        },
        student: student.description.clone(),
        teacher: teacher.description,
        kernel: StudyKernel {
            kind: request.kernel,
            examples: kernel.examples(),
            outputs: kernel.outputs(),
            trace: first.kernel_trace,
            ridge: first.ridge,
            relative_ridge: first.relative_ridge,
            condition_number: first.condition_number,
            condition_method: first.condition_method,
            seconds,
        },
        targets: rows,
    };
    let write = |path: &Path, bytes: &[u8]| {
        write_atomic(path, bytes).map_err(|source| {
            StudyError::Run(crate::Error::Io {
                path: path.to_path_buf(),
                source,
            })
        })
    };
    let json = request.out.join("complexity.json");
    let text = report
        .to_json()
        .map_err(|e| invalid(format!("complexity.json: {e}")))?;
    write(&json, text.as_bytes())?;
    let png = request.out.join("complexity.png");
    let image = crate::complexity::study::plot::render_png(&report)
        .map_err(|e| invalid(format!("complexity.png: {e}")))?;
    write(&png, &image)?;

    let dump = match request.dump_kernel {
        Some(path) => {
            // The reference rebuilds the network from a checkpoint: a student at its initial
            // weights is saved next to the results for it.
            let student_file = match &student.checkpoint {
                Some(path) => path.clone(),
                None => {
                    let file = request.out.join("student-init.safetensors");
                    checkpoint::save(
                        &file,
                        &student.network,
                        &participants::checkpoint_meta(config, &inputs.data, "student-init", seed),
                    )?;
                    file
                }
            };
            let info = DumpInfo {
                kind: request.kernel,
                examples: kernel.examples(),
                outputs: kernel.outputs(),
                checkpoint: Some(student_file.display().to_string()),
                computed_by: "apprentice".to_owned(),
                seconds: Some(seconds),
            };
            write_kernel_dump(
                path,
                student_inputs,
                student.inputs.shape.len(),
                &kernel,
                &info,
            )?;
            Some(KernelDump {
                path: path.to_path_buf(),
                student: student_file,
                dim: kernel.dim(),
            })
        }
        None => None,
    };
    Ok(StudyOutcome {
        report,
        json,
        png,
        dump,
    })
}

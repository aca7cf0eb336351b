//! `apprentice complexity`: how hard each set of targets is for the student to learn, measured
//! by the supervision complexity with the student's empirical NTK on a fixed subset of the
//! training inputs (see `apprentice::complexity`).
//!
//! The data are prepared exactly as `apprentice run` prepares them for the seed; the student is
//! a checkpoint or the config's student at the very weights `apprentice run` starts it from;
//! the teacher is a checkpoint, a finished run's, or trained here exactly as `run` trains it.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use apprentice::backend::ComputeDevice;
use apprentice::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CheckpointMeta};
use apprentice::complexity::study::dump::{DumpInfo, write_kernel_dump};
use apprentice::complexity::study::report::{
    SCHEMA_VERSION, StudyData, StudyKernel, StudyModel, StudyReport, TargetRow, TargetSource,
};
use apprentice::complexity::study::{
    NamedTargets, measure_with_kernel, random_label_seed, stratified_subset, subset_seed,
    target_accuracy,
};
use apprentice::complexity::{KernelKind, SolverOptions, empirical_ntk};
use apprentice::config::{ExperimentConfig, ModelConfig};
use apprentice::data::Dataset;
use apprentice::data::normalize::Normalization;
use apprentice::data::prepare::{PreparedData, load_raw, prepare};
use apprentice::distill::train::predict_logits;
use apprentice::experiment::{RunOptions, seed_teacher_with_snapshots, student_init_seed};
use apprentice::fsutil::{create_unique_dir, utc_timestamp, write_atomic};
use apprentice::layout::{RunLayout, epoch_of_checkpoint};
use apprentice::models::Network;

use crate::progress::Bars;

/// The targets measured when `--targets` is not given.
const DEFAULT_TARGETS: &str = "labels,random,uniform,teacher:T=1,2,4,8,16";

/// Arguments of `apprentice complexity`.
#[derive(clap::Args)]
pub struct ComplexityArgs {
    /// Experiment file (TOML). Without it, the quickstart on the embedded digits.
    config: Option<PathBuf>,
    /// Data folder or file, overriding `data.path`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The experiment seed: the split, the student's initial weights and the teacher's training
    /// are those of `apprentice run` with this seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of training inputs measured (a seeded, stratified subset).
    #[arg(long, default_value_t = 500)]
    subset: usize,
    /// Comma-separated targets: labels, random, uniform (1/C everywhere), teacher (T = 1), teacher:T=1,2,4 (one per
    /// temperature), kd (the config's KD mixture α·labels + (1 − α)·teacher at T),
    /// teacher-checkpoints[:DIR] (every *.safetensors in DIR, in name order; without DIR, the
    /// snapshots of the teacher used here).
    #[arg(long, default_value = DEFAULT_TARGETS)]
    targets: String,
    /// Teacher checkpoint (instead of the config's teacher).
    #[arg(long, conflicts_with = "run")]
    teacher: Option<PathBuf>,
    /// A finished `apprentice run` folder: its teacher of this seed, and its teacher snapshots
    /// for `teacher-checkpoints` when it has them.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Student checkpoint whose kernel is measured (default: the config's student at its
    /// initial weights for this seed).
    #[arg(long)]
    student: Option<PathBuf>,
    /// `trace` (n × n, the default) or `block` (nC × nC) kernel.
    #[arg(long, default_value = "trace")]
    kernel: String,
    /// Ridge relative to the mean diagonal of the kernel.
    #[arg(long, default_value_t = SolverOptions::default().relative_ridge)]
    ridge: f64,
    /// Folder for complexity.json and complexity.png (default: a new folder under runs/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the inputs and the kernel to this safetensors file (for the PyTorch
    /// reference), and time the kernel (median of three after a warm-up).
    #[arg(long)]
    dump_kernel: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
}

/// One entry of `--targets`.
#[derive(Debug, Clone, PartialEq)]
enum TargetSpec {
    Labels,
    Random,
    Uniform,
    Teacher(Vec<f64>),
    Kd,
    TeacherCheckpoints(Option<PathBuf>),
}

impl TargetSpec {
    fn needs_teacher(&self) -> bool {
        matches!(self, TargetSpec::Teacher(_) | TargetSpec::Kd)
    }
}

fn parse_temperature(text: &str) -> anyhow::Result<f64> {
    match text.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => Ok(t),
        _ => bail!("--targets: temperature {text:?} is not a positive number"),
    }
}

/// Parses `--targets`. Bare numbers continue the temperature list of the `teacher:T=` before
/// them, so that `teacher:T=1,2,4` reads as one entry.
fn parse_targets(text: &str) -> anyhow::Result<Vec<TargetSpec>> {
    let mut specs: Vec<TargetSpec> = Vec::new();
    for token in text.split(',').map(str::trim) {
        if token.is_empty() {
            bail!("--targets: empty entry in {text:?}");
        }
        if let Some(TargetSpec::Teacher(temperatures)) = specs.last_mut()
            && token.parse::<f64>().is_ok()
        {
            temperatures.push(parse_temperature(token)?);
            continue;
        }
        let spec = match token {
            "labels" => TargetSpec::Labels,
            "random" => TargetSpec::Random,
            "uniform" => TargetSpec::Uniform,
            "teacher" => TargetSpec::Teacher(vec![1.0]),
            "kd" => TargetSpec::Kd,
            "teacher-checkpoints" => TargetSpec::TeacherCheckpoints(None),
            _ => {
                if let Some(rest) = token.strip_prefix("teacher:") {
                    let value = rest.strip_prefix("T=").ok_or_else(|| {
                        anyhow!("--targets: expected teacher:T=<temperatures>, found {token:?}")
                    })?;
                    TargetSpec::Teacher(vec![parse_temperature(value)?])
                } else if let Some(dir) = token.strip_prefix("teacher-checkpoints:") {
                    if dir.is_empty() {
                        bail!("--targets: teacher-checkpoints: needs a folder after the colon");
                    }
                    TargetSpec::TeacherCheckpoints(Some(PathBuf::from(dir)))
                } else {
                    bail!(
                        "--targets: unknown target {token:?}; expected labels, random, uniform, teacher, \
                         teacher:T=<t1>,<t2>,..., kd or teacher-checkpoints[:DIR]"
                    );
                }
            }
        };
        specs.push(spec);
    }
    if specs.is_empty() {
        bail!("--targets: expected at least one target");
    }
    Ok(specs)
}

fn parse_kernel(text: &str) -> anyhow::Result<KernelKind> {
    match text {
        "trace" => Ok(KernelKind::Trace),
        "block" => Ok(KernelKind::Block),
        other => bail!("--kernel: expected trace or block, found {other:?}"),
    }
}

/// A model used in the study, with the inputs of the subset as it expects them.
struct Participant {
    network: Network,
    /// The subset's inputs normalised with the model's own statistics.
    inputs: Dataset,
    description: StudyModel,
    checkpoint: Option<PathBuf>,
}

/// The ONNX teacher of `settings` on the measured subset (which it sees raw, with its own
/// preprocessing): its description and logits.
fn onnx_teacher_on_subset(
    settings: &apprentice::onnx::OnnxTeacherConfig,
    inputs: &StudyInputs,
) -> anyhow::Result<(StudyModel, Vec<f32>)> {
    let subset = &inputs.raw_subset;
    let teacher = apprentice::experiment::load_onnx_teacher(settings, subset)?;
    let logits = teacher
        .logits(&subset.features)
        .map_err(|e| anyhow!("{e}"))?;
    let classes = subset.num_classes;
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
        subset_accuracy: Some(apprentice::eval::metrics::accuracy(
            &logits,
            classes,
            &subset.labels,
        )),
    };
    Ok((description, logits))
}

/// Everything a study reads from the data.
struct StudyInputs {
    /// The seed's splits, normalised as `apprentice run` normalises them.
    data: PreparedData,
    /// The measured subset before normalisation, so that every checkpoint can apply its own.
    raw_subset: Dataset,
    indices: Vec<usize>,
    subset_seed: u64,
}

impl StudyInputs {
    /// The subset normalised with the statistics a checkpoint recorded.
    fn for_checkpoint(&self, path: &Path, meta: &CheckpointMeta) -> anyhow::Result<Dataset> {
        let train = &self.data.train;
        if meta.input_shape != train.shape || meta.num_classes != train.num_classes {
            bail!(
                "{}: the model takes {} inputs and {} classes, but {} has {} inputs and {} classes",
                path.display(),
                meta.input_shape.len(),
                meta.num_classes,
                train.name,
                train.shape.len(),
                train.num_classes
            );
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

fn load_participant(
    path: &Path,
    inputs: &StudyInputs,
    device: &ComputeDevice,
    accuracy: bool,
) -> anyhow::Result<Participant> {
    let (network, meta) = checkpoint::load(path, device)?;
    let subset = inputs.for_checkpoint(path, &meta)?;
    let subset_accuracy = accuracy.then(|| {
        let logits = predict_logits(&network, &subset, device);
        apprentice::eval::metrics::accuracy(&logits, meta.num_classes, &subset.labels)
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

fn checkpoint_meta(
    config: &ExperimentConfig,
    data: &PreparedData,
    model: &ModelConfig,
    name: &str,
    seed: u64,
) -> CheckpointMeta {
    CheckpointMeta {
        format_version: CHECKPOINT_FORMAT_VERSION,
        spec: model.model.clone(),
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

/// Trains the config's teacher exactly as `apprentice run` does for `seed`, keeping it and its
/// state after every epoch in `out` laid out as a run folder (`seed-S/teacher.safetensors`,
/// `seed-S/teacher.epochs/epoch-NNNN.safetensors`); returns both paths.
fn train_teacher(
    config: &ExperimentConfig,
    inputs: &StudyInputs,
    seed: u64,
    out: &Path,
    device: &ComputeDevice,
    quiet: bool,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let options = RunOptions {
        run_dir: out.to_path_buf(),
        data_path: None,
        device: device.clone(),
        save_checkpoints: true,
    };
    let mut bars = Bars::new(quiet);
    seed_teacher_with_snapshots(config, &options, &inputs.data, seed, Some(1), &mut bars)?;
    let files = RunLayout::new(out).seed(seed);
    Ok((files.checkpoint("teacher"), files.epochs("teacher")))
}

/// Every `*.safetensors` in `dir`, in name order.
fn checkpoints_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        anyhow!(
            "teacher-checkpoints: {}: expected a folder of checkpoints ({e})",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "teacher-checkpoints: {}: no .safetensors files in it",
            dir.display()
        );
    }
    Ok(files)
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

/// Runs `apprentice complexity`.
pub fn complexity(args: ComplexityArgs) -> anyhow::Result<()> {
    // Everything the user typed is checked before any data is read or any model trained.
    let specs = parse_targets(&args.targets)?;
    let kind = parse_kernel(&args.kernel)?;
    if !(args.ridge.is_finite() && args.ridge >= 0.0) {
        bail!(
            "--ridge: expected a number at or above zero, found {}",
            args.ridge
        );
    }
    if args.subset == 0 {
        bail!("--subset: expected at least one input");
    }
    let mut config = match &args.config {
        Some(path) => ExperimentConfig::from_file(path)?,
        None => {
            ExperimentConfig::from_toml(crate::QUICKSTART, "configs/quickstart.toml (embedded)")?
        }
    };
    if let Some(path) = &args.data {
        config.data.path = Some(path.clone());
    }
    let seed = args.seed;
    let device = ComputeDevice::new(config.device).map_err(|e| anyhow!("device: {e}"))?;
    let run_teacher = args
        .run
        .as_ref()
        .map(|run| RunLayout::new(run).seed(seed).checkpoint("teacher"));
    if let (Some(run), Some(path)) = (&args.run, &run_teacher)
        && !path.is_file()
    {
        bail!(
            "--run {}: no teacher checkpoint for seed {seed} (expected {})",
            run.display(),
            path.display()
        );
    }

    let out = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow!("--out: cannot create {}: {e}", dir.display()))?;
            dir.clone()
        }
        None => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let stem = format!("complexity-{}-{}", config.name, utc_timestamp(now));
            create_unique_dir(Path::new("runs"), &stem)
                .map_err(|e| anyhow!("cannot create a folder in runs: {e}"))?
        }
    };

    // The seed's splits, normalised as `apprentice run` does, and the same split unnormalised
    // so that each checkpoint sees the subset through its own recorded statistics.
    let raw = load_raw(&config.data, None)?;
    let data = prepare(&raw, &config.data, seed)?;
    let mut raw_config = config.data.clone();
    raw_config.normalization = Normalization::None;
    let raw_train = prepare(&raw, &raw_config, seed)?.train;
    drop(raw);
    let classes = data.train.num_classes;
    let subset_seed = subset_seed(seed);
    let indices = stratified_subset(&data.train.labels, classes, args.subset, subset_seed)
        .map_err(|e| anyhow!("--subset {}: {e}", args.subset))?;
    let inputs = StudyInputs {
        raw_subset: raw_train.subset(&indices, "subset"),
        data,
        indices,
        subset_seed,
    };
    let labels = inputs.raw_subset.labels.clone();

    // The student.
    let student = match &args.student {
        Some(path) => load_participant(path, &inputs, &device, false)?,
        None => {
            let network = Network::new(
                &config.student.model,
                inputs.data.train.shape,
                classes,
                student_init_seed(seed),
                &device.inference(),
            )
            .map_err(|message| anyhow!("student.model: {message}"))?;
            Participant {
                description: StudyModel {
                    source: format!("initial weights of seed {seed}"),
                    architecture: config
                        .student
                        .model
                        .describe(inputs.data.train.shape.len(), classes),
                    parameters: network.parameter_count(),
                    subset_accuracy: None,
                },
                network,
                inputs: inputs.for_run(),
                checkpoint: None,
            }
        }
    };

    // The teacher, when a target needs it.
    let wants_snapshots = specs
        .iter()
        .any(|s| matches!(s, TargetSpec::TeacherCheckpoints(None)));
    let mut snapshot_dir: Option<PathBuf> = args
        .run
        .as_ref()
        .map(|run| RunLayout::new(run).seed(seed).epochs("teacher"));
    let needs_teacher = specs.iter().any(TargetSpec::needs_teacher) || wants_snapshots;
    let onnx_teacher = match (&args.teacher, &run_teacher, &config.teacher.checkpoint) {
        (None, None, None) => config.teacher.onnx_config(),
        _ => None,
    };
    let (teacher_description, teacher_logits) = match onnx_teacher {
        Some(settings) if needs_teacher => {
            if wants_snapshots {
                bail!(
                    "--targets: teacher-checkpoints: the ONNX teacher {} has no checkpoints along its training",
                    settings.path.display()
                );
            }
            let (description, logits) = onnx_teacher_on_subset(&settings, &inputs)?;
            (Some(description), Some(logits))
        }
        _ => {
            let teacher = if needs_teacher {
                let path = match (&args.teacher, &run_teacher, &config.teacher.checkpoint) {
                    (Some(path), _, _) | (None, Some(path), _) | (None, None, Some(path)) => {
                        path.clone()
                    }
                    (None, None, None) => {
                        if !args.quiet {
                            eprintln!(
                                "training the teacher of seed {seed} (its checkpoints go to {})",
                                out.display()
                            );
                        }
                        let (teacher, snapshots) =
                            train_teacher(&config, &inputs, seed, &out, &device, args.quiet)?;
                        snapshot_dir = Some(snapshots);
                        teacher
                    }
                };
                Some(load_participant(&path, &inputs, &device, true)?)
            } else {
                None
            };
            let logits = teacher
                .as_ref()
                .map(|t| predict_logits(&t.network, &t.inputs, &device));
            (teacher.map(|t| t.description), logits)
        }
    };

    // The targets, in the order asked for.
    let mut measured: Vec<Measured> = Vec::new();
    for spec in &specs {
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
                    anyhow::anyhow!(
                        "distill.temperature: the kd target needs a number, not \"auto\" (give --targets teacher:T for a grid)"
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
                    None => bail!(
                        "--targets: teacher-checkpoints needs a folder (teacher-checkpoints:DIR) \
                         unless the teacher is trained here or comes from --run"
                    ),
                };
                for path in checkpoints_in(&dir)? {
                    let (network, meta) = checkpoint::load(&path, &device)?;
                    let subset = inputs.for_checkpoint(&path, &meta)?;
                    let logits = predict_logits(&network, &subset, &device);
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
    let timed = || -> anyhow::Result<(apprentice::complexity::Ntk, f64)> {
        let started = Instant::now();
        let kernel = empirical_ntk(&student.network, student_inputs, kind)?;
        Ok((kernel, started.elapsed().as_secs_f64()))
    };
    let (kernel, seconds) = if args.dump_kernel.is_some() {
        timed()?;
        let mut runs = vec![timed()?, timed()?, timed()?];
        runs.sort_by(|a, b| a.1.total_cmp(&b.1));
        runs.swap_remove(1)
    } else {
        timed()?
    };
    let options = SolverOptions {
        relative_ridge: args.ridge,
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
        teacher: teacher_description,
        kernel: StudyKernel {
            kind,
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
    let json_path = out.join("complexity.json");
    let json = report
        .to_json()
        .map_err(|e| anyhow!("complexity.json: {e}"))?;
    write_atomic(&json_path, json.as_bytes())
        .map_err(|e| anyhow!("{}: {e}", json_path.display()))?;
    let png_path = out.join("complexity.png");
    let png = apprentice::complexity::study::plot::render_png(&report)
        .map_err(|e| anyhow!("complexity.png: {e}"))?;
    write_atomic(&png_path, &png).map_err(|e| anyhow!("{}: {e}", png_path.display()))?;

    if let Some(dump) = &args.dump_kernel {
        // The reference rebuilds the network from a checkpoint: a student at its initial
        // weights is saved next to the results for it.
        let checkpoint = match &student.checkpoint {
            Some(path) => path.clone(),
            None => {
                let path = out.join("student-init.safetensors");
                let model = &config.student;
                checkpoint::save(
                    &path,
                    &student.network,
                    &checkpoint_meta(&config, &inputs.data, model, "student-init", seed),
                )?;
                path
            }
        };
        let info = DumpInfo {
            kind,
            examples: kernel.examples(),
            outputs: kernel.outputs(),
            checkpoint: Some(checkpoint.display().to_string()),
            computed_by: "apprentice".to_owned(),
            seconds: Some(seconds),
        };
        write_kernel_dump(
            dump,
            student_inputs,
            student.inputs.shape.len(),
            &kernel,
            &info,
        )?;
        println!(
            "kernel: {} inputs, {} kernel of {} × {} in {:.4} s (median of 3) -> {} (student {})",
            kernel.examples(),
            args.kernel,
            kernel.dim(),
            kernel.dim(),
            seconds,
            dump.display(),
            checkpoint.display()
        );
    }
    println!("{}", report.table());
    println!("results: {}", json_path.display());
    println!("plot: {}", png_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures_continue_the_teacher_entry() {
        let specs =
            parse_targets("labels,random,teacher:T=1,2,4.5,kd,teacher-checkpoints:x/y").unwrap();
        assert_eq!(
            specs,
            vec![
                TargetSpec::Labels,
                TargetSpec::Random,
                TargetSpec::Teacher(vec![1.0, 2.0, 4.5]),
                TargetSpec::Kd,
                TargetSpec::TeacherCheckpoints(Some(PathBuf::from("x/y"))),
            ]
        );
    }

    #[test]
    fn bad_entries_are_named() {
        for (text, needle) in [
            ("labels,oops", "\"oops\""),
            ("teacher:T=0", "\"0\""),
            ("teacher:T=2,-1", "\"-1\""),
            ("labels,,random", "empty entry"),
            ("teacher:4", "teacher:T="),
            ("3", "\"3\""),
        ] {
            let error = parse_targets(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
            assert!(error.starts_with("--targets"), "{text}: {error}");
        }
    }

    #[test]
    fn snapshot_epochs_come_from_the_file_name() {
        assert_eq!(
            epoch_of_checkpoint(Path::new("a/epoch-0012.safetensors")),
            Some(12)
        );
        assert_eq!(
            epoch_of_checkpoint(Path::new("a/teacher.safetensors")),
            None
        );
    }
}

//! One experiment: per seed, a teacher, the student from scratch and the same student distilled,
//! for every configured label fraction; then metrics aggregated over seeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::data::{PreparedData, RawData, load_raw, prepare};
use crate::backend::ComputeDevice;
use crate::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CheckpointMeta};
use crate::config::{ExperimentConfig, ModelConfig, Transfer};
use crate::data::batch::mix_seed;
use crate::data::split::stratified_subset_indices;
use crate::distill::state::{Checkpointing, sha256_hex};
use crate::distill::train::{
    Supervision, TeacherSignal, TrainObserver, TrainOutcome, TrainSettings, TrainingSet,
    predict_logits, train,
};
use crate::error::{Error, Result};
use crate::eval::metrics::{Metrics, accuracy, evaluate};
use crate::fsutil::write_atomic;
use crate::models::{ModelSpec, Network};
use crate::report::results::{
    Curve, DataSummary, ModelResult, Results, Role, SCHEMA_VERSION, Summary, TestSummary,
};

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run folder (created by the caller); checkpoints and results go there.
    pub run_dir: PathBuf,
    /// Overrides `data.path`.
    pub data_path: Option<PathBuf>,
    /// Compute device.
    pub device: ComputeDevice,
    /// Write a checkpoint of every trained model, and mid-training states that make the run
    /// resumable. Models already finished in `run_dir` (a resumed run) are reused, not retrained.
    pub save_checkpoints: bool,
}

/// One trained model's numbers for one seed; also written beside its checkpoint
/// (`<model>.record.json`) so that a resumed run does not train it again.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SeedRecord {
    role: Role,
    method: String,
    label_fraction: f64,
    transfer: Option<Transfer>,
    architecture: String,
    params: usize,
    metrics: Metrics,
    validation_accuracy: f64,
    wall_time_s: f64,
    epochs_run: usize,
    #[serde(default)]
    skipped_batches: usize,
    curve: Curve,
}

/// Runs the whole experiment and writes `results.json` into the run folder.
pub fn run_experiment(
    config: &ExperimentConfig,
    options: &RunOptions,
    observer: &mut dyn TrainObserver,
) -> Result<Results> {
    let raw = load_raw(&config.data, options.data_path.as_deref())?;
    let mut records: BTreeMap<String, Vec<SeedRecord>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut data_summary = None;
    for &seed in &config.seeds {
        let data = prepare(&raw, &config.data, seed)?;
        data_summary.get_or_insert_with(|| DataSummary {
            name: data_name(&raw),
            num_classes: data.train.num_classes,
            train: data.train.len(),
            validation: data.validation.len(),
            test: data.test.len(),
            sample_shape: [
                data.train.shape.channels,
                data.train.shape.height,
                data.train.shape.width,
            ],
        });
        for (name, record) in run_seed(config, options, &data, seed, observer)? {
            if !records.contains_key(&name) {
                order.push(name.clone());
            }
            records.entry(name).or_default().push(record);
        }
    }
    let models = order
        .iter()
        .map(|name| summarise(name, &records[name]))
        .collect();
    let results = Results {
        schema_version: SCHEMA_VERSION,
        experiment: config.name.clone(),
        created_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        apprentice_version: env!("CARGO_PKG_VERSION").to_string(),
        seeds: config.seeds.clone(),
        data: data_summary.expect("at least one seed ran"),
        models,
        config: serde_json::to_value(config).map_err(|e| Error::Invalid(e.to_string()))?,
    };
    let path = options.run_dir.join("results.json");
    write_atomic(&path, results.to_json_pretty().as_bytes())
        .map_err(|source| Error::Io { path, source })?;
    Ok(results)
}

fn data_name(raw: &RawData) -> String {
    match raw {
        RawData::Pool(pool) => pool.name.clone(),
        RawData::Official { train, .. } => train.name.trim_end_matches("/train").to_string(),
    }
}

/// The display suffix of a label fraction: empty for all labels, `@5%` otherwise.
pub fn fraction_suffix(fraction: f64) -> String {
    if fraction >= 1.0 {
        String::new()
    } else {
        let percent = fraction * 100.0;
        if (percent - percent.round()).abs() < 1e-9 {
            format!("@{}%", percent.round())
        } else {
            format!("@{percent}%")
        }
    }
}

/// The seed of a student's initial weights in the experiment of `seed`: every student of a seed
/// (scratch and distilled alike) starts from these weights.
pub fn student_init_seed(seed: u64) -> u64 {
    mix_seed(seed, 0x57d0_0001)
}

/// The seed of a student's data order and dropout masks in the experiment of `seed`.
pub fn student_order_seed(seed: u64) -> u64 {
    mix_seed(seed, 0x57d0_0002)
}

/// The seed of the teacher's initial weights in the experiment of `seed`.
pub fn teacher_init_seed(seed: u64) -> u64 {
    mix_seed(seed, 0x7eac_0001)
}

/// The seed of the teacher's data order and dropout masks in the experiment of `seed`.
pub fn teacher_order_seed(seed: u64) -> u64 {
    mix_seed(seed, 0x7eac_0002)
}

/// The seed of the labelled subset drawn for label fractions below 1 in the experiment of `seed`.
pub fn label_subset_seed(seed: u64) -> u64 {
    mix_seed(seed, 0x1abe_0001)
}

/// What one seed's runs share.
struct SeedContext<'a> {
    config: &'a ExperimentConfig,
    options: &'a RunOptions,
    data: &'a PreparedData,
    seed: u64,
    fill: Vec<f32>,
    seed_dir: PathBuf,
}

/// How a model is trained.
struct Job<'a> {
    name: String,
    role: Role,
    method: String,
    label_fraction: f64,
    transfer: Option<Transfer>,
    model_config: &'a ModelConfig,
    init_seed: u64,
    order_seed: u64,
    set: TrainingSet<'a>,
    supervision: Supervision<'a>,
    /// What the targets depend on beyond the settings (the teacher's weights), for the
    /// checkpoint fingerprint.
    teacher_digest: Option<&'a str>,
    /// The teacher's test logits, for agreement and KL (none for the teacher itself).
    teacher_test_logits: Option<&'a [f32]>,
}

impl SeedContext<'_> {
    fn path(&self, name: &str, extension: &str) -> PathBuf {
        self.seed_dir
            .join(format!("{}.{extension}", file_stem(name)))
    }

    fn meta(&self, name: &str, spec: &ModelSpec) -> CheckpointMeta {
        CheckpointMeta {
            format_version: CHECKPOINT_FORMAT_VERSION,
            spec: spec.clone(),
            input_shape: self.data.train.shape,
            num_classes: self.data.train.num_classes,
            normalizer: self.data.normalizer.clone(),
            name: name.to_string(),
            seed: self.seed,
            data: self.data.train.name.clone(),
            data_config: self.config.data.clone(),
        }
    }

    /// A model finished by an earlier session of this run, if its checkpoint and record are
    /// both there.
    fn finished(&self, name: &str) -> Result<Option<(Network, SeedRecord)>> {
        if !self.options.save_checkpoints {
            return Ok(None);
        }
        let record_path = self.path(name, "record.json");
        let model_path = self.path(name, "safetensors");
        if !record_path.is_file() || !model_path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&record_path).map_err(|source| Error::Io {
            path: record_path.clone(),
            source,
        })?;
        let record: SeedRecord = serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!("{}: damaged record: {e}", record_path.display()))
        })?;
        let (network, _) = checkpoint::load(&model_path, &self.options.device)?;
        Ok(Some((network, record)))
    }

    /// Trains a job, or takes it from an earlier session; saves its checkpoint and record.
    fn run(&self, job: Job<'_>, observer: &mut dyn TrainObserver) -> Result<(Network, SeedRecord)> {
        if let Some(done) = self.finished(&job.name)? {
            return Ok(done);
        }
        let data = self.data;
        let network = Network::new(
            &job.model_config.model,
            data.train.shape,
            data.train.num_classes,
            job.init_seed,
            &self.options.device.training(),
        )
        .map_err(|message| Error::Invalid(format!("{}: {message}", job.name)))?;
        let identity = serde_json::json!({
            "name": job.name,
            "seed": self.seed,
            "init_seed": job.init_seed,
            "order_seed": job.order_seed,
            "model": job.model_config,
            "augment": self.config.augment,
            "distill": matches!(job.supervision, Supervision::Distill { .. }).then_some(&self.config.distill),
            "label_fraction": job.label_fraction,
            "transfer": job.transfer,
            "data": [&data.train.name, &data.train.len().to_string(), &data.validation.len().to_string()],
            "teacher": job.teacher_digest,
        });
        let checkpointing = self.options.save_checkpoints.then(|| Checkpointing {
            dir: self.path(&job.name, "state"),
            every_steps: self.config.checkpoint.every_steps,
            keep_last: self.config.checkpoint.keep_last,
            identity: sha256_hex(identity.to_string().as_bytes()),
        });
        let settings = TrainSettings {
            train: &job.model_config.train,
            optimizer: &job.model_config.optimizer,
            augmentation: self.config.augment,
            fill: &self.fill,
            seed: job.order_seed,
            on_nan: self.config.on_nan,
            checkpointing: checkpointing.as_ref(),
        };
        let title = format!("seed {} · {}", self.seed, job.name);
        let outcome = train(
            &title,
            network,
            &job.set,
            &job.supervision,
            &settings,
            &self.options.device,
            observer,
        )?;
        let record = record_for(&job, &outcome, data, &self.options.device, self.seed);
        if self.options.save_checkpoints {
            checkpoint::save(
                &self.path(&job.name, "safetensors"),
                &outcome.model,
                &self.meta(&job.name, &job.model_config.model),
            )?;
            let record_path = self.path(&job.name, "record.json");
            let json =
                serde_json::to_vec_pretty(&record).map_err(|e| Error::Invalid(e.to_string()))?;
            write_atomic(&record_path, &json).map_err(|source| Error::Io {
                path: record_path,
                source,
            })?;
            if let Some(checkpointing) = &checkpointing {
                // The finished model supersedes its mid-training states.
                let _ = std::fs::remove_dir_all(&checkpointing.dir);
            }
        }
        Ok((outcome.model, record))
    }
}

/// What every student job of one label fraction shares.
struct StudentCommon<'a> {
    model_config: &'a ModelConfig,
    label_fraction: f64,
    init_seed: u64,
    order_seed: u64,
    teacher_digest: &'a str,
    teacher_test_logits: &'a [f32],
}

impl<'a> StudentCommon<'a> {
    fn job(
        &self,
        name: String,
        role: Role,
        method: &str,
        transfer: Option<Transfer>,
        set: TrainingSet<'a>,
        supervision: Supervision<'a>,
    ) -> Job<'a> {
        Job {
            name,
            role,
            method: method.to_string(),
            label_fraction: self.label_fraction,
            transfer,
            model_config: self.model_config,
            init_seed: self.init_seed,
            order_seed: self.order_seed,
            set,
            supervision,
            teacher_digest: Some(self.teacher_digest),
            teacher_test_logits: Some(self.teacher_test_logits),
        }
    }
}

fn run_seed(
    config: &ExperimentConfig,
    options: &RunOptions,
    data: &PreparedData,
    seed: u64,
    observer: &mut dyn TrainObserver,
) -> Result<Vec<(String, SeedRecord)>> {
    let device = &options.device;
    let classes = data.train.num_classes;
    let seed_dir = options.run_dir.join(format!("seed-{seed}"));
    if options.save_checkpoints {
        std::fs::create_dir_all(&seed_dir).map_err(|source| Error::Io {
            path: seed_dir.clone(),
            source,
        })?;
    }
    let context = SeedContext {
        config,
        options,
        data,
        seed,
        fill: data.normalizer.normalized_zero(),
        seed_dir,
    };
    let mut out = Vec::new();

    // The teacher: loaded, or trained on every label.
    let (teacher, teacher_record) = match &config.teacher.checkpoint {
        Some(path) => {
            let (network, meta) = checkpoint::load(path, device)?;
            check_compatible(path, &meta, data)?;
            let logits = predict_logits(&network, &data.test, device);
            let validation = predict_logits(&network, &data.validation, device);
            let record = SeedRecord {
                role: Role::Teacher,
                method: "loaded".into(),
                label_fraction: 1.0,
                transfer: None,
                architecture: meta.spec.describe(data.train.shape.len(), classes),
                params: network.parameter_count(),
                metrics: evaluate(&logits, classes, &data.test.labels, None),
                validation_accuracy: accuracy(&validation, classes, &data.validation.labels),
                wall_time_s: 0.0,
                epochs_run: 0,
                skipped_batches: 0,
                curve: Curve {
                    seed,
                    train_loss: vec![],
                    validation_accuracy: vec![],
                    learning_rate: vec![],
                },
            };
            if options.save_checkpoints {
                checkpoint::save(
                    &context.path("teacher", "safetensors"),
                    &network,
                    &context.meta("teacher", &meta.spec),
                )?;
            }
            (network, record)
        }
        None => {
            let model_config = ModelConfig {
                model: config
                    .teacher
                    .model
                    .clone()
                    .expect("validated: teacher.model present"),
                train: config
                    .teacher
                    .train
                    .clone()
                    .expect("validated: teacher.train present"),
                optimizer: config.teacher.optimizer.clone(),
            };
            let job = Job {
                name: "teacher".into(),
                role: Role::Teacher,
                method: "ce".into(),
                label_fraction: 1.0,
                transfer: None,
                model_config: &model_config,
                init_seed: teacher_init_seed(seed),
                order_seed: teacher_order_seed(seed),
                set: TrainingSet {
                    data: &data.train,
                    labelled: None,
                    samples_per_epoch: data.train.len(),
                    validation: &data.validation,
                },
                supervision: Supervision::Labels,
                teacher_digest: None,
                teacher_test_logits: None,
            };
            context.run(job, observer)?
        }
    };
    let teacher_digest = sha256_hex(
        &checkpoint::weights_to_bytes(&teacher)
            .map_err(|e| Error::Invalid(format!("teacher: {e}")))?,
    );
    let teacher_test_logits = predict_logits(&teacher, &data.test, device);
    out.push(("teacher".to_string(), teacher_record));

    // Cached teacher logits are exact only when the student sees un-augmented inputs.
    let teacher_train_logits = config
        .augment
        .is_identity()
        .then(|| predict_logits(&teacher, &data.train, device));
    let student_init_seed = student_init_seed(seed);
    let student_order_seed = student_order_seed(seed);
    let objective = config.distill.objective();

    for &fraction in &config.data.label_fractions {
        let suffix = fraction_suffix(fraction);
        let subset: Vec<usize> = if fraction < 1.0 {
            stratified_subset_indices(
                &data.train.labels,
                classes,
                fraction,
                label_subset_seed(seed),
            )
        } else {
            (0..data.train.len()).collect()
        };
        let labelled_data = if fraction < 1.0 {
            data.train
                .subset(&subset, format!("{}/labelled{suffix}", data.train.name))
        } else {
            data.train.clone()
        };
        // Every student run draws as many samples per epoch as a pass over all training inputs,
        // so scratch and distilled students get the same number of steps.
        let samples_per_epoch = data.train.len();
        let mut mask = vec![false; data.train.len()];
        for &index in &subset {
            mask[index] = true;
        }
        let subset_logits: Option<Vec<f32>> = teacher_train_logits.as_ref().map(|logits| {
            subset
                .iter()
                .flat_map(|&i| logits[i * classes..(i + 1) * classes].iter().copied())
                .collect()
        });

        let common = StudentCommon {
            model_config: &config.student,
            label_fraction: fraction,
            init_seed: student_init_seed,
            order_seed: student_order_seed,
            teacher_digest: &teacher_digest,
            teacher_test_logits: &teacher_test_logits,
        };
        let labelled_set = || TrainingSet {
            data: &labelled_data,
            labelled: None,
            samples_per_epoch,
            validation: &data.validation,
        };

        let name = format!("scratch{suffix}");
        let (_, record) = context.run(
            common.job(
                name.clone(),
                Role::Scratch,
                "ce",
                None,
                labelled_set(),
                Supervision::Labels,
            ),
            observer,
        )?;
        out.push((name, record));

        let transfers: Vec<Transfer> = if fraction < 1.0 {
            config.distill.transfer.clone()
        } else {
            vec![Transfer::All]
        };
        for transfer in transfers {
            let name = if fraction < 1.0 {
                format!("{}-{}{suffix}", config.distill.method, transfer.as_str())
            } else {
                config.distill.method.clone()
            };
            let (set, signal) = match transfer {
                Transfer::All => (
                    TrainingSet {
                        data: &data.train,
                        labelled: (fraction < 1.0).then_some(mask.as_slice()),
                        samples_per_epoch,
                        validation: &data.validation,
                    },
                    match &teacher_train_logits {
                        Some(logits) => TeacherSignal::Cached(logits),
                        None => TeacherSignal::Live(&teacher),
                    },
                ),
                Transfer::Labelled => (
                    labelled_set(),
                    match &subset_logits {
                        Some(logits) => TeacherSignal::Cached(logits),
                        None => TeacherSignal::Live(&teacher),
                    },
                ),
            };
            let supervision = Supervision::Distill {
                teacher: signal,
                objective: objective.clone(),
            };
            let (_, record) = context.run(
                common.job(
                    name.clone(),
                    Role::Distilled,
                    &config.distill.method,
                    Some(transfer),
                    set,
                    supervision,
                ),
                observer,
            )?;
            out.push((name, record));
        }
    }
    Ok(out)
}

/// A file name for a model name (`kd-all@5%` → `kd-all-at-5pct`).
fn file_stem(name: &str) -> String {
    name.replace('@', "-at-")
        .replace('%', "pct")
        .replace(['/', ' ', '·'], "_")
}

fn check_compatible(path: &Path, meta: &CheckpointMeta, data: &PreparedData) -> Result<()> {
    if meta.input_shape.len() != data.train.shape.len()
        || meta.num_classes != data.train.num_classes
    {
        return Err(Error::Invalid(format!(
            "teacher.checkpoint {}: the model takes {} features and predicts {} classes, but the data has {} features and {} classes",
            path.display(),
            meta.input_shape.len(),
            meta.num_classes,
            data.train.shape.len(),
            data.train.num_classes
        )));
    }
    Ok(())
}

/// The record of a finished training run, with its test metrics.
fn record_for(
    job: &Job<'_>,
    outcome: &TrainOutcome,
    data: &PreparedData,
    device: &ComputeDevice,
    seed: u64,
) -> SeedRecord {
    let classes = data.train.num_classes;
    let logits = predict_logits(&outcome.model, &data.test, device);
    SeedRecord {
        role: job.role,
        method: job.method.clone(),
        label_fraction: job.label_fraction,
        transfer: job.transfer,
        architecture: job
            .model_config
            .model
            .describe(data.train.shape.len(), classes),
        params: outcome.model.parameter_count(),
        metrics: evaluate(&logits, classes, &data.test.labels, job.teacher_test_logits),
        validation_accuracy: outcome.final_validation_accuracy,
        wall_time_s: outcome.wall_time_s,
        epochs_run: outcome.epochs_run,
        skipped_batches: outcome.skipped_batches,
        curve: Curve {
            seed,
            train_loss: outcome.train_loss.clone(),
            validation_accuracy: outcome.validation_accuracy.clone(),
            learning_rate: outcome.learning_rate.clone(),
        },
    }
}

fn summarise(name: &str, records: &[SeedRecord]) -> ModelResult {
    let first = &records[0];
    let collect = |f: &dyn Fn(&SeedRecord) -> f64| -> Summary {
        Summary::from_values(&records.iter().map(f).collect::<Vec<_>>())
    };
    let optional = |f: &dyn Fn(&SeedRecord) -> Option<f64>| -> Option<Summary> {
        let values: Option<Vec<f64>> = records.iter().map(f).collect();
        values.map(|v| Summary::from_values(&v))
    };
    ModelResult {
        role: first.role,
        name: name.to_string(),
        method: first.method.clone(),
        label_fraction: first.label_fraction,
        transfer: first.transfer.map(|t| t.as_str().to_string()),
        architecture: first.architecture.clone(),
        params: first.params,
        test: TestSummary {
            accuracy: collect(&|r| r.metrics.accuracy),
            nll: collect(&|r| r.metrics.nll),
            ece: collect(&|r| r.metrics.ece),
            agreement: optional(&|r| r.metrics.agreement),
            kl_from_teacher: optional(&|r| r.metrics.kl_from_teacher),
        },
        validation_accuracy: collect(&|r| r.validation_accuracy),
        train_time_s: collect(&|r| r.wall_time_s),
        epochs_run: collect(&|r| r.epochs_run as f64),
        curves: records.iter().map(|r| r.curve.clone()).collect(),
    }
}

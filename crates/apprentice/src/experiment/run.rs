//! One experiment: per seed, a teacher, the student from scratch and the same student distilled,
//! for every configured label fraction; then metrics aggregated over seeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::backend::ComputeDevice;
use crate::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CheckpointMeta};
use crate::complexity::ntk::KernelKind;
use crate::complexity::study::{self, NamedTargets};
use crate::complexity::supervision::SolverOptions;
use crate::config::{ExperimentConfig, ModelConfig, TemperatureSetting, Transfer};
use crate::data::prepare::{PreparedData, RawData, load_raw, prepare};
use crate::experiment::tune::{TemperatureChoice, choose_temperature};

/// Key of the temperatures `"auto"` chose, per seed, in `results.json`.
pub const TEMPERATURE_CHOICE_KEY: &str = "temperature_choice";
/// Key of what each seed took from `teacher_cache`, in `results.json` (absent without one).
pub const TEACHER_CACHE_KEY: &str = "teacher_cache";
/// Why a configured teacher cache is not used under augmentation.
const AUGMENTED_CACHE: &str = "augmentation is on, so the teacher must see each augmented view; cached logits are exact only for un-augmented inputs";
use crate::data::Dataset;
use crate::data::batch::mix_seed;
use crate::data::split::stratified_subset_indices;
use crate::distill::cache::{self as teacher_cache, Mismatch, TeacherCache, short_hash};
use crate::distill::loss::LogitObjective;
use crate::distill::methods::FitNetRegressor;
use crate::distill::objective::TeacherViews;
use crate::distill::state::{Checkpointing, sha256_hex};
use crate::distill::train::{
    Learner, Supervision, TeacherSignal, TrainHooks, TrainObserver, TrainOutcome, TrainSettings,
    TrainingSet, predict_logits, teacher_epoch_for, train_learner,
};
use crate::error::{Error, Result};
use crate::eval::metrics::{Metrics, accuracy, evaluate};
use crate::fsutil::write_atomic;
use crate::models::{ModelSpec, Network};
use crate::report::results::{
    Curve, DataSummary, ModelResult, Results, Role, SCHEMA_VERSION, SURPASSED_TEACHER_KEY, Summary,
    TestSummary,
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
    /// Supervision complexity measured during training (`[complexity]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    complexity: Option<ComplexityTrack>,
}

/// The supervision complexity of fixed targets over one student's training.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ComplexityTrack {
    /// Epochs finished at each measurement (0: the initial weights).
    epochs: Vec<usize>,
    /// Names of the targets, in the order of each measurement's values.
    targets: Vec<String>,
    /// The targets this student is trained on: `labels`, or the teacher's at the
    /// distillation temperature.
    own: String,
    /// Adjusted complexity, `values[m][t]` for measurement `m` and target `t`.
    #[serde(deserialize_with = "crate::nullable::number_rows")]
    values: Vec<Vec<f64>>,
}

/// The fixed subset and targets every student of a seed is probed with.
struct ProbeSet {
    inputs: Vec<f32>,
    targets: Vec<NamedTargets>,
    every: usize,
}

impl ProbeSet {
    fn new(
        config: &ExperimentConfig,
        data: &PreparedData,
        seed: u64,
        teacher_train_logits: &[f32],
    ) -> Result<Option<Self>> {
        let tracking = &config.complexity;
        if tracking.every_epochs == 0 {
            return Ok(None);
        }
        let train = &data.train;
        let classes = train.num_classes;
        let invalid =
            |e: crate::complexity::ComplexityError| Error::Invalid(format!("complexity: {e}"));
        let subset = study::stratified_subset(
            &train.labels,
            classes,
            tracking.subset.min(train.len()),
            study::subset_seed(seed),
        )
        .map_err(invalid)?;
        let width = train.shape.len();
        let inputs = rows_of(&train.features, &subset, width);
        let labels: Vec<u32> = subset.iter().map(|&i| train.labels[i]).collect();
        let logits = rows_of(teacher_train_logits, &subset, classes);
        let mut temperatures = tracking.temperatures.clone();
        let temperature = config.distill.temperature.value();
        if !temperatures.contains(&temperature) {
            temperatures.push(temperature);
        }
        let targets = study::standard_targets(
            &labels,
            classes,
            study::random_label_seed(seed),
            Some(&logits),
            &temperatures,
        )
        .map_err(invalid)?;
        Ok(Some(Self {
            inputs,
            targets,
            every: tracking.every_epochs,
        }))
    }

    /// Adjusted complexity of every target with `network`'s trace kernel.
    fn measure(&self, network: &Network) -> std::result::Result<Vec<f64>, String> {
        let options = SolverOptions {
            // The Cholesky bound is enough during training; exact eigenvalues cost more than
            // the kernel.
            exact_condition_limit: 0,
            ..SolverOptions::default()
        };
        study::measure_targets(
            network,
            &self.inputs,
            &self.targets,
            KernelKind::Trace,
            &options,
        )
        .map(|measured| measured.iter().map(|m| m.adjusted).collect())
        .map_err(|e| format!("supervision complexity: {e}"))
    }
}

/// Runs the whole experiment and writes `results.json` into the run folder.
pub fn run_experiment(
    config: &ExperimentConfig,
    options: &RunOptions,
    observer: &mut dyn TrainObserver,
) -> Result<Results> {
    if let Some(folder) = &config.teacher_cache {
        if !config.augment.is_identity() {
            observer.warn(&format!(
                "teacher_cache {}: not used: {AUGMENTED_CACHE}; the live teacher teaches instead",
                folder.display()
            ));
        } else if !folder.is_dir() {
            // Fails before any training rather than after the first teacher.
            return Err(Error::Invalid(format!(
                "teacher_cache: {}: no such folder; write the cache with `apprentice cache-teacher`",
                folder.display()
            )));
        }
    }
    let raw = load_raw(&config.data, options.data_path.as_deref())?;
    let mut records: BTreeMap<String, Vec<SeedRecord>> = BTreeMap::new();
    let mut choices: Vec<TemperatureChoice> = Vec::new();
    let mut cache_uses: Vec<TeacherCacheUse> = Vec::new();
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
        let (seed_records, choice, cache_use) = run_seed(config, options, &data, seed, observer)?;
        choices.extend(choice);
        cache_uses.extend(cache_use);
        for (name, record) in seed_records {
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
    let surpassed = results.surpassed_teacher();
    let text = if !surpassed.is_empty()
        || !choices.is_empty()
        || !cache_uses.is_empty()
        || records
            .values()
            .flatten()
            .any(|record| record.complexity.is_some())
    {
        let mut value =
            serde_json::to_value(&results).map_err(|e| Error::Invalid(e.to_string()))?;
        attach_complexity(&mut value, &order, &records);
        if !choices.is_empty() {
            value[TEMPERATURE_CHOICE_KEY] =
                serde_json::to_value(&choices).map_err(|e| Error::Invalid(e.to_string()))?;
        }
        if !cache_uses.is_empty() {
            value[TEACHER_CACHE_KEY] =
                serde_json::to_value(&cache_uses).map_err(|e| Error::Invalid(e.to_string()))?;
        }
        if !surpassed.is_empty() {
            value[SURPASSED_TEACHER_KEY] =
                serde_json::to_value(&surpassed).map_err(|e| Error::Invalid(e.to_string()))?;
        }
        let mut text =
            serde_json::to_string_pretty(&value).map_err(|e| Error::Invalid(e.to_string()))?;
        text.push('\n');
        text
    } else {
        results.to_json_pretty()
    };
    write_atomic(&path, text.as_bytes()).map_err(|source| Error::Io { path, source })?;
    Ok(results)
}

/// Writes the tracked complexity into the curves of a serialised [`Results`]: the optional
/// `supervision_complexity` list (the adjusted complexity of the model's own targets after each
/// epoch, `null` where not measured) and `supervision_complexity_targets` (every measured
/// target, with the epochs of the measurements, the initial weights included).
fn attach_complexity(
    value: &mut serde_json::Value,
    order: &[String],
    records: &BTreeMap<String, Vec<SeedRecord>>,
) {
    use serde_json::{Value, json};
    let Some(models) = value["models"].as_array_mut() else {
        return;
    };
    for (model, name) in models.iter_mut().zip(order) {
        let Some(curves) = model["curves"].as_array_mut() else {
            continue;
        };
        for (curve, record) in curves.iter_mut().zip(&records[name]) {
            let Some(track) = &record.complexity else {
                continue;
            };
            let number = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
            let own = track.targets.iter().position(|t| t == &track.own);
            let mut per_epoch = vec![Value::Null; record.epochs_run];
            for (epoch, values) in track.epochs.iter().zip(&track.values) {
                if let (Some(slot), Some(own)) = (epoch.checked_sub(1), own)
                    && slot < per_epoch.len()
                {
                    per_epoch[slot] = number(values[own]);
                }
            }
            curve[crate::report::extensions::COMPLEXITY_KEY] = Value::Array(per_epoch);
            let mut targets = serde_json::Map::new();
            for (index, target) in track.targets.iter().enumerate() {
                targets.insert(
                    target.clone(),
                    Value::Array(track.values.iter().map(|v| number(v[index])).collect()),
                );
            }
            curve["supervision_complexity_targets"] = json!({
                "own": track.own,
                "epochs": track.epochs,
                "adjusted": targets,
            });
        }
    }
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
    teacher_digest: Option<String>,
    /// The teacher's test logits, for agreement and KL (none for the teacher itself).
    teacher_test_logits: Option<&'a [f32]>,
    /// Networks trained together (2 or more for deep mutual learning).
    cohort: usize,
    /// (input, output) widths of the FitNets regressors trained with the student.
    regressors: Vec<(usize, usize)>,
    /// Supervision complexity tracked during training, and the name of the job's own targets.
    probe: Option<(&'a ProbeSet, String)>,
    /// Keep a checkpoint every this many epochs (and the last) in this folder, for online
    /// distillation.
    keep_epochs: Option<(PathBuf, usize)>,
}

impl<'a> SeedContext<'a> {
    /// The context of `seed`, with its checkpoint folder created when checkpoints are kept.
    fn new(
        config: &'a ExperimentConfig,
        options: &'a RunOptions,
        data: &'a PreparedData,
        seed: u64,
    ) -> Result<Self> {
        let seed_dir = options.run_dir.join(format!("seed-{seed}"));
        if options.save_checkpoints {
            std::fs::create_dir_all(&seed_dir).map_err(|source| Error::Io {
                path: seed_dir.clone(),
                source,
            })?;
        }
        Ok(Self {
            config,
            options,
            data,
            seed,
            fill: data.normalizer.normalized_zero(),
            seed_dir,
        })
    }
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
        let device = self.options.device.training();
        let mut members = Vec::with_capacity(job.cohort.max(1));
        for member in 0..job.cohort.max(1) {
            // The first member starts from the weights every student of the seed starts from.
            let seed = if member == 0 {
                job.init_seed
            } else {
                mix_seed(job.init_seed, 0xc0_0000 + member as u64)
            };
            members.push(
                Network::new(
                    &job.model_config.model,
                    data.train.shape,
                    data.train.num_classes,
                    seed,
                    &device,
                )
                .map_err(|message| Error::Invalid(format!("{}: {message}", job.name)))?,
            );
        }
        let regressors = job
            .regressors
            .iter()
            .enumerate()
            .map(|(index, &(inputs, outputs))| {
                FitNetRegressor::new(
                    inputs,
                    outputs,
                    mix_seed(job.init_seed, 0xf17e_0000 + index as u64),
                    &device,
                )
            })
            .collect();
        let learner = Learner::new(members, regressors);
        let identity = serde_json::json!({
            "name": job.name,
            "seed": self.seed,
            "init_seed": job.init_seed,
            "order_seed": job.order_seed,
            "model": job.model_config,
            "augment": self.config.augment,
            "distill": (!matches!(job.supervision, Supervision::Labels)).then_some(&self.config.distill),
            "method": job.method,
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
        let measure = |network: &Network| match &job.probe {
            Some((probe, _)) => probe.measure(network),
            None => Ok(Vec::new()),
        };
        let hooks = TrainHooks {
            probe: job.probe.as_ref().map(|(probe, _)| {
                (
                    probe.every,
                    &measure as &dyn Fn(&Network) -> std::result::Result<Vec<f64>, String>,
                )
            }),
            snapshot: None,
        };
        let keep = |epoch: usize, network: &Network| -> std::result::Result<(), String> {
            let Some((dir, every)) = &job.keep_epochs else {
                return Ok(());
            };
            if !epoch.is_multiple_of(*every) && epoch != job.model_config.train.epochs {
                return Ok(());
            }
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let name = format!("{}@epoch-{epoch}", job.name);
            checkpoint::save(
                &dir.join(format!("epoch-{epoch:04}.safetensors")),
                network,
                &self.meta(&name, &job.model_config.model),
            )
            .map_err(|e| e.to_string())
        };
        let hooks = TrainHooks {
            snapshot: job
                .keep_epochs
                .as_ref()
                .map(|_| &keep as &dyn Fn(usize, &Network) -> std::result::Result<(), String>),
            ..hooks
        };
        let outcome = train_learner(
            &title,
            learner,
            &job.set,
            &job.supervision,
            &settings,
            hooks,
            &self.options.device,
            observer,
        )?;
        let mut record = record_for(&job, &outcome, data, &self.options.device, self.seed);
        if let Some((probe, own)) = &job.probe {
            record.complexity = Some(ComplexityTrack {
                epochs: outcome.probes.iter().map(|p| p.epoch).collect(),
                targets: probe.targets.iter().map(|t| t.name.clone()).collect(),
                own: own.clone(),
                values: outcome.probes.iter().map(|p| p.values.clone()).collect(),
            });
        }
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
    probe: Option<&'a ProbeSet>,
    /// The name of the teacher's targets at the distillation temperature, in the probe.
    teacher_target: String,
}

impl<'a> StudentCommon<'a> {
    #[allow(clippy::too_many_arguments)]
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
            teacher_digest: Some(self.teacher_digest.to_string()),
            teacher_test_logits: Some(self.teacher_test_logits),
            cohort: 1,
            regressors: Vec::new(),
            keep_epochs: None,
            probe: self.probe.map(|probe| {
                let own = if role == Role::Scratch || method == "dml" {
                    "labels".to_string()
                } else {
                    self.teacher_target.clone()
                };
                (probe, own)
            }),
        }
    }
}

/// The model name of a method's student: `kd`, `kd-all@5%`, `born-again-2-labelled@5%`.
fn student_name(method: &str, transfer: Transfer, fraction: f64) -> String {
    if fraction < 1.0 {
        format!(
            "{method}-{}{}",
            transfer.as_str(),
            fraction_suffix(fraction)
        )
    } else {
        method.to_string()
    }
}

/// A digest of a network's weights, identifying a teacher in checkpoint fingerprints.
///
/// The values are hashed in the module's visiting order, which depends only on the architecture:
/// serialised safetensors bytes would not do, since their header order may differ between
/// processes, and a resumed run must recognise the same teacher.
fn weights_digest(_name: &str, network: &Network) -> Result<String> {
    use burn::module::{Module, ModuleVisitor, Param};
    struct Collect(Vec<u8>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<burn::tensor::Tensor<D>>) {
            for value in crate::backend::to_host(param.val().flatten::<1>(0, D - 1)) {
                self.0.extend_from_slice(&value.to_le_bytes());
            }
        }
    }
    let mut collect = Collect(Vec::new());
    network.visit(&mut collect);
    Ok(sha256_hex(&collect.0))
}

/// Rows `subset` of row-major `values` with `width` values per row.
fn rows_of(values: &[f32], subset: &[usize], width: usize) -> Vec<f32> {
    subset
        .iter()
        .flat_map(|&i| values[i * width..(i + 1) * width].iter().copied())
        .collect()
}

/// Logits whose softmax at `temperature` is the weighted mean of the given logits' softmaxes at
/// `temperature`: `T·log Σ_k w_k softmax(t_k/T)`. KD against them is KD against the teachers'
/// averaged softened predictions (multi-teacher distillation).
pub fn mixture_logits(
    members: &[&[f32]],
    weights: &[f64],
    classes: usize,
    temperature: f64,
) -> Vec<f32> {
    let total: f64 = weights.iter().sum();
    let rows = members.first().map_or(0, |m| m.len() / classes.max(1));
    let mut out = Vec::with_capacity(rows * classes);
    let mut mixed = vec![0.0f64; classes];
    for row in 0..rows {
        mixed.iter_mut().for_each(|v| *v = 0.0);
        for (member, &weight) in members.iter().zip(weights) {
            let logits = &member[row * classes..(row + 1) * classes];
            let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let exps: Vec<f64> = logits
                .iter()
                .map(|&l| ((l as f64 - max) / temperature).exp())
                .collect();
            let sum: f64 = exps.iter().sum();
            for (m, e) in mixed.iter_mut().zip(exps) {
                *m += weight / total * e / sum;
            }
        }
        out.extend(
            mixed
                .iter()
                .map(|&p| (temperature * p.max(f64::MIN_POSITIVE).ln()) as f32),
        );
    }
    out
}

/// One label fraction's students: what their jobs share and build on.
struct FractionRun<'a> {
    context: &'a SeedContext<'a>,
    common: StudentCommon<'a>,
    teacher: &'a Network,
    /// The teacher's logits on every training sample (none when augmentation makes them
    /// inexact).
    teacher_train_logits: Option<&'a [f32]>,
    fraction: f64,
    /// Indices of the labelled training samples.
    subset: &'a [usize],
    /// Labelled flags over all training samples.
    mask: &'a [bool],
    labelled_data: &'a Dataset,
    scratch: &'a Network,
}

impl<'a> FractionRun<'a> {
    fn data(&self) -> &'a PreparedData {
        self.context.data
    }

    /// The training set of a transfer choice.
    fn set(&self, transfer: Transfer) -> TrainingSet<'a> {
        let data = self.data();
        match transfer {
            Transfer::All => TrainingSet {
                data: &data.train,
                labelled: (self.fraction < 1.0).then_some(self.mask),
                samples_per_epoch: data.train.len(),
                validation: &data.validation,
            },
            Transfer::Labelled => TrainingSet {
                data: self.labelled_data,
                labelled: None,
                samples_per_epoch: data.train.len(),
                validation: &data.validation,
            },
        }
    }

    /// A model's logits on the training inputs of a transfer choice, when they can be cached.
    fn cached_logits(&self, network: &Network, transfer: Transfer) -> Option<Vec<f32>> {
        let data = self.data();
        self.context.config.augment.is_identity().then(|| {
            let all = predict_logits(network, &data.train, &self.context.options.device);
            match transfer {
                Transfer::All => all,
                Transfer::Labelled => rows_of(&all, self.subset, data.train.num_classes),
            }
        })
    }

    /// Trains one KD-style student from `teacher` (cached logits when possible).
    #[allow(clippy::too_many_arguments)]
    fn distil_from(
        &self,
        name: String,
        method: &str,
        transfer: Transfer,
        teacher: &Network,
        teacher_logits: Option<&[f32]>,
        teacher_digest: String,
        objective: LogitObjective,
        model_config: Option<&'a ModelConfig>,
        observer: &mut dyn TrainObserver,
    ) -> Result<(Network, SeedRecord)> {
        let signal = match teacher_logits {
            Some(logits) => TeacherSignal::Cached(logits),
            None => TeacherSignal::Live(teacher),
        };
        let mut job = self.common.job(
            name,
            Role::Distilled,
            method,
            Some(transfer),
            self.set(transfer),
            Supervision::Distill {
                teacher: signal,
                objective,
            },
        );
        job.teacher_digest = Some(teacher_digest);
        if let Some(config) = model_config {
            job.model_config = config;
        }
        self.context.run(job, observer)
    }

    /// Every student of `method` for `transfer`, in table order.
    fn run_method(
        &self,
        method: &str,
        transfer: Transfer,
        extra_teachers: &mut ExtraTeachers,
        observer: &mut dyn TrainObserver,
    ) -> Result<Vec<(String, SeedRecord)>> {
        let config = self.context.config;
        let data = self.data();
        let device = &self.context.options.device;
        let classes = data.train.num_classes;
        let name = student_name(method, transfer, self.fraction);
        let teacher_logits: Option<Vec<f32>> =
            self.teacher_train_logits.map(|all| match transfer {
                Transfer::All => all.to_vec(),
                Transfer::Labelled => rows_of(all, self.subset, classes),
            });
        let mut out = Vec::new();
        match method {
            "kd" | "dkd" | "dist" => {
                let objective = config
                    .distill
                    .logit_objective(method)
                    .expect("a logit method");
                let (_, record) = self.distil_from(
                    name.clone(),
                    method,
                    transfer,
                    self.teacher,
                    teacher_logits.as_deref(),
                    self.common.teacher_digest.to_string(),
                    objective,
                    None,
                    observer,
                )?;
                out.push((name, record));
            }
            "fitnet" | "at" | "rkd" | "pkt" | "sp" => {
                let objective = config
                    .distill
                    .feature_objective(method)
                    .expect("a feature method");
                // One example through each network tells which features exist and their sizes.
                let student = Network::new(
                    &config.student.model,
                    data.train.shape,
                    classes,
                    self.common.init_seed,
                    &device.inference(),
                )
                .map_err(Error::Invalid)?;
                let example = crate::backend::matrix(
                    data.train.sample(0).to_vec(),
                    1,
                    data.train.shape.len(),
                    &device.inference(),
                );
                let student_features = student.forward(example.clone(), None).features;
                let teacher_features = self.teacher.forward(example, None).features;
                let resolved = objective
                    .resolve(&student_features, &teacher_features)
                    .map_err(|e| Error::Invalid(format!("distill: {e}")))?;
                let regressors = resolved.regressor_widths(&student_features, &teacher_features);
                let views = self.context.config.augment.is_identity().then(|| {
                    let all = TeacherViews::compute(self.teacher, &data.train, &resolved, device);
                    match transfer {
                        Transfer::All => all,
                        Transfer::Labelled => all.subset(self.subset),
                    }
                });
                let signal = match (&teacher_logits, &views) {
                    (Some(logits), Some(views)) => TeacherSignal::CachedWithViews { logits, views },
                    _ => TeacherSignal::Live(self.teacher),
                };
                let mut job = self.common.job(
                    name.clone(),
                    Role::Distilled,
                    method,
                    Some(transfer),
                    self.set(transfer),
                    Supervision::Features {
                        teacher: signal,
                        objective: resolved,
                    },
                );
                job.regressors = regressors;
                let (_, record) = self.context.run(job, observer)?;
                out.push((name, record));
            }
            "dml" => {
                let mut job = self.common.job(
                    name.clone(),
                    Role::Distilled,
                    method,
                    Some(transfer),
                    self.set(transfer),
                    Supervision::Mutual {
                        temperature: config.distill.dml.temperature,
                    },
                );
                job.cohort = config.distill.dml.students;
                job.teacher_digest = None;
                let (_, record) = self.context.run(job, observer)?;
                out.push((name, record));
            }
            "born-again" => {
                let objective = config
                    .distill
                    .logit_objective(method)
                    .expect("born-again distils with kd");
                let mut previous = self.scratch.clone();
                let mut generation_test_logits = Vec::new();
                let mut params = 0;
                for generation in 1..=config.distill.born_again.generations {
                    let gen_name =
                        student_name(&format!("born-again-{generation}"), transfer, self.fraction);
                    let logits = self.cached_logits(&previous, transfer);
                    let (model, record) = self.distil_from(
                        gen_name.clone(),
                        method,
                        transfer,
                        &previous,
                        logits.as_deref(),
                        weights_digest(&gen_name, &previous)?,
                        objective.clone(),
                        None,
                        observer,
                    )?;
                    params = record.params;
                    generation_test_logits.push(predict_logits(&model, &data.test, device));
                    out.push((gen_name, record));
                    previous = model;
                }
                // The ensemble of the generations, as Furlanello et al. also report.
                let generations = generation_test_logits.len();
                let members: Vec<&[f32]> =
                    generation_test_logits.iter().map(Vec::as_slice).collect();
                let weights = vec![1.0; generations];
                let ensemble = mixture_logits(&members, &weights, classes, 1.0);
                let ensemble_name = student_name("born-again-ensemble", transfer, self.fraction);
                let first = &out[0].1;
                let record = SeedRecord {
                    role: Role::Distilled,
                    method: method.to_string(),
                    label_fraction: self.fraction,
                    transfer: Some(transfer),
                    architecture: format!("ensemble of {generations} × {}", first.architecture),
                    params: params * generations,
                    metrics: evaluate(
                        &ensemble,
                        classes,
                        &data.test.labels,
                        Some(self.common.teacher_test_logits),
                    ),
                    validation_accuracy: f64::NAN,
                    wall_time_s: out.iter().map(|(_, r)| r.wall_time_s).sum(),
                    epochs_run: out.iter().map(|(_, r)| r.epochs_run).sum(),
                    skipped_batches: 0,
                    curve: Curve {
                        seed: self.context.seed,
                        train_loss: vec![],
                        validation_accuracy: vec![],
                        learning_rate: vec![],
                    },
                    complexity: None,
                };
                out.push((ensemble_name, record));
            }
            "multi-teacher" => {
                let multi = &config.distill.multi_teacher;
                let teachers = extra_teachers.ensure(self.context, observer)?;
                let train_logits = |network: &Network| self.cached_logits(network, transfer);
                let mut member_logits = vec![teacher_logits.clone().ok_or_else(|| {
                    Error::Invalid("multi-teacher needs cached teacher logits".into())
                })?];
                let mut digest = self.common.teacher_digest.to_string();
                for (extra_name, extra) in teachers.iter() {
                    member_logits.push(train_logits(extra).ok_or_else(|| {
                        Error::Invalid("multi-teacher needs cached teacher logits".into())
                    })?);
                    digest.push_str(&weights_digest(extra_name, extra)?);
                }
                let members: Vec<&[f32]> = member_logits.iter().map(Vec::as_slice).collect();
                let weights = multi
                    .weights
                    .clone()
                    .unwrap_or_else(|| vec![1.0; members.len()]);
                let mixed = mixture_logits(
                    &members,
                    &weights,
                    classes,
                    config.distill.temperature.value(),
                );
                let objective = config
                    .distill
                    .logit_objective(method)
                    .expect("multi-teacher distils with kd");
                let (_, record) = self.distil_from(
                    name.clone(),
                    method,
                    transfer,
                    self.teacher,
                    Some(&mixed),
                    sha256_hex(digest.as_bytes()),
                    objective,
                    None,
                    observer,
                )?;
                out.push((name, record));
            }
            "ta" => {
                let assistant = config
                    .distill
                    .assistant
                    .as_ref()
                    .expect("validated: ta has an assistant");
                let assistant_config = ModelConfig {
                    model: assistant.model.clone(),
                    train: assistant
                        .train
                        .clone()
                        .unwrap_or_else(|| config.student.train.clone()),
                    optimizer: assistant
                        .optimizer
                        .clone()
                        .unwrap_or_else(|| config.student.optimizer.clone()),
                };
                let objective = config
                    .distill
                    .logit_objective(method)
                    .expect("ta distils with kd");
                let assistant_name = student_name("assistant", transfer, self.fraction);
                let mut job = self.common.job(
                    assistant_name.clone(),
                    Role::Teacher,
                    "kd",
                    Some(transfer),
                    self.set(transfer),
                    Supervision::Distill {
                        teacher: match &teacher_logits {
                            Some(logits) => TeacherSignal::Cached(logits),
                            None => TeacherSignal::Live(self.teacher),
                        },
                        objective: objective.clone(),
                    },
                );
                job.model_config = &assistant_config;
                job.init_seed = mix_seed(self.common.init_seed, 0x7a00_0001);
                job.probe = None;
                let (assistant_model, assistant_record) = self.context.run(job, observer)?;
                let logits = self.cached_logits(&assistant_model, transfer);
                let (_, record) = self.distil_from(
                    name.clone(),
                    method,
                    transfer,
                    &assistant_model,
                    logits.as_deref(),
                    weights_digest(&assistant_name, &assistant_model)?,
                    objective,
                    None,
                    observer,
                )?;
                out.push((assistant_name, assistant_record));
                out.push((name, record));
            }
            "online" => {
                let dir = match &config.teacher.checkpoint {
                    Some(_) => config
                        .teacher
                        .checkpoints
                        .clone()
                        .expect("validated: a loaded teacher brings its checkpoints"),
                    None => self.context.path("teacher", "epochs"),
                };
                let saved = teacher_checkpoints(&dir)?;
                let teacher_epochs = saved.last().map(|(epoch, _)| *epoch).unwrap_or(0);
                let student_epochs = config.student.train.epochs;
                let every = config.distill.online.every_epochs;
                // Each checkpoint's predictions, computed once, and the one each epoch uses.
                let mut predictions: Vec<(usize, Vec<f32>)> = Vec::new();
                let mut schedule = Vec::with_capacity(student_epochs);
                let mut digest = String::new();
                for epoch in 1..=student_epochs {
                    let wanted = teacher_epoch_for(epoch, student_epochs, teacher_epochs, every);
                    let Some((found, path)) = saved.iter().find(|(e, _)| *e >= wanted) else {
                        return Err(Error::Invalid(format!(
                            "online: no teacher checkpoint for epoch {wanted} or later in {}",
                            dir.display()
                        )));
                    };
                    if predictions.last().is_none_or(|(e, _)| e != found) {
                        let (network, meta) = checkpoint::load(path, device)?;
                        check_compatible(path, &meta, data)?;
                        digest.push_str(&weights_digest(&path.display().to_string(), &network)?);
                        let logits = self
                            .cached_logits(&network, transfer)
                            .expect("validated: online runs without augmentation");
                        predictions.push((*found, logits));
                    }
                    schedule.push(predictions.len() - 1);
                }
                let per_epoch: Vec<&[f32]> = schedule
                    .iter()
                    .map(|&i| predictions[i].1.as_slice())
                    .collect();
                let objective = config
                    .distill
                    .logit_objective(method)
                    .expect("online distils with kd");
                let mut job = self.common.job(
                    name.clone(),
                    Role::Distilled,
                    method,
                    Some(transfer),
                    self.set(transfer),
                    Supervision::Distill {
                        teacher: TeacherSignal::PerEpoch(&per_epoch),
                        objective,
                    },
                );
                job.teacher_digest = Some(sha256_hex(digest.as_bytes()));
                let (_, record) = self.context.run(job, observer)?;
                out.push((name, record));
            }
            other => {
                return Err(Error::Invalid(format!(
                    "distill.method: unknown method {other:?}"
                )));
            }
        }
        Ok(out)
    }
}

/// The teacher's architecture, schedule and optimiser from `[teacher]` (validated present when
/// no checkpoint is loaded).
fn teacher_model_config(config: &ExperimentConfig) -> ModelConfig {
    ModelConfig {
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
    }
}

/// A teacher trained on every label of the training split.
fn teacher_job<'a>(
    name: String,
    model_config: &'a ModelConfig,
    data: &'a PreparedData,
    init_seed: u64,
    order_seed: u64,
) -> Job<'a> {
    Job {
        name,
        role: Role::Teacher,
        method: "ce".into(),
        label_fraction: 1.0,
        transfer: None,
        model_config,
        init_seed,
        order_seed,
        set: TrainingSet {
            data: &data.train,
            labelled: None,
            samples_per_epoch: data.train.len(),
            validation: &data.validation,
        },
        supervision: Supervision::Labels,
        teacher_digest: None,
        teacher_test_logits: None,
        cohort: 1,
        regressors: Vec::new(),
        probe: None,
        keep_epochs: None,
    }
}

/// The extra teachers of multi-teacher distillation: trained once per seed, when first needed.
#[derive(Default)]
struct ExtraTeachers {
    networks: Vec<(String, Network)>,
    records: Vec<(String, SeedRecord)>,
}

impl ExtraTeachers {
    /// Makes sure the extra teachers of `distill.multi_teacher` exist (the run's teacher is the
    /// first of the ensemble): those listed in `extra`, or more of the teacher's architecture
    /// from other seeds.
    fn ensure(
        &mut self,
        context: &SeedContext<'_>,
        observer: &mut dyn TrainObserver,
    ) -> Result<&[(String, Network)]> {
        let config = context.config;
        let data = context.data;
        let multi = &config.distill.multi_teacher;
        let total = multi.count();
        let configs: Vec<ModelConfig> = if multi.extra.is_empty() {
            let same = teacher_model_config(config);
            vec![same; total - 1]
        } else {
            multi.extra.clone()
        };
        while self.networks.len() + 1 < total {
            let index = self.networks.len() + 2;
            let name = format!("teacher-{index}");
            let job = teacher_job(
                name.clone(),
                &configs[index - 2],
                data,
                mix_seed(teacher_init_seed(context.seed), index as u64),
                mix_seed(teacher_order_seed(context.seed), index as u64),
            );
            let (network, record) = context.run(job, observer)?;
            self.networks.push((name.clone(), network));
            self.records.push((name, record));
        }
        Ok(&self.networks[..total - 1])
    }
}

/// What one seed produced: every model's record in table order, the temperature `"auto"`
/// chose for it, and what it took from `teacher_cache`.
type SeedOutcome = (
    Vec<(String, SeedRecord)>,
    Option<TemperatureChoice>,
    Option<TeacherCacheUse>,
);

/// What one seed took from `teacher_cache`, as recorded in `results.json` under
/// [`TEACHER_CACHE_KEY`], so that a reader can tell cached from live teacher logits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TeacherCacheUse {
    /// The seed.
    pub seed: u64,
    /// The folder read for this seed (`<teacher_cache>/seed-<S>` when that exists).
    pub folder: PathBuf,
    /// True when the students learned from the cached logits; false when the live teacher
    /// was used instead (see `fallback`).
    pub used: bool,
    /// True when every shard keeps full logits, so KD is exactly as with the live teacher;
    /// false for top-k shards (KD approximate) or when the cache was not used.
    pub exact: bool,
    /// Shard files read.
    pub shards: usize,
    /// Why the live teacher was used instead of the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// The folder of `seed`'s cache: each seed has its own split (and possibly its own teacher),
/// so `<folder>/seed-<S>` is preferred when it exists; a single-seed cache can sit in
/// `folder` itself.
fn seed_cache_folder(folder: &Path, seed: u64) -> PathBuf {
    let own = folder.join(format!("seed-{seed}"));
    if own.is_dir() {
        own
    } else {
        folder.to_path_buf()
    }
}

/// The teacher's logits on every training sample, from `teacher_cache` when one is set and
/// can be exact, else from the teacher itself; `None` when augmentation means the students
/// must see the teacher's logits on each augmented view instead.
fn teacher_logits_on_train(
    context: &SeedContext<'_>,
    teacher: &Network,
    observer: &mut dyn TrainObserver,
) -> Result<(Option<Vec<f32>>, Option<TeacherCacheUse>)> {
    let config = context.config;
    let data = context.data;
    let seed = context.seed;
    let device = &context.options.device;
    let augmented = !config.augment.is_identity();
    let Some(root) = &config.teacher_cache else {
        return Ok((
            (!augmented).then(|| predict_logits(teacher, &data.train, device)),
            None,
        ));
    };
    let folder = seed_cache_folder(root, seed);
    if augmented {
        // `run_experiment` has warned once for the whole run.
        return Ok((
            None,
            Some(TeacherCacheUse {
                seed,
                folder,
                used: false,
                exact: false,
                shards: 0,
                fallback: Some(AUGMENTED_CACHE.to_string()),
            }),
        ));
    }
    let train = &data.train;
    let teacher_sha256 = teacher_cache::teacher_hash(teacher)
        .map_err(|e| Error::Invalid(format!("teacher_cache: {e}")))?;
    let data_sha256 = teacher_cache::data_hash(train);
    let cache = TeacherCache::open(
        &folder,
        &teacher_sha256,
        &data_sha256,
        train.len(),
        train.num_classes,
    )
    .map_err(|error| Error::Invalid(cache_refusal(context, &folder, error)))?;
    if !cache.is_exact() {
        observer.warn(&format!(
            "teacher_cache {}: top-k shards keep only each sample's most probable classes, so KD for seed {seed} is approximate; rewrite the cache without --top-k for exact KD",
            folder.display()
        ));
    }
    let record = TeacherCacheUse {
        seed,
        folder,
        used: true,
        exact: cache.is_exact(),
        shards: cache.shards().len(),
        fallback: None,
    };
    Ok((Some(cache.into_logits()), Some(record)))
}

/// One line saying why `folder` cannot serve `context`'s seed and, for a cache of another
/// teacher or split, the command that rebuilds it.
fn cache_refusal(
    context: &SeedContext<'_>,
    folder: &Path,
    error: teacher_cache::CacheError,
) -> String {
    let seed = context.seed;
    let teacher_cache::CacheError::Mismatch {
        path,
        what,
        found,
        expected,
    } = &error
    else {
        return format!("teacher_cache (seed {seed}): {error}");
    };
    let teacher_checkpoint = match &context.config.teacher.checkpoint {
        Some(path) => path.display().to_string(),
        None if context.options.save_checkpoints => {
            context.path("teacher", "safetensors").display().to_string()
        }
        None => format!("RUN/seed-{seed}/teacher.safetensors"),
    };
    // Several seeds reading one folder can never all match: point at the seed's own folder.
    let shared = context.config.seeds.len() > 1 && !folder.ends_with(format!("seed-{seed}"));
    let (out, note) = if shared {
        (
            folder.join(format!("seed-{seed}")),
            " (each seed has its own split and teacher, so each needs its own seed-<S> folder)",
        )
    } else {
        (folder.to_path_buf(), "")
    };
    let whose = match what {
        Mismatch::Teacher => format!("seed {seed}'s teacher has"),
        Mismatch::Data => format!("seed {seed}'s training split has"),
    };
    format!(
        "teacher_cache: {}: written for another {what} (the shard's sha256 is {}…, {whose} {}…); rebuild it with `apprentice cache-teacher CONFIG --teacher {teacher_checkpoint} --seed {seed} --out {}`{note}",
        path.display(),
        short_hash(found),
        short_hash(expected),
        out.display()
    )
}

fn run_seed(
    config: &ExperimentConfig,
    options: &RunOptions,
    data: &PreparedData,
    seed: u64,
    observer: &mut dyn TrainObserver,
) -> Result<SeedOutcome> {
    let device = &options.device;
    let classes = data.train.num_classes;
    let context = SeedContext::new(config, options, data, seed)?;
    let mut out = Vec::new();
    let (teacher, teacher_record) = teacher_for_seed(&context, observer)?;
    let teacher_digest = weights_digest("teacher", &teacher)?;
    let teacher_test_logits = predict_logits(&teacher, &data.test, device);
    out.push(("teacher".to_string(), teacher_record));

    // `temperature = "auto"`: the students of this seed use the temperature chosen for it.
    let choice = match config.distill.temperature {
        TemperatureSetting::Auto => Some(choose_temperature(config, data, &teacher, seed, device)?),
        TemperatureSetting::Fixed(_) => None,
    };
    let resolved;
    let config = match &choice {
        Some(choice) => {
            let mut chosen = config.clone();
            chosen.distill.temperature = TemperatureSetting::Fixed(choice.chosen);
            resolved = chosen;
            &resolved
        }
        None => config,
    };
    let context = SeedContext { config, ..context };

    // Cached teacher logits are exact only when the student sees un-augmented inputs.
    let (teacher_train_logits, cache_use) = teacher_logits_on_train(&context, &teacher, observer)?;
    let probe = match &teacher_train_logits {
        Some(logits) => ProbeSet::new(config, data, seed, logits)?,
        None => {
            let logits = predict_logits(&teacher, &data.train, device);
            ProbeSet::new(config, data, seed, &logits)?
        }
    };
    let teacher_target = format!(
        "teacher T={}",
        study::format_number(config.distill.temperature.value())
    );
    let methods = config.distill.method_list();
    let mut extra_teachers = ExtraTeachers::default();
    let mut student_rows = Vec::new();

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
        let mut mask = vec![false; data.train.len()];
        for &index in &subset {
            mask[index] = true;
        }
        let common = StudentCommon {
            model_config: &config.student,
            label_fraction: fraction,
            init_seed: student_init_seed(seed),
            order_seed: student_order_seed(seed),
            teacher_digest: &teacher_digest,
            teacher_test_logits: &teacher_test_logits,
            probe: probe.as_ref(),
            teacher_target: teacher_target.clone(),
        };
        // Every student run draws as many samples per epoch as a pass over all training inputs,
        // so scratch and distilled students get the same number of steps.
        let name = format!("scratch{suffix}");
        let (scratch, record) = context.run(
            common.job(
                name.clone(),
                Role::Scratch,
                "ce",
                None,
                TrainingSet {
                    data: &labelled_data,
                    labelled: None,
                    samples_per_epoch: data.train.len(),
                    validation: &data.validation,
                },
                Supervision::Labels,
            ),
            observer,
        )?;
        student_rows.push((name, record));

        let run = FractionRun {
            context: &context,
            common,
            teacher: &teacher,
            teacher_train_logits: teacher_train_logits.as_deref(),
            fraction,
            subset: &subset,
            mask: &mask,
            labelled_data: &labelled_data,
            scratch: &scratch,
        };
        let transfers: Vec<Transfer> = if fraction < 1.0 {
            config.distill.transfer.clone()
        } else {
            vec![Transfer::All]
        };
        for method in &methods {
            for &transfer in &transfers {
                student_rows.extend(run.run_method(
                    method,
                    transfer,
                    &mut extra_teachers,
                    observer,
                )?);
            }
        }
    }
    // Extra teachers are listed with the teacher, before the students.
    out.extend(extra_teachers.records);
    out.extend(student_rows);
    Ok((out, choice, cache_use))
}

/// The teacher of the experiment of `seed`, exactly as [`run_experiment`] gets it (loaded from
/// `teacher.checkpoint`, or trained on every label), for commands that study it on its own.
/// With `options.save_checkpoints` it is kept in (and reused from) `options.run_dir`.
pub fn seed_teacher(
    config: &ExperimentConfig,
    options: &RunOptions,
    data: &PreparedData,
    seed: u64,
    observer: &mut dyn TrainObserver,
) -> Result<Network> {
    let context = SeedContext::new(config, options, data, seed)?;
    Ok(teacher_for_seed(&context, observer)?.0)
}

/// The teacher of a seed: loaded from `teacher.checkpoint`, or trained on every label.
fn teacher_for_seed(
    context: &SeedContext<'_>,
    observer: &mut dyn TrainObserver,
) -> Result<(Network, SeedRecord)> {
    let config = context.config;
    let options = context.options;
    let data = context.data;
    let device = &options.device;
    let classes = data.train.num_classes;
    let seed = context.seed;
    match &config.teacher.checkpoint {
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
                complexity: None,
            };
            if options.save_checkpoints {
                checkpoint::save(
                    &context.path("teacher", "safetensors"),
                    &network,
                    &context.meta("teacher", &meta.spec),
                )?;
            }
            Ok((network, record))
        }
        None => {
            let model_config = teacher_model_config(config);
            let mut job = teacher_job(
                "teacher".into(),
                &model_config,
                data,
                teacher_init_seed(seed),
                teacher_order_seed(seed),
            );
            if config.distill.method_list().iter().any(|m| m == "online") {
                job.keep_epochs = Some((
                    context.path("teacher", "epochs"),
                    config.distill.online.every_epochs,
                ));
            }
            context.run(job, observer)
        }
    }
}

/// The teacher checkpoints along training in `dir` (`epoch-NNNN.safetensors`), by epoch.
fn teacher_checkpoints(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::Invalid(format!(
            "online: cannot read the teacher's checkpoints along training in {}: {e}",
            dir.display()
        ))
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(epoch) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("epoch-"))
            .and_then(|n| n.strip_suffix(".safetensors"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        found.push((epoch, path));
    }
    found.sort();
    if found.is_empty() {
        return Err(Error::Invalid(format!(
            "online: {} holds no teacher checkpoints (epoch-0001.safetensors, ...)",
            dir.display()
        )));
    }
    Ok(found)
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
        complexity: None,
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

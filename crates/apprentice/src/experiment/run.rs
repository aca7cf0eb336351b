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
use crate::distill::loss::KdWeights;
use crate::distill::train::{
    Supervision, TeacherSignal, TrainObserver, TrainOutcome, TrainSettings, TrainingSet,
    predict_logits, train,
};
use crate::error::{Error, Result};
use crate::eval::metrics::{Metrics, evaluate};
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
    /// Write a checkpoint of every trained model.
    pub save_checkpoints: bool,
}

/// One trained model's numbers for one seed.
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
        .map(|name| summarise(name, &records[name], &config.seeds))
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

fn run_seed(
    config: &ExperimentConfig,
    options: &RunOptions,
    data: &PreparedData,
    seed: u64,
    observer: &mut dyn TrainObserver,
) -> Result<Vec<(String, SeedRecord)>> {
    let device = &options.device;
    let classes = data.train.num_classes;
    let fill = data.normalizer.normalized_zero();
    let seed_dir = options.run_dir.join(format!("seed-{seed}"));
    if options.save_checkpoints {
        std::fs::create_dir_all(&seed_dir).map_err(|source| Error::Io {
            path: seed_dir.clone(),
            source,
        })?;
    }
    let save = |name: &str, spec: &ModelSpec, network: &Network| -> Result<()> {
        if !options.save_checkpoints {
            return Ok(());
        }
        let meta = CheckpointMeta {
            format_version: CHECKPOINT_FORMAT_VERSION,
            spec: spec.clone(),
            input_shape: data.train.shape,
            num_classes: classes,
            normalizer: data.normalizer.clone(),
            name: name.to_string(),
            seed,
            data: data.train.name.clone(),
            data_config: config.data.clone(),
        };
        let file = seed_dir.join(format!("{}.safetensors", file_stem(name)));
        checkpoint::save(&file, network, &meta)?;
        Ok(())
    };
    let mut out = Vec::new();

    // The teacher: loaded, or trained on every label.
    let (teacher, teacher_spec, teacher_record) = match &config.teacher.checkpoint {
        Some(path) => {
            let (network, meta) = checkpoint::load(path, device)?;
            check_compatible(path, &meta, data)?;
            let logits = predict_logits(&network, &data.test, device);
            let metrics = evaluate(&logits, classes, &data.test.labels, None);
            let validation = predict_logits(&network, &data.validation, device);
            let record = SeedRecord {
                role: Role::Teacher,
                method: "loaded".into(),
                label_fraction: 1.0,
                transfer: None,
                architecture: meta.spec.describe(data.train.shape.len(), classes),
                params: network.parameter_count(),
                metrics,
                validation_accuracy: crate::eval::metrics::accuracy(
                    &validation,
                    classes,
                    &data.validation.labels,
                ),
                wall_time_s: 0.0,
                epochs_run: 0,
                curve: Curve {
                    seed,
                    train_loss: vec![],
                    validation_accuracy: vec![],
                    learning_rate: vec![],
                },
            };
            (network, meta.spec, record)
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
            let labelled_all = TrainingSet {
                data: &data.train,
                labelled: None,
                samples_per_epoch: data.train.len(),
                validation: &data.validation,
            };
            let outcome = train_model(
                &format!("seed {seed} · teacher"),
                &model_config,
                mix_seed(seed, 0x7eac_0001),
                mix_seed(seed, 0x7eac_0002),
                &labelled_all,
                &Supervision::Labels,
                config,
                &fill,
                data,
                device,
                observer,
            )?;
            let record = record_for(
                Role::Teacher,
                "ce",
                1.0,
                None,
                &model_config.model,
                &outcome,
                data,
                None,
                device,
                seed,
            );
            (outcome.model, model_config.model, record)
        }
    };
    save("teacher", &teacher_spec, &teacher)?;
    let teacher_test_logits = predict_logits(&teacher, &data.test, device);
    out.push(("teacher".to_string(), teacher_record));

    // Cached teacher logits are exact only when the student sees un-augmented inputs.
    let teacher_train_logits = config
        .augment
        .is_identity()
        .then(|| predict_logits(&teacher, &data.train, device));
    let student_init_seed = mix_seed(seed, 0x57d0_0001);
    let student_order_seed = mix_seed(seed, 0x57d0_0002);
    let weights = KdWeights {
        temperature: config.distill.temperature,
        alpha: config.distill.alpha,
    };

    for &fraction in &config.data.label_fractions {
        let suffix = fraction_suffix(fraction);
        let subset: Vec<usize> = if fraction < 1.0 {
            stratified_subset_indices(
                &data.train.labels,
                classes,
                fraction,
                mix_seed(seed, 0x1abe_0001),
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
        let labelled_set = TrainingSet {
            data: &labelled_data,
            labelled: None,
            samples_per_epoch,
            validation: &data.validation,
        };

        let name = format!("scratch{suffix}");
        let outcome = train_model(
            &format!("seed {seed} · {name}"),
            &config.student,
            student_init_seed,
            student_order_seed,
            &labelled_set,
            &Supervision::Labels,
            config,
            &fill,
            data,
            device,
            observer,
        )?;
        save(&name, &config.student.model, &outcome.model)?;
        let record = record_for(
            Role::Scratch,
            "ce",
            fraction,
            None,
            &config.student.model,
            &outcome,
            data,
            Some(&teacher_test_logits),
            device,
            seed,
        );
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
            let mut mask = Vec::new();
            let subset_logits: Vec<f32>;
            let (set, signal) = match transfer {
                Transfer::All => {
                    if fraction < 1.0 {
                        mask = vec![false; data.train.len()];
                        for &index in &subset {
                            mask[index] = true;
                        }
                    }
                    let set = TrainingSet {
                        data: &data.train,
                        labelled: (fraction < 1.0).then_some(mask.as_slice()),
                        samples_per_epoch,
                        validation: &data.validation,
                    };
                    let signal = match &teacher_train_logits {
                        Some(logits) => TeacherSignal::Cached(logits),
                        None => TeacherSignal::Live(&teacher),
                    };
                    (set, signal)
                }
                Transfer::Labelled => {
                    let signal = match &teacher_train_logits {
                        Some(logits) => {
                            subset_logits = subset
                                .iter()
                                .flat_map(|&i| {
                                    logits[i * classes..(i + 1) * classes].iter().copied()
                                })
                                .collect();
                            TeacherSignal::Cached(&subset_logits)
                        }
                        None => TeacherSignal::Live(&teacher),
                    };
                    let set = TrainingSet {
                        data: &labelled_data,
                        labelled: None,
                        samples_per_epoch,
                        validation: &data.validation,
                    };
                    (set, signal)
                }
            };
            let outcome = train_model(
                &format!("seed {seed} · {name}"),
                &config.student,
                student_init_seed,
                student_order_seed,
                &set,
                &Supervision::Distill {
                    teacher: signal,
                    weights,
                },
                config,
                &fill,
                data,
                device,
                observer,
            )?;
            save(&name, &config.student.model, &outcome.model)?;
            let record = record_for(
                Role::Distilled,
                &config.distill.method,
                fraction,
                Some(transfer),
                &config.student.model,
                &outcome,
                data,
                Some(&teacher_test_logits),
                device,
                seed,
            );
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

#[allow(clippy::too_many_arguments)]
fn train_model(
    name: &str,
    model_config: &ModelConfig,
    init_seed: u64,
    order_seed: u64,
    set: &TrainingSet<'_>,
    supervision: &Supervision<'_>,
    config: &ExperimentConfig,
    fill: &[f32],
    data: &PreparedData,
    device: &ComputeDevice,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome> {
    let network = Network::new(
        &model_config.model,
        data.train.shape,
        data.train.num_classes,
        init_seed,
        &device.training(),
    )
    .map_err(|message| Error::Invalid(format!("{name}: {message}")))?;
    let settings = TrainSettings {
        train: &model_config.train,
        optimizer: &model_config.optimizer,
        augmentation: config.augment,
        fill,
        seed: order_seed,
    };
    Ok(train(
        name,
        network,
        set,
        supervision,
        &settings,
        device,
        observer,
    )?)
}

#[allow(clippy::too_many_arguments)]
fn record_for(
    role: Role,
    method: &str,
    label_fraction: f64,
    transfer: Option<Transfer>,
    spec: &ModelSpec,
    outcome: &TrainOutcome,
    data: &PreparedData,
    teacher_test_logits: Option<&[f32]>,
    device: &ComputeDevice,
    seed: u64,
) -> SeedRecord {
    let classes = data.train.num_classes;
    let logits = predict_logits(&outcome.model, &data.test, device);
    SeedRecord {
        role,
        method: method.to_string(),
        label_fraction,
        transfer,
        architecture: spec.describe(data.train.shape.len(), classes),
        params: outcome.model.parameter_count(),
        metrics: evaluate(&logits, classes, &data.test.labels, teacher_test_logits),
        validation_accuracy: outcome.final_validation_accuracy,
        wall_time_s: outcome.wall_time_s,
        epochs_run: outcome.epochs_run,
        curve: Curve {
            seed,
            train_loss: outcome.train_loss.clone(),
            validation_accuracy: outcome.validation_accuracy.clone(),
            learning_rate: outcome.learning_rate.clone(),
        },
    }
}

fn summarise(name: &str, records: &[SeedRecord], _seeds: &[u64]) -> ModelResult {
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

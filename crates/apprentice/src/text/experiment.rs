//! A whole text run: the pretrained teacher's sentence embeddings (cached), a classification
//! head trained on them, and each student trained from scratch and by distillation, for every
//! seed; then the speed of every model. The result is an ordinary [`Results`], so the
//! comparison table and the report work as for images.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::cache::{CacheOutcome, cache_key, cached_rows};
use super::config::{StudentKind, TextExperimentConfig};
use super::data::{TextData, load_text_data, split_text};
use super::error::TextError;
use super::pretrained::PretrainedEncoder;
use super::speed::{SpeedRow, SpeedSection, sentences_per_second};
use super::students::{TextStudent, static_token_vectors};
use super::train::{
    StudentObjective, StudentSettings, StudentSplits, TokenSet, student_logits, train_student,
};
use crate::backend::{self, ComputeDevice};
use crate::data::augment::Augmentation;
use crate::data::{Dataset, SampleShape};
use crate::distill::loss::KdWeights;
use crate::distill::train::{
    OnNan, Supervision, TrainObserver, TrainSettings, TrainingSet, predict_logits, train,
};
use crate::eval::metrics::{Metrics, evaluate};
use crate::models::{Activation, MlpSpec, ModelSpec, Network};
use crate::report::results::{
    Curve, DataSummary, ModelResult, Results, Role, SCHEMA_VERSION, Summary, TestSummary,
};

/// Key of the speed section in a text run's `results.json`.
pub const SPEED_KEY: &str = "text_speed";

/// Where a text run finds its files and runs its tensors.
pub struct TextRunOptions {
    /// The folder `text.model` and `data.path` are relative to (`--data`); `None`: as written.
    pub data_root: Option<PathBuf>,
    /// Where the head and the students train.
    pub device: ComputeDevice,
}

/// What a text run produced.
pub struct TextRunOutput {
    /// Every model's metrics, per seed and aggregated.
    pub results: Results,
    /// Sentences per second of the first seed's models, when measured.
    pub speed: Option<SpeedSection>,
}

impl TextRunOutput {
    /// The `results.json` document: the results plus the speed section.
    pub fn to_json_pretty(&self) -> String {
        let mut value = serde_json::to_value(&self.results).expect("results serialise to JSON");
        if let (Some(speed), Some(object)) = (&self.speed, value.as_object_mut()) {
            object.insert(
                SPEED_KEY.to_string(),
                serde_json::to_value(speed).expect("speed serialises to JSON"),
            );
        }
        let mut text = serde_json::to_string_pretty(&value).expect("results serialise to JSON");
        text.push('\n');
        text
    }
}

/// How one student is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Objective {
    Labels,
    Kd,
    Embedding,
}

/// One student of the run.
#[derive(Debug, Clone)]
struct StudentPlan {
    name: &'static str,
    architecture: StudentKind,
    role: Role,
    method: &'static str,
    from_teacher_tokens: bool,
    objective: Objective,
}

/// The students a config asks for, each architecture's scratch baseline before its distilled
/// students.
fn student_plans(config: &TextExperimentConfig) -> Vec<StudentPlan> {
    let kinds = &config.students.kinds;
    let plan = |name, architecture, role, method, from_teacher_tokens, objective| StudentPlan {
        name,
        architecture,
        role,
        method,
        from_teacher_tokens,
        objective,
    };
    let mut plans = Vec::new();
    if kinds.contains(&StudentKind::Bag) {
        plans.push(plan(
            "bag",
            StudentKind::Bag,
            Role::Scratch,
            "ce",
            false,
            Objective::Labels,
        ));
        plans.push(plan(
            "bag-kd",
            StudentKind::Bag,
            Role::Distilled,
            "kd",
            false,
            Objective::Kd,
        ));
    }
    if kinds.contains(&StudentKind::Static) {
        plans.push(plan(
            "static-kd",
            StudentKind::Bag,
            Role::Distilled,
            "kd",
            true,
            Objective::Kd,
        ));
    }
    if config.distill.embedding {
        plans.push(plan(
            "bag-embed",
            StudentKind::Bag,
            Role::Distilled,
            "embedding-cosine",
            false,
            Objective::Embedding,
        ));
    }
    if kinds.contains(&StudentKind::Cnn) {
        plans.push(plan(
            "cnn",
            StudentKind::Cnn,
            Role::Scratch,
            "ce",
            false,
            Objective::Labels,
        ));
        plans.push(plan(
            "cnn-kd",
            StudentKind::Cnn,
            Role::Distilled,
            "kd",
            false,
            Objective::Kd,
        ));
    }
    plans
}

/// The scratch model each distilled model of a text run is compared with: the scratch
/// student of the same architecture (`bag` for `bag-kd`, `static-kd` and `bag-embed`).
pub fn scratch_baseline(name: &str) -> Option<&'static str> {
    match name {
        "bag-kd" | "static-kd" | "bag-embed" => Some("bag"),
        "cnn-kd" => Some("cnn"),
        _ => None,
    }
}

/// One model's measurements over the seeds.
struct ModelRecord {
    role: Role,
    name: String,
    method: String,
    transfer: Option<String>,
    architecture: String,
    params: usize,
    accuracy: Vec<f64>,
    nll: Vec<f64>,
    ece: Vec<f64>,
    agreement: Vec<f64>,
    kl: Vec<f64>,
    validation_accuracy: Vec<f64>,
    train_time_s: Vec<f64>,
    epochs_run: Vec<f64>,
    curves: Vec<Curve>,
}

impl ModelRecord {
    fn new(role: Role, name: &str, method: &str) -> Self {
        Self {
            role,
            name: name.to_string(),
            method: method.to_string(),
            transfer: (role == Role::Distilled).then(|| "all".to_string()),
            architecture: String::new(),
            params: 0,
            accuracy: Vec::new(),
            nll: Vec::new(),
            ece: Vec::new(),
            agreement: Vec::new(),
            kl: Vec::new(),
            validation_accuracy: Vec::new(),
            train_time_s: Vec::new(),
            epochs_run: Vec::new(),
            curves: Vec::new(),
        }
    }

    fn add(&mut self, metrics: &Metrics, validation_accuracy: f64, time_s: f64, curve: Curve) {
        self.accuracy.push(metrics.accuracy);
        self.nll.push(metrics.nll);
        self.ece.push(metrics.ece);
        if let Some(agreement) = metrics.agreement {
            self.agreement.push(agreement);
        }
        if let Some(kl) = metrics.kl_from_teacher {
            self.kl.push(kl);
        }
        self.validation_accuracy.push(validation_accuracy);
        self.train_time_s.push(time_s);
        self.epochs_run.push(curve.train_loss.len() as f64);
        self.curves.push(curve);
    }

    fn into_result(self) -> ModelResult {
        let optional = |values: &[f64]| (!values.is_empty()).then(|| Summary::from_values(values));
        ModelResult {
            role: self.role,
            name: self.name,
            method: self.method,
            label_fraction: 1.0,
            transfer: self.transfer,
            architecture: self.architecture,
            params: self.params,
            test: TestSummary {
                accuracy: Summary::from_values(&self.accuracy),
                nll: Summary::from_values(&self.nll),
                ece: Summary::from_values(&self.ece),
                agreement: optional(&self.agreement),
                kl_from_teacher: optional(&self.kl),
            },
            validation_accuracy: Summary::from_values(&self.validation_accuracy),
            train_time_s: Summary::from_values(&self.train_time_s),
            epochs_run: Summary::from_values(&self.epochs_run),
            curves: self.curves,
        }
    }
}

/// Rows of `values` (`n × dim`) at `indices`.
fn gather_rows(values: &[f32], dim: usize, indices: &[usize]) -> Vec<f32> {
    indices
        .iter()
        .flat_map(|&i| values[i * dim..(i + 1) * dim].iter().copied())
        .collect()
}

/// The sentence embeddings of the rows at `indices` as a data set for the head.
fn embedding_set(
    name: &str,
    embeddings: &[f32],
    dim: usize,
    data: &TextData,
    indices: &[usize],
) -> Dataset {
    Dataset {
        name: name.to_string(),
        features: gather_rows(embeddings, dim, indices),
        labels: indices.iter().map(|&i| data.labels[i]).collect(),
        shape: SampleShape::flat(dim),
        num_classes: data.classes.len(),
    }
}

fn resolve(root: Option<&Path>, path: &Path) -> PathBuf {
    match root {
        Some(root) => root.join(path),
        None => path.to_path_buf(),
    }
}

fn describe_cache(what: &str, outcome: &CacheOutcome) -> String {
    match outcome {
        CacheOutcome::Hit(path) => format!("{what}: read from the cache {}", path.display()),
        CacheOutcome::Stored(path) => format!("{what}: computed and cached in {}", path.display()),
        CacheOutcome::Uncached => format!("{what}: computed (no cache)"),
        CacheOutcome::Replaced(path, reason) => format!(
            "{what}: the cache file {} was not used ({reason}); computed and rewritten",
            path.display()
        ),
    }
}

/// A progress callback that tells `note` each tenth of `total` done, with the seconds since
/// it was made.
fn tenths<'a>(
    what: &'a str,
    unit: &'a str,
    total: usize,
    note: &'a mut dyn FnMut(&str),
) -> impl FnMut(usize) + 'a {
    let started = std::time::Instant::now();
    let mut last = 0;
    move |done| {
        let total = total.max(1);
        if done * 10 / total > last * 10 / total {
            note(&format!(
                "{what}: {done}/{total} {unit} ({:.0} s)",
                started.elapsed().as_secs_f64()
            ));
        }
        last = done;
    }
}

/// Runs a text experiment. `observer` follows each training run; `note` hears one line per
/// stage (encoder loaded, embeddings computed or read from the cache, ...).
pub fn run_text_experiment(
    config: &TextExperimentConfig,
    options: &TextRunOptions,
    observer: &mut dyn TrainObserver,
    note: &mut dyn FnMut(&str),
) -> Result<TextRunOutput, TextError> {
    let root = options.data_root.as_deref();
    let device = &options.device;
    let encoder = PretrainedEncoder::load(&resolve(root, &config.text.model), device)?;
    for line in &encoder.notes {
        note(line);
    }
    let model_name = encoder
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "encoder".to_string());
    let dim = encoder.dim();
    note(&format!(
        "teacher: {model_name} (bert, {} layers, hidden {dim}, {} parameters), max {} word pieces",
        encoder.config.num_hidden_layers,
        crate::report::units::thousands(encoder.parameter_count() as u64),
        encoder.max_length
    ));
    if config.students.kinds.contains(&StudentKind::Static) && config.students.embedding_dim > dim {
        return Err(TextError::Invalid(format!(
            "students.embedding_dim: a static student's PCA keeps at most the teacher's {dim} \
             dimensions, found {}",
            config.students.embedding_dim
        )));
    }
    let data = load_text_data(
        &resolve(root, &config.data.path),
        config.data.format,
        &config.data.options(),
    )?;
    let counts = data.class_counts();
    note(&format!(
        "data: {} texts of {} ({})",
        data.len(),
        data.name,
        data.classes
            .iter()
            .zip(&counts)
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if data.classes.len() < 2 {
        return Err(TextError::Invalid(format!(
            "{}: expected at least two classes, found {:?}",
            data.name, data.classes
        )));
    }
    let classes = data.classes.len();
    let sequences = encoder.tokenizer.encode_all(&data.texts)?;
    let cache_dir =
        (!config.text.cache_dir.as_os_str().is_empty()).then_some(&config.text.cache_dir);
    let sequence_bytes = |sequences: &[Vec<u32>]| -> Vec<u8> {
        sequences
            .iter()
            .flat_map(|s| {
                (s.len() as u32)
                    .to_le_bytes()
                    .into_iter()
                    .chain(s.iter().flat_map(|id| id.to_le_bytes()))
            })
            .collect()
    };
    let key = cache_key([
        encoder.fingerprint.as_bytes(),
        b"sentence-embeddings",
        &sequence_bytes(&sequences),
    ]);
    let total = sequences.len();
    let (embeddings, outcome) = cached_rows(
        cache_dir.map(PathBuf::as_path),
        "embeddings",
        &key,
        total,
        dim,
        || {
            let mut progress = tenths("teacher embeddings", "sentences", total, note);
            Ok(encoder.embed_ids(&sequences, config.text.encode_batch_size, &mut progress))
        },
    )?;
    note(&describe_cache("teacher embeddings", &outcome));

    let static_vectors = if config.students.kinds.contains(&StudentKind::Static) {
        let (cls, sep) = match (
            encoder.tokenizer.token_id("[CLS]"),
            encoder.tokenizer.token_id("[SEP]"),
        ) {
            (Some(cls), Some(sep)) => (cls, sep),
            _ => {
                return Err(TextError::model(
                    encoder.dir.join(super::pretrained::TOKENIZER_FILE),
                    "a static student needs the [CLS] and [SEP] tokens, not found",
                ));
            }
        };
        let vocab = encoder.config.vocab_size;
        let token_sequences: Vec<Vec<u32>> =
            (0..vocab as u32).map(|id| vec![cls, id, sep]).collect();
        let key = cache_key([
            encoder.fingerprint.as_bytes(),
            b"token-embeddings",
            &sequence_bytes(&token_sequences),
        ]);
        let (vectors, outcome) = cached_rows(
            cache_dir.map(PathBuf::as_path),
            "tokens",
            &key,
            vocab,
            dim,
            || {
                let mut progress = tenths("teacher vectors", "word pieces", vocab, note);
                Ok(encoder.embed_ids(&token_sequences, 512, &mut progress))
            },
        )?;
        note(&describe_cache(
            "teacher vectors of every word piece",
            &outcome,
        ));
        Some(static_token_vectors(
            &vectors,
            dim,
            config.students.embedding_dim,
        ))
    } else {
        None
    };

    let plans = student_plans(config);
    let head_spec = ModelSpec::Mlp(MlpSpec {
        hidden: config.teacher.hidden.clone(),
        activation: Activation::Relu,
        dropout: config.teacher.dropout,
    });
    let mut teacher_record = ModelRecord::new(Role::Teacher, "teacher", "ce");
    teacher_record.transfer = None;
    let mut records: Vec<ModelRecord> = plans
        .iter()
        .map(|plan| ModelRecord::new(plan.role, plan.name, plan.method))
        .collect();
    let mut first_seed_models: Option<(Network, Vec<TextStudent>)> = None;
    let mut split_sizes = (0, 0, 0);
    let mut first_test_texts: Vec<String> = Vec::new();
    let pad_id = encoder.config.pad_token_id;
    let vocab = encoder.config.vocab_size;
    let settings_for = |seed| StudentSettings {
        train: &config.students.train,
        optimizer: &config.students.optimizer,
        seed,
        max_tokens: config.students.max_tokens,
        pad_id,
        num_classes: classes,
    };

    for (seed_index, &seed) in config.seeds.iter().enumerate() {
        let split = split_text(
            &data,
            config.data.validation_fraction,
            config.data.test_fraction,
            seed,
        )?;
        split_sizes = (split.train.len(), split.validation.len(), split.test.len());
        let train_set = embedding_set("train", &embeddings, dim, &data, &split.train);
        let validation_set =
            embedding_set("validation", &embeddings, dim, &data, &split.validation);
        let test_set = embedding_set("test", &embeddings, dim, &data, &split.test);

        // The teacher: the frozen encoder's embeddings through a trained head.
        let head = Network::new(
            &head_spec,
            SampleShape::flat(dim),
            classes,
            seed,
            &device.training(),
        )
        .map_err(TextError::Invalid)?;
        let head_outcome = train(
            &format!("teacher head (seed {seed})"),
            head,
            &TrainingSet {
                data: &train_set,
                labelled: None,
                samples_per_epoch: train_set.len(),
                validation: &validation_set,
            },
            &Supervision::Labels,
            &TrainSettings {
                train: &config.teacher.train,
                optimizer: &config.teacher.optimizer,
                augmentation: Augmentation::default(),
                fill: &[],
                seed,
                on_nan: OnNan::Stop,
                checkpointing: None,
            },
            device,
            observer,
        )?;
        let head = head_outcome.model;
        let teacher_train_logits = predict_logits(&head, &train_set, device);
        let teacher_test_logits = predict_logits(&head, &test_set, device);
        let metrics = evaluate(&teacher_test_logits, classes, &test_set.labels, None);
        teacher_record.architecture = format!(
            "{model_name} (bert {}×{dim}, frozen) + {}",
            encoder.config.num_hidden_layers,
            head_spec.describe(dim, classes)
        );
        teacher_record.params = encoder.parameter_count() + head.parameter_count();
        teacher_record.add(
            &metrics,
            head_outcome.final_validation_accuracy,
            head_outcome.wall_time_s,
            Curve {
                seed,
                train_loss: head_outcome.train_loss.clone(),
                validation_accuracy: head_outcome.validation_accuracy.clone(),
                learning_rate: head_outcome.learning_rate.clone(),
            },
        );

        // The students.
        let token_set = |indices: &[usize]| -> (Vec<&[u32]>, Vec<u32>) {
            (
                indices.iter().map(|&i| sequences[i].as_slice()).collect(),
                indices.iter().map(|&i| data.labels[i]).collect(),
            )
        };
        let (train_sequences, train_labels) = token_set(&split.train);
        let (validation_sequences, validation_labels) = token_set(&split.validation);
        let (test_sequences, test_labels) = token_set(&split.test);
        let splits = StudentSplits {
            train: TokenSet {
                sequences: &train_sequences,
                labels: &train_labels,
            },
            validation: TokenSet {
                sequences: &validation_sequences,
                labels: &validation_labels,
            },
        };
        let settings = settings_for(seed);
        let kd = KdWeights {
            temperature: config.distill.temperature,
            alpha: config.distill.alpha,
        };
        let mut students = Vec::new();
        for (plan, record) in plans.iter().zip(records.iter_mut()) {
            let outputs = if plan.objective == Objective::Embedding {
                dim
            } else {
                classes
            };
            let token_vectors = if plan.from_teacher_tokens {
                static_vectors.as_deref()
            } else {
                None
            };
            let model = TextStudent::new(
                plan.architecture,
                &config.students,
                vocab,
                outputs,
                token_vectors,
                seed,
                &device.training(),
            );
            let objective = match plan.objective {
                Objective::Labels => StudentObjective::Labels,
                Objective::Kd => StudentObjective::Kd {
                    teacher_logits: &teacher_train_logits,
                    weights: kd,
                },
                Objective::Embedding => StudentObjective::Embedding {
                    targets: &train_set.features,
                    head: &head,
                },
            };
            let outcome = train_student(
                &format!("{} (seed {seed})", plan.name),
                model,
                &splits,
                &objective,
                &settings,
                device,
                observer,
            )?;
            let head_for_predictions = (plan.objective == Objective::Embedding).then_some(&head);
            let logits = student_logits(
                &outcome.model,
                head_for_predictions,
                &test_sequences,
                &settings,
                &device.inference(),
            );
            let metrics = evaluate(&logits, classes, &test_labels, Some(&teacher_test_logits));
            let mut architecture = outcome.model.describe();
            let mut params = outcome.model.parameter_count();
            if plan.from_teacher_tokens {
                architecture.push_str(" (token vectors: teacher + PCA)");
            }
            if plan.objective == Objective::Embedding {
                architecture.push_str(" + the teacher's head");
                params += head.parameter_count();
            }
            record.architecture = architecture;
            record.params = params;
            record.add(
                &metrics,
                outcome.best_validation_accuracy,
                outcome.wall_time_s,
                Curve {
                    seed,
                    train_loss: outcome.train_loss,
                    validation_accuracy: outcome.validation_accuracy,
                    learning_rate: outcome.learning_rate,
                },
            );
            students.push(outcome.model);
        }
        if seed_index == 0 {
            first_test_texts = split.test.iter().map(|&i| data.texts[i].clone()).collect();
            first_seed_models = Some((head, students));
        }
    }

    let speed = match first_seed_models {
        Some((head, students)) if config.text.bench_seconds > 0.0 => {
            note("timing the teacher and the students at batch 1 and 256");
            let budget = Duration::from_secs_f64(config.text.bench_seconds);
            let inference = device.inference();
            let mut rows = Vec::new();
            let teacher = |batch: &[String]| {
                if let Ok(vectors) = encoder.embed_texts(batch, batch.len(), &mut |_| {}) {
                    let inputs = backend::matrix(vectors, batch.len(), dim, &inference);
                    std::hint::black_box(backend::to_host(head.logits(inputs)));
                }
            };
            let teacher_1 = sentences_per_second(&first_test_texts, 1, budget, teacher);
            let teacher_256 = sentences_per_second(&first_test_texts, 256, budget, teacher);
            rows.push(SpeedRow {
                name: "teacher".to_string(),
                params: teacher_record.params,
                batch_1_per_s: teacher_1,
                batch_256_per_s: teacher_256,
            });
            let settings = settings_for(config.seeds[0]);
            for ((plan, record), student) in plans.iter().zip(&records).zip(&students) {
                let student_head = (plan.objective == Objective::Embedding).then_some(&head);
                let run = |batch: &[String]| {
                    if let Ok(ids) = encoder.tokenizer.encode_all(batch) {
                        let ids: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
                        std::hint::black_box(student_logits(
                            student,
                            student_head,
                            &ids,
                            &settings,
                            &inference,
                        ));
                    }
                };
                rows.push(SpeedRow {
                    name: plan.name.to_string(),
                    params: record.params,
                    batch_1_per_s: sentences_per_second(&first_test_texts, 1, budget, run),
                    batch_256_per_s: sentences_per_second(&first_test_texts, 256, budget, run),
                });
            }
            Some(SpeedSection {
                seed: config.seeds[0],
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
                budget_s: config.text.bench_seconds,
                models: rows,
            })
        }
        _ => None,
    };

    let mut models = vec![teacher_record.into_result()];
    models.extend(records.into_iter().map(ModelRecord::into_result));
    let results = Results {
        schema_version: SCHEMA_VERSION,
        experiment: config.name.clone(),
        created_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        apprentice_version: env!("CARGO_PKG_VERSION").to_string(),
        seeds: config.seeds.clone(),
        data: DataSummary {
            name: data.name.clone(),
            num_classes: classes,
            train: split_sizes.0,
            validation: split_sizes.1,
            test: split_sizes.2,
            sample_shape: [1, 1, encoder.max_length],
        },
        models,
        config: serde_json::to_value(config).unwrap_or_default(),
    };
    Ok(TextRunOutput { results, speed })
}

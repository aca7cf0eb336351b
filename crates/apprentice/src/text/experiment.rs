//! A whole text run: the teacher (a head on the pretrained encoder's cached sentence
//! embeddings, the encoder fine-tuned on the task, or a fine-tuned folder), and each student
//! trained from scratch and by distillation, for every seed; then the speed of every model.
//! Each finished model is kept in the run folder with its record, so a killed run resumes. The result is an ordinary [`Results`], so the
//! comparison table and the report work as for images.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cache::{CacheOutcome, cache_key, cached_rows};
use super::classifier_folder::load_classifier;
use super::config::{StudentKind, TextExperimentConfig};
use super::data::{TextData, load_text_data, split_text};
use super::error::TextError;
use super::plans::{StudentPlan, student_plans};
use super::pretrained::PretrainedEncoder;
use super::run_store::TextRunStore;
use super::seed_context::{RunContext, SeedSplit};
use super::speed::{SpeedRow, SpeedSection, sentences_per_second};
use super::student_stage::{TrainedStudent, seed_student, small_settings, teacher_head};
use super::students::static_token_vectors;
use super::teacher_stage::{SeedTeacher, TEACHER, TeacherModel, seed_teacher};
use super::train::student_logits;
use super::transformer_config::TeacherKind;
use super::transformer_run::TransformerModel;
use crate::backend::{self, ComputeDevice};
use crate::distill::record::{Row, StudentRecord};
use crate::distill::train::TrainObserver;
use crate::report::results::{DataSummary, Results};
use crate::task::{
    ModelSeeds, ResultsFile, SeedTable, Task, envelope, model_result, now_unix_s, run_task,
};

pub use super::plans::scratch_baseline;

/// Key of the speed section in a text run's `results.json`.
pub const SPEED_KEY: &str = "text_speed";

/// Where a text run finds its files, runs its tensors and keeps its models.
pub struct TextRunOptions {
    /// The folder `text.model` and `data.path` are relative to (`--data`); `None`: the
    /// config's `data_root`, else as written.
    pub data_root: Option<PathBuf>,
    /// Where the models train.
    pub device: ComputeDevice,
    /// The run folder: each finished model is saved there with its record, and a model whose
    /// record is already there (an earlier, interrupted attempt) is read back instead of
    /// trained. `None`: nothing is saved.
    pub run_dir: Option<PathBuf>,
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
        let mut file = ResultsFile::new(self.results.clone());
        if let Some(speed) = &self.speed
            && let Ok(value) = serde_json::to_value(speed)
        {
            file.sections.insert(SPEED_KEY.to_string(), value);
        }
        file.to_json_pretty()
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

/// The sentence embeddings of every text (cached), and the static student's token vectors,
/// when the run needs them.
struct EncoderOutputs {
    embeddings: Vec<f32>,
    static_vectors: Option<Vec<f32>>,
}

fn sequence_bytes(sequences: &[Vec<u32>]) -> Vec<u8> {
    sequences
        .iter()
        .flat_map(|s| {
            (s.len() as u32)
                .to_le_bytes()
                .into_iter()
                .chain(s.iter().flat_map(|id| id.to_le_bytes()))
        })
        .collect()
}

fn encoder_outputs(
    config: &TextExperimentConfig,
    encoder: &PretrainedEncoder,
    sequences: &[Vec<u32>],
    note: &mut dyn FnMut(&str),
) -> Result<EncoderOutputs, TextError> {
    let dim = encoder.dim();
    let cache_dir =
        (!config.text.cache_dir.as_os_str().is_empty()).then_some(config.text.cache_dir.as_path());
    let embeddings = if config.teacher.kind == TeacherKind::Head || config.embedding_student() {
        let key = cache_key([
            encoder.fingerprint.as_bytes(),
            b"sentence-embeddings",
            &sequence_bytes(sequences),
        ]);
        let total = sequences.len();
        let (embeddings, outcome) = cached_rows(cache_dir, "embeddings", &key, total, dim, || {
            let mut progress = tenths("teacher embeddings", "sentences", total, note);
            Ok(encoder.embed_ids(sequences, config.text.encode_batch_size, &mut progress))
        })?;
        note(&describe_cache("teacher embeddings", &outcome));
        embeddings
    } else {
        Vec::new()
    };
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
        let (vectors, outcome) = cached_rows(cache_dir, "tokens", &key, vocab, dim, || {
            let mut progress = tenths("teacher vectors", "word pieces", vocab, note);
            Ok(encoder.embed_ids(&token_sequences, 512, &mut progress))
        })?;
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
    Ok(EncoderOutputs {
        embeddings,
        static_vectors,
    })
}

/// The teacher of `teacher.kind = "folder"`, read once: it must share the encoder's vocabulary
/// (whose tokenizer reads the texts) and have one output per class.
fn folder_teacher(
    config: &TextExperimentConfig,
    root: Option<&Path>,
    encoder: &PretrainedEncoder,
    classes: &[String],
    device: &ComputeDevice,
) -> Result<Option<TransformerModel>, TextError> {
    let Some(folder) = config.teacher.folder.as_ref() else {
        return Ok(None);
    };
    if config.teacher.kind != TeacherKind::Folder {
        return Ok(None);
    }
    let dir = resolve(root, folder);
    let loaded = load_classifier(&dir, &device.inference())?;
    let config_path = dir.join(super::pretrained::CONFIG_FILE);
    if loaded.labels.len() != classes.len() {
        return Err(TextError::model(
            config_path,
            format!(
                "num_labels: the data has {} classes {classes:?}, the classifier {} ({:?})",
                classes.len(),
                loaded.labels.len(),
                loaded.labels
            ),
        ));
    }
    if loaded.config.vocab_size != encoder.config.vocab_size {
        return Err(TextError::model(
            config_path,
            format!(
                "vocab_size: expected {} (the vocabulary of text.model, whose tokenizer reads \
                 the texts), found {}",
                encoder.config.vocab_size, loaded.config.vocab_size
            ),
        ));
    }
    let max_length = encoder
        .max_length
        .min(loaded.config.max_position_embeddings);
    Ok(Some(TransformerModel {
        model: loaded.model,
        config: loaded.config,
        max_length,
    }))
}

/// Runs a text experiment. `observer` follows each training run of a small model; `note`
/// hears one line per stage (encoder loaded, embeddings computed or read from the cache,
/// epochs of fine-tuning, models read back from the run folder, ...).
pub fn run_text_experiment(
    config: &TextExperimentConfig,
    options: &TextRunOptions,
    observer: &mut dyn TrainObserver,
    note: &mut dyn FnMut(&str),
) -> Result<TextRunOutput, TextError> {
    let task = TextTask::open(config, options, note)?;
    run_task(task, observer)
}

/// Text classification as a [`Task`]: per seed, the split of the seed, its teacher and every
/// planned student; after the seeds, the speed of the first seed's models.
pub struct TextTask<'a> {
    config: &'a TextExperimentConfig,
    note: &'a mut dyn FnMut(&str),
    device: ComputeDevice,
    encoder: PretrainedEncoder,
    data: TextData,
    folder: Option<TransformerModel>,
    sequences: Vec<Vec<u32>>,
    outputs: EncoderOutputs,
    store: TextRunStore,
    plans: Vec<StudentPlan>,
    /// The first seed's models and test texts, timed after the run.
    first_seed: Option<(SeedTeacher, Vec<TrainedStudent>, Vec<String>)>,
    split_sizes: (usize, usize, usize),
}

impl<'a> TextTask<'a> {
    /// Loads the encoder and the texts, checks the teacher folder, and computes (or reads from
    /// the cache) what the encoder gives every text.
    pub fn open(
        config: &'a TextExperimentConfig,
        options: &TextRunOptions,
        note: &'a mut dyn FnMut(&str),
    ) -> Result<Self, TextError> {
        let root = options.data_root.as_deref().or(config.data_root.as_deref());
        let device = &options.device;
        let encoder = PretrainedEncoder::load(&resolve(root, &config.text.model), device)?;
        for line in &encoder.notes {
            note(line);
        }
        let dim = encoder.dim();
        note(&format!(
            "encoder: {} (bert, {} layers, hidden {dim}, {} parameters), max {} word pieces",
            encoder.dir.display(),
            encoder.config.num_hidden_layers,
            crate::report::units::thousands(encoder.parameter_count() as u64),
            encoder.max_length
        ));
        if config.students.kinds.contains(&StudentKind::Static)
            && config.students.embedding_dim > dim
        {
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
        let folder = folder_teacher(config, root, &encoder, &data.classes, device)?;
        let sequences = encoder.tokenizer.encode_all(&data.texts)?;
        let outputs = encoder_outputs(config, &encoder, &sequences, note)?;
        Ok(Self {
            config,
            note,
            device: device.clone(),
            encoder,
            data,
            folder,
            sequences,
            outputs,
            store: TextRunStore::new(options.run_dir.as_deref()),
            plans: student_plans(config),
            first_seed: None,
            split_sizes: (0, 0, 0),
        })
    }
}

/// What every stage of a seed reads, borrowed from the task.
fn context<'t>(
    config: &'t TextExperimentConfig,
    encoder: &'t PretrainedEncoder,
    data: &'t TextData,
    sequences: &'t [Vec<u32>],
    outputs: &'t EncoderOutputs,
    device: &'t ComputeDevice,
    store: &'t TextRunStore,
) -> RunContext<'t> {
    RunContext {
        config,
        encoder,
        data,
        sequences,
        embeddings: &outputs.embeddings,
        device,
        store,
        classes: data.classes.len(),
    }
}

impl Task for TextTask<'_> {
    type Record = StudentRecord;
    type Output = TextRunOutput;
    type Error = TextError;

    fn seeds(&self) -> Vec<u64> {
        self.config.seeds.clone()
    }

    fn run_seed(
        &mut self,
        seed: u64,
        observer: &mut dyn TrainObserver,
    ) -> Result<Vec<Row>, TextError> {
        let Self {
            config,
            note,
            device,
            encoder,
            data,
            folder,
            sequences,
            outputs,
            store,
            plans,
            first_seed,
            split_sizes,
        } = self;
        let context = context(config, encoder, data, sequences, outputs, device, store);
        let mut split = split_text(
            data,
            config.data.validation_fraction,
            config.data.test_fraction,
            seed,
        )?;
        let mut unlabelled = Vec::new();
        if let Some(max_train) = config.data.max_train {
            let (kept, left_out) = subsample(split.train, max_train, seed);
            split.train = kept;
            let count = config.distill.unlabelled_texts.unwrap_or(0);
            unlabelled = left_out.into_iter().take(count).collect();
            unlabelled.sort_unstable();
        }
        *split_sizes = (split.train.len(), split.validation.len(), split.test.len());
        let split = SeedSplit {
            seed,
            train: split.train,
            unlabelled,
            validation: split.validation,
            test: split.test,
        };
        store.save_split(
            seed,
            [&split.train, &split.validation, &split.test],
            &split.unlabelled,
            data.len(),
        )?;
        let teacher = seed_teacher(&context, &split, folder.as_ref(), observer, *note)?;
        let mut rows = vec![(TEACHER.to_string(), teacher.record.clone())];
        let mut students = Vec::new();
        for plan in plans.iter() {
            let (student, record) = seed_student(
                &context,
                &split,
                plan,
                &teacher,
                outputs.static_vectors.as_deref(),
                observer,
                *note,
            )?;
            rows.push((plan.name.to_string(), record));
            students.push(student);
        }
        if first_seed.is_none() {
            let texts = split.test.iter().map(|&i| data.texts[i].clone()).collect();
            *first_seed = Some((teacher, students, texts));
        }
        Ok(rows)
    }

    fn finish(self, table: SeedTable<StudentRecord>) -> Result<TextRunOutput, TextError> {
        let context = context(
            self.config,
            &self.encoder,
            &self.data,
            &self.sequences,
            &self.outputs,
            &self.device,
            &self.store,
        );
        let models = table.models();
        let speed = match self.first_seed {
            Some((teacher, students, texts)) if self.config.text.bench_seconds > 0.0 => {
                Some(time_models(
                    &context,
                    &teacher,
                    &self.plans,
                    &students,
                    &texts,
                    models,
                    self.note,
                ))
            }
            _ => None,
        };
        let config = self.config;
        let max_length = match config.teacher.kind {
            TeacherKind::Head => self.encoder.max_length,
            TeacherKind::Finetune => {
                config
                    .teacher
                    .finetune
                    .clone()
                    .unwrap_or_default()
                    .max_length
            }
            TeacherKind::Folder => self
                .folder
                .as_ref()
                .map_or(self.encoder.max_length, |f| f.max_length),
        };
        let results = envelope(
            &config.name,
            &config.seeds,
            DataSummary {
                name: self.data.name.clone(),
                num_classes: self.data.classes.len(),
                train: self.split_sizes.0,
                validation: self.split_sizes.1,
                test: self.split_sizes.2,
                sample_shape: [1, 1, max_length],
            },
            models.iter().map(model_result).collect(),
            serde_json::to_value(config).unwrap_or_default(),
            now_unix_s(),
        );
        Ok(TextRunOutput { results, speed })
    }
}

/// At most `count` of `indices`, drawn at random from `seed`, in their original order; and the
/// rest, in the order of the draw (so that a prefix of them is a random sample too).
fn subsample(mut indices: Vec<usize>, count: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    if indices.len() <= count {
        return (indices, Vec::new());
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eb5_a3c1_e000_0000);
    indices.shuffle(&mut rng);
    let rest = indices.split_off(count);
    indices.sort_unstable();
    (indices, rest)
}

/// Tokenizes a batch of texts and computes a transformer's logits.
fn transformer_run<'a>(
    encoder: &'a PretrainedEncoder,
    model: &'a TransformerModel,
    device: &'a burn::tensor::Device,
) -> impl Fn(&[String]) + 'a {
    move |batch: &[String]| {
        if let Ok(ids) = encoder.tokenizer.encode_all(batch) {
            std::hint::black_box(model.logits(&ids, device));
        }
    }
}

/// Sentences per second of the first seed's teacher and students, tokenizer included.
#[allow(clippy::too_many_arguments)]
fn time_models(
    context: &RunContext<'_>,
    teacher: &SeedTeacher,
    plans: &[StudentPlan],
    students: &[TrainedStudent],
    texts: &[String],
    models: &[ModelSeeds<StudentRecord>],
    note: &mut dyn FnMut(&str),
) -> SpeedSection {
    let config = context.config;
    let encoder = context.encoder;
    note("timing the teacher and the students at batch 1 and 256");
    let budget = Duration::from_secs_f64(config.text.bench_seconds);
    let inference = context.device.inference();
    let dim = context.dim();
    let seed = config.seeds[0];
    let params = |model: &ModelSeeds<StudentRecord>| model.records().next().map_or(0, |r| r.params);
    let (teacher_model, student_models) = models
        .split_first()
        .expect("the teacher is the first model of a text run");
    let mut rows = Vec::new();
    let (teacher_1, teacher_256) = match &teacher.model {
        TeacherModel::Head(head) => {
            let run = |batch: &[String]| {
                if let Ok(vectors) = encoder.embed_texts(batch, batch.len(), &mut |_| {}) {
                    let inputs = backend::matrix(vectors, batch.len(), dim, &inference);
                    std::hint::black_box(backend::to_host(head.logits(inputs)));
                }
            };
            (
                sentences_per_second(texts, 1, budget, run),
                sentences_per_second(texts, 256, budget, run),
            )
        }
        TeacherModel::Transformer(model) => {
            let run = transformer_run(encoder, model, &inference);
            (
                sentences_per_second(texts, 1, budget, &run),
                sentences_per_second(texts, 256, budget, &run),
            )
        }
    };
    rows.push(SpeedRow {
        name: TEACHER.to_string(),
        params: params(teacher_model),
        batch_1_per_s: teacher_1,
        batch_256_per_s: teacher_256,
    });
    let settings = small_settings(context, seed);
    for ((plan, model), student) in plans.iter().zip(student_models).zip(students) {
        let (batch_1_per_s, batch_256_per_s) = match student {
            TrainedStudent::Small(student) => {
                let student_head = teacher_head(teacher)
                    .filter(|_| plan.objective == super::plans::Objective::Embedding);
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
                (
                    sentences_per_second(texts, 1, budget, run),
                    sentences_per_second(texts, 256, budget, run),
                )
            }
            TrainedStudent::Transformer(model) => {
                let run = transformer_run(encoder, model, &inference);
                (
                    sentences_per_second(texts, 1, budget, &run),
                    sentences_per_second(texts, 256, budget, &run),
                )
            }
        };
        rows.push(SpeedRow {
            name: model.name.clone(),
            params: params(model),
            batch_1_per_s,
            batch_256_per_s,
        });
    }
    SpeedSection {
        seed,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        budget_s: config.text.bench_seconds,
        models: rows,
    }
}

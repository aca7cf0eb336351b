//! A whole language-model run: the teacher read from its GGUF file, the corpus tokenised, the
//! teacher's top-k distributions on every sequence computed once (or reused from the run
//! folder), then per seed a held-out split, one student per objective from the same initial
//! weights (random or from the teacher, `[student] init`) on the same batches, and the
//! held-out comparison with the teacher.
//!
//! The result is the usual `results.json` envelope ([`Results`]) with the language-model
//! section ([`LmSection`]) under its own key.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::checkpoint::{LM_CHECKPOINT_FORMAT, LmCheckpointMeta, save_tokenizer};
use super::config::{LmExperimentConfig, ObjectiveKind, SequenceSource};
use super::corpus::{held_out_split, load_corpus};
pub use super::describe::describe_objective;
use super::error::LmError;
pub use super::error::LmRunError;
use super::llama::{Llama, LlamaConfig};
use super::logit_cache::{TopKLogits, file_hash};
use super::metrics::{LmMetrics, evaluate_against_teacher};
use super::objectives::TokenLoss;
use super::run_store::{LmRunStore, TrainingRecord};
use super::speed::{generation_tokens_per_second, scoring_tokens_per_second};
use super::student_init::StudentInitializer;
use super::teacher::Teacher;
use super::teacher_data::{SetsContext, TeacherSets};
pub use super::teacher_data::{teacher_distributions, tokenize_corpus};
use super::train::{LmCurve, OnPolicy, TrainPlan, train_student};
use crate::backend::ComputeDevice;
use crate::distill::train::{Silent, TrainObserver};
use crate::layout::{RunLayout, lm_teacher_logits, lm_tokenizer};
use crate::report::lm_table::{LM_KEY, LmCacheUse, LmCurvePoints, LmModelSection, LmSection};
use crate::report::results::{
    Curve, DataSummary, ModelResult, Results, Role, Summary, TestSummary,
};
use crate::task::{ResultsFile, SeedTable, Task, envelope, run_task};

/// Where and how a run happens.
#[derive(Debug, Clone)]
pub struct LmRunOptions {
    /// The device students train on (the teacher runs on its inference side).
    pub device: ComputeDevice,
    /// The run folder (checkpoints, teacher cache, tokenizer).
    pub run_dir: PathBuf,
    /// Whether to write each student's checkpoint.
    pub save_checkpoints: bool,
    /// Unix time of the run, for the results file.
    pub created_unix_s: u64,
    /// A teacher cache written by an earlier run (the file, or its run folder), read when it
    /// was computed for this teacher and these sequences (else the teacher runs and the cache
    /// goes into the run folder); or a folder of shards written by `apprentice cache-teacher`,
    /// which must hold every sequence.
    pub teacher_cache: Option<PathBuf>,
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct LmRunOutput {
    /// The envelope.
    pub results: Results,
    /// The language-model section.
    pub lm: LmSection,
}

impl LmRunOutput {
    /// `results.json`: the envelope with the language-model section under [`LM_KEY`].
    pub fn to_json_pretty(&self) -> String {
        let mut file = ResultsFile::new(self.results.clone());
        if let Ok(value) = serde_json::to_value(&self.lm) {
            file.sections.insert(LM_KEY.to_string(), value);
        }
        file.to_json_pretty()
    }
}

/// One model's numbers on one seed.
pub struct SeedRecord {
    metrics: LmMetrics,
    curve: Option<LmCurve>,
    train_time_s: f64,
    training_tokens_per_s: Option<f64>,
    generation_tokens_per_s: Option<f64>,
    scoring_tokens_per_s: Option<f64>,
}

fn architecture(config: &LlamaConfig) -> String {
    format!(
        "llama {}×{} ({}/{} heads, ffn {})",
        config.layers, config.hidden, config.heads, config.kv_heads, config.ffn
    )
}

/// Runs every seed of `config` and returns the results; `log` hears one line per stage.
pub fn run_lm_experiment(
    config: &LmExperimentConfig,
    options: &LmRunOptions,
    log: &mut dyn FnMut(&str),
) -> Result<LmRunOutput, LmRunError> {
    let task = LmTask::open(config, options, log)?;
    run_task(task, &mut Silent::default())
}

/// Language modelling as a [`Task`]: the teacher and its cached distributions are shared by
/// every seed; per seed, a held-out split, one student per objective from the same initial
/// weights on the same batches, and the held-out comparison with the teacher.
pub struct LmTask<'a> {
    config: &'a LmExperimentConfig,
    options: &'a LmRunOptions,
    log: &'a mut dyn FnMut(&str),
    layout: RunLayout,
    teacher: Teacher,
    teacher_sha256: String,
    student_config: LlamaConfig,
    initializer: StudentInitializer,
    sequences: Vec<Vec<u32>>,
    cache: TopKLogits,
    cache_path: PathBuf,
    reused: bool,
    cache_seconds: f64,
    tokenizer_path: PathBuf,
    losses: Vec<Option<TokenLoss>>,
    sources: Vec<SequenceSource>,
    teacher_sets: TeacherSets,
    held_out_tokens: Vec<f64>,
    split_sizes: (usize, usize),
}

impl<'a> LmTask<'a> {
    /// Reads the teacher and the corpus and computes (or reuses) the teacher's distributions.
    pub fn open(
        config: &'a LmExperimentConfig,
        options: &'a LmRunOptions,
        log: &'a mut dyn FnMut(&str),
    ) -> Result<Self, LmRunError> {
        let inference = options.device.inference();
        let layout = RunLayout::new(&options.run_dir);
        log(&format!("teacher: {}", config.lm.teacher.display()));
        let teacher = Teacher::open(&config.lm.teacher, &inference)?;
        let teacher_sha256 = file_hash(&config.lm.teacher)
            .map_err(|e| LmRunError::Invalid(format!("{}: {e}", config.lm.teacher.display())))?;
        let student_config = config.student.config(&teacher.config)?;
        // Before the corpus and the teacher's distributions, so that a student that cannot
        // start from this teacher is refused at once.
        let initializer = StudentInitializer::new(
            config.student.init,
            config.student.layers_from.as_deref(),
            &teacher.model,
            &teacher.config,
            &student_config,
        )?;
        if let Some(init) = initializer.describe() {
            log(&format!("students start from {init}"));
        }
        let texts = load_corpus(&config.corpus)?;
        let (sequences, dropped) = tokenize_corpus(&teacher, &texts, config.lm.max_len)?;
        log(&format!(
            "corpus: {} texts, {} tokens ({dropped} texts of fewer than two tokens dropped)",
            sequences.len(),
            sequences.iter().map(Vec::len).sum::<usize>()
        ));
        let cache_path = lm_teacher_logits(&layout);
        let (cache, reused, cache_seconds) = teacher_distributions(
            &teacher,
            &teacher_sha256,
            &sequences,
            config.lm.top_k,
            config.lm.score_batch,
            &cache_path,
            options.teacher_cache.as_deref(),
            log,
        )?;
        log(&format!(
            "teacher cache: {} positions, top {} ({}, {cache_seconds:.1} s)",
            cache.log_rest.len(),
            cache.k,
            if reused { "reused" } else { "computed" }
        ));
        let tokenizer_path = lm_tokenizer(&layout);
        if options.save_checkpoints {
            save_tokenizer(&tokenizer_path, &teacher.tokenizer)?;
        }
        let losses = config
            .objectives
            .iter()
            .enumerate()
            .map(|(i, o)| o.loss(i).map_err(LmRunError::Invalid))
            .collect::<Result<Vec<_>, _>>()?;
        let sources = config
            .objectives
            .iter()
            .enumerate()
            .map(|(i, o)| {
                o.sequence_source(i, config.lm.max_len)
                    .map_err(LmRunError::Invalid)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let context = SetsContext {
            teacher: &teacher,
            teacher_sha256: &teacher_sha256,
            max_len: config.lm.max_len,
            top_k: config.lm.top_k,
            batch: config.lm.score_batch,
            run_dir: &options.run_dir,
            device: &inference,
        };
        let teacher_sets = TeacherSets::prepare(&context, &sequences, &sources, log)?;

        Ok(Self {
            config,
            options,
            log,
            layout,
            teacher,
            teacher_sha256,
            student_config,
            initializer,
            sequences,
            cache,
            cache_path,
            reused,
            cache_seconds,
            tokenizer_path,
            losses,
            sources,
            teacher_sets,
            held_out_tokens: Vec::new(),
            split_sizes: (0, 0),
        })
    }
}

impl Task for LmTask<'_> {
    type Record = SeedRecord;
    type Output = LmRunOutput;
    type Error = LmRunError;

    fn seeds(&self) -> Vec<u64> {
        self.config.seeds.clone()
    }

    fn run_seed(
        &mut self,
        seed: u64,
        _: &mut dyn TrainObserver,
    ) -> Result<Vec<(String, SeedRecord)>, LmRunError> {
        let Self {
            config,
            options,
            log,
            layout,
            teacher,
            teacher_sha256,
            student_config,
            initializer,
            sequences,
            cache,
            tokenizer_path,
            losses,
            sources,
            teacher_sets,
            held_out_tokens,
            split_sizes,
            ..
        } = self;
        let (config, options, student_config) = (*config, *options, &*student_config);
        let losses = &*losses;
        let inference = options.device.inference();
        let split = held_out_split(sequences.len(), config.lm.held_out_fraction, seed)
            .map_err(|e| LmRunError::Invalid(format!("corpus: {e}")))?;
        *split_sizes = (split.train.len(), split.held_out.len());
        let held_out: Vec<Vec<u32>> = split
            .held_out
            .iter()
            .map(|&i| sequences[i].clone())
            .collect();
        let curve_texts = &held_out[..config.lm.curve_texts.min(held_out.len())];
        let plan = TrainPlan {
            sequences,
            train: &split.train,
            steps: config.train.steps,
            batch_size: config.train.batch_size,
            optimizer: &config.train.optimizer,
            seed,
            eval_every: config.lm.eval_every,
            curve: curve_texts,
            eval_batch: config.lm.score_batch,
            on_policy: None,
        };
        let mut trained: Vec<(Llama, Option<LmCurve>, f64, f64)> = Vec::new();
        let store = LmRunStore::new(options.save_checkpoints.then_some(&*layout));
        for (index, (objective, loss)) in config.objectives.iter().zip(losses).enumerate() {
            let meta = LmCheckpointMeta {
                format: LM_CHECKPOINT_FORMAT.to_string(),
                name: objective.name.clone(),
                objective: describe_objective(objective),
                seed,
                config: student_config.clone(),
                tokenizer: relative_to(tokenizer_path, Some(layout.seed(seed).dir())),
                teacher_sha256: teacher_sha256.clone(),
                init: initializer.describe(),
            };
            if let Some((model, record)) = store.finished(&meta, &options.device)? {
                log(&format!(
                    "seed {seed}: {} read back from the run folder",
                    objective.name
                ));
                trained.push((
                    model,
                    Some(record.curve),
                    record.train_time_s,
                    record.tokens_per_s,
                ));
                continue;
            }
            log(&format!("seed {seed}: training {}", objective.name));
            // The same initialiser for every objective: the scratch baseline starts where the
            // distilled students start.
            let initial = initializer.student(
                &teacher.model,
                student_config,
                seed,
                &options.device.training(),
            );
            // Sequence-level KD trains on the teacher's sequences and its distributions on them.
            let set = teacher_sets.of(index);
            let objective_cache = set.map_or(&*cache, |s| &s.cache);
            let distill = loss.as_ref().map(|l| (objective_cache, l));
            let objective_plan = TrainPlan {
                sequences: set.map_or(plan.sequences, |s| &s.sequences),
                on_policy: match sources[index] {
                    SequenceSource::OnPolicy {
                        lambda,
                        continuations,
                    } => Some(OnPolicy {
                        lambda,
                        continuations,
                        max_len: config.lm.max_len,
                        stop: teacher.tokenizer.eos_id(),
                        teacher: &teacher.model,
                        teacher_config: &teacher.config,
                    }),
                    _ => None,
                },
                ..plan.clone()
            };
            let student = train_student(
                initial,
                student_config,
                &objective_plan,
                distill,
                &options.device,
                &mut |_, _| {},
            )?;
            let last = student.curve.perplexity.last().copied().unwrap_or(f64::NAN);
            log(&format!(
                "seed {seed}: {} done in {:.0} s ({:.0} tokens/s{}), curve perplexity {last:.2}",
                objective.name,
                student.train_time_s,
                student.tokens_per_s,
                if objective_plan.on_policy.is_some() {
                    format!(", {} on-policy steps", student.on_policy_steps)
                } else {
                    String::new()
                }
            ));
            let record = TrainingRecord {
                curve: student.curve,
                train_time_s: student.train_time_s,
                tokens_per_s: student.tokens_per_s,
            };
            store.keep(&student.model, &meta, &record)?;
            trained.push((
                student.model,
                Some(record.curve),
                record.train_time_s,
                record.tokens_per_s,
            ));
        }
        log(&format!(
            "seed {seed}: evaluating on {} held-out texts",
            held_out.len()
        ));
        let models: Vec<(&Llama, &LlamaConfig)> =
            trained.iter().map(|(m, ..)| (m, student_config)).collect();
        let (teacher_metrics, student_metrics) = evaluate_against_teacher(
            (&teacher.model, &teacher.config),
            &models,
            &held_out,
            config.lm.score_batch,
            &inference,
        )?;
        held_out_tokens.push(teacher_metrics.tokens as f64);
        let speed = |model: &Llama,
                     model_config: &LlamaConfig|
         -> Result<(Option<f64>, Option<f64>), LmError> {
            if config.lm.speed_tokens == 0 {
                return Ok((None, None));
            }
            let prompt = teacher.tokenizer.encode(&config.lm.speed_prompt)?;
            let generation = generation_tokens_per_second(
                model,
                model_config,
                &prompt,
                config.lm.speed_tokens,
                &inference,
            )?;
            let scored = &held_out[..held_out.len().min(2 * config.lm.score_batch)];
            let scoring = scoring_tokens_per_second(
                model,
                model_config,
                scored,
                config.lm.score_batch,
                &inference,
            )?;
            Ok((Some(generation), Some(scoring)))
        };
        log(&format!("seed {seed}: timing generation and scoring"));
        let (generation, scoring) = speed(&teacher.model, &teacher.config)?;
        let mut rows = vec![(
            "teacher".to_string(),
            SeedRecord {
                metrics: teacher_metrics,
                curve: None,
                train_time_s: 0.0,
                training_tokens_per_s: None,
                generation_tokens_per_s: generation,
                scoring_tokens_per_s: scoring,
            },
        )];
        for (objective, ((model, curve, time, tokens_per_s), metrics)) in config
            .objectives
            .iter()
            .zip(trained.into_iter().zip(student_metrics))
        {
            let (generation, scoring) = speed(&model, student_config)?;
            rows.push((
                objective.name.clone(),
                SeedRecord {
                    metrics,
                    curve,
                    train_time_s: time,
                    training_tokens_per_s: Some(tokens_per_s),
                    generation_tokens_per_s: generation,
                    scoring_tokens_per_s: scoring,
                },
            ));
        }
        Ok(rows)
    }

    fn finish(self, table: SeedTable<SeedRecord>) -> Result<LmRunOutput, LmRunError> {
        let Self {
            config,
            teacher,
            teacher_sha256,
            student_config,
            initializer,
            sequences,
            cache,
            cache_path,
            reused,
            cache_seconds,
            held_out_tokens,
            split_sizes,
            options,
            sources,
            ..
        } = self;
        let summary = |values: Vec<f64>| Summary::from_values(&values);
        let optional = |values: Vec<Option<f64>>| -> Option<Summary> {
            values
                .iter()
                .copied()
                .collect::<Option<Vec<f64>>>()
                .map(&summary)
        };
        let student_init = initializer.describe();
        let epochs =
            (config.train.steps * config.train.batch_size) as f64 / split_sizes.0.max(1) as f64;
        let mut models = Vec::new();
        let mut sections = Vec::new();
        for (index, model) in table.models().iter().enumerate() {
            let seeds: Vec<&SeedRecord> = model.records().collect();
            let (role, name, method, objective, model_config) = if index == 0 {
                (
                    Role::Teacher,
                    "teacher".to_string(),
                    "pretrained".to_string(),
                    "pretrained (GGUF)".to_string(),
                    &teacher.config,
                )
            } else {
                let objective = &config.objectives[index - 1];
                // Cross-entropy on the teacher's own sequences is sequence-level KD.
                let role = if objective.kind == ObjectiveKind::Ce
                    && sources[index - 1] == SequenceSource::Corpus
                {
                    Role::Scratch
                } else {
                    Role::Distilled
                };
                (
                    role,
                    objective.name.clone(),
                    serde_json::to_value(objective.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    describe_objective(objective),
                    &student_config,
                )
            };
            let metric = |f: &dyn Fn(&LmMetrics) -> f64| {
                summary(seeds.iter().map(|r| f(&r.metrics)).collect())
            };
            let with_teacher = index > 0;
            let curves: Vec<Curve> = config
                .seeds
                .iter()
                .zip(&seeds)
                .filter_map(|(&seed, r)| {
                    r.curve.as_ref().map(|c| Curve {
                        seed,
                        train_loss: c.train_loss.clone(),
                        validation_accuracy: c.accuracy.clone(),
                        learning_rate: c.learning_rate.clone(),
                    })
                })
                .collect();
            models.push(ModelResult {
                role,
                name: name.clone(),
                method,
                label_fraction: 1.0,
                transfer: (role == Role::Distilled).then(|| "all".to_string()),
                architecture: match (index, &student_init) {
                    (0, _) | (_, None) => architecture(model_config),
                    (_, Some(init)) => format!("{}, from {init}", architecture(model_config)),
                },
                params: model_config.parameters(),
                test: TestSummary {
                    accuracy: metric(&|m| m.accuracy),
                    nll: metric(&|m| m.nll),
                    ece: metric(&|m| m.ece),
                    agreement: with_teacher.then(|| metric(&|m| m.agreement.unwrap_or(f64::NAN))),
                    kl_from_teacher: with_teacher
                        .then(|| metric(&|m| m.kl_from_teacher.unwrap_or(f64::NAN))),
                },
                validation_accuracy: summary(
                    seeds
                        .iter()
                        .map(|r| {
                            r.curve
                                .as_ref()
                                .and_then(|c| c.accuracy.last().copied())
                                .unwrap_or(r.metrics.accuracy)
                        })
                        .collect(),
                ),
                train_time_s: summary(seeds.iter().map(|r| r.train_time_s).collect()),
                epochs_run: summary(vec![if index == 0 { 0.0 } else { epochs }; seeds.len()]),
                curves,
            });
            sections.push(LmModelSection {
                name,
                role,
                objective,
                perplexity: metric(&|m| m.perplexity()),
                params: model_config.parameters(),
                non_embedding_params: model_config.non_embedding_parameters(),
                generation_tokens_per_s: optional(
                    seeds.iter().map(|r| r.generation_tokens_per_s).collect(),
                ),
                scoring_tokens_per_s: optional(
                    seeds.iter().map(|r| r.scoring_tokens_per_s).collect(),
                ),
                training_tokens_per_s: optional(
                    seeds.iter().map(|r| r.training_tokens_per_s).collect(),
                ),
                curves: config
                    .seeds
                    .iter()
                    .zip(&seeds)
                    .filter_map(|(&seed, r)| {
                        r.curve.as_ref().map(|c| LmCurvePoints {
                            seed,
                            steps: c.steps.clone(),
                            perplexity: c.perplexity.clone(),
                        })
                    })
                    .collect(),
            });
        }
        let corpus_name = config
            .corpus
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "corpus".to_string());
        let results = envelope(
            &config.name,
            &config.seeds,
            DataSummary {
                name: corpus_name,
                num_classes: teacher.config.vocab_size,
                train: split_sizes.0,
                validation: 0,
                test: split_sizes.1,
                sample_shape: [1, 1, config.lm.max_len],
            },
            models,
            serde_json::to_value(config).unwrap_or(Value::Null),
            options.created_unix_s,
        );
        let lm = LmSection {
            teacher_file: config.lm.teacher.display().to_string(),
            teacher_sha256,
            texts: sequences.len(),
            max_len: config.lm.max_len,
            held_out_tokens: summary(held_out_tokens),
            steps: config.train.steps,
            batch_size: config.train.batch_size,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            score_batch: config.lm.score_batch,
            cache: LmCacheUse {
                file: cache_path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                top_k: cache.k,
                positions: cache.log_rest.len(),
                reused,
                seconds: cache_seconds,
            },
            models: sections,
            student_init,
        };
        Ok(LmRunOutput { results, lm })
    }
}

/// `path` relative to `base` when it lies inside it (the tokenizer beside the seed folders).
fn relative_to(path: &Path, base: Option<&Path>) -> PathBuf {
    let Some(base) = base else {
        return path.to_path_buf();
    };
    match path.strip_prefix(base) {
        Ok(rest) => rest.to_path_buf(),
        Err(_) => match (path.file_name(), base.parent()) {
            (Some(name), Some(parent)) if path.parent() == Some(parent) => {
                Path::new("..").join(name)
            }
            _ => path.to_path_buf(),
        },
    }
}

//! The experiment file of a language-model run: the teacher GGUF file, the corpus, the
//! student's shape, the training budget and the objectives to compare.
//!
//! It is told from other experiment files by its top-level `[lm]` table. Unknown keys are
//! rejected, and every error is one line naming the file, line, column and key path (see
//! [`crate::config::parse_toml`]).
//!
//! ```toml
//! name = "lm-rotten-tomatoes"
//! seeds = [0, 1, 2]
//!
//! [lm]
//! teacher = "../shared/data/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
//! max_len = 48
//!
//! [corpus]
//! path = "../shared/data/rotten-tomatoes/rotten_tomatoes_corpus_full.csv.bz2"
//! filter_column = "category"
//! filter_values = ["fresh", "rotten"]
//!
//! [student]
//! layers = 4
//! hidden = 128
//! heads = 4
//! kv_heads = 2
//! ffn = 384
//!
//! [train]
//! steps = 300
//! batch_size = 16
//!
//! [[objectives]]
//! name = "scratch"
//! kind = "ce"
//!
//! [[objectives]]
//! name = "forward-kl"
//! kind = "forward_kl"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::corpus::CorpusSpec;
use super::error::LmError;
use super::llama::LlamaConfig;
use super::objectives::{TokenDivergence, TokenLoss};
use super::student::StudentShape;
use super::student_init::StudentInit;
use crate::backend::DeviceKind;
use crate::config::ConfigError;
use crate::distill::optim::OptimizerSpec;

/// A language-model experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmExperimentConfig {
    /// Name of the experiment; the run folder is `<out>/<name>-<timestamp>`.
    pub name: String,
    /// One full experiment per seed (held-out split, initial weights, batch order).
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Where the students train: `cpu`, `cuda` or `wgpu`.
    #[serde(default)]
    pub device: DeviceKind,
    /// The teacher and the sequences.
    pub lm: LmSection,
    /// The texts.
    pub corpus: CorpusSpec,
    /// The students' shape and initial weights (every student has the same ones).
    pub student: StudentSection,
    /// The training budget, the same for every student.
    pub train: LmTrainConfig,
    /// The students to train, one per objective.
    pub objectives: Vec<ObjectiveConfig>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// The `[lm]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmSection {
    /// The teacher's GGUF file (llama architecture, with its tokenizer).
    pub teacher: PathBuf,
    /// Tokens per training and evaluation sequence; longer texts are cut.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Fraction of the texts held out for evaluation, drawn per seed.
    #[serde(default = "default_held_out_fraction")]
    pub held_out_fraction: f64,
    /// Teacher logits kept per position in the run's teacher cache (the rest of the
    /// probability mass is kept as one number).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Sequences per teacher forward when filling the cache and evaluating.
    #[serde(default = "default_score_batch")]
    pub score_batch: usize,
    /// Training steps between two points of the perplexity curves (0: only at the end).
    #[serde(default = "default_eval_every")]
    pub eval_every: usize,
    /// Held-out texts scored for the perplexity curves (the final metrics use all of them).
    #[serde(default = "default_curve_texts")]
    pub curve_texts: usize,
    /// The prompt timed for generation speed.
    #[serde(default = "default_speed_prompt")]
    pub speed_prompt: String,
    /// New tokens generated when timing generation (0: no speed measurement).
    #[serde(default = "default_speed_tokens")]
    pub speed_tokens: usize,
}

fn default_max_len() -> usize {
    64
}
fn default_held_out_fraction() -> f64 {
    0.1
}
fn default_top_k() -> usize {
    64
}
fn default_score_batch() -> usize {
    32
}
fn default_eval_every() -> usize {
    50
}
fn default_curve_texts() -> usize {
    64
}
fn default_speed_prompt() -> String {
    "This movie".to_string()
}
fn default_speed_tokens() -> usize {
    32
}

/// The `[student]` table: the students' shape (the rest of their configuration is the
/// teacher's) and where their initial weights come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentSection {
    /// Decoder layers.
    pub layers: usize,
    /// Width of token representations.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Width of the SwiGLU block.
    pub ffn: usize,
    /// `random` (the default), `pca-embeddings` or `teacher-layers`
    /// ([`super::student_init`]).
    #[serde(default)]
    pub init: StudentInit,
    /// The teacher layers a `teacher-layers` student copies, one per student layer (default:
    /// evenly spaced from the first to the last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers_from: Option<Vec<usize>>,
}

impl StudentSection {
    /// The students' shape.
    pub fn shape(&self) -> StudentShape {
        StudentShape {
            layers: self.layers,
            hidden: self.hidden,
            heads: self.heads,
            kv_heads: self.kv_heads,
            ffn: self.ffn,
        }
    }

    /// The students' full configuration next to `teacher` ([`StudentShape::config`]).
    pub fn config(&self, teacher: &LlamaConfig) -> Result<LlamaConfig, LmError> {
        self.shape().config(teacher)
    }

    /// Checks that need no teacher; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.layers_from, self.init) {
            (Some(_), init) if init != StudentInit::TeacherLayers => Err(format!(
                "student.layers_from: not a setting of init = \"{}\" (only of \"teacher-layers\")",
                init.name()
            )),
            (Some(layers), _) if layers.len() != self.layers => Err(format!(
                "student.layers_from: expected {} teacher layers (one per student layer), found {}",
                self.layers,
                layers.len()
            )),
            _ => Ok(()),
        }
    }
}

/// The `[train]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmTrainConfig {
    /// Optimiser steps per student.
    pub steps: usize,
    /// Sequences per step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// The optimiser and its learning-rate schedule (epochs are passes over the training
    /// texts).
    #[serde(default)]
    pub optimizer: OptimizerSpec,
}

fn default_batch_size() -> usize {
    16
}

/// Which loss an objective trains with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectiveKind {
    /// The next-token cross-entropy alone: the student from scratch.
    Ce,
    /// `KL(teacher ‖ student)` (word-level KD).
    ForwardKl,
    /// `KL(student ‖ teacher)` (MiniLLM).
    ReverseKl,
    /// Generalised Jensen-Shannon with `beta` (GKD).
    Jsd,
    /// Total variation.
    TotalVariation,
    /// Skew KL with `alpha` (DistiLLM).
    SkewKl,
    /// Skew reverse KL with `alpha` (DistiLLM).
    SkewReverseKl,
}

/// Where an objective's training sequences come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequenceKind {
    /// The corpus texts themselves.
    #[default]
    Corpus,
    /// The teacher's continuations of each text's first `prompt_tokens` tokens, generated
    /// once per run (sequence-level KD).
    Teacher,
    /// With probability `lambda` per step, the student's own continuations of the batch's
    /// prompts, scored by the teacher on the spot (on-policy GKD); else the corpus batch.
    OnPolicy,
}

/// One `[[objectives]]` entry: a student trained with this loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// Name of the student in the results (unique).
    pub name: String,
    /// The loss.
    pub kind: ObjectiveKind,
    /// Temperature of both distributions in the divergence.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Weight of the next-token cross-entropy mixed into the divergence, in [0, 1].
    #[serde(default)]
    pub ce_weight: f64,
    /// The teacher's weight of `jsd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// The mixture weight of `skew_kl` and `skew_reverse_kl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Where the training sequences come from: `corpus` (the default), `teacher` or
    /// `on_policy`.
    #[serde(default, skip_serializing_if = "is_corpus")]
    pub sequences: SequenceKind,
    /// Tokens at the start of each training text that prompt the generated continuations
    /// (`teacher` and `on_policy`; the rest of each sequence, up to `lm.max_len`, is generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<usize>,
    /// Probability that a step trains on the student's own continuations (`on_policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// Temperature of the generation (0: greedy); by default greedy for `teacher` and 1 for
    /// `on_policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_temperature: Option<f64>,
    /// Nucleus of the generation's sampling, in (0, 1] (default 1: the whole vocabulary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Seed of the teacher's sampled continuations (`teacher`, default 0); on-policy
    /// sampling follows the run's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_seed: Option<u64>,
}

fn is_corpus(kind: &SequenceKind) -> bool {
    *kind == SequenceKind::Corpus
}

/// Where one objective's training sequences come from, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SequenceSource {
    /// The corpus.
    Corpus,
    /// The teacher's continuations, generated once per run.
    Teacher(Continuations),
    /// The student's own continuations on a `lambda` share of the steps.
    OnPolicy {
        /// Probability that a step is on-policy.
        lambda: f64,
        /// How the student continues the prompts.
        continuations: Continuations,
    },
}

/// How prompts are continued.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Continuations {
    /// Tokens of each text kept as the prompt.
    pub prompt_tokens: usize,
    /// Sampling temperature (0: greedy).
    pub temperature: f64,
    /// Nucleus.
    pub top_p: f64,
    /// Seed of the sampler.
    pub seed: u64,
}

fn default_temperature() -> f64 {
    1.0
}

impl ObjectiveConfig {
    /// Where the training sequences come from, for sequences of at most `max_len` tokens; the
    /// message names the key of `objectives[index]`.
    pub fn sequence_source(&self, index: usize, max_len: usize) -> Result<SequenceSource, String> {
        let key = |field: &str| format!("objectives[{index}] ({}).{field}", self.name);
        let refuse = |field: &str, given: bool| {
            if given {
                Err(format!(
                    "{}: not a setting of sequences = \"{}\"",
                    key(field),
                    self.sequences_name()
                ))
            } else {
                Ok(())
            }
        };
        let generation = |default_temperature: f64, seed_allowed: bool| {
            let prompt_tokens = self.prompt_tokens.ok_or_else(|| {
                format!(
                    "{}: required by sequences = \"{}\"",
                    key("prompt_tokens"),
                    self.sequences_name()
                )
            })?;
            if prompt_tokens == 0 || prompt_tokens >= max_len {
                return Err(format!(
                    "{}: expected 1 to {} (below lm.max_len, leaving tokens to generate), found {prompt_tokens}",
                    key("prompt_tokens"),
                    max_len.saturating_sub(1)
                ));
            }
            let temperature = self.sample_temperature.unwrap_or(default_temperature);
            if !(temperature.is_finite() && temperature >= 0.0) {
                return Err(format!(
                    "{}: expected a number ≥ 0 (0: greedy), found {temperature}",
                    key("sample_temperature")
                ));
            }
            let top_p = self.top_p.unwrap_or(1.0);
            if !(top_p > 0.0 && top_p <= 1.0) {
                return Err(format!(
                    "{}: expected a number in (0, 1], found {top_p}",
                    key("top_p")
                ));
            }
            if !seed_allowed {
                refuse("sample_seed", self.sample_seed.is_some())?;
            }
            Ok(Continuations {
                prompt_tokens,
                temperature,
                top_p,
                seed: self.sample_seed.unwrap_or(0),
            })
        };
        match self.sequences {
            SequenceKind::Corpus => {
                refuse("prompt_tokens", self.prompt_tokens.is_some())?;
                refuse("lambda", self.lambda.is_some())?;
                refuse("sample_temperature", self.sample_temperature.is_some())?;
                refuse("top_p", self.top_p.is_some())?;
                refuse("sample_seed", self.sample_seed.is_some())?;
                Ok(SequenceSource::Corpus)
            }
            SequenceKind::Teacher => {
                refuse("lambda", self.lambda.is_some())?;
                Ok(SequenceSource::Teacher(generation(0.0, true)?))
            }
            SequenceKind::OnPolicy => {
                if self.kind == ObjectiveKind::Ce {
                    return Err(format!(
                        "{}: on_policy needs the teacher's distributions, which kind \"ce\" does not use",
                        key("sequences")
                    ));
                }
                let lambda = self.lambda.ok_or_else(|| {
                    format!("{}: required by sequences = \"on_policy\"", key("lambda"))
                })?;
                if !(0.0..=1.0).contains(&lambda) {
                    return Err(format!(
                        "{}: expected a probability in [0, 1], found {lambda}",
                        key("lambda")
                    ));
                }
                Ok(SequenceSource::OnPolicy {
                    lambda,
                    continuations: generation(1.0, false)?,
                })
            }
        }
    }

    fn sequences_name(&self) -> &'static str {
        match self.sequences {
            SequenceKind::Corpus => "corpus",
            SequenceKind::Teacher => "teacher",
            SequenceKind::OnPolicy => "on_policy",
        }
    }

    /// The distillation loss, or `None` for the cross-entropy alone; the message names the
    /// key of `objectives[index]`.
    pub fn loss(&self, index: usize) -> Result<Option<TokenLoss>, String> {
        let key = |field: &str| format!("objectives[{index}] ({}).{field}", self.name);
        let needs = |field: &str, value: Option<f64>| {
            value.ok_or_else(|| format!("{}: required by kind {:?}", key(field), self.kind))
        };
        let refuse = |field: &str, value: Option<f64>| match value {
            Some(_) => Err(format!(
                "{}: not a setting of kind {:?}",
                key(field),
                self.kind
            )),
            None => Ok(()),
        };
        let divergence = match self.kind {
            ObjectiveKind::Ce => {
                refuse("beta", self.beta)?;
                refuse("alpha", self.alpha)?;
                return Ok(None);
            }
            ObjectiveKind::ForwardKl => TokenDivergence::ForwardKl,
            ObjectiveKind::ReverseKl => TokenDivergence::ReverseKl,
            ObjectiveKind::TotalVariation => TokenDivergence::TotalVariation,
            ObjectiveKind::Jsd => TokenDivergence::Jsd {
                beta: needs("beta", self.beta)?,
            },
            ObjectiveKind::SkewKl => TokenDivergence::SkewKl {
                alpha: needs("alpha", self.alpha)?,
            },
            ObjectiveKind::SkewReverseKl => TokenDivergence::SkewReverseKl {
                alpha: needs("alpha", self.alpha)?,
            },
        };
        if !matches!(self.kind, ObjectiveKind::Jsd) {
            refuse("beta", self.beta)?;
        }
        if !matches!(
            self.kind,
            ObjectiveKind::SkewKl | ObjectiveKind::SkewReverseKl
        ) {
            refuse("alpha", self.alpha)?;
        }
        let loss = TokenLoss {
            divergence,
            temperature: self.temperature,
            ce_weight: self.ce_weight,
        };
        loss.validate().map_err(|e| format!("{}: {e}", key("")))?;
        Ok(Some(loss))
    }
}

impl LmExperimentConfig {
    /// Reads and validates a language-model experiment file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates experiment text; `source_name` names it in errors.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let config: LmExperimentConfig = crate::config::parse_toml(text, source_name)?;
        config.validate().map_err(|message| ConfigError::Invalid {
            source_name: source_name.to_string(),
            message,
        })?;
        Ok(config)
    }

    /// Checks that serde cannot express; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        crate::config::validate_name(&self.name)?;
        if self.seeds.is_empty() {
            return Err("seeds: expected at least one seed".to_string());
        }
        let lm = &self.lm;
        if lm.max_len < 2 {
            return Err(format!(
                "lm.max_len: expected at least 2 tokens, found {}",
                lm.max_len
            ));
        }
        if !(lm.held_out_fraction > 0.0 && lm.held_out_fraction < 1.0) {
            return Err(format!(
                "lm.held_out_fraction: expected a fraction in (0, 1), found {}",
                lm.held_out_fraction
            ));
        }
        for (key, value) in [
            ("lm.top_k", lm.top_k),
            ("lm.score_batch", lm.score_batch),
            ("lm.curve_texts", lm.curve_texts),
            ("train.steps", self.train.steps),
            ("train.batch_size", self.train.batch_size),
        ] {
            if value == 0 {
                return Err(format!("{key}: expected at least 1"));
            }
        }
        self.corpus.validate()?;
        self.student.validate()?;
        self.train.optimizer.validate("train.optimizer")?;
        if self.objectives.is_empty() {
            return Err("objectives: expected at least one [[objectives]] entry".to_string());
        }
        for (index, objective) in self.objectives.iter().enumerate() {
            if objective.name.is_empty()
                || !objective
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c))
            {
                return Err(format!(
                    "objectives[{index}].name: expected letters, digits, '-', '_', '.', '@' or '+', found {:?}",
                    objective.name
                ));
            }
            if objective.name == "teacher" {
                return Err(format!(
                    "objectives[{index}].name: \"teacher\" names the teacher"
                ));
            }
            if self.objectives[..index]
                .iter()
                .any(|o| o.name == objective.name)
            {
                return Err(format!(
                    "objectives[{index}].name: {:?} is used twice",
                    objective.name
                ));
            }
            objective.loss(index)?;
            objective.sequence_source(index, lm.max_len)?;
        }
        Ok(())
    }

    /// The path of the teacher file and of the corpus resolved against `root` (when given)
    /// for relative paths.
    pub fn resolve(&mut self, root: Option<&Path>) {
        if let Some(root) = root {
            if self.lm.teacher.is_relative() {
                self.lm.teacher = root.join(&self.lm.teacher);
            }
            if self.corpus.path.is_relative() {
                self.corpus.path = root.join(&self.corpus.path);
            }
        }
    }
}

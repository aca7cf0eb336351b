//! The parts of a text experiment file that concern transformers: where the teacher comes
//! from (a frozen encoder with a trained head, the encoder fine-tuned by apprentice, or a
//! `BertForSequenceClassification` folder fine-tuned elsewhere), the fine-tuning recipe, and
//! the shapes of the transformer students.

use serde::{Deserialize, Serialize};

use super::classifier::ClassifierPooling;
use super::finetune::FinetuneSettings;

/// Where a text run's teacher comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeacherKind {
    /// The frozen encoder's sentence embeddings through a trained MLP head (`[teacher]`'s
    /// `hidden`, `dropout`, `train`, `optimizer`).
    #[default]
    Head,
    /// The encoder with a classification head, fine-tuned end to end (or its top layers) on
    /// the task with the recipe `[teacher.finetune]`.
    Finetune,
    /// A `BertForSequenceClassification` folder (`teacher.folder`), used as it is.
    Folder,
}

impl TeacherKind {
    /// The name used in the config (`head`, `finetune`, `folder`).
    pub fn name(self) -> &'static str {
        match self {
            TeacherKind::Head => "head",
            TeacherKind::Finetune => "finetune",
            TeacherKind::Folder => "folder",
        }
    }
}

/// A fine-tuning recipe, as `transformers`' Trainer takes it: AdamW, linear warm-up then
/// decay, gradient clipping, dropout from the model's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    /// Passes over the training texts.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Texts per step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Peak learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Share of all steps spent warming the learning rate up.
    #[serde(default = "default_warmup_ratio")]
    pub warmup_ratio: f64,
    /// Largest global gradient norm (0: no clipping).
    #[serde(default = "default_max_grad_norm")]
    pub max_grad_norm: f64,
    /// Word pieces read per text at most (special tokens included).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Train only the top this many encoder layers (and the head); absent: every layer and
    /// the embeddings.
    #[serde(default)]
    pub top_layers: Option<usize>,
    /// What the classification layer reads: `cls` (`BertForSequenceClassification`'s pooler)
    /// or `mean` (the mean of the token vectors, how sentence encoders are trained).
    #[serde(default)]
    pub pooling: ClassifierPooling,
    /// One dropout probability for the embeddings, the attention probabilities, the blocks'
    /// outputs and before the classification layer, in place of the model's `config.json`
    /// (`hidden_dropout_prob`, `attention_probs_dropout_prob`, `classifier_dropout`); absent:
    /// the model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
}

fn default_epochs() -> usize {
    3
}
fn default_batch_size() -> usize {
    32
}
fn default_lr() -> f64 {
    2e-5
}
fn default_weight_decay() -> f64 {
    0.01
}
fn default_warmup_ratio() -> f64 {
    0.1
}
fn default_max_grad_norm() -> f64 {
    1.0
}
fn default_max_length() -> usize {
    128
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            epochs: default_epochs(),
            batch_size: default_batch_size(),
            lr: default_lr(),
            weight_decay: default_weight_decay(),
            warmup_ratio: default_warmup_ratio(),
            max_grad_norm: default_max_grad_norm(),
            max_length: default_max_length(),
            top_layers: None,
            pooling: ClassifierPooling::default(),
            dropout: None,
        }
    }
}

impl FinetuneConfig {
    /// Checks the recipe; the message names the key under `key`.
    pub fn validate(&self, key: &str) -> Result<(), String> {
        for (name, value) in [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("max_length", self.max_length),
        ] {
            if value == 0 {
                return Err(format!("{key}.{name}: expected at least 1"));
            }
        }
        if self.top_layers == Some(0) {
            return Err(format!("{key}.top_layers: expected at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "{key}.lr: expected a positive number, found {}",
                self.lr
            ));
        }
        for (name, value) in [
            ("weight_decay", self.weight_decay),
            ("max_grad_norm", self.max_grad_norm),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!(
                    "{key}.{name}: expected a number ≥ 0, found {value}"
                ));
            }
        }
        if let Some(dropout) = self.dropout
            && !(0.0..1.0).contains(&dropout)
        {
            return Err(format!(
                "{key}.dropout: expected a probability in [0, 1), found {dropout}"
            ));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return Err(format!(
                "{key}.warmup_ratio: expected a fraction in [0, 1), found {}",
                self.warmup_ratio
            ));
        }
        Ok(())
    }

    /// The settings of [`super::finetune::finetune`] for `seed`.
    pub fn settings(&self, seed: u64) -> FinetuneSettings {
        FinetuneSettings {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            weight_decay: self.weight_decay,
            warmup_ratio: self.warmup_ratio,
            max_grad_norm: self.max_grad_norm,
            max_length: self.max_length,
            train_top_layers: self.top_layers,
            seed,
            head_dropout: None,
            dropout: self.dropout,
            epoch_orders: None,
        }
    }
}

/// `[students.shallow]`: a student made of a subset of the teacher's layers (DistilBERT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShallowConfig {
    /// The teacher layers it starts from, counted from 0; absent: every other layer
    /// (`[0, 2, 4]` of 6).
    #[serde(default)]
    pub layers: Option<Vec<usize>>,
    /// Its training recipe.
    #[serde(default)]
    pub train: FinetuneConfig,
}

/// `[students.narrow]`: a narrower BERT from random initialisation with the teacher's
/// vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NarrowConfig {
    /// Encoder layers.
    #[serde(default = "default_narrow_layers")]
    pub layers: usize,
    /// Width of the token representations.
    #[serde(default = "default_narrow_hidden")]
    pub hidden: usize,
    /// Attention heads (divide `hidden`).
    #[serde(default = "default_narrow_heads")]
    pub heads: usize,
    /// Its training recipe.
    #[serde(default)]
    pub train: FinetuneConfig,
}

fn default_narrow_layers() -> usize {
    4
}
fn default_narrow_hidden() -> usize {
    256
}
fn default_narrow_heads() -> usize {
    4
}

impl Default for NarrowConfig {
    fn default() -> Self {
        Self {
            layers: default_narrow_layers(),
            hidden: default_narrow_hidden(),
            heads: default_narrow_heads(),
            train: FinetuneConfig::default(),
        }
    }
}

impl NarrowConfig {
    /// Checks the shape and the recipe; messages name the key.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("heads", self.heads),
        ] {
            if value == 0 {
                return Err(format!("students.narrow.{name}: expected at least 1"));
            }
        }
        if !self.hidden.is_multiple_of(self.heads) {
            return Err(format!(
                "students.narrow.heads: expected a divisor of hidden {}, found {}",
                self.hidden, self.heads
            ));
        }
        self.train.validate("students.narrow.train")
    }
}

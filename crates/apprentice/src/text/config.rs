//! The experiment file of a text run: a pretrained teacher folder, labelled text, the
//! teacher's classification head, the students and the distillation settings.
//!
//! It is told from an image experiment by its `[text]` table. Unknown keys are rejected and
//! every error is one line naming the file, line, column and key path, like
//! [`crate::config`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::data::{TextDataOptions, TextFormat};
use super::layer_distill::{LayerLossConfig, validate_layer_losses};
pub use super::student_kind::StudentKind;
use super::transformer_config::{FinetuneConfig, NarrowConfig, ShallowConfig, TeacherKind};
use crate::backend::DeviceKind;
use crate::config::{ConfigError, TrainConfig};
use crate::distill::optim::OptimizerSpec;

/// A text experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextExperimentConfig {
    /// Name of the experiment; the run folder is `<out>/<name>-<timestamp>`.
    pub name: String,
    /// One full experiment per seed (split, initialisation, data order); results give mean ±
    /// std over them.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Where the students and the head train: `cpu`, `cuda` or `wgpu`.
    #[serde(default)]
    pub device: DeviceKind,
    /// The pretrained encoder.
    pub text: TextSection,
    /// The labelled texts.
    pub data: TextDataConfig,
    /// The teacher: a head on the frozen encoder, the encoder fine-tuned, or a folder.
    pub teacher: HeadConfig,
    /// The students.
    pub students: StudentsConfig,
    /// The distillation settings.
    #[serde(default)]
    pub distill: TextDistillConfig,
    /// The folder `text.model`, `teacher.folder` and `data.path` are relative to (`--data`,
    /// recorded so that `--resume` finds the files again); absent: as written.
    #[serde(default)]
    pub data_root: Option<PathBuf>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// The `[text]` table: where the teacher comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSection {
    /// The Hugging Face model folder (relative to `--data` when given).
    pub model: PathBuf,
    /// Sentences per encoder batch when computing the teacher's embeddings.
    #[serde(default = "default_encode_batch_size")]
    pub encode_batch_size: usize,
    /// Where the teacher's embeddings are cached (relative to the working folder); empty: no
    /// cache.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: PathBuf,
    /// Seconds spent timing each model at each batch size (0: no speed measurement).
    #[serde(default = "default_bench_seconds")]
    pub bench_seconds: f64,
}

fn default_encode_batch_size() -> usize {
    64
}
fn default_cache_dir() -> PathBuf {
    PathBuf::from("runs/cache")
}
fn default_bench_seconds() -> f64 {
    2.0
}

/// The `[data]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextDataConfig {
    /// CSV or JSON-lines file, plain, gzip or bzip2 (relative to `--data` when given).
    pub path: PathBuf,
    /// `csv` or `jsonl`; by default from the file name.
    #[serde(default)]
    pub format: Option<TextFormat>,
    /// Column or field holding the text.
    #[serde(default = "default_text_column")]
    pub text_column: String,
    /// Column or field holding the label.
    #[serde(default = "default_label_column")]
    pub label_column: String,
    /// Label values in class order; empty: the distinct labels, sorted.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Rows with these labels are left out.
    #[serde(default)]
    pub drop_labels: Vec<String>,
    /// Use only the first this many rows that are not dropped (quick trials, tests).
    #[serde(default)]
    pub max_rows: Option<usize>,
    /// Train on at most this many texts of each seed's training split (a random subset drawn
    /// from the seed); validation and test keep their full size.
    #[serde(default)]
    pub max_train: Option<usize>,
    /// Stratified share of the rows held out for validation.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Stratified share of the rows held out for test.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
}

fn default_text_column() -> String {
    "text".to_string()
}
fn default_label_column() -> String {
    "label".to_string()
}
fn default_validation_fraction() -> f64 {
    0.1
}
fn default_test_fraction() -> f64 {
    0.2
}

impl TextDataConfig {
    /// The reader options of this table.
    pub fn options(&self) -> TextDataOptions {
        TextDataOptions {
            text_column: self.text_column.clone(),
            label_column: self.label_column.clone(),
            classes: self.classes.clone(),
            drop_labels: self.drop_labels.clone(),
            max_rows: self.max_rows,
        }
    }
}

/// The `[teacher]` table: by default an MLP head on the frozen encoder's sentence
/// embeddings; `kind = "finetune"` fine-tunes the encoder itself with `[teacher.finetune]`,
/// `kind = "folder"` reads a `BertForSequenceClassification` folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// Where the teacher comes from.
    #[serde(default)]
    pub kind: TeacherKind,
    /// Hidden widths of the head; empty: a linear classifier.
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Dropout after each hidden layer.
    #[serde(default)]
    pub dropout: f64,
    /// Epochs, batch size, early stopping of the head (`kind = "head"` only).
    #[serde(default)]
    pub train: Option<TrainConfig>,
    /// The fine-tuning recipe (`kind = "finetune"`).
    #[serde(default)]
    pub finetune: Option<FinetuneConfig>,
    /// A `BertForSequenceClassification` folder (`kind = "folder"`), relative to `--data`
    /// when given; it must share `text.model`'s vocabulary, whose tokenizer reads the texts.
    #[serde(default)]
    pub folder: Option<PathBuf>,
    /// Optimiser and schedule.
    #[serde(default)]
    pub optimizer: OptimizerSpec,
}

/// The `[students]` table: the architectures and their shared training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentsConfig {
    /// Which students to train; each of `bag` and `cnn` is trained from scratch and by
    /// distillation, `static` by distillation (its scratch baseline is `bag`).
    pub kinds: Vec<StudentKind>,
    /// Width of the token embeddings.
    #[serde(default = "default_embedding_dim")]
    pub embedding_dim: usize,
    /// Hidden widths of the MLP after pooling.
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Output channels of the CNN's convolution.
    #[serde(default = "default_channels")]
    pub channels: usize,
    /// Width of the CNN's kernel in tokens (odd).
    #[serde(default = "default_kernel_size")]
    pub kernel_size: usize,
    /// Word pieces a student reads at most (special tokens included).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Epochs and batch size (early stopping keeps the best validation epoch).
    pub train: TrainConfig,
    /// Optimiser and schedule.
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    /// The shallow transformer student (`shallow` in `kinds`).
    #[serde(default)]
    pub shallow: Option<ShallowConfig>,
    /// The narrow transformer student (`narrow` in `kinds`).
    #[serde(default)]
    pub narrow: Option<NarrowConfig>,
}

fn default_embedding_dim() -> usize {
    64
}
fn default_channels() -> usize {
    128
}
fn default_kernel_size() -> usize {
    3
}
fn default_max_tokens() -> usize {
    128
}

/// The `[distill]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextDistillConfig {
    /// KD temperature T.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Weight α of the label cross-entropy; the soft term gets 1 − α.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Also train a bag-of-embeddings student to regress the teacher's sentence embeddings
    /// (cosine loss, no labels), used with the teacher's head; only with the frozen-encoder
    /// teacher. Absent: yes for that teacher, no for the others.
    #[serde(default)]
    pub embedding: Option<bool>,
    /// Inner-layer losses, each adding one student per transformer architecture trained by
    /// KD plus that loss (`shallow-kd-hidden`), beside the plain KD student.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerLossConfig>,
    /// Distilled students also learn from up to this many of the training texts that
    /// `data.max_train` leaves out, on the teacher's soft targets alone (their labels are never
    /// read): the transfer set of DistilBERT and of Tang et al. (2019). Students from scratch
    /// cannot use texts without labels; they get as many optimiser steps instead, as more
    /// passes over their labelled texts. Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlabelled_texts: Option<usize>,
}

fn default_temperature() -> f64 {
    4.0
}
fn default_alpha() -> f64 {
    0.5
}

impl Default for TextDistillConfig {
    fn default() -> Self {
        Self {
            temperature: default_temperature(),
            alpha: default_alpha(),
            embedding: None,
            layers: Vec::new(),
            unlabelled_texts: None,
        }
    }
}

impl TextExperimentConfig {
    /// Whether the run trains the embedding-regression student (`bag-embed`).
    pub fn embedding_student(&self) -> bool {
        self.distill
            .embedding
            .unwrap_or(self.teacher.kind == TeacherKind::Head)
    }
}

impl TextExperimentConfig {
    /// Reads and validates a text experiment file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates experiment text; `source_name` names it in errors.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let config: TextExperimentConfig = crate::config::parse_toml(text, source_name)?;
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
        if !(self.text.bench_seconds.is_finite() && self.text.bench_seconds >= 0.0) {
            return Err(format!(
                "text.bench_seconds: expected a number of seconds ≥ 0, found {}",
                self.text.bench_seconds
            ));
        }
        if self.text.encode_batch_size == 0 {
            return Err("text.encode_batch_size: expected at least 1".to_string());
        }
        let data = &self.data;
        for (key, value) in [
            ("data.validation_fraction", data.validation_fraction),
            ("data.test_fraction", data.test_fraction),
        ] {
            if !(value > 0.0 && value < 1.0) {
                return Err(format!(
                    "{key}: expected a fraction in (0, 1), found {value}"
                ));
            }
        }
        if data.validation_fraction + data.test_fraction >= 1.0 {
            return Err(format!(
                "data: validation_fraction + test_fraction must be below 1, found {} + {}",
                data.validation_fraction, data.test_fraction
            ));
        }
        if data.max_train == Some(0) {
            return Err("data.max_train: expected at least 1".to_string());
        }
        if data.max_rows == Some(0) {
            return Err("data.max_rows: expected at least 1".to_string());
        }
        if let Some(class) = data.classes.iter().find(|c| data.drop_labels.contains(c)) {
            return Err(format!(
                "data.drop_labels: {class:?} is also in data.classes"
            ));
        }
        if data.classes.len() == 1 {
            return Err("data.classes: expected at least two classes".to_string());
        }
        self.validate_teacher()?;
        if self.teacher.hidden.contains(&0) {
            return Err("teacher.hidden: layer widths must be at least 1".to_string());
        }
        if !(0.0..1.0).contains(&self.teacher.dropout) {
            return Err(format!(
                "teacher.dropout: expected a probability in [0, 1), found {}",
                self.teacher.dropout
            ));
        }
        let students = &self.students;
        if students.kinds.is_empty() {
            return Err(
                "students.kinds: expected at least one of bag, cnn, static, shallow, narrow"
                    .to_string(),
            );
        }
        if let Some(shallow) = &students.shallow {
            if shallow.layers.as_ref().is_some_and(Vec::is_empty) {
                return Err("students.shallow.layers: expected at least one layer".to_string());
            }
            shallow.train.validate("students.shallow.train")?;
        }
        if let Some(narrow) = &students.narrow {
            narrow.validate()?;
        }
        for (kind, present, table) in [
            (StudentKind::Shallow, students.shallow.is_some(), "shallow"),
            (StudentKind::Narrow, students.narrow.is_some(), "narrow"),
        ] {
            if present && !students.kinds.contains(&kind) {
                return Err(format!(
                    "students.{table}: set, but {table:?} is not in students.kinds"
                ));
            }
        }
        for (key, value) in [
            ("students.embedding_dim", students.embedding_dim),
            ("students.channels", students.channels),
            ("students.max_tokens", students.max_tokens),
        ] {
            if value == 0 {
                return Err(format!("{key}: expected at least 1"));
            }
        }
        if students.kernel_size.is_multiple_of(2) {
            return Err(format!(
                "students.kernel_size: expected an odd width, found {}",
                students.kernel_size
            ));
        }
        if students.hidden.contains(&0) {
            return Err("students.hidden: layer widths must be at least 1".to_string());
        }
        check_train("students.train", &students.train)?;
        students.optimizer.validate("students.optimizer")?;
        let distill = &self.distill;
        if !(distill.temperature.is_finite() && distill.temperature > 0.0) {
            return Err(format!(
                "distill.temperature: expected a positive number, found {}",
                distill.temperature
            ));
        }
        if !(0.0..=1.0).contains(&distill.alpha) {
            return Err(format!(
                "distill.alpha: expected a weight in [0, 1], found {}",
                distill.alpha
            ));
        }
        if distill.embedding == Some(true) && self.teacher.kind != TeacherKind::Head {
            return Err(format!(
                "distill.embedding: regressing the teacher's sentence embeddings needs the \
                 frozen-encoder teacher (teacher.kind = \"head\"), found teacher.kind = {:?}; \
                 set distill.embedding = false",
                self.teacher.kind.name()
            ));
        }
        validate_layer_losses(&distill.layers, &students.kinds)?;
        self.validate_layer_stages()?;
        match (distill.unlabelled_texts, data.max_train) {
            (Some(0), _) => {
                return Err("distill.unlabelled_texts: expected at least 1".to_string());
            }
            (Some(_), None) => {
                return Err(
                    "distill.unlabelled_texts: the unlabelled texts are the training texts that \
                     data.max_train leaves out; set data.max_train"
                        .to_string(),
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// Each two-stage `[[distill.layers]]` entry leaves its students at least one epoch of
    /// logit KD after its `first_epochs`.
    fn validate_layer_stages(&self) -> Result<(), String> {
        let students = &self.students;
        for (i, entry) in self.distill.layers.iter().enumerate() {
            let Some(first) = entry.first_epochs else {
                continue;
            };
            for (kind, epochs, table) in [
                (
                    StudentKind::Shallow,
                    students.shallow.as_ref().map(|s| s.train.epochs),
                    "shallow",
                ),
                (
                    StudentKind::Narrow,
                    students.narrow.as_ref().map(|n| n.train.epochs),
                    "narrow",
                ),
            ] {
                let epochs = epochs.unwrap_or_else(|| FinetuneConfig::default().epochs);
                if students.kinds.contains(&kind) && entry.teaches(kind) && first >= epochs {
                    return Err(format!(
                        "distill.layers[{i}] ({}).first_epochs: {first} leaves no epoch of logit \
                         KD to the {table} student's {epochs} (students.{table}.train.epochs); \
                         expected fewer",
                        entry.loss.name()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The `[teacher]` table's keys fit its `kind`.
    fn validate_teacher(&self) -> Result<(), String> {
        let teacher = &self.teacher;
        let head_only = !teacher.hidden.is_empty() || teacher.dropout != 0.0;
        match teacher.kind {
            TeacherKind::Head => {
                let train = teacher.train.as_ref().ok_or(
                    "teacher.train: expected the head's [teacher.train] table (epochs, \
                     batch_size) for teacher.kind = \"head\"",
                )?;
                check_train("teacher.train", train)?;
                self.teacher.optimizer.validate("teacher.optimizer")?;
                for (key, set) in [
                    ("teacher.finetune", teacher.finetune.is_some()),
                    ("teacher.folder", teacher.folder.is_some()),
                ] {
                    if set {
                        return Err(format!(
                            "{key}: only for teacher.kind = \"finetune\" or \"folder\", found \
                             teacher.kind = \"head\""
                        ));
                    }
                }
            }
            TeacherKind::Finetune | TeacherKind::Folder => {
                let kind = teacher.kind.name();
                if teacher.train.is_some() || head_only {
                    return Err(format!(
                        "teacher: hidden, dropout and [teacher.train] describe the frozen \
                         encoder's head, not teacher.kind = {kind:?} (its dropout is the \
                         model's own)"
                    ));
                }
                if teacher.kind == TeacherKind::Finetune {
                    if teacher.folder.is_some() {
                        return Err(
                            "teacher.folder: only for teacher.kind = \"folder\"".to_string()
                        );
                    }
                    teacher
                        .finetune
                        .clone()
                        .unwrap_or_default()
                        .validate("teacher.finetune")?;
                } else {
                    if teacher.folder.is_none() {
                        return Err("teacher.folder: expected the path of a \
                             BertForSequenceClassification folder for teacher.kind = \"folder\""
                            .to_string());
                    }
                    if teacher.finetune.is_some() {
                        return Err(
                            "teacher.finetune: only for teacher.kind = \"finetune\"".to_string()
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_train(key: &str, train: &TrainConfig) -> Result<(), String> {
    if train.epochs == 0 {
        return Err(format!("{key}.epochs: expected at least 1"));
    }
    if train.batch_size == 0 {
        return Err(format!("{key}.batch_size: expected at least 1"));
    }
    Ok(())
}

//! The data section of an experiment file: which reader, where, how the samples are split and
//! normalised, and which fractions of labels the students see.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::csv::LabelColumn;
use super::image_folder::ImageFolderConfig;
use super::normalize::Normalization;

/// Where the samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// The UCI 8×8 digits embedded in apprentice (no path needed).
    Digits,
    /// A folder of MNIST-style IDX files (`train-images-idx3-ubyte[.gz]`, ...), e.g.
    /// Fashion-MNIST; its official test split is kept.
    Idx,
    /// A numeric CSV file, one sample per row.
    Csv,
    /// Images in one folder per class (`root/<class>/*.png`, or `root/train/<class>/...` and
    /// `root/test/<class>/...` for an official split), read as `[data.image_folder]` says.
    ImageFolder,
}

/// The data section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Which reader to use.
    pub source: DataSource,
    /// Folder (idx) or file (csv); `--data` on the command line overrides it.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Fraction of the training data held out for validation (stratified).
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Fraction held out for test when the source has no official test split.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Normalisation, with statistics from the training split only.
    #[serde(default)]
    pub normalization: Normalization,
    /// Fractions of training labels the students may see; one comparison per value. The teacher
    /// always trains on all labels; the distilled student also gets the teacher's outputs on
    /// the inputs whose labels it does not see (see `distill.transfer`).
    #[serde(default = "default_label_fractions")]
    pub label_fractions: Vec<f64>,
    /// CSV only: which column holds the label.
    #[serde(default = "default_label_column")]
    pub label_column: LabelColumn,
    /// CSV only: whether the first row is a header.
    #[serde(default)]
    pub has_header: bool,
    /// CSV only: read each row as an image of `[channels, height, width]`.
    #[serde(default)]
    pub image_shape: Option<[usize; 3]>,
    /// image-folder only: sample size, colour and what to do with unreadable files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_folder: Option<ImageFolderConfig>,
}

fn default_validation_fraction() -> f64 {
    0.1
}
fn default_test_fraction() -> f64 {
    0.2
}
fn default_label_fractions() -> Vec<f64> {
    vec![1.0]
}
fn default_label_column() -> LabelColumn {
    LabelColumn::Last
}

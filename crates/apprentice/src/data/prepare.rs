//! From a `[data]` section to normalised train / validation / test splits.

use std::path::{Path, PathBuf};

use super::batch::mix_seed;
use super::config::{DataConfig, DataSource};
use super::csv::{CsvOptions, load_csv};
use super::digits::load_digits;
use super::idx::load_mnist_dir;
use super::image_folder::{SkippedFile, load_image_folder};
use super::normalize::Normalizer;
use super::split::{stratified_holdout, stratified_split};
use super::{DataError, Dataset, SampleShape};

type Result<T> = std::result::Result<T, DataError>;

/// Data as read from disk, before any seeded split.
#[derive(Debug, Clone)]
pub enum RawData {
    /// One pool to split into train / validation / test.
    Pool(Dataset),
    /// An official train / test split; validation is carved out of train.
    Official {
        /// The official training set.
        train: Dataset,
        /// The official test set.
        test: Dataset,
    },
}

impl RawData {
    /// The data set's name (an official split's, without its `/train` suffix).
    pub fn name(&self) -> String {
        match self {
            RawData::Pool(pool) => pool.name.clone(),
            RawData::Official { train, .. } => train.name.trim_end_matches("/train").to_string(),
        }
    }
}

/// The splits of one seed, normalised with statistics of its training split.
#[derive(Debug, Clone)]
pub struct PreparedData {
    /// Training samples.
    pub train: Dataset,
    /// Validation samples (model selection, curves).
    pub validation: Dataset,
    /// Test samples (reported metrics only).
    pub test: Dataset,
    /// The fitted normalisation.
    pub normalizer: Normalizer,
    /// Class names in label order, when the source names its classes ([`DataReport`]); empty
    /// otherwise.
    pub class_names: Vec<String>,
}

/// What reading the data found beyond the samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataReport {
    /// Class names in label order, when the source names its classes (image folders).
    pub class_names: Vec<String>,
    /// Files left out because they are not readable images (image folders with
    /// `on_error = "skip"`).
    pub skipped: Vec<SkippedFile>,
}

/// Reads the configured data. `override_path` (from `--data`) wins over `data.path`.
pub fn load_raw(config: &DataConfig, override_path: Option<&Path>) -> Result<RawData> {
    Ok(load_raw_with_report(config, override_path)?.0)
}

/// [`load_raw`], with the class names and skipped files of the source.
pub fn load_raw_with_report(
    config: &DataConfig,
    override_path: Option<&Path>,
) -> Result<(RawData, DataReport)> {
    let path: Option<PathBuf> = override_path
        .map(Path::to_path_buf)
        .or_else(|| config.path.clone());
    let need_path = |what: &str| -> Result<PathBuf> {
        path.clone().ok_or_else(|| {
            DataError::Invalid(format!(
                "data.path: the {what} source needs a path (set data.path or pass --data)"
            ))
        })
    };
    let raw = match config.source {
        DataSource::Digits => RawData::Pool(load_digits()?),
        DataSource::Idx => {
            let dir = need_path("idx")?;
            if !dir.is_dir() {
                let problem = if dir.exists() {
                    "is not a folder"
                } else {
                    "does not exist"
                };
                return Err(DataError::Invalid(format!(
                    "{}: {problem}; expected a folder of IDX files (train-images-idx3-ubyte.gz, ...)",
                    dir.display()
                )));
            }
            let (train, test) = load_mnist_dir(&dir)?;
            RawData::Official { train, test }
        }
        DataSource::Csv => {
            let file = need_path("csv")?;
            let options = CsvOptions {
                label_column: config.label_column.clone(),
                has_header: config.has_header,
                ..CsvOptions::default()
            };
            let mut data = load_csv(&file, &options)?;
            if let Some([channels, height, width]) = config.image_shape {
                let shape = SampleShape::image(channels, height, width);
                if shape.len() != data.shape.len() {
                    return Err(DataError::Invalid(format!(
                        "data.image_shape: {channels}×{height}×{width} = {} values, but {} has {} features per row",
                        shape.len(),
                        file.display(),
                        data.shape.len()
                    )));
                }
                data.shape = shape;
            }
            RawData::Pool(data)
        }
        DataSource::ImageFolder => {
            let root = need_path("image-folder")?;
            let settings = config.image_folder.as_ref().ok_or_else(|| {
                DataError::Invalid(
                    "data.image_folder: the image-folder source needs a [data.image_folder] table with at least size = [height, width]".into(),
                )
            })?;
            let folder = load_image_folder(&root, settings)?;
            let report = DataReport {
                class_names: folder.class_names,
                skipped: folder.skipped,
            };
            let raw = match folder.test {
                Some(test) => RawData::Official {
                    train: folder.train,
                    test,
                },
                None => RawData::Pool(folder.train),
            };
            return Ok((raw, report));
        }
    };
    Ok((raw, DataReport::default()))
}

/// Splits (seeded, stratified) and normalises the data for one seed.
pub fn prepare(raw: &RawData, config: &DataConfig, seed: u64) -> Result<PreparedData> {
    let split_seed = mix_seed(seed, 0x5b11_7000);
    let (mut train, mut validation, mut test) = match raw {
        RawData::Pool(pool) => {
            let splits = stratified_split(
                pool,
                config.validation_fraction,
                config.test_fraction,
                split_seed,
            )?;
            (splits.train, splits.validation, splits.test)
        }
        RawData::Official { train, test } => {
            let (rest, validation) =
                stratified_holdout(train, config.validation_fraction, split_seed)?;
            (rest, validation, test.clone())
        }
    };
    if train.is_empty() || test.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: too few samples to split ({} train, {} test)",
            train.name,
            train.len(),
            test.len()
        )));
    }
    let normalizer = Normalizer::fit(&train, config.normalization);
    normalizer.apply(&mut train);
    normalizer.apply(&mut validation);
    normalizer.apply(&mut test);
    Ok(PreparedData {
        train,
        validation,
        test,
        normalizer,
        class_names: Vec::new(),
    })
}

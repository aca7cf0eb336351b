//! Text corpora for language-model training: one text per line, or CSV / JSON-lines files with
//! a named text column (and an optional filter on another column), each plain, gzip or bzip2;
//! and the seeded held-out split of their texts.
//!
//! The compression is told from the file's first bytes (gzip `1f 8b`, bzip2 `BZh`), so a
//! misnamed file still reads; the format from the name (`.txt`, `.csv`, `.jsonl`/`.json`,
//! each optionally followed by `.gz` or `.bz2`) unless the spec names it. Every error is one
//! line naming the file, and the line of the file when one is to blame.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use bzip2::read::MultiBzDecoder;
use flate2::read::MultiGzDecoder;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How the texts are laid out in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorpusFormat {
    /// One text per line; blank lines are skipped.
    Lines,
    /// CSV with a header row; the text is one named column.
    Csv,
    /// One JSON object per line; the text is one named string field.
    Jsonl,
}

impl CorpusFormat {
    /// The format a file name implies (`.txt`, `.csv`, `.jsonl` or `.json`, before an optional
    /// `.gz` or `.bz2`), or `None`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_string_lossy().to_lowercase();
        let name = name
            .strip_suffix(".gz")
            .or_else(|| name.strip_suffix(".bz2"))
            .unwrap_or(&name);
        if name.ends_with(".csv") {
            Some(Self::Csv)
        } else if name.ends_with(".jsonl") || name.ends_with(".json") {
            Some(Self::Jsonl)
        } else if name.ends_with(".txt") {
            Some(Self::Lines)
        } else {
            None
        }
    }
}

/// Which file to read and which of its texts to keep (the `[corpus]` table of an LM
/// experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusSpec {
    /// The file, plain, gzip or bzip2.
    pub path: PathBuf,
    /// Its layout; by default told from the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<CorpusFormat>,
    /// The column (CSV) or field (JSON lines) holding the text.
    #[serde(default = "default_text_column")]
    pub text_column: String,
    /// A column whose value decides whether a row is kept (CSV and JSON lines only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_column: Option<String>,
    /// The values of `filter_column` whose rows are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_values: Vec<String>,
    /// Keep only the first this many texts (in file order, after the filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_texts: Option<usize>,
}

fn default_text_column() -> String {
    "text".to_string()
}

impl CorpusSpec {
    /// A spec reading every text of `path` with the default column name.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            format: None,
            text_column: default_text_column(),
            filter_column: None,
            filter_values: Vec::new(),
            max_texts: None,
        }
    }

    /// Checks the settings that do not need the file; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_texts == Some(0) {
            return Err("corpus.max_texts: expected at least 1".to_string());
        }
        if self.text_column.is_empty() {
            return Err("corpus.text_column: expected a column name".to_string());
        }
        match (&self.filter_column, self.filter_values.is_empty()) {
            (Some(column), true) => Err(format!(
                "corpus.filter_values: expected the values of {column:?} to keep"
            )),
            (None, false) => {
                Err("corpus.filter_column: expected the column that filter_values test".to_string())
            }
            _ => Ok(()),
        }
    }
}

/// Why a corpus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file cannot be opened or read (or decompressed).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// One line of the file is not what its format expects.
    #[error("{path}, line {line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the (decompressed) text.
        line: u64,
        /// What was expected.
        message: String,
    },
    /// The file as a whole does not fit the spec (format unknown, no such column, no texts).
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Opens a file, decompressing gzip or bzip2 when its first bytes say so.
fn open(path: &Path) -> Result<Box<dyn Read>, CorpusError> {
    let io_error = |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut prefix = Vec::with_capacity(3);
    (&mut file)
        .take(3)
        .read_to_end(&mut prefix)
        .map_err(io_error)?;
    let stream = Cursor::new(prefix.clone()).chain(file);
    Ok(if prefix.starts_with(&[0x1f, 0x8b]) {
        Box::new(MultiGzDecoder::new(stream))
    } else if prefix.starts_with(b"BZh") {
        Box::new(MultiBzDecoder::new(stream))
    } else {
        Box::new(stream)
    })
}

/// Reads the texts `spec` selects, in file order; empty texts (after trimming) are skipped.
pub fn load_corpus(spec: &CorpusSpec) -> Result<Vec<String>, CorpusError> {
    let path = spec.path.as_path();
    let file_error = |message: String| CorpusError::File {
        path: path.to_path_buf(),
        message,
    };
    spec.validate().map_err(file_error)?;
    let format = spec
        .format
        .or_else(|| CorpusFormat::from_path(path))
        .ok_or_else(|| {
            file_error(
                "cannot tell the format from the name: expected .txt, .csv or .jsonl \
                 (optionally .gz or .bz2), or set corpus.format"
                    .to_string(),
            )
        })?;
    if format == CorpusFormat::Lines && spec.filter_column.is_some() {
        return Err(file_error(
            "corpus.filter_column: a one-text-per-line file has no columns".to_string(),
        ));
    }
    let reader = open(path)?;
    let mut kept = Kept {
        texts: Vec::new(),
        max: spec.max_texts,
    };
    match format {
        CorpusFormat::Lines => read_lines(reader, path, &mut kept)?,
        CorpusFormat::Csv => read_csv(reader, spec, &mut kept)?,
        CorpusFormat::Jsonl => read_jsonl(reader, spec, &mut kept)?,
    }
    if kept.texts.is_empty() {
        return Err(file_error(match &spec.filter_column {
            Some(column) => format!(
                "no non-empty text whose {column:?} is one of {:?}",
                spec.filter_values
            ),
            None => "no non-empty text".to_string(),
        }));
    }
    Ok(kept.texts)
}

/// The texts kept so far and the limit.
struct Kept {
    texts: Vec<String>,
    max: Option<usize>,
}

impl Kept {
    /// Keeps a non-empty text; false once the limit is reached.
    fn push(&mut self, text: &str) -> bool {
        let text = text.trim();
        if !text.is_empty() {
            self.texts.push(text.to_string());
        }
        self.max.is_none_or(|max| self.texts.len() < max)
    }
}

/// Every line of `reader`, numbered from 1, as text; invalid UTF-8 names its line.
fn numbered_lines(
    reader: Box<dyn Read>,
    path: &Path,
) -> impl Iterator<Item = Result<(u64, String), CorpusError>> {
    let mut reader = BufReader::new(reader);
    let mut number = 0u64;
    let path = path.to_path_buf();
    std::iter::from_fn(move || {
        let mut bytes = Vec::new();
        number += 1;
        match reader.read_until(b'\n', &mut bytes) {
            Ok(0) => None,
            Ok(_) => Some(match String::from_utf8(bytes) {
                Ok(line) => Ok((number, line)),
                Err(_) => Err(CorpusError::Line {
                    path: path.clone(),
                    line: number,
                    message: "expected UTF-8 text".to_string(),
                }),
            }),
            Err(source) => Some(Err(CorpusError::Io {
                path: path.clone(),
                source,
            })),
        }
    })
}

fn read_lines(reader: Box<dyn Read>, path: &Path, kept: &mut Kept) -> Result<(), CorpusError> {
    for line in numbered_lines(reader, path) {
        let (_, line) = line?;
        if !kept.push(&line) {
            break;
        }
    }
    Ok(())
}

fn read_csv(reader: Box<dyn Read>, spec: &CorpusSpec, kept: &mut Kept) -> Result<(), CorpusError> {
    let path = spec.path.as_path();
    let csv_error = |error: csv::Error| {
        let line = error.position().map_or(0, |p| p.line());
        let message = match error.kind() {
            csv::ErrorKind::Utf8 { .. } => "expected UTF-8 text".to_string(),
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("expected {expected_len} fields like the header, found {len}"),
            csv::ErrorKind::Io(e) => {
                return CorpusError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(e.kind(), e.to_string()),
                };
            }
            _ => error.to_string().replace('\n', " "),
        };
        CorpusError::Line {
            path: path.to_path_buf(),
            line,
            message,
        }
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let header = csv.headers().map_err(csv_error)?.clone();
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            let names: Vec<&str> = header.iter().collect();
            CorpusError::File {
                path: path.to_path_buf(),
                message: format!("no column {name:?} in the header (columns: {names:?})"),
            }
        })
    };
    let text = column(&spec.text_column)?;
    let filter = spec.filter_column.as_deref().map(column).transpose()?;
    for record in csv.records() {
        let record = record.map_err(csv_error)?;
        if let Some(filter) = filter
            && !spec
                .filter_values
                .iter()
                .any(|v| Some(v.as_str()) == record.get(filter))
        {
            continue;
        }
        if !kept.push(record.get(text).unwrap_or_default()) {
            break;
        }
    }
    Ok(())
}

fn read_jsonl(
    reader: Box<dyn Read>,
    spec: &CorpusSpec,
    kept: &mut Kept,
) -> Result<(), CorpusError> {
    let path = spec.path.as_path();
    for line in numbered_lines(reader, path) {
        let (number, line) = line?;
        if line.trim().is_empty() {
            continue;
        }
        let line_error = |message: String| CorpusError::Line {
            path: path.to_path_buf(),
            line: number,
            message,
        };
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| line_error(format!("expected a JSON object: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| line_error("expected a JSON object".to_string()))?;
        if let Some(column) = &spec.filter_column {
            let found = match object.get(column) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            if !spec.filter_values.contains(&found) {
                continue;
            }
        }
        let text = match object.get(&spec.text_column) {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => {
                return Err(line_error(format!(
                    "expected {:?} to be a string, found {other}",
                    spec.text_column
                )));
            }
            None => {
                return Err(line_error(format!(
                    "no field {:?} in the object",
                    spec.text_column
                )));
            }
        };
        if !kept.push(text) {
            break;
        }
    }
    Ok(())
}

/// Indices of the training and held-out texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusSplit {
    /// Texts to train on, ascending.
    pub train: Vec<usize>,
    /// Texts held out for evaluation, ascending.
    pub held_out: Vec<usize>,
}

/// A seeded split of `count` texts: `round(held_out_fraction · count)` of them (at least one,
/// and leaving at least one) held out, drawn by a ChaCha shuffle from `seed`.
pub fn held_out_split(
    count: usize,
    held_out_fraction: f64,
    seed: u64,
) -> Result<CorpusSplit, String> {
    if !(held_out_fraction > 0.0 && held_out_fraction < 1.0) {
        return Err(format!(
            "held_out_fraction: expected a fraction in (0, 1), found {held_out_fraction}"
        ));
    }
    if count < 2 {
        return Err(format!(
            "a held-out split needs at least two texts, found {count}"
        ));
    }
    let held = ((held_out_fraction * count as f64).round() as usize).clamp(1, count - 1);
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut held_out = order[..held].to_vec();
    let mut train = order[held..].to_vec();
    held_out.sort_unstable();
    train.sort_unstable();
    Ok(CorpusSplit { train, held_out })
}

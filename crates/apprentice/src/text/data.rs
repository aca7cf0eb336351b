//! Labelled text from CSV or JSON-lines files (plain, gzip or bzip2), with configurable text
//! and label columns, labels mapped to classes in a given order, rows of some labels dropped,
//! and a seeded stratified split.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

use bzip2::read::MultiBzDecoder;
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use super::error::TextError;
use crate::data::split::stratified_split;
use crate::data::{DataError, Dataset, SampleShape};

/// How the rows of a text file are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextFormat {
    /// Comma-separated values with a header row naming the columns.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl TextFormat {
    /// The format a file name implies (`.csv`, `.jsonl` or `.json`, before any `.gz`/`.bz2`).
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_string_lossy().to_lowercase();
        let name = name
            .strip_suffix(".gz")
            .or_else(|| name.strip_suffix(".bz2"))
            .unwrap_or(&name);
        if name.ends_with(".csv") {
            Some(TextFormat::Csv)
        } else if name.ends_with(".jsonl") || name.ends_with(".json") {
            Some(TextFormat::Jsonl)
        } else {
            None
        }
    }
}

/// Which columns to read and how labels become classes.
#[derive(Debug, Clone, PartialEq)]
pub struct TextDataOptions {
    /// Column (CSV header name) or field (JSON key) holding the text.
    pub text_column: String,
    /// Column or field holding the label.
    pub label_column: String,
    /// The classes in order: label `classes[i]` is class `i`. Empty: the distinct labels found,
    /// sorted.
    pub classes: Vec<String>,
    /// Rows with these labels are skipped (e.g. neutral rows of a sentiment set).
    pub drop_labels: Vec<String>,
    /// Keep only the first this many rows that are not dropped.
    pub max_rows: Option<usize>,
}

/// Texts with one class each.
#[derive(Debug, Clone, PartialEq)]
pub struct TextData {
    /// Short name for logs and results (the file name without extensions).
    pub name: String,
    /// The texts, in file order.
    pub texts: Vec<String>,
    /// The class of each text.
    pub labels: Vec<u32>,
    /// Class names, in class order.
    pub classes: Vec<String>,
}

impl TextData {
    /// Number of texts.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// True when there are no texts.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Number of texts of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &label in &self.labels {
            counts[label as usize] += 1;
        }
        counts
    }
}

/// Row indices of a train / validation / test split, each ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSplit {
    /// Rows to train on.
    pub train: Vec<usize>,
    /// Rows for model selection.
    pub validation: Vec<usize>,
    /// Rows held back for the final measurement.
    pub test: Vec<usize>,
}

/// Opens a file, decompressing gzip or bzip2 when its first bytes say so.
fn open(path: &Path) -> Result<Box<dyn Read>, TextError> {
    let io_error = |source| {
        TextError::Data(DataError::Io {
            path: path.to_path_buf(),
            source,
        })
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

/// The file name without its compression and format extensions.
fn short_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "text".to_string());
    let mut name = name.as_str();
    for suffix in [".gz", ".bz2", ".csv", ".jsonl", ".json"] {
        name = name.strip_suffix(suffix).unwrap_or(name);
    }
    name.to_string()
}

/// Reads a labelled text file; `format` `None` goes by the file name.
pub fn load_text_data(
    path: &Path,
    format: Option<TextFormat>,
    options: &TextDataOptions,
) -> Result<TextData, TextError> {
    let source_name = path.display().to_string();
    let format = match format.or_else(|| TextFormat::from_path(path)) {
        Some(format) => format,
        None => {
            return Err(TextError::Data(DataError::Format {
                source_name,
                message: "cannot tell the format from the name: expected .csv or .jsonl \
                          (optionally .gz or .bz2), or set data.format"
                    .to_string(),
            }));
        }
    };
    let reader = open(path)?;
    let mut data = parse_text_data(reader, &source_name, format, options)?;
    data.name = short_name(path);
    Ok(data)
}

/// Collects labelled rows and maps labels to classes.
struct Rows<'a> {
    options: &'a TextDataOptions,
    source_name: &'a str,
    texts: Vec<String>,
    raw_labels: Vec<(String, u64)>,
}

impl Rows<'_> {
    /// Adds a row unless its label is dropped; false once `max_rows` are kept.
    fn push(&mut self, text: String, label: String, line: u64) -> bool {
        if self.options.drop_labels.contains(&label) {
            return true;
        }
        self.texts.push(text);
        self.raw_labels.push((label, line));
        self.options
            .max_rows
            .is_none_or(|max| self.texts.len() < max)
    }

    fn finish(self) -> Result<TextData, TextError> {
        let classes = if self.options.classes.is_empty() {
            let mut found: Vec<String> = self.raw_labels.iter().map(|(l, _)| l.clone()).collect();
            found.sort();
            found.dedup();
            found
        } else {
            self.options.classes.clone()
        };
        let mut labels = Vec::with_capacity(self.raw_labels.len());
        for (label, line) in &self.raw_labels {
            match classes.iter().position(|c| c == label) {
                Some(class) => labels.push(class as u32),
                None => {
                    return Err(TextError::Data(DataError::Line {
                        source_name: self.source_name.to_string(),
                        line: *line,
                        message: format!(
                            "label {label:?} is not one of the classes {} (and not dropped)",
                            quoted_list(&classes)
                        ),
                    }));
                }
            }
        }
        if self.texts.is_empty() {
            return Err(TextError::Data(DataError::Format {
                source_name: self.source_name.to_string(),
                message: "no labelled rows".to_string(),
            }));
        }
        Ok(TextData {
            name: self.source_name.to_string(),
            texts: self.texts,
            labels,
            classes,
        })
    }
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads labelled text from a stream; `source_name` labels errors.
pub fn parse_text_data<R: Read>(
    reader: R,
    source_name: &str,
    format: TextFormat,
    options: &TextDataOptions,
) -> Result<TextData, TextError> {
    let mut rows = Rows {
        options,
        source_name,
        texts: Vec::new(),
        raw_labels: Vec::new(),
    };
    let line_error = |line: u64, message: String| {
        TextError::Data(DataError::Line {
            source_name: source_name.to_string(),
            line,
            message,
        })
    };
    match format {
        TextFormat::Csv => {
            let mut csv = ::csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(reader);
            let header = csv
                .headers()
                .map_err(|e| line_error(1, format!("expected a CSV header row ({e})")))?
                .clone();
            let column = |name: &str| {
                header.iter().position(|h| h.trim() == name).ok_or_else(|| {
                    let names: Vec<String> = header.iter().map(str::to_string).collect();
                    line_error(
                        1,
                        format!("no column {name:?}; the header has {}", quoted_list(&names)),
                    )
                })
            };
            let text_index = column(&options.text_column)?;
            let label_index = column(&options.label_column)?;
            let mut record = ::csv::StringRecord::new();
            loop {
                match csv.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        return Err(line_error(line, format!("expected a CSV record ({e})")));
                    }
                }
                let line = record.position().map_or(0, |p| p.line());
                let text = record.get(text_index).unwrap_or_default().to_string();
                let label = record
                    .get(label_index)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if !rows.push(text, label, line) {
                    break;
                }
            }
        }
        TextFormat::Jsonl => {
            for (index, line) in BufReader::new(reader).lines().enumerate() {
                let number = index as u64 + 1;
                let line = line.map_err(|e| line_error(number, format!("cannot read: {e}")))?;
                if line.trim().is_empty() {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| line_error(number, format!("expected a JSON object ({e})")))?;
                let field = |name: &str| -> Result<String, TextError> {
                    match value.get(name) {
                        Some(serde_json::Value::String(text)) => Ok(text.clone()),
                        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                        Some(serde_json::Value::Bool(b)) => Ok(b.to_string()),
                        Some(other) => Err(line_error(
                            number,
                            format!("field {name:?}: expected a string, found {other}"),
                        )),
                        None => Err(line_error(number, format!("no field {name:?}"))),
                    }
                };
                let text = field(&options.text_column)?;
                let label = field(&options.label_column)?;
                if !rows.push(text, label.trim().to_string(), number) {
                    break;
                }
            }
        }
    }
    rows.finish()
}

/// Splits rows into train, validation and test parts, stratified by class and seeded, with
/// the same rule as the image data ([`stratified_split`]): per class, `round(fraction × class
/// size)` rows go to test and to validation, the rest to train.
pub fn split_text(
    data: &TextData,
    validation_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<TextSplit, TextError> {
    // The shared splitter works on data sets; a data set whose one feature is the row index
    // lets it split the rows and tell us which went where (exact: f32 holds integers up to
    // 2^24, checked below).
    if data.len() > 1 << 24 {
        return Err(TextError::Invalid(format!(
            "{}: {} rows; at most {} can be split",
            data.name,
            data.len(),
            1 << 24
        )));
    }
    let rows = Dataset {
        name: data.name.clone(),
        features: (0..data.len()).map(|i| i as f32).collect(),
        labels: data.labels.clone(),
        shape: SampleShape::flat(1),
        num_classes: data.classes.len(),
    };
    let splits = stratified_split(&rows, validation_fraction, test_fraction, seed)?;
    let indices = |part: &Dataset| part.features.iter().map(|&v| v as usize).collect();
    Ok(TextSplit {
        train: indices(&splits.train),
        validation: indices(&splits.validation),
        test: indices(&splits.test),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> TextDataOptions {
        TextDataOptions {
            text_column: "text".into(),
            label_column: "category".into(),
            classes: vec!["rotten".into(), "fresh".into()],
            drop_labels: vec!["plot".into()],
            max_rows: None,
        }
    }

    #[test]
    fn csv_rows_with_quoted_newlines_keep_their_line_numbers() {
        let text = "category,text\nfresh,\"good\nfilm\"\nplot,a story\nrotten,bad\nmeh,hm\n";
        let error = parse_text_data(text.as_bytes(), "t.csv", TextFormat::Csv, &options())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "t.csv:6: label \"meh\" is not one of the classes \"rotten\", \"fresh\" (and not dropped)"
        );
        let mut limited = options();
        limited.max_rows = Some(2);
        let data = parse_text_data(text.as_bytes(), "t.csv", TextFormat::Csv, &limited).unwrap();
        assert_eq!(data.texts, vec!["good\nfilm", "bad"]);
        assert_eq!(data.labels, vec![1, 0]);
    }

    #[test]
    fn jsonl_labels_may_be_numbers() {
        let text = "{\"text\": \"a\", \"category\": 1}\n\n{\"text\": \"b\", \"category\": 0}\n";
        let mut opts = options();
        opts.classes.clear();
        let data = parse_text_data(text.as_bytes(), "t.jsonl", TextFormat::Jsonl, &opts).unwrap();
        assert_eq!(data.classes, vec!["0", "1"]);
        assert_eq!(data.labels, vec![1, 0]);
    }
}

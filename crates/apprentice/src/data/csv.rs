//! Numeric CSV: one sample per row, every field a number, one field the class label.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::read::{open, snippet};
use super::{DataError, Dataset, SampleShape};

/// Largest class count accepted, so that a stray huge label cannot make later code allocate
/// per-class tables of billions of entries.
pub const MAX_CLASSES: usize = 1 << 20;

/// Longest line accepted, so that a file without line breaks cannot exhaust memory.
const MAX_LINE_BYTES: u64 = 1 << 28;

/// Largest number of feature values accepted (4 GiB as `f32`), so that a compressed file
/// that expands without end fails instead of exhausting memory.
pub const MAX_CSV_VALUES: usize = 1 << 30;

/// Which column holds the class label.
///
/// In configuration files it is written `"first"`, `"last"`, a 0-based column index such as
/// `0`, or any other string, taken as a header name (which needs a header row). A header
/// column literally called `first` or `last` can therefore only be chosen by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelColumn {
    /// The first column.
    First,
    /// The last column.
    Last,
    /// The column at this 0-based index.
    Index(usize),
    /// The column with this header name.
    Name(String),
}

impl serde::Serialize for LabelColumn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LabelColumn::First => serializer.serialize_str("first"),
            LabelColumn::Last => serializer.serialize_str("last"),
            LabelColumn::Index(index) => serializer.serialize_u64(*index as u64),
            LabelColumn::Name(name) => serializer.serialize_str(name),
        }
    }
}

impl<'de> serde::Deserialize<'de> for LabelColumn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = LabelColumn;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"first\", \"last\", a 0-based column index or a header name")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<LabelColumn, E> {
                Ok(match value {
                    "first" => LabelColumn::First,
                    "last" => LabelColumn::Last,
                    name => LabelColumn::Name(name.to_owned()),
                })
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<LabelColumn, E> {
                usize::try_from(value)
                    .map(LabelColumn::Index)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(value), &self))
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<LabelColumn, E> {
                u64::try_from(value)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(value), &self))
                    .and_then(|v| self.visit_u64(v))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// Which column holds the label; every other column is a feature.
    pub label_column: LabelColumn,
    /// Whether the first row holds column names.
    pub has_header: bool,
    /// Field separator, `b','` by default.
    pub delimiter: u8,
    /// Number of classes; `None` means the largest label plus one. Giving it catches labels
    /// out of range and keeps the class count when the largest class is absent from a file.
    pub num_classes: Option<usize>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            label_column: LabelColumn::Last,
            has_header: false,
            delimiter: b',',
            num_classes: None,
        }
    }
}

/// Reads a CSV file, gunzipping it when its content starts with the gzip magic. Errors name
/// the path; the data set is named after the file without its extensions (`iris.csv.gz` →
/// `iris`).
pub fn load_csv(path: &Path, options: &CsvOptions) -> Result<Dataset, DataError> {
    let reader = open(path)?;
    let mut data = parse_csv(reader, &path.display().to_string(), options)?;
    data.name = short_name(path);
    Ok(data)
}

/// The file name without `.gz` and `.csv`/`.tsv`, a short name for logs and results.
fn short_name(path: &Path) -> String {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let file = file.strip_suffix(".gz").unwrap_or(&file);
    let stem = [".csv", ".tsv", ".txt"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(file);
    if stem.is_empty() {
        file.to_owned()
    } else {
        stem.to_owned()
    }
}

/// Parses CSV from `reader`; `source_name` names it in errors and becomes the data set name.
/// Blank lines are skipped; fields are trimmed of surrounding spaces; a quoted field may hold
/// the delimiter but not a line break.
pub fn parse_csv<R: Read>(
    reader: R,
    source_name: &str,
    options: &CsvOptions,
) -> Result<Dataset, DataError> {
    if let Some(classes) = options.num_classes
        && !(1..=MAX_CLASSES).contains(&classes)
    {
        return Err(DataError::Invalid(format!(
            "{source_name}: expected num_classes between 1 and {MAX_CLASSES}, found {classes}"
        )));
    }
    if let LabelColumn::Name(name) = &options.label_column
        && !options.has_header
    {
        return Err(DataError::Invalid(format!(
            "{source_name}: the label column is given by name ({}), which needs a header row, \
             but has_header is false",
            snippet(name)
        )));
    }
    // Lines are split here rather than by the `csv` reader because its line numbers drift
    // after blank lines; a record therefore cannot span lines, which numeric data never needs.
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut parser = RowParser {
        source_name,
        options,
        width: 0,
        label_index: 0,
        features: Vec::new(),
        labels: Vec::new(),
        max_label: None,
    };
    let mut bytes = Vec::new();
    let mut record = ::csv::StringRecord::new();
    let mut seen_first_row = false;
    let mut line = 0u64;
    loop {
        line += 1;
        bytes.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|source| DataError::Io {
                path: PathBuf::from(source_name),
                source,
            })?;
        if read == 0 {
            break;
        }
        if bytes.len() as u64 > MAX_LINE_BYTES {
            return Err(DataError::line(
                source_name,
                line,
                format!("expected lines of at most {MAX_LINE_BYTES} bytes, found a longer one"),
            ));
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let column = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == options.delimiter)
                .count();
            DataError::line(
                source_name,
                line,
                format!("column {column}: expected UTF-8 text, found invalid bytes"),
            )
        })?;
        // Only the line ending is cut here: trimming all white space would drop a leading
        // empty field of a tab-separated line.
        let mut text = text.trim_end_matches(['\n', '\r']);
        if line == 1 {
            text = text.strip_prefix('\u{feff}').unwrap_or(text);
        }
        if text.trim().is_empty() {
            continue;
        }
        let fields = split_line(text, options.delimiter, &mut record)
            .map_err(|message| DataError::line(source_name, line, message))?;
        if !seen_first_row {
            seen_first_row = true;
            parser.set_layout(&fields, line)?;
            if options.has_header {
                continue;
            }
        }
        parser.push_row(&fields, line)?;
    }
    if !seen_first_row {
        return Err(DataError::format(
            source_name,
            "expected CSV data, found an empty file",
        ));
    }
    if parser.labels.is_empty() {
        return Err(DataError::format(
            source_name,
            "expected at least one data row after the header, found none",
        ));
    }
    let num_classes = options
        .num_classes
        .unwrap_or_else(|| parser.max_label.map_or(1, |m| m as usize + 1));
    Ok(Dataset {
        name: source_name.to_owned(),
        features: parser.features,
        labels: parser.labels,
        shape: SampleShape::flat(parser.width - 1),
        num_classes,
    })
}

/// Row-by-row state of [`parse_csv`].
struct RowParser<'a> {
    source_name: &'a str,
    options: &'a CsvOptions,
    /// Fields per row, fixed by the header or the first row.
    width: usize,
    label_index: usize,
    features: Vec<f32>,
    labels: Vec<u32>,
    max_label: Option<u32>,
}

impl RowParser<'_> {
    /// Fixes the row width and the label column from the first non-blank row.
    fn set_layout(&mut self, first: &[&str], line: u64) -> Result<(), DataError> {
        let name = self.source_name;
        self.width = first.len();
        if self.width < 2 {
            return Err(DataError::line(
                name,
                line,
                format!(
                    "expected at least 2 fields (features and a label), found {}",
                    self.width
                ),
            ));
        }
        self.label_index = match &self.options.label_column {
            LabelColumn::First => 0,
            LabelColumn::Last => self.width - 1,
            LabelColumn::Index(index) if *index < self.width => *index,
            LabelColumn::Index(index) => {
                return Err(DataError::format(
                    name,
                    format!(
                        "expected a label column index (0-based) below {}, the number of fields \
                         per row, found {index}",
                        self.width
                    ),
                ));
            }
            LabelColumn::Name(wanted) => first
                .iter()
                .position(|&field| field == wanted.trim())
                .ok_or_else(|| {
                    DataError::line(
                        name,
                        line,
                        format!(
                            "expected a header column named {}, found none",
                            snippet(wanted)
                        ),
                    )
                })?,
        };
        Ok(())
    }

    fn push_row(&mut self, record: &[&str], line: u64) -> Result<(), DataError> {
        let name = self.source_name;
        if record.len() != self.width {
            return Err(DataError::line(
                name,
                line,
                format!("expected {} fields, found {}", self.width, record.len()),
            ));
        }
        if self.features.len() + self.width > MAX_CSV_VALUES {
            return Err(DataError::line(
                name,
                line,
                format!("expected at most {MAX_CSV_VALUES} values in all, found more"),
            ));
        }
        for (index, &field) in record.iter().enumerate() {
            let column = index + 1;
            if index == self.label_index {
                let label = parse_label(field).ok_or_else(|| {
                    DataError::line(
                        name,
                        line,
                        format!(
                            "column {column}: expected a class label (an integer from 0), found {}",
                            snippet(field)
                        ),
                    )
                })?;
                let limit = self.options.num_classes.unwrap_or(MAX_CLASSES);
                if label as usize >= limit {
                    let what = if self.options.num_classes.is_some() {
                        "num_classes"
                    } else {
                        "the largest class count accepted"
                    };
                    return Err(DataError::line(
                        name,
                        line,
                        format!(
                            "column {column}: expected a class label below {limit} ({what}), \
                             found {label}"
                        ),
                    ));
                }
                self.max_label = self.max_label.max(Some(label));
                self.labels.push(label);
            } else {
                let value = field.parse::<f32>().map_err(|_| {
                    DataError::line(
                        name,
                        line,
                        format!(
                            "column {column}: expected a number, found {}",
                            snippet(field)
                        ),
                    )
                })?;
                if !value.is_finite() {
                    return Err(DataError::line(
                        name,
                        line,
                        format!(
                            "column {column}: expected a finite number, found {}",
                            snippet(field)
                        ),
                    ));
                }
                self.features.push(value);
            }
        }
        Ok(())
    }
}

/// A non-negative integer label; `"3.0"` is accepted because numeric exports often write
/// integers as floats, but any fractional part is rejected rather than silently truncated.
fn parse_label(field: &str) -> Option<u32> {
    if let Ok(label) = field.parse::<u32>() {
        return Some(label);
    }
    let value = field.parse::<f64>().ok()?;
    let integral = value.is_finite() && value >= 0.0 && value.fract() == 0.0;
    (integral && value <= f64::from(u32::MAX)).then_some(value as u32)
}

/// Splits one line into trimmed fields, honouring CSV quoting within the line. Lines without
/// quotes, the normal case for numeric data, are split directly: building a `csv` reader per
/// line costs more than parsing the numbers.
fn split_line<'a>(
    text: &'a str,
    delimiter: u8,
    record: &'a mut ::csv::StringRecord,
) -> Result<Vec<&'a str>, String> {
    if delimiter.is_ascii() && !text.contains('"') {
        return Ok(text.split(char::from(delimiter)).map(str::trim).collect());
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let error = |e: ::csv::Error| format!("expected a CSV record, found invalid text ({e})");
    if !reader.read_record(record).map_err(error)? {
        record.clear();
    }
    // A bare carriage return inside a line would start a second record.
    let mut extra = ::csv::StringRecord::new();
    if reader.read_record(&mut extra).map_err(error)? {
        return Err("expected one record per line, found a carriage return inside it".into());
    }
    Ok(record.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, options: &CsvOptions) -> Result<Dataset, DataError> {
        parse_csv(text.as_bytes(), "t.csv", options)
    }

    fn error(text: &str, options: &CsvOptions) -> String {
        parse(text, options).unwrap_err().to_string()
    }

    #[test]
    fn label_column_choices() {
        let text = "a,b,y,c\n1,2,0,3\n4.5,5,1,6\n\n7,8,2.0,9\n";
        let by_name = CsvOptions {
            label_column: LabelColumn::Name("y".into()),
            has_header: true,
            ..CsvOptions::default()
        };
        let data = parse(text, &by_name).unwrap();
        assert_eq!(data.labels, vec![0, 1, 2]);
        assert_eq!(
            data.features,
            vec![1.0, 2.0, 3.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0]
        );
        assert_eq!(data.shape, SampleShape::flat(3));
        assert_eq!(data.num_classes, 3);
        assert_eq!(data.name, "t.csv");

        let by_index = CsvOptions {
            label_column: LabelColumn::Index(2),
            ..by_name.clone()
        };
        assert_eq!(parse(text, &by_index).unwrap(), data);

        let first = CsvOptions {
            label_column: LabelColumn::First,
            ..CsvOptions::default()
        };
        let data = parse(
            "2;1;1\n0;3;4\n",
            &CsvOptions {
                delimiter: b';',
                ..first
            },
        )
        .unwrap();
        assert_eq!(data.labels, vec![2, 0]);
        assert_eq!(data.features, vec![1.0, 1.0, 3.0, 4.0]);

        let data = parse(" 1, 2 ,3\n4,5,6\n", &CsvOptions::default()).unwrap();
        assert_eq!(data.labels, vec![3, 6]);
        assert_eq!(data.num_classes, 7);
        let ten = CsvOptions {
            num_classes: Some(10),
            ..CsvOptions::default()
        };
        assert_eq!(parse("1,2,3\n", &ten).unwrap().num_classes, 10);
    }

    #[test]
    fn ragged_rows_name_the_line() {
        let text = "1,2,3\n4,5,6\n\n7,8\n";
        assert_eq!(
            error(text, &CsvOptions::default()),
            "t.csv:4: expected 3 fields, found 2"
        );
        let crlf = "\r\n\"a\",\"b, c\",y\r\n1,2,0\r\n  \r\n\r\n3,x,1\r\n";
        let header = CsvOptions {
            has_header: true,
            ..CsvOptions::default()
        };
        assert_eq!(
            error(crlf, &header),
            "t.csv:6: column 2: expected a number, found \"x\""
        );
        let named = CsvOptions {
            label_column: LabelColumn::Name("b, c".into()),
            ..header
        };
        assert_eq!(
            parse("\u{feff}a,\"b, c\"\r\n1,2\r\n", &named)
                .unwrap()
                .labels,
            vec![2]
        );
    }

    #[test]
    fn tab_separated_keeps_a_leading_empty_field() {
        let tabs = CsvOptions {
            delimiter: b'\t',
            ..CsvOptions::default()
        };
        assert_eq!(
            error("\t1\t2\n", &tabs),
            "t.csv:1: column 1: expected a number, found \"\""
        );
        assert_eq!(
            parse("0.5\t1\t2\n", &tabs).unwrap().features,
            vec![0.5, 1.0]
        );
    }

    #[test]
    fn bad_cells_name_line_and_column() {
        let options = CsvOptions::default();
        assert_eq!(
            error("1,2,0\n1,abc,0\n", &options),
            "t.csv:2: column 2: expected a number, found \"abc\""
        );
        assert_eq!(
            error("nan,2,0\n", &options),
            "t.csv:1: column 1: expected a finite number, found \"nan\""
        );
        assert!(error("1,inf,0\n", &options).contains("finite"));
        assert!(error("1,1e39,0\n", &options).contains("finite"));
        assert!(error("1,,0\n", &options).contains("found \"\""));
        for label in ["3.5", "-1", "cat", "NaN", "1e20"] {
            let err = error(&format!("1,2,0\n1,2,{label}\n"), &options);
            assert!(
                err.starts_with("t.csv:2: column 3: expected a class label"),
                "{err}"
            );
        }
        let long = "x".repeat(500);
        assert!(error(&format!("1,{long},0\n"), &options).len() < 120);
    }

    #[test]
    fn labels_out_of_range_are_errors() {
        let options = CsvOptions {
            num_classes: Some(3),
            ..CsvOptions::default()
        };
        assert_eq!(
            error("1,2\n1,3\n", &options),
            "t.csv:2: column 2: expected a class label below 3 (num_classes), found 3"
        );
        assert!(error("1,4000000000\n", &CsvOptions::default()).contains("below 1048576"));
        let zero = CsvOptions {
            num_classes: Some(0),
            ..CsvOptions::default()
        };
        assert!(error("1,0\n", &zero).contains("num_classes"));
    }

    #[test]
    fn empty_and_degenerate_files_are_errors() {
        let options = CsvOptions::default();
        assert_eq!(
            error("", &options),
            "t.csv: expected CSV data, found an empty file"
        );
        assert!(error("\n  \n", &options).contains("empty file"));
        let header = CsvOptions {
            has_header: true,
            ..CsvOptions::default()
        };
        assert!(error("a,b\n", &header).contains("at least one data row"));
        assert!(error("1\n2\n", &options).contains("expected at least 2 fields"));
    }

    #[test]
    fn bad_label_columns_are_errors() {
        let named = CsvOptions {
            label_column: LabelColumn::Name("y".into()),
            ..CsvOptions::default()
        };
        assert!(error("1,2\n", &named).contains("has_header is false"));
        let named = CsvOptions {
            has_header: true,
            ..named
        };
        assert_eq!(
            error("a,b\n1,2\n", &named),
            "t.csv:1: expected a header column named \"y\", found none"
        );
        let index = CsvOptions {
            label_column: LabelColumn::Index(5),
            ..CsvOptions::default()
        };
        assert!(error("1,2\n", &index).contains("found 5"));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let bytes = b"1,2\n1,\xff\n";
        let err = parse_csv(&bytes[..], "t.csv", &CsvOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv:2: column 2: expected UTF-8 text, found invalid bytes"
        );
    }

    #[test]
    fn load_csv_gunzips_by_content() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iris.csv.gz");
        let mut encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            Default::default(),
        );
        encoder.write_all(b"0.5,1\n0.25,0\n").unwrap();
        encoder.finish().unwrap();
        let data = load_csv(&path, &CsvOptions::default()).unwrap();
        assert_eq!(data.name, "iris");
        assert_eq!(data.features, vec![0.5, 0.25]);

        let plain = dir.path().join("plain.csv");
        std::fs::write(&plain, "1,x,0\n").unwrap();
        let err = load_csv(&plain, &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}:1: column 2", plain.display())),
            "{err}"
        );
        let err = load_csv(&dir.path().join("missing.csv"), &CsvOptions::default()).unwrap_err();
        assert!(err.to_string().starts_with("cannot read "), "{err}");
    }

    #[test]
    fn label_column_reads_from_config_values() {
        let read = |json: &str| serde_json::from_str::<LabelColumn>(json);
        assert_eq!(read("\"first\"").unwrap(), LabelColumn::First);
        assert_eq!(read("\"last\"").unwrap(), LabelColumn::Last);
        assert_eq!(read("3").unwrap(), LabelColumn::Index(3));
        assert_eq!(
            read("\"species\"").unwrap(),
            LabelColumn::Name("species".into())
        );
        assert!(read("-1").is_err());
        assert!(read("1.5").is_err());

        #[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
        struct Config {
            label: LabelColumn,
        }
        let config: Config = toml::from_str("label = 0").unwrap();
        assert_eq!(config.label, LabelColumn::Index(0));
        for label in [
            LabelColumn::First,
            LabelColumn::Last,
            LabelColumn::Index(7),
            LabelColumn::Name("y".into()),
        ] {
            let config = Config { label };
            let text = toml::to_string(&config).unwrap();
            assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);
        }
    }
}

//! Numbers inside the prose of the documentation, generated from committed raw files like the
//! tables of [`super::markdown`], so that a sentence cannot quote a figure its raw file does
//! not hold.
//!
//! A page names each raw file once, on a line of its own, and then quotes values from it:
//!
//! ```text
//! <!-- values: quick = docs/results/data/quickstart.json -->
//! The student reaches <!-- value: quick:models/name=kd-all@5%/test/accuracy/mean %.1 -->95.5<!-- end value -->%.
//! ```
//!
//! A value is `EXPRESSION FORMAT`. The expression is terms joined by `+ - * /`, evaluated
//! left to right; a term is a number or `NAME:PATH`, where the path walks the JSON document:
//! an object key, an array index, or `field=value`, the one array element whose `field`
//! equals `value` (`%20` in a segment stands for a space, as in a URL). The format says how the number is written ([`Format`]). Both comments and
//! the text between them sit on one line, and only the text between them is rewritten.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::units::{bytes, duration, si, significant, thousands};

/// The comment that names a raw file for the values below it.
pub const SOURCE_START: &str = "<!-- values:";
/// The comment that opens a generated value.
pub const VALUE_START: &str = "<!-- value:";
/// The comment that closes a generated value.
pub const VALUE_END: &str = "<!-- end value -->";

/// How a value is written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    /// `.N`: N decimals; `%.N`: times 100 first (fractions as percentages); a leading `+`
    /// writes the sign of positive values too, and negative ones take `−` either way.
    Fixed {
        /// Digits after the point.
        decimals: usize,
        /// Multiply by 100 first.
        percent: bool,
        /// Write `+` before positive values.
        signed: bool,
    },
    /// `,`: a whole number with thousands separators (`19,090`).
    Thousands,
    /// `si`: three significant digits and a k/M/G suffix (`22.6M`).
    Si,
    /// `sigN`: N significant digits (`10.8`, `0.0016`).
    Significant(i32),
    /// `eN`: scientific notation with N decimals (`1.0e-6`).
    Scientific(usize),
    /// `time`: seconds in the unit that suits them (`8.47 µs`).
    Duration,
    /// `bytes`: bytes in binary units (`828 KiB`).
    Bytes,
}

impl Format {
    /// Parses a format word; the error lists the accepted ones.
    pub fn parse(word: &str) -> Result<Self, String> {
        let expected = || {
            format!(
                "unknown format {word:?}: expected .N, %.N, +.N, +%.N, `,`, si, sigN, eN, time or bytes"
            )
        };
        match word {
            "," => return Ok(Self::Thousands),
            "si" => return Ok(Self::Si),
            "time" => return Ok(Self::Duration),
            "bytes" => return Ok(Self::Bytes),
            _ => {}
        }
        if let Some(digits) = word.strip_prefix("sig") {
            return match digits.parse::<i32>() {
                Ok(n) if (1..=12).contains(&n) => Ok(Self::Significant(n)),
                _ => Err(expected()),
            };
        }
        if let Some(digits) = word.strip_prefix('e') {
            return match digits.parse::<usize>() {
                Ok(n) if n <= 12 => Ok(Self::Scientific(n)),
                _ => Err(expected()),
            };
        }
        let (signed, rest) = match word.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, word),
        };
        let (percent, rest) = match rest.strip_prefix('%') {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let decimals = rest
            .strip_prefix('.')
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|d| *d <= 12)
            .ok_or_else(expected)?;
        Ok(Self::Fixed {
            decimals,
            percent,
            signed,
        })
    }

    /// `value` written in this format.
    pub fn write(self, value: f64) -> String {
        match self {
            Self::Fixed {
                decimals,
                percent,
                signed,
            } => {
                let value = if percent { value * 100.0 } else { value };
                let text = format!("{:.decimals$}", value.abs());
                // A value that rounds to zero carries no sign: "−0.00" would claim a direction.
                let zero = text.chars().all(|c| c == '0' || c == '.');
                let sign = match (value < 0.0 && !zero, signed && !zero) {
                    (true, _) => "−",
                    (false, true) => "+",
                    (false, false) => "",
                };
                format!("{sign}{text}")
            }
            Self::Thousands => {
                let rounded = value.round();
                let sign = if rounded < 0.0 { "−" } else { "" };
                format!("{sign}{}", thousands(rounded.abs() as u64))
            }
            Self::Si => si(value),
            Self::Significant(digits) => significant(value, digits),
            Self::Scientific(decimals) => format!("{value:.decimals$e}"),
            Self::Duration => duration(value),
            Self::Bytes => bytes(value.max(0.0).round() as u64),
        }
    }
}

/// The raw files a page has named so far, parsed once each.
#[derive(Default)]
struct Sources {
    files: BTreeMap<String, (String, Value)>,
}

impl Sources {
    /// Reads `<!-- values: NAME = PATH -->` (already stripped of its comment marks).
    fn declare(&mut self, declaration: &str, root: &Path) -> Result<(), String> {
        let (name, path) = declaration
            .split_once('=')
            .map(|(n, p)| (n.trim(), p.trim()))
            .filter(|(n, p)| !n.is_empty() && !p.is_empty() && !n.contains(char::is_whitespace))
            .ok_or_else(|| format!("expected `{SOURCE_START} NAME = PATH -->`"))?;
        let text = std::fs::read_to_string(root.join(path)).map_err(|e| format!("{path}: {e}"))?;
        let document: Value =
            serde_json::from_str(&text).map_err(|e| format!("{path}: not JSON: {e}"))?;
        self.files
            .insert(name.to_string(), (path.to_string(), document));
        Ok(())
    }

    /// The number a term names: a literal, or `NAME:PATH` in a declared file.
    fn term(&self, term: &str) -> Result<f64, String> {
        if let Ok(number) = term.parse::<f64>() {
            return Ok(number);
        }
        let (name, path) = term
            .split_once(':')
            .ok_or_else(|| format!("{term:?}: expected a number or NAME:PATH"))?;
        let (file, document) = self.files.get(name).ok_or_else(|| {
            format!("{term:?}: no raw file named {name:?} above this line ({SOURCE_START} {name} = PATH -->)")
        })?;
        let value = walk(document, path).map_err(|e| format!("{file}: {path}: {e}"))?;
        value
            .as_f64()
            .ok_or_else(|| format!("{file}: {path}: {value} is not a number"))
    }

    /// An expression: terms joined by `+ - * /`, left to right.
    fn evaluate(&self, words: &[&str]) -> Result<f64, String> {
        let (first, rest) = words
            .split_first()
            .ok_or_else(|| "expected an expression and a format".to_string())?;
        let mut value = self.term(first)?;
        for pair in rest.chunks(2) {
            let [op, term] = pair else {
                return Err(format!("{:?} lacks the term after it", pair[0]));
            };
            let right = self.term(term)?;
            value = match *op {
                "+" => value + right,
                "-" => value - right,
                "*" => value * right,
                "/" => value / right,
                other => return Err(format!("{other:?}: expected + - * or / between terms")),
            };
        }
        if !value.is_finite() {
            return Err(format!("{} evaluates to {value}", words.join(" ")));
        }
        Ok(value)
    }
}

/// The element of `document` at `path` (`a/b/0/name=x/c`).
fn walk<'a>(document: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut here = document;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let segment = segment.replace("%20", " ");
        let segment = segment.as_str();
        here = match here {
            Value::Object(map) => map
                .get(segment)
                .ok_or_else(|| format!("no key {segment:?}"))?,
            Value::Array(items) => {
                if let Ok(index) = segment.parse::<usize>() {
                    items.get(index).ok_or_else(|| {
                        format!("index {index} is past the end ({} elements)", items.len())
                    })?
                } else {
                    let (field, wanted) = segment.split_once('=').ok_or_else(|| {
                        format!("{segment:?}: an array needs an index or field=value")
                    })?;
                    let matches: Vec<&Value> = items
                        .iter()
                        .filter(|item| item.get(field).is_some_and(|v| same(v, wanted)))
                        .collect();
                    match matches.as_slice() {
                        [one] => one,
                        [] => return Err(format!("no element with {field} = {wanted}")),
                        _ => {
                            return Err(format!(
                                "{} elements with {field} = {wanted}",
                                matches.len()
                            ));
                        }
                    }
                }
            }
            _ => return Err(format!("{segment:?}: {here} has no fields")),
        };
    }
    Ok(here)
}

/// Whether a JSON scalar reads as `wanted` (strings as themselves, numbers as written).
fn same(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(s) => s == wanted,
        Value::Number(n) => wanted.parse::<f64>().ok() == n.as_f64(),
        Value::Bool(b) => wanted.parse::<bool>().ok() == Some(*b),
        _ => false,
    }
}

/// `page` with the text of every generated value replaced by what its raw file gives; the
/// error names the page and line. A page without values comes back unchanged.
pub fn regenerate_values(page: &str, page_name: &str, root: &Path) -> Result<String, String> {
    let mut sources = Sources::default();
    let mut out = String::with_capacity(page.len());
    for (index, line) in page.split_inclusive('\n').enumerate() {
        let at = |message: String| format!("{page_name}, line {}: {message}", index + 1);
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix(SOURCE_START) {
            let declaration = rest
                .strip_suffix("-->")
                .ok_or_else(|| at(format!("expected `{SOURCE_START} NAME = PATH -->`")))?;
            sources.declare(declaration, root).map_err(at)?;
            out.push_str(line);
            continue;
        }
        out.push_str(&rewrite_line(line, &sources).map_err(at)?);
    }
    Ok(out)
}

/// One line with its values rewritten.
fn rewrite_line(line: &str, sources: &Sources) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find(VALUE_START) {
        let after_start = &rest[start + VALUE_START.len()..];
        let spec_end = after_start
            .find("-->")
            .ok_or_else(|| format!("`{VALUE_START}` without its closing `-->` on this line"))?;
        let spec = &after_start[..spec_end];
        let body = &after_start[spec_end + 3..];
        let body_end = body.find(VALUE_END).ok_or_else(|| {
            format!("`{VALUE_START}{spec}-->` without `{VALUE_END}` on this line")
        })?;
        let words: Vec<&str> = spec.split_whitespace().collect();
        let (format, expression) = words
            .split_last()
            .ok_or_else(|| "an empty value: expected EXPRESSION FORMAT".to_string())?;
        let format = Format::parse(format)?;
        let value = sources.evaluate(expression)?;
        out.push_str(&rest[..start + VALUE_START.len() + spec_end + 3]);
        out.push_str(&format.write(value));
        out.push_str(VALUE_END);
        rest = &body[body_end + VALUE_END.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_write_what_they_say() {
        let f = |word: &str, v: f64| Format::parse(word).unwrap().write(v);
        assert_eq!(f(".2", 1.23456), "1.23");
        assert_eq!(f("%.1", 0.95494), "95.5");
        assert_eq!(f("+%.2", 0.1131), "+11.31");
        assert_eq!(f("+.2", -0.3), "−0.30");
        assert_eq!(f(".2", -0.3), "−0.30");
        assert_eq!(f("+.1", -0.04), "0.0");
        assert_eq!(f(",", 19090.0), "19,090");
        assert_eq!(f("si", 22_566_528.0), "22.6M");
        assert_eq!(f("sig3", 10.84), "10.8");
        assert_eq!(f("time", 8.47e-6), "8.47 µs");
        assert_eq!(f("e1", 1.0132e-6), "1.0e-6");
        assert!(Format::parse("%1").is_err());
        assert!(Format::parse("sig0").is_err());
    }

    #[test]
    fn paths_select_by_key_index_and_field() {
        let doc: Value = serde_json::json!({
            "models": [{"name": "a", "acc": {"mean": 0.5}}, {"name": "b c", "acc": {"mean": 0.75}}],
            "seeds": [0, 1, 2]
        });
        assert_eq!(walk(&doc, "models/name=b%20c/acc/mean").unwrap(), 0.75);
        assert_eq!(walk(&doc, "models/0/acc/mean").unwrap(), 0.5);
        assert_eq!(walk(&doc, "seeds/2").unwrap(), 2);
        assert!(
            walk(&doc, "models/name=c")
                .unwrap_err()
                .contains("no element")
        );
        assert!(walk(&doc, "models/5").unwrap_err().contains("past the end"));
        assert!(walk(&doc, "models/x").unwrap_err().contains("field=value"));
        assert!(walk(&doc, "nope").unwrap_err().contains("no key"));
    }
}

//! Readers for numbers that JSON cannot hold: serde_json writes NaN and ±∞ as `null`, and
//! these read such `null`s back as NaN. Every serialised record of apprentice uses them.

use serde::{Deserialize, Deserializer};

/// An `f64` that may be `null` (read as NaN).
pub fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// A list of `f64` whose entries may be `null` (read as NaN).
pub fn numbers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
    let values = Vec::<Option<f64>>::deserialize(deserializer)?;
    Ok(values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Rows of `f64` whose entries may be `null` (read as NaN).
pub fn number_rows<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<f64>>, D::Error> {
    let rows = Vec::<Vec<Option<f64>>>::deserialize(deserializer)?;
    Ok(rows
        .into_iter()
        .map(|row| row.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        .collect())
}

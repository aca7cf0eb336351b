//! `results.json` as a run writes it: the [`Results`] envelope every classification task shares,
//! plus the optional sections a task adds (speed, language-model measurements, temperature
//! choices, ...).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::report::results::Results;

/// Seconds since the Unix epoch now (0 on a clock set before it).
pub fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A `results.json` document: the results, and optional top-level sections by key.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsFile {
    /// The envelope every reader understands.
    pub results: Results,
    /// Extra top-level keys (documented in [`crate::report::results`] and
    /// [`crate::report::extensions`]); readers of the envelope ignore them.
    pub sections: BTreeMap<String, serde_json::Value>,
    /// Extra keys of single curves, by (model index, curve index) in `results.models` (the
    /// supervision complexity measured during training).
    pub curve_sections: BTreeMap<(usize, usize), serde_json::Map<String, serde_json::Value>>,
}

impl ResultsFile {
    /// The results without sections.
    pub fn new(results: Results) -> Self {
        Self {
            results,
            sections: BTreeMap::new(),
            curve_sections: BTreeMap::new(),
        }
    }

    /// Adds `value` under `key`, replacing what was there.
    pub fn insert(&mut self, key: &str, value: &impl serde::Serialize) -> Result<()> {
        let value = serde_json::to_value(value)
            .map_err(|e| Error::Invalid(format!("results.json: section {key}: {e}")))?;
        self.sections.insert(key.to_string(), value);
        Ok(())
    }

    /// The document as indented JSON ending in a newline.
    ///
    /// Without sections the envelope is written field by field in its declared order; with
    /// them, as one JSON object whose keys are sorted.
    pub fn to_json_pretty(&self) -> String {
        if self.sections.is_empty() && self.curve_sections.is_empty() {
            return self.results.to_json_pretty();
        }
        // Serialising cannot fail: every key is a string (see `Results::to_json_pretty`).
        let mut value = serde_json::to_value(&self.results).expect("results serialise to JSON");
        for (&(model, curve), keys) in &self.curve_sections {
            let object = value
                .get_mut("models")
                .and_then(|models| models.get_mut(model))
                .and_then(|model| model.get_mut("curves"))
                .and_then(|curves| curves.get_mut(curve))
                .and_then(serde_json::Value::as_object_mut);
            if let Some(object) = object {
                object.extend(keys.clone());
            }
        }
        if let Some(object) = value.as_object_mut() {
            for (key, section) in &self.sections {
                object.insert(key.clone(), section.clone());
            }
        }
        let mut text = serde_json::to_string_pretty(&value).expect("results serialise to JSON");
        text.push('\n');
        text
    }

    /// Writes the document to `path` atomically: a reader sees the old file or the new one.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_json_pretty().as_bytes()).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

//! Optional sections of `results.json` that are added after the experiment itself.
//!
//! The experiment writes a [`Results`](super::Results) document; measurements made afterwards
//! from its checkpoints (efficiency, and the teacher–student confusion) are stored beside it
//! as optional top-level keys of the same file, and per-epoch measures that a training run may
//! record in the future (supervision complexity) are optional keys of its curves. All of them
//! are optional in schema version 1: files without them read as before, and readers that do
//! not know them ignore them.
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   ...                                  (the Results fields)
//!   "efficiency": {                      optional, see EfficiencySection
//!     "seed": 0, "bench": "quick",
//!     "models": [ { "name": "teacher", "params": 85002, "file_bytes": 341512,
//!                   "flops": { "total": 169994, "multiply_adds": 84480,
//!                              "by_layer_type": { "activation": 512, "dense": 169482 } },
//!                   "latency": { "batch_size": 1, "p50_ms": 0.05, "p95_ms": 0.07, "runs": 2000 },
//!                   "throughput": { "batch_size": 256, "examples_per_s": 610000.0, ... },
//!                   "memory": {...}, "cpu": {...}, "energy_unavailable": "...",
//!                   "environment": {...} },
//!                 { "name": "kd-all@5%", ..., "ratio_to_teacher": { "params": 0.028, ... } } ]
//!   },
//!   "teacher_agreement": {               optional, see TeacherAgreementSection
//!     "seed": 0, "split": "test", "samples": 450,
//!     "models": [ { "name": "kd-all@5%", "agreement": 0.97, "matrix": [[44, 0, ...], ...] } ]
//!   },
//!   "models": [ { ..., "curves": [ { ..., "supervision_complexity": [3.1, 2.9, null, ...] } ] } ]
//! }
//! ```
//!
//! Each section is read on its own ([`Extensions::from_value`]): a section that does not
//! follow this layout (a file from a newer apprentice, a hand edit) is left out with a
//! warning instead of making the whole file unreadable.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::lm_table::LmSection;
use crate::eval::efficiency::{CostRatios, Efficiency};
use crate::fsutil::write_atomic;

/// Efficiency of the models of a run, measured from one seed's checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficiencySection {
    /// The seed whose checkpoints were measured (the run's first).
    pub seed: u64,
    /// Which benchmark settings were used: `quick` (at the end of a run) or `standard`.
    pub bench: String,
    /// One entry per measured model, in the order of the results' models.
    pub models: Vec<ModelEfficiency>,
}

/// One model's measured efficiency and, for students, its costs relative to the teacher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEfficiency {
    /// The measurement; its `name` is the model's name in the results.
    #[serde(flatten)]
    pub measured: Efficiency,
    /// This model's costs divided by the teacher's (absent for the teacher itself and in runs
    /// without a measured teacher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_teacher: Option<CostRatios>,
}

/// How often each model predicts each class when the teacher predicts each class, on one
/// seed's test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherAgreementSection {
    /// The seed whose checkpoints and test split were used (the run's first).
    pub seed: u64,
    /// The split the predictions were made on: `test`.
    pub split: String,
    /// Number of samples in that split.
    pub samples: usize,
    /// One entry per student (scratch and distilled models), in the order of the results.
    pub models: Vec<AgreementMatrix>,
}

/// One student's predictions against the teacher's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementMatrix {
    /// The model's name in the results.
    pub name: String,
    /// Fraction of samples on which it predicts the teacher's class (the trace of `matrix`
    /// over `samples`).
    #[serde(deserialize_with = "number")]
    pub agreement: f64,
    /// `matrix[t][s]`: samples the teacher puts in class `t` and this model in class `s`;
    /// square, one row and column per class.
    pub matrix: Vec<Vec<u64>>,
}

/// A per-epoch supervision-complexity curve of one model and seed, as read from
/// `models[].curves[].supervision_complexity`.
///
/// The key is reserved for training runs that record it: a list with one entry per epoch,
/// like the curve's other lists, holding the adjusted supervision complexity
/// ([`crate::complexity`]) of the targets the model is trained on, measured with the model's
/// kernel at the end of that epoch (lower means easier to fit; the adjusted form is the one
/// comparable across epochs), and `null` for epochs where it was not measured. No run
/// records it yet; the report shows it when one does.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplexityCurve {
    /// The model's name.
    pub model: String,
    /// The seed of the curve.
    pub seed: u64,
    /// One value per epoch, NaN where not measured.
    pub values: Vec<f64>,
}

/// The optional sections found in a `results.json`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extensions {
    /// The `efficiency` section, when present and readable.
    pub efficiency: Option<EfficiencySection>,
    /// The `teacher_agreement` section, when present and readable.
    pub teacher_agreement: Option<TeacherAgreementSection>,
    /// Every curve that holds a `supervision_complexity` list with at least one number.
    pub supervision_complexity: Vec<ComplexityCurve>,
    /// The language-model section of a language-model run, when present and readable.
    pub lm: Option<LmSection>,
}

/// An `f64` that may be `null` (read as NaN), since JSON has no NaN.
fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// Key of the efficiency section.
pub const EFFICIENCY_KEY: &str = "efficiency";
/// Key of the teacher-agreement section.
pub const TEACHER_AGREEMENT_KEY: &str = "teacher_agreement";
/// Key of the per-epoch supervision complexity in a curve.
pub const COMPLEXITY_KEY: &str = "supervision_complexity";

impl Extensions {
    /// Reads the optional sections of a parsed `results.json`. Sections that are absent are
    /// `None`; sections that are present but unreadable are `None` too, with one warning line
    /// each (naming `source_name`) in the second value.
    pub fn from_value(document: &Value, source_name: &str) -> (Extensions, Vec<String>) {
        let mut warnings = Vec::new();
        let section = |key: &str| -> Option<Value> {
            match document.get(key) {
                None | Some(Value::Null) => None,
                Some(value) => Some(value.clone()),
            }
        };
        let efficiency = section(EFFICIENCY_KEY).and_then(|value| {
            serde_json::from_value::<EfficiencySection>(value)
                .map_err(|error| {
                    warnings.push(format!(
                        "{source_name}: the {EFFICIENCY_KEY} section is not in a form this \
                         apprentice reads ({error}); it is left out"
                    ))
                })
                .ok()
        });
        let teacher_agreement = section(TEACHER_AGREEMENT_KEY).and_then(|value| {
            serde_json::from_value::<TeacherAgreementSection>(value)
                .map_err(|error| {
                    warnings.push(format!(
                        "{source_name}: the {TEACHER_AGREEMENT_KEY} section is not in a form \
                         this apprentice reads ({error}); it is left out"
                    ))
                })
                .ok()
        });
        let supervision_complexity = complexity_curves(document, source_name, &mut warnings);
        let lm = LmSection::from_document(document).and_then(|section| {
            section
                .map_err(|error| {
                    warnings.push(format!(
                        "{source_name}: the language-model section is not in a form this \
                         apprentice reads ({error}); it is left out"
                    ))
                })
                .ok()
        });
        (
            Extensions {
                efficiency,
                teacher_agreement,
                supervision_complexity,
                lm,
            },
            warnings,
        )
    }
}

/// The supervision-complexity lists of every curve that has one with at least one number.
fn complexity_curves(
    document: &Value,
    source_name: &str,
    warnings: &mut Vec<String>,
) -> Vec<ComplexityCurve> {
    let mut curves = Vec::new();
    let Some(models) = document.get("models").and_then(Value::as_array) else {
        return curves;
    };
    for model in models {
        let name = model.get("name").and_then(Value::as_str).unwrap_or("?");
        let Some(model_curves) = model.get("curves").and_then(Value::as_array) else {
            continue;
        };
        for curve in model_curves {
            let Some(list) = curve.get(COMPLEXITY_KEY) else {
                continue;
            };
            if list.is_null() {
                continue;
            }
            let Some(items) = list.as_array() else {
                warnings.push(format!(
                    "{source_name}: {name}: {COMPLEXITY_KEY} is not a list; left out"
                ));
                continue;
            };
            let values: Vec<f64> = items
                .iter()
                .map(|item| item.as_f64().unwrap_or(f64::NAN))
                .collect();
            if values.iter().any(|v| v.is_finite()) {
                curves.push(ComplexityCurve {
                    model: name.to_string(),
                    seed: curve.get("seed").and_then(Value::as_u64).unwrap_or(0),
                    values,
                });
            }
        }
    }
    curves
}

/// Adds (or replaces) the measured sections in the `results.json` at `path`, keeping every
/// other key of the file as it is, and rewrites it atomically. `None` leaves a section as
/// the file has it.
///
/// # Errors
///
/// One line naming the file when it cannot be read, is not a JSON object, or cannot be
/// written.
pub fn store_sections(
    path: &Path,
    efficiency: Option<&EfficiencySection>,
    teacher_agreement: Option<&TeacherAgreementSection>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut document: Value = serde_json::from_str(&text)
        .map_err(|e| format!("cannot read results from {}: {e}", path.display()))?;
    let Some(object) = document.as_object_mut() else {
        return Err(format!(
            "cannot read results from {}: not a JSON object",
            path.display()
        ));
    };
    if let Some(section) = efficiency {
        object.insert(EFFICIENCY_KEY.to_string(), to_json(section));
    }
    if let Some(section) = teacher_agreement {
        object.insert(TEACHER_AGREEMENT_KEY.to_string(), to_json(section));
    }
    let mut text = serde_json::to_string_pretty(&document)
        .map_err(|e| format!("{}: cannot write results: {e}", path.display()))?;
    text.push('\n');
    write_atomic(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// A section as JSON. serde_json writes non-finite floats as `null` and the sections' maps
/// have string keys, so this cannot fail; `null` is a harmless fallback all the same.
fn to_json<T: Serialize>(section: &T) -> Value {
    serde_json::to_value(section).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_sections_read_as_none() {
        let document = serde_json::json!({"schema_version": 1, "models": []});
        let (extensions, warnings) = Extensions::from_value(&document, "r.json");
        assert_eq!(extensions, Extensions::default());
        assert!(warnings.is_empty());
    }

    #[test]
    fn malformed_sections_are_left_out_with_a_warning() {
        let document = serde_json::json!({
            "efficiency": {"seed": "zero"},
            "teacher_agreement": [1, 2],
            "models": [{"name": "kd", "curves": [{"seed": 0, "supervision_complexity": 3}]}]
        });
        let (extensions, warnings) = Extensions::from_value(&document, "r.json");
        assert_eq!(extensions, Extensions::default());
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings.iter().all(|w| w.starts_with("r.json: ")));
        assert!(warnings.iter().all(|w| !w.contains('\n')));
    }

    #[test]
    fn complexity_curves_are_found_with_nulls_as_nan() {
        let document = serde_json::json!({
            "models": [
                {"name": "kd", "curves": [
                    {"seed": 3, "supervision_complexity": [2.0, null, 1.5]},
                    {"seed": 4, "supervision_complexity": [null]},
                    {"seed": 5}
                ]},
                {"name": "scratch", "curves": []}
            ]
        });
        let (extensions, warnings) = Extensions::from_value(&document, "r.json");
        assert!(warnings.is_empty());
        let curves = &extensions.supervision_complexity;
        assert_eq!(curves.len(), 1);
        assert_eq!((curves[0].model.as_str(), curves[0].seed), ("kd", 3));
        assert!(curves[0].values[1].is_nan());
    }

    #[test]
    fn storing_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        std::fs::write(
            &path,
            r#"{"schema_version": 1, "unknown_later_key": [1, 2]}"#,
        )
        .unwrap();
        let agreement = TeacherAgreementSection {
            seed: 0,
            split: "test".into(),
            samples: 2,
            models: vec![AgreementMatrix {
                name: "kd".into(),
                agreement: 0.5,
                matrix: vec![vec![1, 0], vec![1, 0]],
            }],
        };
        store_sections(&path, None, Some(&agreement)).unwrap();
        let document: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(document["unknown_later_key"], serde_json::json!([1, 2]));
        let (extensions, warnings) = Extensions::from_value(&document, "r.json");
        assert!(warnings.is_empty());
        assert_eq!(extensions.teacher_agreement, Some(agreement));
        assert!(extensions.efficiency.is_none());

        std::fs::write(&path, "[1]").unwrap();
        let error = store_sections(&path, None, None).unwrap_err();
        assert!(error.contains("results.json") && error.contains("not a JSON object"));
    }
}

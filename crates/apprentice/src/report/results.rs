//! The `results.json` file: everything an experiment measured, in one versioned document.
//!
//! # Schema (version 1)
//!
//! The file is a single JSON object, a [`Results`]. Every field is documented on the Rust
//! type that holds it; in outline:
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "experiment": "digits-kd",
//!   "created_unix_s": 1767225600,
//!   "apprentice_version": "0.1.0",
//!   "seeds": [0, 1, 2],
//!   "data": { "name": "digits", "num_classes": 10, "train": 1078, "validation": 359,
//!             "test": 360, "sample_shape": [1, 8, 8] },
//!   "models": [
//!     { "role": "teacher", "name": "teacher", "method": "ce", "label_fraction": 1.0,
//!       "transfer": null, "architecture": "mlp 64-256-256-10", "params": 85002,
//!       "test": { "accuracy": {"mean": 0.97, "std": 0.004, "per_seed": [0.968, 0.972, 0.975]},
//!                 "nll": {...}, "ece": {...} },
//!       "validation_accuracy": {...}, "train_time_s": {...}, "epochs_run": {...},
//!       "curves": [ { "seed": 0, "train_loss": [...], "validation_accuracy": [...],
//!                     "learning_rate": [...] }, ... ] },
//!     ...
//!   ],
//!   "config": { ... the experiment configuration as run ... }
//! }
//! ```
//!
//! Conventions:
//!
//! * Accuracies, agreements and calibration errors are fractions in `[0, 1]`, never
//!   percentages; NLL and KL are in nats.
//! * A metric measured once per seed is a [`Summary`]; its `per_seed` values follow the order
//!   of [`Results::seeds`].
//! * Non-finite numbers (a diverged run's loss) are written as `null`, since JSON has no NaN,
//!   and read back as NaN.
//!
//! # Optional sections
//!
//! After the experiment, `apprentice run` (and `apprentice report --measure`) add measurements
//! made from the run's checkpoints as optional top-level keys: `efficiency` (parameters, file
//! size, FLOPs, latency, throughput, memory, CPU time and energy of each model, with each
//! student's ratios to the teacher) and `teacher_agreement` (each student's predicted classes
//! against the teacher's). Curves may hold an optional `supervision_complexity` list. They
//! are documented in [`super::extensions`]; a file without them is a complete version-1 file,
//! and the types in this module ignore them.
//!
//! The run itself may add `surpassed_teacher` (students whose test accuracy beat the
//! teacher's), `temperature_choice` (what `temperature = "auto"` chose for each seed) and
//! `teacher_cache` (for each seed, whether the teacher's training logits came from a teacher
//! cache: `seed`, `folder`, `used`, `exact`, `shards`, and `fallback` when it was not used;
//! see [`crate::experiment::TeacherCacheUse`]).
//!
//! # Versioning
//!
//! [`SCHEMA_VERSION`] goes up whenever a field is removed or renamed or changes meaning or
//! units. Readers refuse any version but their own ([`ResultsError::UnsupportedVersion`])
//! instead of misreading it. Fields added later are optional, and readers ignore fields they
//! do not know, so adding one does not need a new version.

use serde::{Deserialize, Serialize};

/// Version of the `results.json` schema this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

pub use crate::distill::record::{Curve, Role};
pub(crate) use crate::nullable;

/// A quantity measured once per seed: its mean, spread and the raw values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Arithmetic mean of `per_seed` (0 when there are no values).
    #[serde(deserialize_with = "nullable::number")]
    pub mean: f64,
    /// Sample standard deviation of `per_seed`, with the `n - 1` denominator; 0 when there
    /// are fewer than two values.
    #[serde(deserialize_with = "nullable::number")]
    pub std: f64,
    /// One value per seed, in the order of [`Results::seeds`].
    #[serde(deserialize_with = "nullable::numbers")]
    pub per_seed: Vec<f64>,
}

impl Summary {
    /// Mean, sample standard deviation and copy of `values`.
    ///
    /// The standard deviation uses `n - 1` because the seeds are a sample of the runs one
    /// could have made. Fewer than two values give a deviation of 0, and no values a mean
    /// of 0, so that nothing NaN reaches the results file from an empty run.
    pub fn from_values(values: &[f64]) -> Summary {
        let n = values.len();
        let mean = if n == 0 {
            0.0
        } else {
            values.iter().sum::<f64>() / n as f64
        };
        // Two passes (mean first) avoid the cancellation of the sum-of-squares formula.
        let std = if n < 2 {
            0.0
        } else {
            let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            (squares / (n - 1) as f64).sqrt()
        };
        Summary {
            mean,
            std,
            per_seed: values.to_vec(),
        }
    }

    /// `mean ± std` of a fraction in percent with `digits` decimals (a table cell), `—` when
    /// the mean is not finite.
    pub fn percent_cell(&self, digits: usize) -> String {
        if self.mean.is_finite() {
            self.format(digits, 100.0)
        } else {
            "—".to_string()
        }
    }

    /// `mean ± std`, both multiplied by `scale` and shown with `digits` decimals.
    ///
    /// Use a scale of 100 for fractions shown as percentages: an accuracy of
    /// `0.9631 ± 0.0042` with `format(2, 100.0)` reads `"96.31 ± 0.42"`. A summary of a single
    /// seed shows only the mean, since its deviation of 0 says nothing about the spread.
    pub fn format(&self, digits: usize, scale: f64) -> String {
        let mean = self.mean * scale;
        if self.per_seed.len() == 1 {
            format!("{mean:.digits$}")
        } else {
            let std = self.std * scale;
            format!("{mean:.digits$} ± {std:.digits$}")
        }
    }
}

/// Test-set metrics of one model, each summarised over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSummary {
    /// Fraction of test samples classified correctly (argmax, ties to the lowest class).
    pub accuracy: Summary,
    /// Mean negative log-likelihood of the test labels, in nats.
    pub nll: Summary,
    /// Expected calibration error with 15 equal-width confidence bins, as a fraction.
    pub ece: Summary,
    /// Fraction of test samples on which the model predicts the teacher's class. Absent for
    /// the teacher itself and in runs without a teacher.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agreement: Option<Summary>,
    /// Mean KL(teacher ‖ model) over test samples at temperature 1, in nats. Absent when
    /// `agreement` is.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kl_from_teacher: Option<Summary>,
}

/// Everything measured about one trained model, over all seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    /// Teacher, scratch baseline or distilled student.
    pub role: Role,
    /// Name unique within the run, e.g. `"teacher"`, `"scratch@5%"`, `"kd-all@5%"`.
    pub name: String,
    /// Training method: `"ce"` (cross-entropy on labels) for teacher and scratch, `"kd"` for
    /// Hinton distillation; later methods add their own names.
    pub method: String,
    /// Fraction of the training labels this model saw, in `(0, 1]`; the labelled count is
    /// `round(label_fraction * data.train)`.
    pub label_fraction: f64,
    /// For distilled models, the inputs on which the teacher's outputs were transferred:
    /// `"labelled"` (only the labelled subset) or `"all"` (every training input, labelled or
    /// not). `null` for teacher and scratch models.
    pub transfer: Option<String>,
    /// Human-readable architecture, e.g. `"mlp 64-32-10"`.
    pub architecture: String,
    /// Number of trainable parameters.
    pub params: usize,
    /// Metrics on the test split.
    pub test: TestSummary,
    /// Accuracy on the validation split of the model as kept (the best epoch when early
    /// stopping restores it), as a fraction.
    pub validation_accuracy: Summary,
    /// Wall-clock seconds spent training, per seed.
    pub train_time_s: Summary,
    /// Epochs actually trained, per seed: fewer than configured when early stopping fired.
    pub epochs_run: Summary,
    /// Per-epoch training history, one curve per seed in the order of [`Results::seeds`].
    pub curves: Vec<Curve>,
}

/// The data set an experiment ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Name of the data set, e.g. `"digits"`.
    pub name: String,
    /// Number of classes.
    pub num_classes: usize,
    /// Number of training samples (labelled or not); label fractions are relative to it.
    pub train: usize,
    /// Number of validation samples, used for early stopping and model selection.
    pub validation: usize,
    /// Number of test samples every reported test metric is computed on.
    pub test: usize,
    /// Shape of one sample as `[channels, height, width]`; flat feature vectors are
    /// `[1, 1, features]`.
    pub sample_shape: [usize; 3],
}

/// The whole `results.json` document of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Version of this schema the file follows; see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Name of the experiment, from its configuration.
    pub experiment: String,
    /// When the file was written, in whole seconds since the Unix epoch (UTC).
    pub created_unix_s: u64,
    /// Version of apprentice that ran the experiment.
    pub apprentice_version: String,
    /// Random seeds the experiment was repeated with; every per-seed list follows this order.
    pub seeds: Vec<u64>,
    /// The data set and its split sizes.
    pub data: DataSummary,
    /// Every trained model, in the order they were trained.
    pub models: Vec<ModelResult>,
    /// The experiment configuration as run, with defaults filled in, so that the file alone
    /// is enough to repeat the experiment.
    pub config: serde_json::Value,
}

/// Why a `results.json` text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultsError {
    /// The file declares a schema version this build does not read.
    #[error("{}", unsupported_message(*found, *supported))]
    UnsupportedVersion {
        /// The `schema_version` the file declares.
        found: u64,
        /// The version this build reads, [`SCHEMA_VERSION`].
        supported: u32,
    },
    /// The text is not JSON, or does not follow the schema.
    #[error("cannot read results from {source_name}: {message}")]
    Parse {
        /// Where the text came from (usually a path), for the message.
        source_name: String,
        /// What is wrong, on one line, with serde_json's line and column where it has them.
        message: String,
    },
}

/// The explanation of an [`ResultsError::UnsupportedVersion`], telling a newer file (upgrade
/// apprentice) from a nonsensical one.
fn unsupported_message(found: u64, supported: u32) -> String {
    if found > u64::from(supported) {
        format!(
            "results schema version {found} is newer than this apprentice reads \
             (version {supported}); use a newer apprentice to read it"
        )
    } else {
        format!(
            "results schema version {found} is unknown; this apprentice reads version {supported}"
        )
    }
}

/// A student whose mean test accuracy is above its teacher's: distillation (or the scratch
/// baseline) got past the model it learned from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurpassedTeacher {
    /// The student's name.
    pub name: String,
    /// Its mean test accuracy.
    pub accuracy: f64,
    /// The teacher's mean test accuracy.
    pub teacher_accuracy: f64,
    /// Seeds on which it beat the teacher of that seed.
    pub seeds_above: usize,
    /// Seeds compared.
    pub seeds: usize,
}

/// Key of the list of students that surpassed their teacher in `results.json`.
pub const SURPASSED_TEACHER_KEY: &str = "surpassed_teacher";

impl Results {
    /// Every student (scratch or distilled) whose mean test accuracy is above the teacher's,
    /// in the order of the models.
    pub fn surpassed_teacher(&self) -> Vec<SurpassedTeacher> {
        let Some(teacher) = self.models.iter().find(|m| m.role == Role::Teacher) else {
            return Vec::new();
        };
        self.models
            .iter()
            .filter(|m| m.role != Role::Teacher)
            .filter(|m| m.test.accuracy.mean > teacher.test.accuracy.mean)
            .map(|m| {
                let pairs = m
                    .test
                    .accuracy
                    .per_seed
                    .iter()
                    .zip(&teacher.test.accuracy.per_seed);
                SurpassedTeacher {
                    name: m.name.clone(),
                    accuracy: m.test.accuracy.mean,
                    teacher_accuracy: teacher.test.accuracy.mean,
                    seeds_above: pairs.clone().filter(|(s, t)| s > t).count(),
                    seeds: pairs.count(),
                }
            })
            .collect()
    }

    /// The document as indented JSON, ending in a newline, ready to write to `results.json`.
    pub fn to_json_pretty(&self) -> String {
        // Serialising cannot fail: every map key is a string and no field has a fallible
        // Serialize (serde_json writes non-finite floats as null rather than failing).
        let mut text = serde_json::to_string_pretty(self).expect("results serialise to JSON");
        text.push('\n');
        text
    }

    /// Reads a `results.json` text; `source_name` (usually its path) labels errors.
    ///
    /// The version is checked before anything else, so that a file from a newer apprentice
    /// is reported as such rather than as whatever field it happens to have changed.
    ///
    /// # Errors
    ///
    /// [`ResultsError::UnsupportedVersion`] when `schema_version` is an integer other than
    /// [`SCHEMA_VERSION`]; [`ResultsError::Parse`] when the text is not JSON, lacks a valid
    /// `schema_version`, or does not match the schema.
    pub fn from_json(text: &str, source_name: &str) -> Result<Results, ResultsError> {
        let parse_error = |message: String| ResultsError::Parse {
            source_name: source_name.to_string(),
            // serde_json's messages are one line already; this keeps the promise if not.
            message: message.replace(['\n', '\r'], " "),
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        let Some(object) = value.as_object() else {
            return Err(parse_error(
                "expected a JSON object at the top level".to_string(),
            ));
        };
        match object.get("schema_version") {
            None => return Err(parse_error("missing field `schema_version`".to_string())),
            Some(version) => match version.as_u64() {
                Some(found) if found == u64::from(SCHEMA_VERSION) => {}
                Some(found) => {
                    return Err(ResultsError::UnsupportedVersion {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                None => {
                    return Err(parse_error(format!(
                        "`schema_version` must be a non-negative integer, found {version}"
                    )));
                }
            },
        }
        // Parsing the text again (rather than the value) keeps line and column in errors.
        serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(values: &[f64]) -> Summary {
        Summary::from_values(values)
    }

    fn model(role: Role, name: &str, fraction: f64, seeds: usize) -> ModelResult {
        let accuracy: Vec<f64> = (0..seeds).map(|i| 0.9 + 0.01 * i as f64).collect();
        let has_teacher = role != Role::Teacher;
        ModelResult {
            role,
            name: name.to_string(),
            method: if role == Role::Distilled { "kd" } else { "ce" }.to_string(),
            label_fraction: fraction,
            transfer: (role == Role::Distilled).then(|| "all".to_string()),
            architecture: "mlp 64-32-10".to_string(),
            params: 2_410,
            test: TestSummary {
                accuracy: summary(&accuracy),
                nll: summary(&vec![0.3; seeds]),
                ece: summary(&vec![0.02; seeds]),
                agreement: has_teacher.then(|| summary(&vec![0.95; seeds])),
                kl_from_teacher: has_teacher.then(|| summary(&vec![0.1; seeds])),
            },
            validation_accuracy: summary(&accuracy),
            train_time_s: summary(&vec![1.5; seeds]),
            epochs_run: summary(&vec![20.0; seeds]),
            curves: (0..seeds as u64)
                .map(|seed| Curve {
                    seed,
                    train_loss: vec![1.0, 0.5],
                    validation_accuracy: vec![0.8, 0.9],
                    learning_rate: vec![0.01, 0.005],
                })
                .collect(),
        }
    }

    fn results() -> Results {
        Results {
            schema_version: SCHEMA_VERSION,
            experiment: "digits-kd".to_string(),
            created_unix_s: 1_767_225_600,
            apprentice_version: "0.1.0".to_string(),
            seeds: vec![0, 1, 2],
            data: DataSummary {
                name: "digits".to_string(),
                num_classes: 10,
                train: 1078,
                validation: 359,
                test: 360,
                sample_shape: [1, 8, 8],
            },
            models: vec![
                model(Role::Teacher, "teacher", 1.0, 3),
                model(Role::Scratch, "scratch@5%", 0.05, 3),
                model(Role::Distilled, "kd-all@5%", 0.05, 3),
            ],
            config: serde_json::json!({"experiment": "digits-kd", "seeds": 3}),
        }
    }

    /// `actual` equals `expected` but for floats within a few ulps.
    #[test]
    fn students_above_the_teacher_are_flagged_with_their_seeds() {
        let mut results = results();
        assert!(results.surpassed_teacher().is_empty());
        // 0.90, 0.91, 0.92 for the teacher; the student beats it on two seeds and on average.
        results.models[2].test.accuracy = summary(&[0.95, 0.89, 0.93]);
        let surpassed = results.surpassed_teacher();
        assert_eq!(surpassed.len(), 1);
        assert_eq!(surpassed[0].name, "kd-all@5%");
        assert_eq!((surpassed[0].seeds_above, surpassed[0].seeds), (2, 3));
        assert!((surpassed[0].teacher_accuracy - 0.91).abs() < 1e-12);
        let table = crate::report::table::comparison_table(&results);
        assert!(
            table.contains("surpassed the teacher: kd-all@5% (92.33% vs 91.00%, on 2 of 3 seeds)"),
            "{table}"
        );
    }

    #[test]
    fn each_student_is_compared_with_the_scratch_student_of_its_architecture() {
        let mut results = results();
        let mut cnn_scratch = model(Role::Scratch, "cnn@5%", 0.05, 3);
        cnn_scratch.architecture = "cnn".into();
        cnn_scratch.test.accuracy = summary(&[0.80, 0.80, 0.80]);
        let mut cnn_kd = model(Role::Distilled, "cnn-kd@5%", 0.05, 3);
        cnn_kd.architecture = "cnn".into();
        cnn_kd.test.accuracy = summary(&[0.85, 0.85, 0.85]);
        results.models.extend([cnn_scratch, cnn_kd]);
        let table = crate::report::table::comparison_table(&results);
        assert!(
            table.contains("cnn-kd@5%: +5.00 points vs scratch"),
            "{table}"
        );
        assert!(
            table.contains("kd-all@5%: +0.00 points vs scratch"),
            "{table}"
        );
    }

    fn assert_json_close(actual: &serde_json::Value, expected: &serde_json::Value, at: &str) {
        use serde_json::Value;
        match (actual, expected) {
            (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => {
                let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                assert!(
                    (a - b).abs() <= 4.0 * f64::EPSILON * b.abs(),
                    "{at}: {a} vs {b}"
                );
            }
            (Value::Array(a), Value::Array(b)) => {
                assert_eq!(a.len(), b.len(), "{at}");
                for (index, (a, b)) in a.iter().zip(b).enumerate() {
                    assert_json_close(a, b, &format!("{at}[{index}]"));
                }
            }
            (Value::Object(a), Value::Object(b)) => {
                assert_eq!(
                    a.keys().collect::<Vec<_>>(),
                    b.keys().collect::<Vec<_>>(),
                    "{at}"
                );
                for (key, b) in b {
                    assert_json_close(&a[key], b, &format!("{at}.{key}"));
                }
            }
            _ => assert_eq!(actual, expected, "{at}"),
        }
    }

    #[test]
    fn round_trip_exact_for_short_decimals() {
        // Values with short decimal forms read back bit for bit even without
        // `float_roundtrip`, so the whole document compares equal.
        let mut original = results();
        for model in &mut original.models {
            let values = [0.5, 0.75, 1.0];
            model.test.accuracy = Summary::from_values(&values);
            model.validation_accuracy = Summary::from_values(&values);
            model.test.agreement = model.test.agreement.as_ref().map(|_| summary(&[0.25; 3]));
            model.test.kl_from_teacher = None;
        }
        let text = original.to_json_pretty();
        assert_eq!(Results::from_json(&text, "results.json").unwrap(), original);
    }

    #[test]
    fn round_trip() {
        let original = results();
        let text = original.to_json_pretty();
        assert!(text.ends_with("}\n"));
        let back = Results::from_json(&text, "results.json").unwrap();
        // serde_json without its `float_roundtrip` feature may read a float one ulp off.
        assert_json_close(
            &serde_json::to_value(&back).unwrap(),
            &serde_json::to_value(&original).unwrap(),
            "",
        );
        // The teacher has no agreement: the key is left out, not written as null.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let test = &value["models"][0]["test"];
        assert!(test.get("agreement").is_none() && test.get("kl_from_teacher").is_none());
        assert_eq!(value["models"][0]["role"], "teacher");
        assert_eq!(value["models"][2]["role"], "distilled");
        assert_eq!(value["models"][2]["transfer"], "all");
    }

    #[test]
    fn non_finite_numbers_read_back_as_nan() {
        let mut original = results();
        original.models[1].curves[0].train_loss = vec![1.0, f64::NAN];
        original.models[1].test.nll = summary(&[0.3, f64::INFINITY, 0.2]);
        let text = original.to_json_pretty();
        let back = Results::from_json(&text, "results.json").unwrap();
        let loss = &back.models[1].curves[0].train_loss;
        assert_eq!(loss[0], 1.0);
        assert!(loss[1].is_nan());
        assert!(back.models[1].test.nll.mean.is_nan());
        assert!(back.models[1].test.nll.per_seed[1].is_nan());
    }

    #[test]
    fn version_is_checked_first() {
        let mut value = serde_json::to_value(results()).unwrap();
        value["schema_version"] = 2.into();
        // A newer file may have changed anything; its other fields must not be what we report.
        value["models"] = "changed in version 2".into();
        let err = Results::from_json(&value.to_string(), "x.json").unwrap_err();
        assert_eq!(
            err,
            ResultsError::UnsupportedVersion {
                found: 2,
                supported: SCHEMA_VERSION
            }
        );
        assert!(err.to_string().contains("newer"), "{err}");

        value["schema_version"] = 0.into();
        let err = Results::from_json(&value.to_string(), "x.json").unwrap_err();
        assert!(matches!(
            err,
            ResultsError::UnsupportedVersion { found: 0, .. }
        ));
        assert!(err.to_string().contains("unknown"), "{err}");

        value["schema_version"] = "1".into();
        let err = Results::from_json(&value.to_string(), "x.json").unwrap_err();
        assert!(matches!(err, ResultsError::Parse { .. }), "{err}");

        value.as_object_mut().unwrap().remove("schema_version");
        let err = Results::from_json(&value.to_string(), "x.json").unwrap_err();
        assert!(err.to_string().contains("schema_version"), "{err}");
    }

    #[test]
    fn parse_errors_name_source_line_and_column() {
        let err = Results::from_json("{\n  \"schema_version\": 1,\n  oops\n}", "run/results.json")
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cannot read results from run/results.json: "),
            "{text}"
        );
        assert!(text.contains("line 3 column 3"), "{text}");
        assert!(!text.contains('\n'));

        let mut value = serde_json::to_value(results()).unwrap();
        value.as_object_mut().unwrap().remove("experiment");
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let err = Results::from_json(&pretty, "r.json").unwrap_err();
        let ResultsError::Parse {
            source_name,
            message,
        } = &err
        else {
            panic!("expected a parse error, got {err:?}");
        };
        assert_eq!(source_name, "r.json");
        assert!(message.contains("missing field `experiment`"), "{message}");
        assert!(message.contains("line "), "{message}");

        let err = Results::from_json("[1, 2]", "r.json").unwrap_err();
        assert!(matches!(err, ResultsError::Parse { .. }));
        let err = Results::from_json("", "r.json").unwrap_err();
        assert!(matches!(err, ResultsError::Parse { .. }));
    }

    #[test]
    fn summary_math() {
        let s = Summary::from_values(&[1.0, 2.0, 3.0]);
        assert_eq!((s.mean, s.std), (2.0, 1.0));
        assert_eq!(s.per_seed, vec![1.0, 2.0, 3.0]);
        let one = Summary::from_values(&[0.7]);
        assert_eq!((one.mean, one.std), (0.7, 0.0));
        let none = Summary::from_values(&[]);
        assert_eq!((none.mean, none.std, none.per_seed.len()), (0.0, 0.0, 0));
        // Large offset, small spread: the two-pass formula keeps the deviation exact.
        let s = Summary::from_values(&[1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0]);
        assert_eq!(s.std, 1.0);
    }

    #[test]
    fn summary_format() {
        let s = Summary {
            mean: 0.9631,
            std: 0.0042,
            per_seed: vec![0.96, 0.966],
        };
        assert_eq!(s.format(2, 100.0), "96.31 ± 0.42");
        assert_eq!(s.format(3, 1.0), "0.963 ± 0.004");
        assert_eq!(Summary::from_values(&[0.25]).format(1, 100.0), "25.0");
    }
}

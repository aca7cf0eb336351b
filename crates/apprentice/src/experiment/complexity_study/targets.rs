//! Which targets a supervision-complexity study measures, as the user writes them:
//! `labels,random,uniform,teacher:T=1,2,4,kd,teacher-checkpoints[:DIR]`.

use std::path::PathBuf;
use std::str::FromStr;

/// The targets measured when none are asked for.
pub const DEFAULT_TARGETS: &str = "labels,random,uniform,teacher:T=1,2,4,8,16";

/// One entry of a target list.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// The one-hot labels.
    Labels,
    /// Labels drawn uniformly at random (seeded).
    Random,
    /// `1/C` everywhere.
    Uniform,
    /// The teacher's softmax at each of these temperatures.
    Teacher(Vec<f64>),
    /// The experiment's KD mixture `α·labels + (1 − α)·teacher at T`.
    Kd,
    /// The teacher's softmax (T = 1) of every `*.safetensors` in a folder, in name order;
    /// without a folder, the snapshots of the teacher the study trains or reads from a run.
    TeacherCheckpoints(Option<PathBuf>),
}

impl TargetSpec {
    /// Whether the entry needs the teacher's logits on the subset.
    pub fn needs_teacher(&self) -> bool {
        matches!(self, TargetSpec::Teacher(_) | TargetSpec::Kd)
    }
}

/// A target list that cannot be read; each message quotes the offending entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetsError {
    /// Two commas in a row, or a list that is all commas.
    #[error("empty entry in {0:?}")]
    EmptyEntry(String),
    /// A temperature that is not a positive finite number.
    #[error("temperature {0:?} is not a positive number")]
    Temperature(String),
    /// `teacher:` followed by something other than `T=`.
    #[error("expected teacher:T=<temperatures>, found {0:?}")]
    TeacherSyntax(String),
    /// `teacher-checkpoints:` with nothing after the colon.
    #[error("teacher-checkpoints: needs a folder after the colon")]
    NoFolder,
    /// A name that is no target.
    #[error(
        "unknown target {0:?}; expected labels, random, uniform, teacher, teacher:T=<t1>,<t2>,..., kd or teacher-checkpoints[:DIR]"
    )]
    Unknown(String),
    /// Nothing at all.
    #[error("expected at least one target")]
    Nothing,
}

/// A parsed target list, in the order the targets are measured.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetList(pub Vec<TargetSpec>);

impl FromStr for TargetList {
    type Err = TargetsError;

    /// Bare numbers continue the temperature list of the `teacher:T=` before them, so that
    /// `teacher:T=1,2,4` reads as one entry.
    fn from_str(text: &str) -> Result<Self, TargetsError> {
        let mut specs: Vec<TargetSpec> = Vec::new();
        for token in text.split(',').map(str::trim) {
            if token.is_empty() {
                return Err(TargetsError::EmptyEntry(text.to_string()));
            }
            if let Some(TargetSpec::Teacher(temperatures)) = specs.last_mut()
                && token.parse::<f64>().is_ok()
            {
                temperatures.push(temperature(token)?);
                continue;
            }
            let spec = match token {
                "labels" => TargetSpec::Labels,
                "random" => TargetSpec::Random,
                "uniform" => TargetSpec::Uniform,
                "teacher" => TargetSpec::Teacher(vec![1.0]),
                "kd" => TargetSpec::Kd,
                "teacher-checkpoints" => TargetSpec::TeacherCheckpoints(None),
                _ => {
                    if let Some(rest) = token.strip_prefix("teacher:") {
                        let value = rest
                            .strip_prefix("T=")
                            .ok_or_else(|| TargetsError::TeacherSyntax(token.to_string()))?;
                        TargetSpec::Teacher(vec![temperature(value)?])
                    } else if let Some(dir) = token.strip_prefix("teacher-checkpoints:") {
                        if dir.is_empty() {
                            return Err(TargetsError::NoFolder);
                        }
                        TargetSpec::TeacherCheckpoints(Some(PathBuf::from(dir)))
                    } else {
                        return Err(TargetsError::Unknown(token.to_string()));
                    }
                }
            };
            specs.push(spec);
        }
        if specs.is_empty() {
            return Err(TargetsError::Nothing);
        }
        Ok(TargetList(specs))
    }
}

fn temperature(text: &str) -> Result<f64, TargetsError> {
    match text.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => Ok(t),
        _ => Err(TargetsError::Temperature(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures_continue_the_teacher_entry() {
        let specs: TargetList = "labels,random,teacher:T=1,2,4.5,kd,teacher-checkpoints:x/y"
            .parse()
            .unwrap();
        assert_eq!(
            specs.0,
            vec![
                TargetSpec::Labels,
                TargetSpec::Random,
                TargetSpec::Teacher(vec![1.0, 2.0, 4.5]),
                TargetSpec::Kd,
                TargetSpec::TeacherCheckpoints(Some(PathBuf::from("x/y"))),
            ]
        );
        assert!(DEFAULT_TARGETS.parse::<TargetList>().is_ok());
    }

    #[test]
    fn bad_entries_are_named() {
        for (text, needle) in [
            ("labels,oops", "\"oops\""),
            ("teacher:T=0", "\"0\""),
            ("teacher:T=2,-1", "\"-1\""),
            ("labels,,random", "empty entry"),
            ("teacher:4", "teacher:T="),
            ("3", "\"3\""),
            ("teacher-checkpoints:", "after the colon"),
        ] {
            let error = text.parse::<TargetList>().unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}

//! One reader for every experiment file. The tables a file has say which task it describes,
//! and the file is parsed once, into that task's config:
//!
//! | the file has | task | config |
//! |---|---|---|
//! | a `[text]` table | text classification | [`TextExperimentConfig`] |
//! | an `[lm]` table | language modelling | [`LmExperimentConfig`] |
//! | a `[[stages]]` list | continual learning | [`ContinualConfig`] |
//! | none of these | image classification | [`ExperimentConfig`] |
//!
//! The command line reads every experiment file (and the `config.toml` of a run folder it
//! resumes) through [`ExperimentFile`], so a file is never guessed at twice.

use std::path::Path;

use crate::config::{ConfigError, ExperimentConfig};
use crate::experiment::continual::ContinualConfig;
use crate::lm::config::LmExperimentConfig;
use crate::text::config::TextExperimentConfig;

pub use crate::task::TaskKind;

/// An experiment file, parsed and validated as the config of its task.
#[derive(Debug, Clone)]
pub enum ExperimentFile {
    /// `[data]`, `[teacher]`, `[student]`, `[distill]`, ...
    Image(Box<ExperimentConfig>),
    /// `[text]`, `[teacher]`, `[students]`, ...
    Text(Box<TextExperimentConfig>),
    /// `[lm]`, `[corpus]`, `[student]`, `[[objectives]]`, ...
    Language(Box<LmExperimentConfig>),
    /// `[data]`, `[[stages]]`, `[lwf]`, ...
    Continual(Box<ContinualConfig>),
}

impl ExperimentFile {
    /// Reads and validates the experiment file at `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates experiment text; `source_name` labels errors.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        Ok(match TaskKind::of_toml(text) {
            TaskKind::Image => {
                Self::Image(Box::new(ExperimentConfig::from_toml(text, source_name)?))
            }
            TaskKind::Text => Self::Text(Box::new(TextExperimentConfig::from_toml(
                text,
                source_name,
            )?)),
            TaskKind::Language => {
                Self::Language(Box::new(LmExperimentConfig::from_toml(text, source_name)?))
            }
            TaskKind::Continual => {
                Self::Continual(Box::new(ContinualConfig::from_toml(text, source_name)?))
            }
        })
    }

    /// The task the file describes.
    pub fn kind(&self) -> TaskKind {
        match self {
            Self::Image(_) => TaskKind::Image,
            Self::Text(_) => TaskKind::Text,
            Self::Language(_) => TaskKind::Language,
            Self::Continual(_) => TaskKind::Continual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../configs")
            .join(name);
        std::fs::read_to_string(&path).unwrap()
    }

    #[test]
    fn every_committed_config_is_read_as_its_task() {
        let expected = [
            ("quickstart.toml", TaskKind::Image),
            ("fashion-mnist-methods.toml", TaskKind::Image),
            ("rotten-tomatoes.toml", TaskKind::Text),
            ("rotten-tomatoes-finetune.toml", TaskKind::Text),
            ("rotten-tomatoes-unlabelled.toml", TaskKind::Text),
            ("rotten-tomatoes-layer-stages.toml", TaskKind::Text),
            ("rotten-tomatoes-unlabelled-layers.toml", TaskKind::Text),
            ("lm-rotten-tomatoes.toml", TaskKind::Language),
            ("continual-fashion.toml", TaskKind::Continual),
        ];
        for (name, kind) in expected {
            let file = ExperimentFile::from_toml(&config(name), name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(file.kind(), kind, "{name}");
            assert_eq!(TaskKind::of_toml(&config(name)), kind, "{name}");
        }
        // And every other committed config reads too.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                ExperimentFile::from_toml(&config(&name), &name)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }

    #[test]
    fn a_bad_key_is_reported_by_the_parser_of_the_files_task() {
        let text = config("continual-fashion.toml").replace("[lwf]", "[lwf]\nlamda = 1.0");
        let error = ExperimentFile::from_toml(&text, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("c.toml"), "{error}");
        assert!(error.contains("lamda"), "{error}");
    }

    #[test]
    fn text_that_is_not_toml_is_reported_with_its_location() {
        let error = ExperimentFile::from_toml("seeds = [0,", "broken.toml")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("broken.toml:"), "{error}");
    }
}

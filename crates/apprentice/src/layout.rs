//! The files of a run folder, named in one place.
//!
//! ```text
//! runs/quickstart-20261128-121937/       RunLayout
//!   config.toml                          the experiment exactly as run
//!   results.json  (continual.json)       every metric, per seed and aggregated
//!   report.html, summary.md, plots/      the report
//!   seed-0/                              SeedLayout
//!     teacher.safetensors                one checkpoint per model
//!     teacher.record.json                its metrics (a resumed run skips it)
//!     teacher.state/                     mid-training states while it trains
//!     teacher.epochs/epoch-0003.safetensors   checkpoints along training, when kept
//!     kd-all-at-5pct.safetensors         `kd-all@5%`: model names made file names
//! ```
//!
//! The runner, continual learning, the report and the command line all name files through
//! these types, so that the layout cannot drift between them.

use std::path::{Path, PathBuf};

/// The experiment file as run (command-line overrides included).
pub const CONFIG_TOML: &str = "config.toml";
/// The results of a classification run.
pub const RESULTS_JSON: &str = "results.json";
/// The results of a continual-learning run.
pub const CONTINUAL_JSON: &str = "continual.json";
/// The HTML report.
pub const REPORT_HTML: &str = "report.html";
/// The Markdown summary.
pub const SUMMARY_MD: &str = "summary.md";
/// The folder of the report's PNG plots.
pub const PLOTS_DIR: &str = "plots";

/// A run folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    root: PathBuf,
}

impl RunLayout {
    /// The layout of the run folder `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The run folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG_TOML)
    }

    /// `results.json`.
    pub fn results(&self) -> PathBuf {
        self.root.join(RESULTS_JSON)
    }

    /// `continual.json`.
    pub fn continual_results(&self) -> PathBuf {
        self.root.join(CONTINUAL_JSON)
    }

    /// `report.html`.
    pub fn report(&self) -> PathBuf {
        self.root.join(REPORT_HTML)
    }

    /// `summary.md`.
    pub fn summary(&self) -> PathBuf {
        self.root.join(SUMMARY_MD)
    }

    /// `plots/`.
    pub fn plots(&self) -> PathBuf {
        self.root.join(PLOTS_DIR)
    }

    /// The folder of one seed's models.
    pub fn seed(&self, seed: u64) -> SeedLayout {
        SeedLayout {
            dir: self.root.join(seed_folder_name(seed)),
        }
    }
}

/// `seed-<S>`: the folder of one seed, in a run folder and in a sharded teacher cache alike.
pub fn seed_folder_name(seed: u64) -> String {
    format!("seed-{seed}")
}

/// The folder of one seed's models in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedLayout {
    dir: PathBuf,
}

impl SeedLayout {
    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The finished model `name` (`kd-all@5%` → `kd-all-at-5pct.safetensors`).
    pub fn checkpoint(&self, name: &str) -> PathBuf {
        self.file(name, "safetensors")
    }

    /// The record of the finished model `name`, written with its checkpoint.
    pub fn record(&self, name: &str) -> PathBuf {
        self.file(name, "record.json")
    }

    /// The folder of `name`'s mid-training states, removed once it finishes.
    pub fn states(&self, name: &str) -> PathBuf {
        self.file(name, "state")
    }

    /// The folder of `name`'s checkpoints along its training (see [`epoch_checkpoint`]).
    pub fn epochs(&self, name: &str) -> PathBuf {
        self.file(name, "epochs")
    }

    fn file(&self, name: &str, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", file_stem(name)))
    }
}

/// A file name for a model name: `@` → `-at-`, `%` → `pct`, `+` → `-`, separators → `_`
/// (`kd-all@5%` → `kd-all-at-5pct`, `lwf+replay-200` → `lwf-replay-200`).
pub fn file_stem(name: &str) -> String {
    name.replace('@', "-at-")
        .replace('%', "pct")
        .replace('+', "-")
        .replace(['/', ' ', '·'], "_")
}

/// The checkpoint of epoch `epoch` in a folder of checkpoints along training:
/// `epoch-0003.safetensors`.
pub fn epoch_checkpoint(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch:04}.safetensors"))
}

/// The epoch of a file named as [`epoch_checkpoint`] names it, else `None`.
pub fn epoch_of_checkpoint(path: &Path) -> Option<usize> {
    path.file_name()?
        .to_str()?
        .strip_prefix("epoch-")?
        .strip_suffix(".safetensors")?
        .parse()
        .ok()
}

/// A language-model run's teacher distributions (top-k per position, computed once):
/// `teacher-logits.safetensors`.
pub fn lm_teacher_logits(run: &RunLayout) -> PathBuf {
    run.root().join("teacher-logits.safetensors")
}

/// A language-model run's tokenizer, read by every student checkpoint: `tokenizer.json`.
pub fn lm_tokenizer(run: &RunLayout) -> PathBuf {
    run.root().join("tokenizer.json")
}

/// A language-model run's perplexity curves as a table: `perplexity-curves.csv`.
pub fn lm_curves_csv(run: &RunLayout) -> PathBuf {
    run.root().join("perplexity-curves.csv")
}

impl SeedLayout {
    /// The Hugging Face model folder of the finished transformer `name` (`teacher` →
    /// `teacher.hf/`), which `transformers` loads as it is.
    pub fn model_folder(&self, name: &str) -> PathBuf {
        self.file(name, "hf")
    }

    /// `split.json`: which rows a text run's seed trains, validates and tests on.
    pub fn split(&self) -> PathBuf {
        self.dir.join("split.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_become_file_names() {
        let seed = RunLayout::new("run").seed(2);
        assert_eq!(
            seed.checkpoint("kd-all@5%"),
            Path::new("run/seed-2/kd-all-at-5pct.safetensors")
        );
        assert_eq!(
            seed.record("teacher"),
            Path::new("run/seed-2/teacher.record.json")
        );
        assert_eq!(seed.states("kd"), Path::new("run/seed-2/kd.state"));
        assert_eq!(
            file_stem("stage-2-lwf+replay-200"),
            "stage-2-lwf-replay-200"
        );
        assert_eq!(
            epoch_checkpoint(&seed.epochs("teacher"), 3),
            Path::new("run/seed-2/teacher.epochs/epoch-0003.safetensors")
        );
    }

    #[test]
    fn epoch_checkpoints_read_back() {
        let path = epoch_checkpoint(Path::new("x"), 12);
        assert_eq!(epoch_of_checkpoint(&path), Some(12));
        assert_eq!(
            epoch_of_checkpoint(Path::new("x/teacher.safetensors")),
            None
        );
    }
}

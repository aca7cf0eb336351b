//! Reading a run folder and writing its report: `report.html`, `summary.md` and
//! `plots/<chart>.png`.

use std::path::{Path, PathBuf};

use super::charts::{Omission, build_charts};
use super::extensions::Extensions;
use super::html::{PageInputs, page};
use super::plots::Chart;
use super::results::{Results, ResultsError};
use super::summary::summary;
use super::view::View;
use crate::fsutil::write_atomic;
use crate::layout::RunLayout;

pub use crate::layout::{PLOTS_DIR, REPORT_HTML, SUMMARY_MD};
/// Every chart the report can hold, in report order.
pub const CHART_IDS: [&str; 7] = [
    "knowledge",
    "learning",
    "cost",
    "complexity",
    "agreement",
    "confusion",
    "perplexity",
];

/// How to write a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Where to write; the run folder when `None`.
    pub out_dir: Option<PathBuf>,
    /// Learning speed is the first epoch at which validation accuracy reaches this fraction
    /// of the teacher's, in `(0, 1]`.
    pub threshold: f64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            out_dir: None,
            threshold: 0.95,
        }
    }
}

/// Why a report could not be made. Each message is one line naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The results file is missing, unreadable or from an unsupported schema version.
    #[error("{0}")]
    Results(String),
    /// A report option is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// A run folder's results, read for reporting.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Its `results.json`.
    pub results_path: PathBuf,
    /// The results.
    pub results: Results,
    /// The optional sections of the results file.
    pub extensions: Extensions,
    /// Optional sections that were present but could not be read, one line each.
    pub warnings: Vec<String>,
}

/// Reads the run at `path`: a run folder, or its `results.json`.
///
/// # Errors
///
/// When the folder or file does not exist, the file is not a results file, or it declares a
/// schema version this build does not read (with a message saying which).
pub fn load_run(path: &Path) -> Result<LoadedRun, ReportError> {
    let (run_dir, results_path) = if path.is_dir() {
        (path.to_path_buf(), RunLayout::new(path).results())
    } else if path.is_file() {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (parent.to_path_buf(), path.to_path_buf())
    } else {
        return Err(ReportError::Results(format!(
            "{}: no such run folder",
            path.display()
        )));
    };
    if !results_path.is_file() {
        return Err(ReportError::Results(format!(
            "{}: no results file; is {} a run folder of a finished run?",
            results_path.display(),
            run_dir.display()
        )));
    }
    let text = std::fs::read_to_string(&results_path).map_err(|source| ReportError::Io {
        path: results_path.clone(),
        source,
    })?;
    let source_name = results_path.display().to_string();
    let results = Results::from_json(&text, &source_name).map_err(|error| match error {
        ResultsError::UnsupportedVersion { .. } => {
            ReportError::Results(format!("{source_name}: {error}"))
        }
        ResultsError::Parse { .. } => ReportError::Results(error.to_string()),
    })?;
    // The typed read succeeded, so the text is JSON: this second read cannot fail in
    // practice, and an empty document only loses the optional sections.
    let document: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let (extensions, warnings) = Extensions::from_value(&document, &source_name);
    Ok(LoadedRun {
        run_dir,
        results_path,
        results,
        extensions,
        warnings,
    })
}

/// A report in memory.
#[derive(Debug, Clone)]
pub struct RenderedReport {
    /// The page.
    pub html: String,
    /// The Markdown summary.
    pub summary: String,
    /// The charts drawn.
    pub charts: Vec<Chart>,
    /// The charts left out, and why.
    pub omitted: Vec<Omission>,
    /// Problems met in the results, one line each.
    pub warnings: Vec<String>,
}

/// Builds the report of `run` without writing anything.
///
/// # Errors
///
/// Only when an option is out of range: missing data shrinks the report instead.
pub fn render_report(
    run: &LoadedRun,
    options: &ReportOptions,
) -> Result<RenderedReport, ReportError> {
    if !(options.threshold > 0.0 && options.threshold <= 1.0) {
        return Err(ReportError::Invalid(format!(
            "threshold: expected a fraction of the teacher's accuracy in (0, 1], found {}",
            options.threshold
        )));
    }
    let view = View::new(&run.results, &run.extensions, options.threshold);
    let (charts, omitted) = build_charts(&view);
    let hint = efficiency_hint(run);
    let html = page(
        &view,
        &PageInputs {
            charts: &charts,
            omitted: &omitted,
            warnings: &run.warnings,
            efficiency_hint: &hint,
            png_dir: PLOTS_DIR,
        },
    );
    let summary = summary(&view, &charts, &omitted, PLOTS_DIR, &hint);
    Ok(RenderedReport {
        html,
        summary,
        charts,
        omitted,
        warnings: run.warnings.clone(),
    })
}

/// Why a run has no efficiency section, and what to do about it.
fn efficiency_hint(run: &LoadedRun) -> String {
    let has_checkpoints = run.results.seeds.first().is_some_and(|seed| {
        std::fs::read_dir(RunLayout::new(&run.run_dir).seed(*seed).dir())
            .map(|entries| {
                entries.flatten().any(|entry| {
                    entry
                        .path()
                        .extension()
                        .is_some_and(|ext| ext == "safetensors")
                })
            })
            .unwrap_or(false)
    });
    if has_checkpoints {
        format!(
            "the run has checkpoints but they have not been measured; `apprentice report {} \
             --measure` measures them (or `apprentice bench-model` one checkpoint).",
            run.run_dir.display()
        )
    } else {
        "the run has no checkpoints (it was made with --no-checkpoints), so there is nothing \
         to measure."
            .to_string()
    }
}

/// Where a written report's files are.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    /// The page.
    pub html: PathBuf,
    /// The Markdown summary.
    pub summary: PathBuf,
    /// One PNG per chart drawn.
    pub pngs: Vec<PathBuf>,
    /// The charts left out, and why.
    pub omitted: Vec<Omission>,
    /// Problems met in the results, one line each.
    pub warnings: Vec<String>,
}

/// Builds the report of `run` and writes it (atomically, file by file) into the run folder
/// or `options.out_dir`. PNGs of charts that this report no longer has are removed, so that
/// the folder never shows a stale chart.
///
/// # Errors
///
/// When an option is out of range or a file cannot be written.
pub fn write_report(run: &LoadedRun, options: &ReportOptions) -> Result<ReportFiles, ReportError> {
    let report = render_report(run, options)?;
    let out_dir = options
        .out_dir
        .clone()
        .unwrap_or_else(|| run.run_dir.clone());
    let plots = out_dir.join(PLOTS_DIR);
    std::fs::create_dir_all(&plots).map_err(|source| ReportError::Io {
        path: plots.clone(),
        source,
    })?;
    let write = |path: PathBuf, bytes: &[u8]| -> Result<PathBuf, ReportError> {
        write_atomic(&path, bytes).map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    let mut pngs = Vec::new();
    for chart in &report.charts {
        pngs.push(write(plots.join(format!("{}.png", chart.id)), &chart.png)?);
    }
    for id in CHART_IDS {
        if !report.charts.iter().any(|chart| chart.id == id) {
            let stale = plots.join(format!("{id}.png"));
            if stale.is_file() {
                std::fs::remove_file(&stale).map_err(|source| ReportError::Io {
                    path: stale.clone(),
                    source,
                })?;
            }
        }
    }
    let summary = write(out_dir.join(SUMMARY_MD), report.summary.as_bytes())?;
    let html = write(out_dir.join(REPORT_HTML), report.html.as_bytes())?;
    Ok(ReportFiles {
        html,
        summary,
        pngs,
        omitted: report.omitted,
        warnings: report.warnings,
    })
}

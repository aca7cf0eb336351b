//! Markdown tables generated from a run's `results.json`, and the generated blocks of the
//! documentation that hold them.
//!
//! A page marks a table it does not want typed by hand with two comments:
//!
//! ```text
//! <!-- generated: apprentice report --markdown=comparison docs/results/data/quickstart.json -->
//! ...the table...
//! <!-- end generated -->
//! ```
//!
//! The first names the table ([`TableKind`]; `--markdown` alone is `comparison`), an optional
//! `--student=NAME` (the efficiency table's student) and the committed raw file, relative to
//! the repository root. [`regenerate_blocks`] rewrites every block of a page from its raw
//! file, so a test can require that a committed page equals what its raw files generate, and
//! the same call writes the pages again after a rerun.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::complexity_curves_table::complexity_curves_markdown;
use super::continual_table::{continual_markdown, parse_continual};
use super::extensions::{EfficiencySection, ModelEfficiency};
use super::lm_speed_table::{lm_speed_markdown, parse_lm_speed};
use super::lm_table::{LM_KEY, LmSection, lm_curves_markdown, lm_markdown};
use super::methods_table::{methods_markdown, verdicts_markdown};
use super::render::{ReportError, load_run};
use super::replay_table::{parse_replay, replay_markdown};
use super::results::{ModelResult, Results, Role, Summary};
use super::speed_ratio_table::{parse_speed_ratios, speed_ratios_markdown};
use super::study_tables::{complexity_markdown, trace_vs_block_markdown};
use super::text_tables::{reference_markdown, text_speed_markdown};
use super::tune_table::{parse_tune, tune_markdown};
use super::units::{bytes, duration, si, significant, thousands};
use super::view::group_title;
use crate::complexity::study::report::StudyReport;

/// The comment that opens a generated block; the rest of its line says what to generate.
pub const BLOCK_START: &str = "<!-- generated:";
/// The comment that closes a generated block.
pub const BLOCK_END: &str = "<!-- end generated -->";

/// Which table a generated block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Every model's test metrics, grouped by label fraction ([`comparison_markdown`]).
    Comparison,
    /// Test accuracy with one column per label fraction ([`fractions_markdown`]).
    Fractions,
    /// The teacher's and one student's measured costs ([`efficiency_markdown`]).
    Efficiency,
    /// The supervision complexity of each set of targets in a `complexity.json` written by
    /// `apprentice complexity` ([`complexity_markdown`]).
    Complexity,
    /// The trace kernel against the block kernel, from the JSON the `trace_vs_block` example
    /// prints ([`trace_vs_block_markdown`]).
    TraceVsBlock,
    /// A language-model run's comparison ([`super::lm_table::lm_markdown`]).
    Lm,
    /// A language-model run's perplexity curves ([`super::lm_table::lm_curves_markdown`]).
    LmCurves,
    /// The language-model teacher's scoring and student's training against PyTorch, from
    /// the raw file of `bench/lm_vs_torch.sh` ([`super::lm_speed_table::lm_speed_markdown`]).
    LmSpeed,
    /// A text run's sentences per second ([`text_speed_markdown`]).
    TextSpeed,
    /// The verdicts of the methods table alone, one line per label fraction and reference
    /// ([`super::methods_table::verdicts_markdown`]).
    Verdicts,
    /// The supervision complexity along each student's training
    /// ([`super::complexity_curves_table::complexity_curves_markdown`]).
    ComplexityCurves,
    /// `temperature = "auto"` against the grid of candidates trained for real, from the
    /// `tune.json` of `apprentice tune --verify --out` ([`super::tune_table::tune_markdown`]).
    Tune,
    /// A continual run's accuracies after every stage, from its `continual.json`
    /// ([`super::continual_table::continual_markdown`]).
    Continual,
    /// Many methods on one student, with paired differences from scratch and KD and their
    /// verdicts ([`super::methods_table::methods_markdown`]).
    Methods,
    /// The teacher's accuracy against a reference implementation's on the same splits
    /// ([`reference_markdown`]; the reference's file given by `--reference=PATH`).
    Reference,
    /// Throughputs against PyTorch's (`speed-vs-pytorch`) or an older build's
    /// (`speed-ratios`) and their ratios, from a benchmark script's raw file
    /// ([`super::speed_ratio_table::speed_ratios_markdown`]).
    SpeedVsPytorch,
    /// apprentice fine-tuning from a PyTorch run's own draws against that run, from the raw
    /// file of the `finetune_replay` example ([`super::replay_table::replay_markdown`]).
    Replay,
}

impl TableKind {
    /// Every table's name, as `--markdown=KIND` takes it.
    pub const NAMES: [&'static str; 18] = [
        "comparison",
        "fractions",
        "efficiency",
        "complexity",
        "trace-vs-block",
        "lm",
        "lm-curves",
        "lm-speed",
        "text-speed",
        "reference",
        "methods",
        "continual",
        "verdicts",
        "complexity-curves",
        "tune",
        "speed-vs-pytorch",
        "speed-ratios",
        "replay",
    ];

    /// Parses one of [`TableKind::NAMES`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "comparison" => Some(Self::Comparison),
            "fractions" => Some(Self::Fractions),
            "efficiency" => Some(Self::Efficiency),
            "complexity" => Some(Self::Complexity),
            "trace-vs-block" => Some(Self::TraceVsBlock),
            "lm" => Some(Self::Lm),
            "lm-curves" => Some(Self::LmCurves),
            "lm-speed" => Some(Self::LmSpeed),
            "text-speed" => Some(Self::TextSpeed),
            "reference" => Some(Self::Reference),
            "methods" => Some(Self::Methods),
            "continual" => Some(Self::Continual),
            "verdicts" => Some(Self::Verdicts),
            "complexity-curves" => Some(Self::ComplexityCurves),
            "tune" => Some(Self::Tune),
            // The same table where two builds of apprentice are compared.
            "speed-vs-pytorch" | "speed-ratios" => Some(Self::SpeedVsPytorch),
            "replay" => Some(Self::Replay),
            _ => None,
        }
    }
}

/// What the opening comment of a generated block asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSpec {
    /// The table.
    pub kind: TableKind,
    /// The raw results file, relative to the repository root.
    pub source: PathBuf,
    /// The student of an efficiency table (default: the first distilled model measured).
    pub student: Option<String>,
    /// The reference implementation's results of a `reference` table.
    pub reference: Option<PathBuf>,
}

/// Why a page's generated blocks could not be regenerated.
#[derive(Debug, thiserror::Error)]
pub enum MarkdownError {
    /// A block's opening comment is malformed, or a block is not closed.
    #[error("{page}, line {line}: {message}")]
    Block {
        /// The page.
        page: String,
        /// 1-based line of the opening comment.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A block's raw file could not be read.
    #[error("{page}, line {line}: {source}")]
    Source {
        /// The page.
        page: String,
        /// 1-based line of the opening comment.
        line: usize,
        /// The reading error, which names the file.
        source: ReportError,
    },
}

/// Parses an opening comment: `<!-- generated: apprentice report --markdown[=KIND]
/// [--student=NAME] PATH -->`; the error says what is wrong, for [`MarkdownError::Block`].
fn parse_block_spec(line: &str) -> Result<BlockSpec, String> {
    let rest = line
        .trim()
        .strip_prefix(BLOCK_START)
        .and_then(|r| r.trim_end().strip_suffix("-->"))
        .ok_or_else(|| format!("expected `{BLOCK_START} ... -->` on one line"))?;
    let mut words = rest.split_whitespace();
    if words.next() != Some("apprentice") || words.next() != Some("report") {
        return Err("expected `apprentice report --markdown[=KIND] PATH`".to_string());
    }
    let (mut kind, mut source, mut student, mut reference) = (None, None, None, None);
    for word in words {
        if word == "--markdown" {
            kind = Some(TableKind::Comparison);
        } else if let Some(name) = word.strip_prefix("--markdown=") {
            kind = Some(TableKind::parse(name).ok_or_else(|| {
                format!(
                    "unknown table {name:?}: expected one of {}",
                    TableKind::NAMES.join(", ")
                )
            })?);
        } else if let Some(path) = word.strip_prefix("--reference=") {
            reference = Some(PathBuf::from(path));
        } else if let Some(name) = word.strip_prefix("--student=") {
            student = Some(name.to_string());
        } else if word.starts_with("--") {
            return Err(format!("unknown option {word}"));
        } else if source.replace(PathBuf::from(word)).is_some() {
            return Err("more than one results file".to_string());
        }
    }
    Ok(BlockSpec {
        kind: kind.ok_or("no --markdown option")?,
        source: source.ok_or("no results file")?,
        student,
        reference,
    })
}

/// The seeds as `seeds 0, 1, 2` or `seed 0`.
fn seeds_phrase(seeds: &[u64]) -> String {
    let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
    let noun = if seeds.len() == 1 { "seed" } else { "seeds" };
    format!("{noun} {}", list.join(", "))
}

/// Models grouped by label fraction, most labels first, in results order within a group.
fn by_fraction(models: &[ModelResult]) -> Vec<(f64, Vec<&ModelResult>)> {
    let mut groups: Vec<(f64, Vec<&ModelResult>)> = Vec::new();
    for model in models {
        match groups
            .iter_mut()
            .find(|(f, _)| f.total_cmp(&model.label_fraction).is_eq())
        {
            Some((_, group)) => group.push(model),
            None => groups.push((model.label_fraction, vec![model])),
        }
    }
    groups.sort_by(|a, b| b.0.total_cmp(&a.0));
    groups
}

/// The comparison table of `apprentice run` as Markdown: one row per model, grouped by label
/// fraction, with test accuracy, NLL, ECE, agreement with the teacher and KL(teacher ‖ model)
/// as `mean ± std` over seeds, and the parameter count. Training time is left out: it measures
/// the machine, not the method.
pub fn comparison_markdown(results: &Results) -> String {
    let mut md = String::new();
    md.push_str("| model | labels | accuracy % | NLL | ECE % | agreement % | KL(t‖s) | params |\n");
    md.push_str("|---|---|--:|--:|--:|--:|--:|--:|\n");
    for (fraction, models) in by_fraction(&results.models) {
        let labels = group_title(fraction, &results.data);
        for model in models {
            let optional = |summary: &Option<Summary>, digits, scale| {
                summary
                    .as_ref()
                    .map_or_else(|| "—".to_string(), |s| s.format(digits, scale))
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                model.name,
                labels,
                model.test.accuracy.percent_cell(2),
                model.test.nll.format(3, 1.0),
                model.test.ece.percent_cell(2),
                optional(&model.test.agreement, 2, 100.0),
                optional(&model.test.kl_from_teacher, 3, 1.0),
                thousands(model.params as u64),
            );
        }
    }
    let _ = write!(
        md,
        "\n{}: {} ({} classes); mean ± sample standard deviation over {}.\n",
        results.experiment,
        results.data.name,
        results.data.num_classes,
        seeds_phrase(&results.seeds)
    );
    md
}

/// The row a model belongs to in [`fractions_markdown`]: its role, method and transfer set
/// (a distilled model at 100% of the labels learns on every input).
fn row_key(model: &ModelResult) -> (u8, String, String) {
    let role = match model.role {
        Role::Teacher => 0,
        Role::Scratch => 1,
        Role::Distilled => 2,
    };
    let transfer = match model.role {
        Role::Distilled => model.transfer.clone().unwrap_or_else(|| "all".to_string()),
        _ => String::new(),
    };
    (role, model.method.clone(), transfer)
}

/// A row title for [`fractions_markdown`].
fn row_title(model: &ModelResult) -> String {
    match model.role {
        Role::Teacher => format!(
            "teacher ({}, {} params)",
            model.architecture,
            thousands(model.params as u64)
        ),
        Role::Scratch => format!("student from scratch ({})", model.architecture),
        Role::Distilled => {
            let (_, method, transfer) = row_key(model);
            let inputs = if transfer == "labelled" {
                "the labelled inputs only"
            } else {
                "all training inputs"
            };
            format!("student distilled ({method}), teacher on {inputs}")
        }
    }
}

/// Test accuracy (%, `mean ± std`) with one row per model kind and one column per label
/// fraction: the teacher, the scratch student and each distilled student, the same student
/// at different fractions in one row. The teacher always trains on every label.
pub fn fractions_markdown(results: &Results) -> String {
    let groups = by_fraction(&results.models);
    let mut rows: Vec<((u8, String, String), String)> = Vec::new();
    for model in &results.models {
        let key = row_key(model);
        if !rows.iter().any(|(k, _)| *k == key) {
            rows.push((key, row_title(model)));
        }
    }
    rows.sort_by_key(|row| row.0.0);
    let mut md = String::from("| model |");
    for (fraction, _) in &groups {
        let _ = write!(md, " {} |", group_title(*fraction, &results.data));
    }
    md.push_str("\n|---|");
    md.push_str(&"--:|".repeat(groups.len()));
    md.push('\n');
    for (key, title) in &rows {
        let _ = write!(md, "| {title} |");
        for (fraction, models) in &groups {
            let cell = match models.iter().find(|m| row_key(m) == *key) {
                Some(model) => model.test.accuracy.percent_cell(2),
                None if key.0 == 0 && *fraction < 1.0 => "(trained on all labels)".to_string(),
                None => "—".to_string(),
            };
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    let _ = write!(
        md,
        "\nTest accuracy %, mean ± sample standard deviation over {}.\n",
        seeds_phrase(&results.seeds)
    );
    md
}

/// `1/x` for a ratio below one, `x×` above.
fn ratio(value: f64) -> String {
    if !value.is_finite() || value <= 0.0 {
        "—".to_string()
    } else if value < 1.0 {
        format!("1/{}", significant(1.0 / value, 3))
    } else {
        format!("{}×", significant(value, 3))
    }
}

/// The teacher's and `student`'s measured costs side by side, with the student's ratio to
/// the teacher, from a run's `efficiency` section: parameters, checkpoint size, FLOPs, batch-1
/// latency, large-batch throughput, batch-1 peak heap, CPU time per example and energy.
/// `None` when the section lacks the teacher or the student.
pub fn efficiency_markdown(section: &EfficiencySection, student: Option<&str>) -> Option<String> {
    let teacher = section
        .models
        .iter()
        .find(|m| m.ratio_to_teacher.is_none())?;
    let student: &ModelEfficiency = match student {
        Some(name) => section.models.iter().find(|m| m.measured.name == name)?,
        None => section
            .models
            .iter()
            .find(|m| m.ratio_to_teacher.is_some())?,
    };
    let ratios = student.ratio_to_teacher.as_ref()?;
    let (t, s) = (&teacher.measured, &student.measured);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| | {} ({}) | {} ({}) | student / teacher |",
        t.name, t.architecture, s.name, s.architecture
    );
    md.push_str("|---|--:|--:|--:|\n");
    let mut row = |what: &str, a: String, b: String, r: String| {
        let _ = writeln!(md, "| {what} | {a} | {b} | {r} |");
    };
    row(
        "parameters",
        thousands(t.params as u64),
        thousands(s.params as u64),
        ratio(ratios.params),
    );
    if let (Some(a), Some(b)) = (t.file_bytes, s.file_bytes) {
        row(
            "checkpoint file",
            bytes(a),
            bytes(b),
            ratios.file_bytes.map_or("—".into(), ratio),
        );
    }
    row(
        "FLOPs per example",
        si(t.flops.total as f64),
        si(s.flops.total as f64),
        ratio(ratios.flops),
    );
    row(
        &format!("latency p50 / p95, batch {}", t.latency.batch_size),
        format!(
            "{} / {}",
            duration(t.latency.p50_ms / 1000.0),
            duration(t.latency.p95_ms / 1000.0)
        ),
        format!(
            "{} / {}",
            duration(s.latency.p50_ms / 1000.0),
            duration(s.latency.p95_ms / 1000.0)
        ),
        format!("{} (p50)", ratio(ratios.latency_p50)),
    );
    row(
        &format!("throughput, batch {}", t.throughput.batch_size),
        format!("{}/s", si(t.throughput.examples_per_s)),
        format!("{}/s", si(s.throughput.examples_per_s)),
        ratio(ratios.throughput),
    );
    if let (Some(a), Some(b)) = (t.peak_memory_batch1_bytes(), s.peak_memory_batch1_bytes()) {
        row(
            "peak heap, batch 1",
            bytes(a),
            bytes(b),
            ratios.peak_memory_batch1.map_or("—".into(), ratio),
        );
    }
    if let (Some(a), Some(b)) = (&t.cpu, &s.cpu) {
        row(
            &format!("CPU time per example, batch {}", t.throughput.batch_size),
            duration(a.seconds_per_example_batch),
            duration(b.seconds_per_example_batch),
            ratios.cpu_seconds_per_example.map_or("—".into(), ratio),
        );
    }
    match (&t.energy, &s.energy) {
        (Some(a), Some(b)) => row(
            "energy per example",
            super::units::energy(a.joules_per_example_batch),
            super::units::energy(b.joules_per_example_batch),
            ratios.energy_per_example.map_or("—".into(), ratio),
        ),
        _ => row(
            "energy",
            "unavailable".into(),
            "unavailable".into(),
            "—".into(),
        ),
    }
    let threads = t.environment.threads;
    let _ = write!(
        md,
        "\nSeed-{} checkpoints, {} settings, {} thread{}, {}; ratios are student / teacher \
         (for latency and throughput, how many times faster).\n",
        section.seed,
        section.bench,
        threads,
        if threads == 1 { "" } else { "s" },
        t.environment
            .cpu_model
            .as_deref()
            .unwrap_or("CPU model unknown")
    );
    Some(md)
}

/// The table `spec` asks for, from its raw file under `root`.
pub fn render_block(spec: &BlockSpec, root: &Path) -> Result<String, ReportError> {
    if matches!(
        spec.kind,
        TableKind::Complexity
            | TableKind::TraceVsBlock
            | TableKind::Continual
            | TableKind::Tune
            | TableKind::LmSpeed
            | TableKind::SpeedVsPytorch
            | TableKind::Replay
    ) {
        let path = root.join(&spec.source);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ReportError::Results(format!("{}: {e}", path.display())))?;
        let name = spec.source.display().to_string();
        if spec.kind == TableKind::Tune {
            let results = parse_tune(&text, &name).map_err(ReportError::Results)?;
            return Ok(tune_markdown(&results));
        }
        if spec.kind == TableKind::LmSpeed {
            let run = parse_lm_speed(&text, &name).map_err(ReportError::Results)?;
            return Ok(lm_speed_markdown(&run));
        }
        if spec.kind == TableKind::Replay {
            let runs = parse_replay(&text, &name).map_err(ReportError::Results)?;
            return Ok(replay_markdown(&runs));
        }
        if spec.kind == TableKind::SpeedVsPytorch {
            let ratios = parse_speed_ratios(&text, &name).map_err(ReportError::Results)?;
            return Ok(speed_ratios_markdown(&ratios));
        }
        if spec.kind == TableKind::Continual {
            let results = parse_continual(&text, &name).map_err(ReportError::Results)?;
            return Ok(continual_markdown(&results));
        }
        if spec.kind == TableKind::TraceVsBlock {
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ReportError::Results(format!("{name}: {e}")))?;
            return trace_vs_block_markdown(&value).ok_or_else(|| {
                ReportError::Results(format!(
                    "{name}: not the output of the trace_vs_block example"
                ))
            });
        }
        let study = StudyReport::from_json(&text, &name).map_err(ReportError::Results)?;
        return Ok(complexity_markdown(&study));
    }
    let run = load_run(&root.join(&spec.source))?;
    if spec.kind == TableKind::TextSpeed {
        return text_speed_markdown(&run.results_path);
    }
    if spec.kind == TableKind::Reference {
        let reference = spec.reference.as_ref().ok_or_else(|| {
            ReportError::Results("a reference table needs --reference=PATH".to_string())
        })?;
        return reference_markdown(&run.results, &root.join(reference));
    }
    match spec.kind {
        TableKind::Comparison => Ok(comparison_markdown(&run.results)),
        TableKind::Fractions => Ok(fractions_markdown(&run.results)),
        TableKind::Methods => Ok(methods_markdown(&run.results)),
        TableKind::Verdicts => Ok(verdicts_markdown(&run.results)),
        TableKind::Complexity
        | TableKind::TraceVsBlock
        | TableKind::Continual
        | TableKind::Tune
        | TableKind::LmSpeed
        | TableKind::SpeedVsPytorch
        | TableKind::Replay
        | TableKind::TextSpeed
        | TableKind::Reference => unreachable!("handled above"),
        TableKind::Efficiency => run
            .extensions
            .efficiency
            .as_ref()
            .and_then(|section| efficiency_markdown(section, spec.student.as_deref()))
            .ok_or_else(|| {
                ReportError::Results(format!(
                    "{}: no efficiency section with the teacher and {}",
                    spec.source.display(),
                    spec.student.as_deref().unwrap_or("a student")
                ))
            }),
        TableKind::ComplexityCurves => {
            let document = read_document(&run.results_path)?;
            complexity_curves_markdown(&document)
                .map_err(|e| ReportError::Results(format!("{}: {e}", spec.source.display())))
        }
        TableKind::Lm | TableKind::LmCurves => {
            let document = read_document(&run.results_path)?;
            let section = LmSection::from_document(&document)
                .unwrap_or_else(|| Err(format!("no {LM_KEY} section")))
                .map_err(|e| ReportError::Results(format!("{}: {e}", spec.source.display())))?;
            Ok(match spec.kind {
                TableKind::Lm => lm_markdown(&run.results, &section),
                _ => lm_curves_markdown(&section),
            })
        }
    }
}

/// The results file at `path` as a JSON document, for the sections the typed
/// [`Results`] does not hold (it was parsed once already, so it is JSON).
fn read_document(path: &Path) -> Result<serde_json::Value, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

/// `page` (named `page_name` in errors) with the body of every generated block replaced by
/// what its raw file generates; a page without blocks comes back unchanged.
pub fn regenerate_blocks(
    page: &str,
    page_name: &str,
    root: &Path,
) -> Result<String, MarkdownError> {
    let mut out = String::with_capacity(page.len());
    let mut lines = page.split_inclusive('\n').enumerate();
    while let Some((index, line)) = lines.next() {
        out.push_str(line);
        if !line.trim_start().starts_with(BLOCK_START) {
            continue;
        }
        let block_error = |message: String| MarkdownError::Block {
            page: page_name.to_string(),
            line: index + 1,
            message,
        };
        let spec = parse_block_spec(line).map_err(block_error)?;
        let body = render_block(&spec, root).map_err(|source| MarkdownError::Source {
            page: page_name.to_string(),
            line: index + 1,
            source,
        })?;
        let end = loop {
            match lines.next() {
                Some((_, l)) if l.trim() == BLOCK_END => break l,
                Some((_, l)) if l.trim_start().starts_with(BLOCK_START) => {
                    return Err(block_error("a block opens before this one closes".into()));
                }
                Some(_) => {}
                None => return Err(block_error(format!("no closing `{BLOCK_END}`"))),
            }
        };
        // A blank line on each side keeps the table a table whatever surrounds the comments.
        out.push('\n');
        out.push_str(&body);
        out.push('\n');
        out.push_str(end);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::TableKind;

    #[test]
    fn every_table_name_parses_and_no_other_does() {
        for name in TableKind::NAMES {
            assert!(TableKind::parse(name).is_some(), "{name} does not parse");
        }
        assert_eq!(TableKind::parse("method"), None);
    }
}

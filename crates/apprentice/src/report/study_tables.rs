//! Markdown tables of supervision-complexity studies, for the documentation's generated
//! blocks ([`super::markdown`]): one study's targets (`complexity.json`), and the trace kernel
//! against the block kernel (the `trace_vs_block` example's output).

use std::fmt::Write as _;

use super::units::thousands;
use crate::complexity::study::report::{StudyReport, TargetSource};

/// One row per set of targets of a supervision-complexity study: the adjusted complexity,
/// the same relative to one-hot labels (when the study measured them) and how often the
/// largest target is the label; then which student, teacher and subset it was.
pub fn complexity_markdown(study: &StudyReport) -> String {
    let labels = study
        .targets
        .iter()
        .find(|row| row.source == TargetSource::Labels)
        .map(|row| row.measured.adjusted);
    let mut md = String::from(
        "| targets | adjusted complexity | vs labels | largest target is the label % |\n|---|--:|--:|--:|\n",
    );
    for row in &study.targets {
        let m = &row.measured;
        let relative = match labels {
            Some(labels) if labels > 0.0 => format!("{:.2}", m.adjusted / labels),
            _ => "—".to_owned(),
        };
        let accuracy = row
            .accuracy
            .map_or_else(|| "—".to_owned(), |a| format!("{:.1}", a * 100.0));
        let _ = writeln!(
            md,
            "| {} | {:.3} | {relative} | {accuracy} |",
            m.name, m.adjusted
        );
    }
    let kernel = match study.kernel.kind {
        crate::complexity::KernelKind::Trace => "trace",
        crate::complexity::KernelKind::Block => "block",
    };
    let _ = write!(
        md,
        "\n{}: {} of the {} training inputs of {} (seed {}); student {} ({}, {} parameters), {kernel} kernel",
        study.experiment,
        thousands(study.data.subset_size as u64),
        thousands(study.data.train_samples as u64),
        study.data.name,
        study.data.seed,
        study.student.source,
        study.student.architecture,
        thousands(study.student.parameters as u64),
    );
    if let Some(teacher) = &study.teacher {
        let _ = write!(
            md,
            "; teacher {} ({} parameters)",
            teacher.architecture,
            thousands(teacher.parameters as u64)
        );
    }
    md.push_str(".\n");
    md
}

/// The trace kernel against the block kernel, one row per set of targets: each kernel's
/// adjusted complexity and the score `"auto"` ranks temperatures by (adjusted complexity over
/// the mean true-class margin; none for a negative margin), the lowest KD score of each kernel
/// in bold. `None` when `value` is not the `trace_vs_block` example's output.
pub fn trace_vs_block_markdown(value: &serde_json::Value) -> Option<String> {
    let kernels = value["kernels"].as_array()?;
    let trace = kernels.iter().find(|k| k["kind"] == "trace")?;
    let block = kernels.iter().find(|k| k["kind"] == "block")?;
    let rows = |kernel: &serde_json::Value| -> Option<Vec<(String, f64, Option<f64>)>> {
        kernel["targets"]
            .as_array()?
            .iter()
            .map(|row| {
                let margin = row["margin"].as_f64()?;
                Some((
                    row["targets"].as_str()?.to_owned(),
                    row["adjusted"].as_f64()?,
                    (margin > 0.0).then(|| row["score"].as_f64()).flatten(),
                ))
            })
            .collect()
    };
    let (trace_rows, block_rows) = (rows(trace)?, rows(block)?);
    if trace_rows.len() != block_rows.len() {
        return None;
    }
    let best = |rows: &[(String, f64, Option<f64>)]| {
        rows.iter()
            .enumerate()
            .filter(|(_, (name, _, score))| name.starts_with("kd") && score.is_some())
            .min_by(|a, b| {
                a.1.2
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.1.2.unwrap_or(f64::INFINITY))
            })
            .map(|(index, _)| index)
    };
    let (trace_best, block_best) = (best(&trace_rows), best(&block_rows));
    let number = |v: f64| {
        if v.abs() < 10.0 {
            format!("{v:.3}")
        } else {
            format!("{v:.1}")
        }
    };
    let score = |score: Option<f64>, bold: bool| match score {
        Some(s) if bold => format!("**{}**", number(s)),
        Some(s) => number(s),
        None => "—".to_owned(),
    };
    let mut md = String::from(
        "| targets | trace: adjusted | block: adjusted | trace: score | block: score |\n|---|--:|--:|--:|--:|\n",
    );
    for (index, (t, b)) in trace_rows.iter().zip(&block_rows).enumerate() {
        let name = match t.0.as_str() {
            "random" => "random labels".to_owned(),
            other => match other.rsplit_once("T=") {
                Some((_, temperature)) if other.starts_with("kd") => {
                    format!("KD, T = {temperature}")
                }
                _ => other.to_owned(),
            },
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} |",
            number(t.1),
            number(b.1),
            score(t.2, trace_best == Some(index)),
            score(b.2, block_best == Some(index))
        );
    }
    let _ = write!(
        md,
        "\n{} inputs of {}, student {}, seed {}; block kernel {} × {}.\n",
        value["inputs"],
        value["split"].as_str()?,
        value["student"].as_str()?,
        value["seed"],
        block["dim"],
        block["dim"]
    );
    Some(md)
}

//! Markdown tables of supervision-complexity studies, for the documentation's generated
//! blocks ([`super::markdown`]): one study's targets (`complexity.json`), and the trace kernel
//! against the block kernel (the `trace_vs_block` example's output).

use std::fmt::Write as _;

use super::units::thousands;
use crate::complexity::study::report::{StudyReport, TargetSource};

/// Teacher checkpoints a complexity table shows one by one; more are thinned out.
const MAX_CHECKPOINT_ROWS: usize = 12;

/// Epochs 1, 2, 3, 5 times a power of ten, and 1 and 2 times one: 1, 2, 3, 5, 10, 20, 30,
/// 50, 100, …, the points a log-scaled curve needs.
fn is_round_epoch(epoch: usize) -> bool {
    let mut e = epoch;
    while e >= 10 && e.is_multiple_of(10) {
        e /= 10;
    }
    matches!(e, 1 | 2 | 3 | 5)
}

/// One row per set of targets of a supervision-complexity study: the adjusted complexity,
/// the same relative to one-hot labels (when the study measured them) and how often the
/// largest target is the label; then which student, teacher and subset it was. Beyond a
/// dozen teacher checkpoints, only round epochs and the last one get a row.
pub fn complexity_markdown(study: &StudyReport) -> String {
    let labels = study
        .targets
        .iter()
        .find(|row| row.source == TargetSource::Labels)
        .map(|row| row.measured.adjusted);
    let mut md = String::from(
        "| targets | adjusted complexity | vs labels | largest target is the label % |\n|---|--:|--:|--:|\n",
    );
    let checkpoints = study
        .targets
        .iter()
        .filter(|row| row.source == TargetSource::TeacherCheckpoint)
        .count();
    let last_epoch = study.targets.iter().filter_map(|row| row.epoch).max();
    let mut hidden = 0;
    for row in &study.targets {
        // A teacher with a checkpoint per epoch would give a page a row per epoch: beyond a
        // dozen, the epochs 1, 2, 3, 5, 10, 20, 50, 100, … and the last one tell the curve.
        if checkpoints > MAX_CHECKPOINT_ROWS
            && row.source == TargetSource::TeacherCheckpoint
            && !row
                .epoch
                .is_some_and(|e| is_round_epoch(e) || Some(e) == last_epoch)
        {
            hidden += 1;
            continue;
        }
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
    if hidden > 0 {
        let _ = writeln!(
            md,
            "\n{checkpoints} teacher checkpoints measured; {} shown, every one is in the raw file.",
            checkpoints - hidden
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

#[cfg(test)]
mod tests {
    use super::is_round_epoch;

    #[test]
    fn round_epochs_are_one_two_three_five_times_a_power_of_ten() {
        let round: Vec<usize> = (1..=120).filter(|&e| is_round_epoch(e)).collect();
        assert_eq!(round, [1, 2, 3, 5, 10, 20, 30, 50, 100]);
    }
}

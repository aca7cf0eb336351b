//! Markdown tables of text runs, for the documentation's generated blocks
//! ([`super::markdown`]): sentences per second, and the teacher against a reference
//! implementation's fine-tuning.

use std::fmt::Write as _;
use std::path::Path;

use super::methods_table::paired_difference;
use super::render::ReportError;
use super::results::{Results, Role, Summary};
use super::units::{significant, thousands};

/// One row of a text run's `text_speed` section. The section's type lives in `text::speed`,
/// which sits above this module (it imports the results types), so the few fields the table
/// needs are read here.
#[derive(serde::Deserialize)]
struct SpeedRowFields {
    name: String,
    params: usize,
    batch_1_per_s: f64,
    batch_256_per_s: f64,
}

/// The `text_speed` section's fields the table needs.
#[derive(serde::Deserialize)]
struct SpeedFields {
    threads: usize,
    budget_s: f64,
    seed: u64,
    models: Vec<SpeedRowFields>,
}

/// `12.3k/s`-style speeds (three significant figures).
fn per_second(value: f64) -> String {
    if value >= 1e4 {
        format!("{:.1}k/s", value / 1e3)
    } else if value >= 1e3 {
        format!("{:.2}k/s", value / 1e3)
    } else {
        format!("{value:.1}/s")
    }
}

/// The speed table of a text run (the `text_speed` section of `results.json`): each model's
/// sentences per second at batch 1 and 256, tokenizer included, and its ratio to the
/// teacher's (the first row).
pub fn text_speed_markdown(results_path: &Path) -> Result<String, ReportError> {
    let fail =
        |message: String| ReportError::Results(format!("{}: {message}", results_path.display()));
    let text = std::fs::read_to_string(results_path).map_err(|e| fail(e.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let section = value
        .get("text_speed")
        .ok_or_else(|| fail("no text_speed section".to_string()))?;
    let speed: SpeedFields =
        serde_json::from_value(section.clone()).map_err(|e| fail(format!("text_speed: {e}")))?;
    let teacher = speed
        .models
        .first()
        .ok_or_else(|| fail("text_speed: no models".into()))?;
    let ratio = |ours: f64, theirs: f64| {
        if theirs > 0.0 {
            format!("{}×", significant(ours / theirs, 3))
        } else {
            "—".to_string()
        }
    };
    let mut md = String::new();
    md.push_str("| model | params | batch 1 | vs teacher | batch 256 | vs teacher |\n");
    md.push_str("|---|--:|--:|--:|--:|--:|\n");
    for row in &speed.models {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            row.name,
            thousands(row.params as u64),
            per_second(row.batch_1_per_s),
            ratio(row.batch_1_per_s, teacher.batch_1_per_s),
            per_second(row.batch_256_per_s),
            ratio(row.batch_256_per_s, teacher.batch_256_per_s),
        );
    }
    let _ = write!(
        md,
        "\nSentences per second, tokenizer included, of seed {}'s models; {} threads, {} s of \
         timing per model and batch size after a warm-up batch.\n",
        speed.seed,
        speed.threads,
        significant(speed.budget_s, 3)
    );
    Ok(md)
}

/// One seed of a reference implementation's results file.
#[derive(serde::Deserialize)]
struct ReferenceSeed {
    seed: u64,
    pytorch: f64,
}

/// A reference implementation's results file (`bench/reference/finetune_rotten_tomatoes.py
/// --out`): the test accuracy of each seed, and of every repeated fine-tuning on each seed's
/// split (`--repeats`, with other torch seeds) when there are some.
#[derive(serde::Deserialize)]
struct ReferenceFile {
    seeds: Vec<ReferenceSeed>,
    #[serde(default)]
    repeats: Vec<ReferenceSeed>,
    #[serde(default)]
    torch: String,
}

/// The teacher's test accuracy per seed beside a reference implementation's, trained with the
/// same recipe on the same texts, with the mean ± std of each and their difference.
pub fn reference_markdown(results: &Results, reference_path: &Path) -> Result<String, ReportError> {
    let fail =
        |message: String| ReportError::Results(format!("{}: {message}", reference_path.display()));
    let text = std::fs::read_to_string(reference_path).map_err(|e| fail(e.to_string()))?;
    let reference: ReferenceFile = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let teacher = results
        .models
        .iter()
        .find(|m| m.role == Role::Teacher)
        .ok_or_else(|| fail("the results have no teacher".to_string()))?;
    let ours = &teacher.test.accuracy.per_seed;
    let mut md = String::new();
    md.push_str("| seed | apprentice % | PyTorch + transformers % |\n|--:|--:|--:|\n");
    let mut theirs = Vec::new();
    for (index, &seed) in results.seeds.iter().enumerate() {
        let row = reference
            .seeds
            .iter()
            .find(|r| r.seed == seed)
            .ok_or_else(|| fail(format!("no seed {seed}")))?;
        let own = ours.get(index).copied().unwrap_or(f64::NAN);
        theirs.push(row.pytorch);
        let _ = writeln!(
            md,
            "| {seed} | {:.2} | {:.2} |",
            100.0 * own,
            100.0 * row.pytorch
        );
    }
    let paired = paired_difference(ours, &theirs);
    let theirs = Summary::from_values(&theirs);
    let _ = writeln!(
        md,
        "| mean ± std | {} | {} |",
        &teacher.test.accuracy.percent_cell(2),
        &theirs.percent_cell(2)
    );
    let _ = write!(
        md,
        "\napprentice − PyTorch: {:+.2} points (PyTorch {}).\n",
        100.0 * (teacher.test.accuracy.mean - theirs.mean),
        if reference.torch.is_empty() {
            "version unknown"
        } else {
            &reference.torch
        }
    );
    if let Some(d) = paired.filter(|d| d.seeds > 1) {
        let _ = writeln!(
            md,
            "Paired by split: {:+.2} ± {:.2} points over {} splits, {} (paired t-test at 5%).",
            100.0 * d.mean,
            100.0 * d.std,
            d.seeds,
            d.verdict.word()
        );
    }
    let runs: Vec<f64> = reference.repeats.iter().map(|r| r.pytorch).collect();
    if runs.len() > reference.seeds.len() {
        // Each split's apprentice accuracy against the mean of PyTorch's fine-tunings on that
        // split: the pairing keeps the split's difficulty out of the spread, the mean takes
        // most of PyTorch's own draw noise out of it.
        let split_means: Vec<f64> = results
            .seeds
            .iter()
            .map(|&seed| {
                let on_split: Vec<f64> = reference
                    .repeats
                    .iter()
                    .filter(|r| r.seed == seed)
                    .map(|r| r.pytorch)
                    .collect();
                Summary::from_values(&on_split).mean
            })
            .collect();
        // A split without PyTorch runs makes a NaN mean: no line rather than a line of NaN.
        if let Some(d) =
            paired_difference(ours, &split_means).filter(|d| d.seeds > 1 && d.mean.is_finite())
        {
            let _ = writeln!(
                md,
                "Paired with the mean of PyTorch's fine-tunings on each split: {:+.2} ± {:.2} \
                 points over {} splits, {} (paired t-test at 5%).",
                100.0 * d.mean,
                100.0 * d.std,
                d.seeds,
                d.verdict.word()
            );
        }
        let all = Summary::from_values(&runs);
        let _ = writeln!(
            md,
            "PyTorch over {} fine-tunings ({} per split, other torch seeds): {} %; apprentice − \
             that mean: {:+.2} points.",
            runs.len(),
            runs.len() / reference.seeds.len().max(1),
            all.percent_cell(2),
            100.0 * (teacher.test.accuracy.mean - all.mean),
        );
    }
    Ok(md)
}

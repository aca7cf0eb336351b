//! The table of a run that compares many methods on one student: each model's test accuracy
//! with its per-seed values, and its difference from the scratch student and from plain KD,
//! paired by seed and judged against the seed noise, so that no page calls a tie a win.
//!
//! Differences are paired because every student of a seed shares its initial weights and data
//! order: the seed-to-seed swing they have in common cancels, and what is left is the method's
//! effect plus noise. A difference counts as a win or a loss only when a two-sided paired
//! t-test rejects "no difference" at the 5% level; otherwise the table says "tie".

use std::fmt::Write as _;

use super::results::{ModelResult, Results, Role, Summary};
use super::units::duration;

/// The method of the plain-KD row the second difference column refers to (the first such
/// row of a label fraction whose teacher taught on every input, else the first one).
const KD_METHOD: &str = "kd";

/// A paired difference `a − b` over seeds, in accuracy points, with its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedDifference {
    /// Mean of the per-seed differences, in the unit of the inputs.
    pub mean: f64,
    /// Sample standard deviation of the per-seed differences.
    pub std: f64,
    /// Number of seeds paired.
    pub seeds: usize,
    /// Whether the difference is outside the seed noise, and which way.
    pub verdict: Verdict,
}

/// What a paired difference says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first is better: the t-test rejects equality and the mean difference is positive.
    Better,
    /// The first is worse.
    Worse,
    /// Inside the seed noise (or too few seeds to tell).
    Tie,
}

impl Verdict {
    /// The word the tables print.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Tie => "tie",
        }
    }
}

/// The two-sided 5% critical value of Student's t with `df` degrees of freedom (`df ≥ 1`),
/// from the standard table; beyond 30 degrees the normal value 1.96 is within 2%.
fn t_critical_95(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    TABLE.get(df.wrapping_sub(1)).copied().unwrap_or(1.96)
}

/// `a − b` seed by seed, summarised and judged; `None` when the two do not have the same
/// number of seeds (they come from different runs and cannot be paired).
pub fn paired_difference(a: &[f64], b: &[f64]) -> Option<PairedDifference> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let differences: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let summary = Summary::from_values(&differences);
    let n = differences.len();
    let verdict = if n < 2 {
        Verdict::Tie
    } else {
        let standard_error = summary.std / (n as f64).sqrt();
        let t = summary.mean.abs() / standard_error;
        // Identical differences on every seed (standard error 0) give t = ∞ for a non-zero
        // mean: a difference that never varies is no noise. A zero mean gives NaN: a tie.
        if t > t_critical_95(n - 1) {
            if summary.mean > 0.0 {
                Verdict::Better
            } else {
                Verdict::Worse
            }
        } else {
            Verdict::Tie
        }
    };
    Some(PairedDifference {
        mean: summary.mean,
        std: summary.std,
        seeds: n,
        verdict,
    })
}

/// A difference cell: `+0.72 ± 0.15 better`, `−2.31 ± 0.10 worse`, in points from accuracy fractions.
fn difference_cell(model: &ModelResult, reference: Option<&ModelResult>) -> String {
    // A model of another architecture (a teacher assistant) is no paired comparison.
    let Some(reference) =
        reference.filter(|r| r.name != model.name && r.architecture == model.architecture)
    else {
        return if reference.is_some_and(|r| r.name == model.name) {
            "—".to_string()
        } else {
            String::new()
        };
    };
    match paired_difference(
        &model.test.accuracy.per_seed,
        &reference.test.accuracy.per_seed,
    ) {
        Some(d) => {
            let points = d.mean * 100.0;
            // A typographic minus, as the rest of the documentation writes it.
            let sign = if points < 0.0 { "−" } else { "+" };
            format!(
                "{sign}{:.2} ± {:.2} {}",
                points.abs(),
                d.std * 100.0,
                d.verdict.word()
            )
        }
        None => String::new(),
    }
}

/// The methods table of `results` as Markdown: one row per model in results order, grouped
/// by label fraction, with test accuracy (mean ± std and per seed), the paired difference
/// from the scratch student and from the `kd` student of the same fraction and architecture
/// with its verdict,
/// epochs trained, and mean training time.
pub fn methods_markdown(results: &Results) -> String {
    let mut md = String::from(
        "| model | method | architecture | test accuracy % | per seed | vs scratch (points) \
         | vs kd (points) | epochs | train time |\n|---|---|---|--:|---|--:|--:|--:|--:|\n",
    );
    for Comparison {
        group, scratch, kd, ..
    } in comparisons(results)
    {
        for model in group {
            let per_seed: Vec<String> = model
                .test
                .accuracy
                .per_seed
                .iter()
                .map(|a| format!("{:.2}", a * 100.0))
                .collect();
            let (vs_scratch, vs_kd) = if model.role == Role::Teacher {
                (String::new(), String::new())
            } else {
                (
                    difference_cell(model, reference_for(&scratch, model)),
                    difference_cell(model, reference_for(&kd, model)),
                )
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                model.name,
                model.method,
                model.architecture,
                model.test.accuracy.percent_cell(2),
                per_seed.join(", "),
                vs_scratch,
                vs_kd,
                epochs_cell(&model.epochs_run),
                duration(model.train_time_s.mean),
            );
        }
    }
    let seeds: Vec<String> = results.seeds.iter().map(u64::to_string).collect();
    let _ = write!(
        md,
        "\n{}: {} ({} classes); test accuracy mean ± sample standard deviation over seeds {}. \
         Differences are paired by seed (mean ± std of the per-seed differences); \"better\" \
         or \"worse\" only where a two-sided paired t-test at 5% rejects equality, else \
         \"tie\". Train time is the mean wall time per seed on the machine that ran it.\n",
        results.experiment,
        results.data.name,
        results.data.num_classes,
        seeds.join(", "),
    );
    md.push('\n');
    md.push_str(&verdicts_markdown(results));
    md
}

/// The students of one label fraction and the rows they are compared with: every scratch
/// student, and every plain-KD student, each paired with the students of its architecture.
struct Comparison<'a> {
    fraction: f64,
    group: Vec<&'a ModelResult>,
    scratch: Vec<&'a ModelResult>,
    kd: Vec<&'a ModelResult>,
}

/// The reference among `rows` for `model`: the first of its architecture.
fn reference_for<'a>(rows: &[&'a ModelResult], model: &ModelResult) -> Option<&'a ModelResult> {
    rows.iter()
        .copied()
        .find(|r| r.architecture == model.architecture)
}

/// One [`Comparison`] per label fraction, in results order.
fn comparisons(results: &Results) -> Vec<Comparison<'_>> {
    let mut fractions: Vec<f64> = Vec::new();
    for model in &results.models {
        if !fractions
            .iter()
            .any(|f| f.total_cmp(&model.label_fraction).is_eq())
        {
            fractions.push(model.label_fraction);
        }
    }
    fractions
        .into_iter()
        .map(|fraction| {
            let group: Vec<&ModelResult> = results
                .models
                .iter()
                .filter(|m| m.label_fraction.total_cmp(&fraction).is_eq())
                .collect();
            let scratch: Vec<&ModelResult> = group
                .iter()
                .copied()
                .filter(|m| m.role == Role::Scratch)
                .collect();
            // KD on every input first, so that an architecture with both is compared with
            // it; KD on the labelled inputs where a fraction has only that.
            let mut kd: Vec<&ModelResult> = group
                .iter()
                .copied()
                .filter(|m| m.method == KD_METHOD)
                .collect();
            kd.sort_by_key(|m| m.transfer.as_deref() == Some("labelled"));
            Comparison {
                fraction,
                group,
                scratch,
                kd,
            }
        })
        .collect()
}

/// The verdicts of every student against scratch and against KD, one bullet per label
/// fraction and reference: what a page says in words, generated so that it cannot go stale.
pub fn verdicts_markdown(results: &Results) -> String {
    let mut md = String::new();
    for comparison in comparisons(results) {
        // One line per reference row that is some architecture's reference.
        let references = comparison.scratch.iter().chain(&comparison.kd).filter(|r| {
            let rows = if r.role == Role::Scratch {
                &comparison.scratch
            } else {
                &comparison.kd
            };
            reference_for(rows, r).is_some_and(|first| first.name == r.name)
        });
        for reference in references {
            let line = verdict_summary(&comparison.group, comparison.fraction, Some(reference));
            if !line.is_empty() {
                let _ = writeln!(md, "- {line}");
            }
        }
    }
    md
}

/// One line that sorts the students of a label fraction by their verdict against
/// `reference`: ``Against `kd` (all labels): better: dist, dml; tie: …``.
fn verdict_summary(
    group: &[&ModelResult],
    fraction: f64,
    reference: Option<&ModelResult>,
) -> String {
    let Some(reference) = reference else {
        return String::new();
    };
    let mut sorted: [(Verdict, Vec<&str>); 3] = [
        (Verdict::Better, Vec::new()),
        (Verdict::Tie, Vec::new()),
        (Verdict::Worse, Vec::new()),
    ];
    for model in group {
        if model.role == Role::Teacher
            || model.name == reference.name
            || model.architecture != reference.architecture
        {
            continue;
        }
        if let Some(d) = paired_difference(
            &model.test.accuracy.per_seed,
            &reference.test.accuracy.per_seed,
        ) {
            for (verdict, names) in sorted.iter_mut() {
                if *verdict == d.verdict {
                    names.push(&model.name);
                }
            }
        }
    }
    // A reference nothing is compared with (the only student of its architecture) says
    // nothing.
    if sorted.iter().all(|(_, names)| names.is_empty()) {
        return String::new();
    }
    let parts: Vec<String> = sorted
        .iter()
        .map(|(verdict, names)| {
            let list = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            format!("{}: {list}", verdict.word())
        })
        .collect();
    let labels = if fraction >= 1.0 {
        "all labels".to_string()
    } else {
        format!(
            "{}% of labels",
            super::units::significant(fraction * 100.0, 3)
        )
    };
    format!(
        "Against `{}` ({labels}): {}.",
        reference.name,
        parts.join("; ")
    )
}

/// Epochs trained: one number when every seed trained as many, else the mean.
fn epochs_cell(epochs: &Summary) -> String {
    if epochs.std == 0.0 {
        format!("{}", epochs.mean.round() as i64)
    } else {
        format!("{:.1}", epochs.mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_gain_on_every_seed_is_better() {
        let d = paired_difference(&[0.90, 0.91, 0.92], &[0.89, 0.90, 0.91]).unwrap();
        assert_eq!(d.verdict, Verdict::Better);
        assert!((d.mean - 0.01).abs() < 1e-12);
    }

    #[test]
    fn a_gain_smaller_than_its_noise_is_a_tie() {
        // Differences +0.3, −0.1, +0.2 points: mean 0.13, std 0.21, t = 1.1 < 4.30.
        let d = paired_difference(&[0.873, 0.869, 0.872], &[0.870, 0.870, 0.870]).unwrap();
        assert_eq!(d.verdict, Verdict::Tie);
    }

    #[test]
    fn a_clear_loss_is_worse() {
        // Differences −2.0, −2.2, −1.9 points: t = 25 > 4.30.
        let d = paired_difference(&[0.850, 0.848, 0.851], &[0.870, 0.870, 0.870]).unwrap();
        assert_eq!(d.verdict, Verdict::Worse);
    }

    #[test]
    fn the_t_test_uses_the_critical_value_of_its_degrees_of_freedom() {
        // Differences 1, 2, 3: mean 2, std 1, t = 2·√3 = 3.46: significant with 30 degrees
        // of freedom (2.04), not with 2 (4.30).
        let d = paired_difference(&[1.0, 2.0, 3.0], &[0.0, 0.0, 0.0]).unwrap();
        assert_eq!(d.verdict, Verdict::Tie);
        assert_eq!(t_critical_95(2), 4.303);
        assert_eq!(t_critical_95(100), 1.96);
    }

    #[test]
    fn one_seed_or_unpaired_runs_never_claim_a_difference() {
        assert_eq!(
            paired_difference(&[0.9], &[0.8]).unwrap().verdict,
            Verdict::Tie
        );
        assert!(paired_difference(&[0.9, 0.8], &[0.8]).is_none());
        assert_eq!(
            paired_difference(&[0.9, 0.8], &[0.9, 0.8]).unwrap().verdict,
            Verdict::Tie
        );
    }
}

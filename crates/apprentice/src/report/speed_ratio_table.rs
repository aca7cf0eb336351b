//! Speed against a reference implementation, measured in one run of a benchmark script
//! (`bench/bert_vs_torch.sh OUT=FILE`): one row per measure, both throughputs and their ratio.
//! Where the script timed both sides in several alternating rounds, the ratio is the median of
//! the rounds' ratios, given with the lowest and highest of them and called a tie when the
//! rounds fall on both sides of 1.

use std::fmt::Write as _;

use serde::Deserialize;

use super::units::significant;

/// The raw file a benchmark script writes.
#[derive(Debug, Clone, Deserialize)]
pub struct SpeedRatios {
    /// The script that measured.
    pub benchmark: String,
    /// The model timed.
    pub model: String,
    /// CPU model and core count.
    pub machine: String,
    /// Threads given to both sides (to the reference alone where `apprentice_threads` is set).
    pub threads: usize,
    /// Threads apprentice ran on, where it differs from the reference's (the NTK runs on one).
    #[serde(default)]
    pub apprentice_threads: Option<usize>,
    /// The reference implementation and its version (`torch 2.15.0`).
    pub reference: String,
    /// Load average (1, 5, 15 minutes) before the measurements.
    pub load_average_before: String,
    /// Load average after them.
    pub load_average_after: String,
    /// The inputs, in words.
    pub workload: String,
    /// The column name of apprentice's side (`apprentice` when absent; `after` where two
    /// builds of apprentice are compared).
    #[serde(default = "default_label")]
    pub label: String,
    /// The column name of the reference's side (`PyTorch` when absent).
    #[serde(default = "default_reference_label")]
    pub reference_label: String,
    /// Alternating rounds of both sides (absent in files of a single round).
    #[serde(default)]
    pub rounds: Option<usize>,
    /// The measures.
    pub rows: Vec<SpeedRow>,
}

fn default_label() -> String {
    "apprentice".into()
}

fn default_reference_label() -> String {
    "PyTorch".into()
}

/// One measure on both sides.
#[derive(Debug, Clone, Deserialize)]
pub struct SpeedRow {
    /// What was timed (`encoder inference, batch 64`).
    pub measure: String,
    /// Its unit (`sentences/s`).
    pub unit: String,
    /// apprentice's throughput (the median over rounds, where there are rounds).
    pub apprentice: f64,
    /// The reference's throughput (likewise).
    pub reference: f64,
    /// apprentice / reference in each round; empty in files of a single round.
    #[serde(default)]
    pub ratios: Vec<f64>,
}

impl SpeedRow {
    /// apprentice / reference: the median of the rounds' ratios, or the one ratio.
    pub fn ratio(&self) -> f64 {
        if self.ratios.is_empty() {
            return self.apprentice / self.reference;
        }
        let mut sorted = self.ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        }
    }

    /// The lowest and highest of the rounds' ratios, when there are rounds.
    pub fn ratio_range(&self) -> Option<(f64, f64)> {
        let low = self.ratios.iter().copied().reduce(f64::min)?;
        let high = self.ratios.iter().copied().reduce(f64::max)?;
        Some((low, high))
    }
}

/// Parses the raw file; the message names it (`name`).
pub fn parse_speed_ratios(text: &str, name: &str) -> Result<SpeedRatios, String> {
    let ratios: SpeedRatios = serde_json::from_str(text)
        .map_err(|e| format!("{name}: not a speed-ratio file of a benchmark script: {e}"))?;
    if let Some(row) = ratios
        .rows
        .iter()
        .find(|r| !(r.apprentice > 0.0 && r.reference > 0.0))
    {
        return Err(format!(
            "{name}: {}: expected positive throughputs, found {} and {}",
            row.measure, row.apprentice, row.reference
        ));
    }
    if let Some(row) = ratios
        .rows
        .iter()
        .find(|r| r.ratios.iter().any(|&q| !(q.is_finite() && q > 0.0)))
    {
        return Err(format!(
            "{name}: {}: expected positive finite ratios, found {:?}",
            row.measure, row.ratios
        ));
    }
    Ok(ratios)
}

/// One row per measure: apprentice's and the reference's throughput, and apprentice /
/// reference (above 1: apprentice is faster); with rounds, also the lowest and highest ratio and
/// whether apprentice was faster in every round, slower in every round, or neither (a tie).
/// Then what ran where.
pub fn speed_ratios_markdown(ratios: &SpeedRatios) -> String {
    let with_rounds = ratios.rows.iter().any(|r| !r.ratios.is_empty());
    let (ours, theirs) = (&ratios.label, &ratios.reference_label);
    let mut md = format!("| measure | unit | {ours} | {theirs} | {ours} / {theirs} |");
    md.push_str(if with_rounds {
        " lowest – highest | verdict |\n|---|---|--:|--:|--:|--:|---|\n"
    } else {
        "\n|---|---|--:|--:|--:|\n"
    });
    for row in &ratios.rows {
        let _ = write!(
            md,
            "| {} | {} | {} | {} | {:.2}× |",
            row.measure,
            row.unit,
            significant(row.apprentice, 3),
            significant(row.reference, 3),
            row.ratio()
        );
        if with_rounds {
            let _ = match row.ratio_range() {
                Some((low, high)) => write!(md, " {low:.2}–{high:.2}× | {} |", verdict(low, high)),
                None => write!(md, " – | – |"),
            };
        }
        md.push('\n');
    }
    let rounds = match ratios.rounds {
        Some(n) if with_rounds => format!(
            "; {n} rounds, the two sides taking turns (throughputs are medians over the rounds, \
             the ratio the median of the rounds' ratios)"
        ),
        _ => String::new(),
    };
    let threads = match ratios.apprentice_threads {
        Some(ours) if ours != ratios.threads => {
            format!(
                "apprentice on {ours} thread(s), the reference on {}",
                ratios.threads
            )
        }
        _ => format!("{} threads on both sides", ratios.threads),
    };
    let _ = write!(
        md,
        "\n{} on {}: {threads}, against {}{rounds}; load average {} before, {} after ({}).\n",
        ratios.model,
        ratios.workload,
        ratios.reference,
        ratios.load_average_before,
        ratios.load_average_after,
        ratios.machine,
    );
    md
}

/// How the rounds compare: faster or slower in every round, else a tie.
fn verdict(low: f64, high: f64) -> &'static str {
    if low > 1.0 {
        "faster in every round"
    } else if high < 1.0 {
        "slower in every round"
    } else {
        "a tie"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = r#"{"benchmark": "b.sh", "model": "m", "machine": "cpu, 2 cores",
        "threads": 2, "reference": "torch 2", "load_average_before": "0.1 0.2 0.3",
        "load_average_after": "1.0 0.5 0.4", "workload": "64 documents",
        "rows": [{"measure": "fine-tuning", "unit": "steps/s", "apprentice": 0.5,
                  "reference": 0.25}]}"#;

    #[test]
    fn each_measure_is_a_row_with_its_ratio() {
        let md = speed_ratios_markdown(&parse_speed_ratios(RAW, "raw.json").unwrap());
        assert!(
            md.contains("| fine-tuning | steps/s | 0.5 | 0.25 | 2.00× |"),
            "{md}"
        );
        assert!(md.contains("load average 0.1 0.2 0.3 before"), "{md}");
        assert!(md.contains(": 2 threads on both sides, against"), "{md}");
        let one = RAW.replace(
            r#""threads": 2,"#,
            r#""threads": 2, "apprentice_threads": 1,"#,
        );
        let md = speed_ratios_markdown(&parse_speed_ratios(&one, "raw.json").unwrap());
        assert!(
            md.contains(": apprentice on 1 thread(s), the reference on 2, against torch 2"),
            "{md}"
        );
        assert!(md.starts_with("| measure | unit | apprentice | PyTorch | apprentice / PyTorch |"));
    }

    #[test]
    fn two_builds_name_their_columns() {
        let builds = RAW.replace(
            r#""reference": "torch 2","#,
            r#""reference": "commit abc", "label": "after", "reference_label": "before","#,
        );
        let md = speed_ratios_markdown(&parse_speed_ratios(&builds, "raw.json").unwrap());
        assert!(
            md.starts_with("| measure | unit | after | before | after / before |"),
            "{md}"
        );
        assert!(
            md.contains("| fine-tuning | steps/s | 0.5 | 0.25 | 2.00× |"),
            "{md}"
        );
    }

    #[test]
    fn rounds_give_the_median_ratio_its_range_and_a_verdict() {
        let rounds = RAW.replace(
            r#""reference": 0.25}]"#,
            r#""reference": 0.25, "ratios": [1.9, 2.2, 2.0]},
               {"measure": "batch 1", "unit": "sentences/s", "apprentice": 30.0,
                "reference": 31.0, "ratios": [0.9, 1.1, 0.95, 1.05]},
               {"measure": "batch 64", "unit": "sentences/s", "apprentice": 30.0,
                "reference": 40.0, "ratios": [0.7, 0.8]}], "rounds": 3"#,
        );
        let md = speed_ratios_markdown(&parse_speed_ratios(&rounds, "raw.json").unwrap());
        for line in [
            "| fine-tuning | steps/s | 0.5 | 0.25 | 2.00× | 1.90–2.20× | faster in every round |",
            "| batch 1 | sentences/s | 30 | 31 | 1.00× | 0.90–1.10× | a tie |",
            "| batch 64 | sentences/s | 30 | 40 | 0.75× | 0.70–0.80× | slower in every round |",
            "3 rounds, the two sides taking turns",
        ] {
            assert!(md.contains(line), "{line}\n{md}");
        }
        let negative = rounds.replace("[0.7, 0.8]", "[0.7, -0.8]");
        let error = parse_speed_ratios(&negative, "raw.json").unwrap_err();
        assert!(
            error.contains("raw.json: batch 64: expected positive finite ratios"),
            "{error}"
        );
    }

    #[test]
    fn a_zero_throughput_or_another_file_is_refused() {
        let zero = RAW.replace("0.25", "0.0");
        let error = parse_speed_ratios(&zero, "raw.json").unwrap_err();
        assert!(
            error.contains("raw.json: fine-tuning: expected positive"),
            "{error}"
        );
        assert!(
            parse_speed_ratios("{}", "raw.json")
                .unwrap_err()
                .starts_with("raw.json")
        );
    }
}

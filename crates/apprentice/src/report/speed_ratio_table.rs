//! Speed against a reference implementation, measured in one run of a benchmark script
//! (`bench/bert_vs_torch.sh OUT=FILE`): one row per measure, both throughputs and their ratio.

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
    /// Threads given to both sides.
    pub threads: usize,
    /// The reference implementation and its version (`torch 2.15.0`).
    pub reference: String,
    /// Load average (1, 5, 15 minutes) before the measurements.
    pub load_average_before: String,
    /// Load average after them.
    pub load_average_after: String,
    /// The inputs, in words.
    pub workload: String,
    /// The measures.
    pub rows: Vec<SpeedRow>,
}

/// One measure on both sides.
#[derive(Debug, Clone, Deserialize)]
pub struct SpeedRow {
    /// What was timed (`encoder inference, batch 64`).
    pub measure: String,
    /// Its unit (`sentences/s`).
    pub unit: String,
    /// apprentice's throughput.
    pub apprentice: f64,
    /// The reference's throughput.
    pub reference: f64,
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
    Ok(ratios)
}

/// One row per measure: apprentice's and the reference's throughput, and apprentice /
/// reference (above 1: apprentice is faster), then what ran where.
pub fn speed_ratios_markdown(ratios: &SpeedRatios) -> String {
    let mut md = String::from("| measure | unit | apprentice | PyTorch | apprentice / PyTorch |\n");
    md.push_str("|---|---|--:|--:|--:|\n");
    for row in &ratios.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.2}× |",
            row.measure,
            row.unit,
            significant(row.apprentice, 3),
            significant(row.reference, 3),
            row.apprentice / row.reference
        );
    }
    let _ = write!(
        md,
        "\n{} on {}: {} threads on both sides, against {}; load average {} before, {} after \
         ({}).\n",
        ratios.model,
        ratios.workload,
        ratios.threads,
        ratios.reference,
        ratios.load_average_before,
        ratios.load_average_after,
        ratios.machine,
    );
    md
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

//! `tune.json`, what `apprentice tune --verify --out FILE` writes: the temperature
//! `temperature = "auto"` chose on each seed, and the test accuracy of a KD student trained at
//! every candidate; and its Markdown table, where the choice ranks among the candidates.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::results::ModelResult;

/// Version of the `tune.json` layout.
pub const TUNE_SCHEMA_VERSION: u32 = 1;

/// The whole `tune.json` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TuneResults {
    /// See [`TUNE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Name of the experiment.
    pub experiment: String,
    /// Seeds; every per-seed list follows this order.
    pub seeds: Vec<u64>,
    /// What the rule measured and chose on each seed, as the library's `TemperatureChoice`
    /// serialises it (`seed`, `chosen`, `candidates`, …).
    pub choices: Vec<serde_json::Value>,
    /// One KD run per candidate temperature over the same seeds.
    pub grid: Vec<GridPoint>,
}

/// The KD students trained at one temperature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GridPoint {
    /// The temperature.
    pub temperature: f64,
    /// Its KD students' results (one per label fraction and transfer), over the seeds.
    pub models: Vec<ModelResult>,
}

impl TuneResults {
    /// The temperatures chosen, one per seed, in seed order.
    pub fn chosen(&self) -> Vec<f64> {
        self.choices
            .iter()
            .filter_map(|c| c.get("chosen").and_then(serde_json::Value::as_f64))
            .collect()
    }
}

/// Parses `text` (the file `name`) as a `tune.json`; the error names the file.
pub fn parse_tune(text: &str, name: &str) -> Result<TuneResults, String> {
    let results: TuneResults =
        serde_json::from_str(text).map_err(|e| format!("{name}: not a tune.json: {e}"))?;
    if results.schema_version != TUNE_SCHEMA_VERSION {
        return Err(format!(
            "{name}: expected a tune.json of schema version {TUNE_SCHEMA_VERSION}, found {}",
            results.schema_version
        ));
    }
    Ok(results)
}

/// One row per KD student (label fraction and transfer): its test accuracy (mean over seeds)
/// at every candidate, the best candidate, and the rank of each chosen temperature.
pub fn tune_markdown(results: &TuneResults) -> String {
    let chosen = results.chosen();
    let temperatures: Vec<f64> = results.grid.iter().map(|p| p.temperature).collect();
    let mut md = String::from("| student | best |");
    for t in &temperatures {
        let mark = if chosen.contains(t) { " (chosen)" } else { "" };
        let _ = write!(md, " T = {t}{mark} |");
    }
    md.push_str(" rank of the choice |\n|---|---|");
    md.push_str(&"--:|".repeat(temperatures.len() + 1));
    md.push('\n');
    let mut names: Vec<&str> = Vec::new();
    for point in &results.grid {
        for model in &point.models {
            if !names.contains(&model.name.as_str()) {
                names.push(&model.name);
            }
        }
    }
    for name in names {
        let accuracies: Vec<Option<f64>> = results
            .grid
            .iter()
            .map(|p| {
                p.models
                    .iter()
                    .find(|m| m.name == name)
                    .map(|m| m.test.accuracy.mean)
            })
            .collect();
        let mut ranked: Vec<(f64, f64)> = temperatures
            .iter()
            .zip(&accuracies)
            .filter_map(|(t, a)| a.map(|a| (*t, a)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let best = ranked
            .first()
            .map_or("—".to_string(), |(t, _)| format!("T = {t}"));
        let cells: Vec<String> = accuracies
            .iter()
            .map(|a| a.map_or("—".to_string(), |a| format!("{:.2}", a * 100.0)))
            .collect();
        let mut distinct = chosen.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let ranks: Vec<String> = distinct
            .iter()
            .filter_map(|c| ranked.iter().position(|(t, _)| t == c))
            .map(|r| format!("{} of {}", r + 1, ranked.len()))
            .collect();
        let _ = writeln!(
            md,
            "| {name} | {best} | {} | {} |",
            cells.join(" | "),
            ranks.join(", ")
        );
    }
    let per_seed: Vec<String> = results
        .seeds
        .iter()
        .zip(&chosen)
        .map(|(s, t)| format!("seed {s}: T = {t}"))
        .collect();
    let _ = write!(
        md,
        "\n{}: test accuracy % of KD trained at each candidate temperature, mean over seeds {}; \
         chosen by `temperature = \"auto\"`: {}.\n",
        results.experiment,
        results
            .seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        per_seed.join(", ")
    );
    md
}

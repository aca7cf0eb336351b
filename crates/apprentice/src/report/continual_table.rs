//! The Markdown table of a continual run's `continual.json`, for the documentation's generated
//! blocks: the shared stage-1 model in one line, then every variant after each later stage.

use std::fmt::Write as _;

use super::continual_results::{CONTINUAL_SCHEMA_VERSION, ContinualResults, StageResult};
use super::results::Summary;
use super::units::thousands;

/// Parses `text` (the file `name`) as a `continual.json`; the error names the file.
pub fn parse_continual(text: &str, name: &str) -> Result<ContinualResults, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{name}: not JSON: {e}"))?;
    let version = value.get("schema_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(CONTINUAL_SCHEMA_VERSION)) {
        return Err(format!(
            "{name}: expected a continual.json of schema version {CONTINUAL_SCHEMA_VERSION}, \
             found {}",
            version.map_or("none".to_string(), |v| v.to_string())
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("{name}: not a continual.json: {e}"))
}

/// `mean ± std` in % and the per-seed values, or `—`.
fn percent(summary: Option<&Summary>) -> String {
    summary.map_or("—".to_string(), |s| s.format(2, 100.0))
}

/// The per-seed values of `summary` in %, comma-separated.
fn per_seed(summary: Option<&Summary>) -> String {
    summary.map_or(String::new(), |s| {
        s.per_seed
            .iter()
            .map(|v| format!("{:.2}", v * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The continual run as Markdown: the stage-1 accuracy every variant shares, then for each
/// later stage a table with one row per variant (training images, old-class accuracy with its
/// per-seed values, new and all accuracy, forgetting in points, and, when the stages have
/// different classes, the same old accuracy and forgetting when told the stage).
pub fn continual_markdown(results: &ContinualResults) -> String {
    let mut md = String::new();
    let first = results.variants.first().and_then(|v| v.stages.first());
    if let Some(first) = first {
        let _ = writeln!(
            md,
            "After stage 1 (every variant shares its model): {}% ({}).",
            percent(Some(&first.new)),
            per_seed(Some(&first.new))
        );
    }
    // Told-stage numbers equal the others when every stage has the same classes.
    let told = results
        .stages
        .windows(2)
        .any(|w| w[0].classes != w[1].classes);
    for (index, stage) in results.stages.iter().enumerate().skip(1) {
        let _ = write!(
            md,
            "\nAfter stage {}:\n\n| variant | training images | old % | per seed | new % | all % \
             | forgetting (points) |",
            stage.stage
        );
        md.push_str(if told {
            " old, told stage % | forgetting, told stage |\n|---|--:|--:|---|--:|--:|--:|--:|--:|\n"
        } else {
            "\n|---|--:|--:|---|--:|--:|--:|\n"
        });
        for variant in &results.variants {
            let Some(result) = variant.stages.get(index) else {
                continue;
            };
            let _ = write!(md, "{}", row(&variant.name, result));
            if told {
                let _ = write!(
                    md,
                    " {} | {} |",
                    percent(result.old_task_aware.as_ref()),
                    percent(result.forgetting_task_aware.as_ref())
                );
            }
            md.push('\n');
        }
    }
    let seeds: Vec<String> = results.seeds.iter().map(u64::to_string).collect();
    let _ = write!(
        md,
        "\n{}: {} ({} classes), student {} ({} parameters); test accuracy mean ± sample \
         standard deviation over seeds {}. Old: the earlier stages' test images, new: this \
         stage's, all: both, predicting among every class seen so far; forgetting: each earlier \
         stage's best accuracy minus now, in points.\n",
        results.experiment,
        results.data.name,
        results.data.num_classes,
        results.architecture,
        thousands(results.params as u64),
        seeds.join(", ")
    );
    md
}

/// A variant's row up to its forgetting column.
fn row(name: &str, result: &StageResult) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} |",
        thousands(result.train_samples as u64),
        percent(result.old.as_ref()),
        per_seed(result.old.as_ref()),
        percent(Some(&result.new)),
        percent(Some(&result.all)),
        percent(result.forgetting.as_ref()),
    )
}

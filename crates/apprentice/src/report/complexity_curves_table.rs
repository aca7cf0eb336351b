//! The supervision complexity measured along each student's training (`[complexity]
//! every_epochs`), as a Markdown table for the documentation's generated blocks: one row per
//! student and set of targets, one column per measured epoch, the mean over seeds.
//!
//! The measurements sit in each curve of `results.json` under `supervision_complexity_targets`
//! (`epochs`, `own`, `adjusted.<target>`), written by the runner's probe; this reads the JSON
//! document itself, as the other optional sections are read, so that a file without them is
//! still a valid results file.

use std::fmt::Write as _;

use serde_json::Value;

/// The key of a curve's measurements.
const KEY: &str = "supervision_complexity_targets";

/// One student's measurements of one set of targets, per seed.
struct Track {
    student: String,
    target: String,
    own: bool,
    epochs: Vec<u64>,
    per_seed: Vec<Vec<f64>>,
}

/// The tracks of every student of `document`, in results order; an error when no curve has
/// any.
fn tracks(document: &Value) -> Result<Vec<Track>, String> {
    let mut tracks: Vec<Track> = Vec::new();
    let models = document
        .get("models")
        .and_then(Value::as_array)
        .ok_or("no models")?;
    for model in models {
        let name = model.get("name").and_then(Value::as_str).unwrap_or("?");
        let curves = model.get("curves").and_then(Value::as_array);
        for curve in curves.into_iter().flatten() {
            let Some(measured) = curve.get(KEY) else {
                continue;
            };
            let epochs: Vec<u64> = measured
                .get("epochs")
                .and_then(Value::as_array)
                .map(|e| e.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let own = measured.get("own").and_then(Value::as_str).unwrap_or("");
            let Some(adjusted) = measured.get("adjusted").and_then(Value::as_object) else {
                continue;
            };
            for (target, values) in adjusted {
                // Missing measurements are null in the file; NaN keeps their place.
                let values: Vec<f64> = values
                    .as_array()
                    .map(|v| v.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
                    .unwrap_or_default();
                match tracks
                    .iter_mut()
                    .find(|t| t.student == name && &t.target == target)
                {
                    Some(track) => track.per_seed.push(values),
                    None => tracks.push(Track {
                        student: name.to_string(),
                        target: target.clone(),
                        own: target == own,
                        epochs: epochs.clone(),
                        per_seed: vec![values],
                    }),
                }
            }
        }
    }
    if tracks.is_empty() {
        return Err(format!(
            "no curve has `{KEY}` (run with a [complexity] every_epochs setting)"
        ));
    }
    Ok(tracks)
}

/// The table: `| student | targets | epoch 0 | 5 | … |`, adjusted complexity as the mean over
/// seeds with two decimals, the student's own targets marked; one table per distinct list of
/// measured epochs.
pub fn complexity_curves_markdown(document: &Value) -> Result<String, String> {
    let tracks = tracks(document)?;
    let mut md = String::new();
    let mut schedules: Vec<&Vec<u64>> = Vec::new();
    for track in &tracks {
        if !schedules.contains(&&track.epochs) {
            schedules.push(&track.epochs);
        }
    }
    for epochs in schedules {
        if !md.is_empty() {
            md.push('\n');
        }
        let columns: Vec<String> = epochs
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if i == 0 {
                    format!("epoch {e}")
                } else {
                    e.to_string()
                }
            })
            .collect();
        let _ = writeln!(
            md,
            "| student | targets | {} |\n|---|---|{}",
            columns.join(" | "),
            "--:|".repeat(columns.len())
        );
        for track in tracks.iter().filter(|t| &t.epochs == epochs) {
            let cells: Vec<String> = (0..epochs.len())
                .map(|i| {
                    let values: Vec<f64> = track
                        .per_seed
                        .iter()
                        .filter_map(|seed| seed.get(i).copied())
                        .filter(|v| v.is_finite())
                        .collect();
                    if values.is_empty() {
                        "—".to_string()
                    } else {
                        format!("{:.2}", values.iter().sum::<f64>() / values.len() as f64)
                    }
                })
                .collect();
            let own = if track.own { " (its targets)" } else { "" };
            let _ = writeln!(
                md,
                "| {} | {}{own} | {} |",
                track.student,
                track.target,
                cells.join(" | ")
            );
        }
    }
    let seeds = tracks.iter().map(|t| t.per_seed.len()).max().unwrap_or(0);
    let _ = write!(
        md,
        "\nAdjusted supervision complexity with each student's own kernel at that epoch (epoch \
         0: the initial weights), mean over {seeds} seed{}.\n",
        if seeds == 1 { "" } else { "s" }
    );
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_over_seeds_is_shown_per_epoch_and_own_targets_are_marked() {
        let curve = |labels: [f64; 2]| {
            serde_json::json!({
                KEY: {"epochs": [0, 5], "own": "labels",
                      "adjusted": {"labels": labels, "random": [3.0, 4.0]}}
            })
        };
        let document = serde_json::json!({"models": [
            {"name": "teacher", "curves": [{}]},
            {"name": "scratch", "curves": [curve([1.0, 2.0]), curve([2.0, 3.0])]}
        ]});
        let md = complexity_curves_markdown(&document).unwrap();
        assert!(md.contains("| student | targets | epoch 0 | 5 |"), "{md}");
        assert!(
            md.contains("| scratch | labels (its targets) | 1.50 | 2.50 |"),
            "{md}"
        );
        assert!(md.contains("| scratch | random | 3.00 | 4.00 |"), "{md}");
        assert!(md.contains("mean over 2 seeds"), "{md}");
    }

    #[test]
    fn a_run_without_measurements_is_an_error_that_says_how_to_get_them() {
        let document = serde_json::json!({"models": [{"name": "scratch", "curves": [{}]}]});
        let error = complexity_curves_markdown(&document).unwrap_err();
        assert!(error.contains("every_epochs"), "{error}");
    }
}

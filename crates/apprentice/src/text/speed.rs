//! Sentences per second of a whole text pipeline (tokenizer included), at a given batch size:
//! a warm-up batch, then batches cycled through the texts until a time budget is spent.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One model's measured speed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedRow {
    /// The model's name in the results.
    pub name: String,
    /// Trainable parameters (the teacher's include its encoder).
    pub params: usize,
    /// Sentences per second, one sentence at a time.
    pub batch_1_per_s: f64,
    /// Sentences per second in batches of 256.
    pub batch_256_per_s: f64,
}

/// The `text_speed` section of a text run's `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedSection {
    /// The seed whose models were timed (the run's first).
    pub seed: u64,
    /// Threads the CPU backend could use (the machine's available parallelism).
    pub threads: usize,
    /// Seconds spent timing each model at each batch size, after a warm-up batch.
    pub budget_s: f64,
    /// One row per model, the teacher first.
    pub models: Vec<SpeedRow>,
}

/// Sentences per second of `run` on batches of `batch_size` texts cycled from `texts`, timed
/// for at least `budget` (and at least one batch) after one warm-up batch.
pub fn sentences_per_second<S: Clone>(
    texts: &[S],
    batch_size: usize,
    budget: Duration,
    mut run: impl FnMut(&[S]),
) -> f64 {
    if texts.is_empty() {
        return 0.0;
    }
    let batch_size = batch_size.max(1);
    let mut cursor = 0;
    let mut next_batch = || {
        let batch: Vec<S> = (0..batch_size)
            .map(|k| texts[(cursor + k) % texts.len()].clone())
            .collect();
        cursor = (cursor + batch_size) % texts.len();
        batch
    };
    run(&next_batch());
    let started = Instant::now();
    let mut done = 0usize;
    while done == 0 || started.elapsed() < budget {
        let batch = next_batch();
        run(&batch);
        done += batch.len();
    }
    done as f64 / started.elapsed().as_secs_f64()
}

/// A speed in sentences per second with three significant figures and a thousands suffix:
/// `48.2/s`, `12.3k/s`.
pub fn format_speed(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2}M/s", per_second / 1e6)
    } else if per_second >= 1e4 {
        format!("{:.1}k/s", per_second / 1e3)
    } else if per_second >= 1e3 {
        format!("{:.2}k/s", per_second / 1e3)
    } else {
        format!("{per_second:.1}/s")
    }
}

/// The speed table: one line per model with both batch sizes and the speed-up over the first
/// row (the teacher).
pub fn speed_table(section: &SpeedSection) -> String {
    let width = section
        .models
        .iter()
        .map(|row| row.name.chars().count())
        .chain(["model".len()])
        .max()
        .unwrap_or(0);
    let mut lines = vec![format!(
        "{:<width$} {:>12} {:>12} {:>10} {:>12} {:>10}",
        "model", "params", "batch 1", "speed-up", "batch 256", "speed-up"
    )];
    let teacher = section.models.first();
    for row in &section.models {
        // Two decimals below 10×, where "2×" would hide whether a goal of 2× is met.
        let ratio = |ours: f64, theirs: Option<f64>| match theirs {
            Some(t) if t > 0.0 && ours / t < 10.0 => format!("{:.2}×", ours / t),
            Some(t) if t > 0.0 => format!("{:.0}×", ours / t),
            _ => "—".to_string(),
        };
        lines.push(format!(
            "{:<width$} {:>12} {:>12} {:>10} {:>12} {:>10}",
            row.name,
            crate::report::units::thousands(row.params as u64),
            format_speed(row.batch_1_per_s),
            ratio(row.batch_1_per_s, teacher.map(|t| t.batch_1_per_s)),
            format_speed(row.batch_256_per_s),
            ratio(row.batch_256_per_s, teacher.map(|t| t.batch_256_per_s)),
        ));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sentences_not_batches() {
        let texts = ["a", "b", "c"];
        let mut seen = 0;
        let speed = sentences_per_second(&texts, 2, Duration::from_millis(5), |batch| {
            assert_eq!(batch.len(), 2);
            seen += batch.len();
            std::thread::sleep(Duration::from_millis(1));
        });
        assert!(seen >= 4, "a warm-up and at least one timed batch");
        assert!(speed > 100.0 && speed < 2100.0, "{speed}");
        assert_eq!(format_speed(48.23), "48.2/s");
        assert_eq!(format_speed(12_345.0), "12.3k/s");
    }
}

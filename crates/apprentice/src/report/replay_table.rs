//! The table of a replayed fine-tuning: apprentice fine-tuning from PyTorch's own draws (its
//! initial classification layer and batch order, dropout off) against PyTorch's run, from the
//! raw file of the `finetune_replay` example.

use std::fmt::Write as _;

/// One replayed run, as the example writes it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ReplayedRun {
    /// The split's seed.
    pub seed: u64,
    /// PyTorch's seed of the draws.
    pub torch_seed: u64,
    /// Optimiser steps.
    pub steps: usize,
    /// First step (from 1) whose losses differ by more than 1e-3; `None`: none does.
    pub first_parting_step: Option<usize>,
    /// Largest loss difference over all steps.
    pub loss_difference: f64,
    /// PyTorch's test accuracy, a fraction.
    pub pytorch_accuracy: f64,
    /// apprentice's test accuracy, a fraction.
    pub apprentice_accuracy: f64,
    /// Fraction of test texts both predict the same class for.
    pub agreement: f64,
}

#[derive(serde::Deserialize)]
struct ReplayFile {
    runs: Vec<ReplayedRun>,
}

/// The runs of a replay file; the error names the file.
pub fn parse_replay(text: &str, name: &str) -> Result<Vec<ReplayedRun>, String> {
    let file: ReplayFile = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    if file.runs.is_empty() {
        return Err(format!("{name}: no runs"));
    }
    Ok(file.runs)
}

/// One row per replayed run: where (if anywhere) the losses part, the largest loss
/// difference, both test accuracies and how many test predictions agree.
pub fn replay_markdown(runs: &[ReplayedRun]) -> String {
    let mut md = String::from(
        "| seed | torch seed | steps | losses part at step | largest loss difference | \
         PyTorch % | apprentice % | same predictions % |\n\
         |--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for run in runs {
        let parting = run
            .first_parting_step
            .map_or_else(|| "none".to_string(), |step| step.to_string());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {parting} | {:.1e} | {:.2} | {:.2} | {:.1} |",
            run.seed,
            run.torch_seed,
            run.steps,
            run.loss_difference,
            100.0 * run.pytorch_accuracy,
            100.0 * run.apprentice_accuracy,
            100.0 * run.agreement,
        );
    }
    let parted = runs
        .iter()
        .filter(|r| r.first_parting_step.is_some())
        .count();
    let _ = write!(
        md,
        "\n{parted} of {} runs part by more than 1e-3 in loss at some step.\n",
        runs.len()
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_file_becomes_one_row_per_run() {
        let text = r#"{"runs": [
            {"seed": 0, "torch_seed": 0, "steps": 50, "first_parting_step": null,
             "early_loss_difference": 1e-7, "loss_difference": 2.7e-6,
             "pytorch_last_epoch_loss": 0.45, "apprentice_last_epoch_loss": 0.45,
             "pytorch_accuracy": 0.775, "apprentice_accuracy": 0.775, "agreement": 1.0},
            {"seed": 1, "torch_seed": 1, "steps": 50, "first_parting_step": 31,
             "early_loss_difference": 1e-7, "loss_difference": 0.02,
             "pytorch_accuracy": 0.74, "apprentice_accuracy": 0.75, "agreement": 0.97}]}"#;
        let runs = parse_replay(text, "replay.json").unwrap();
        let md = replay_markdown(&runs);
        assert!(
            md.contains("| 0 | 0 | 50 | none | 2.7e-6 | 77.50 | 77.50 | 100.0 |"),
            "{md}"
        );
        assert!(
            md.contains("| 1 | 1 | 50 | 31 | 2.0e-2 | 74.00 | 75.00 | 97.0 |"),
            "{md}"
        );
        assert!(md.contains("1 of 2 runs part"), "{md}");
        let error = parse_replay(r#"{"runs": []}"#, "replay.json").unwrap_err();
        assert_eq!(error, "replay.json: no runs");
    }
}

//! Replays a fine-tuning of the PyTorch reference in apprentice and compares the two runs
//! step by step: the apprentice side of `finetune_rotten_tomatoes.py --trace`.
//!
//! ```text
//! cargo run --release -p apprentice --example finetune_replay -- MODEL_DIR TRACE.json... \
//!     [--out FILE]
//! ```
//!
//! Each trace holds the recipe, the word-piece ids and labels of the training and test texts,
//! PyTorch's initial classification layer, each epoch's order of the training texts, the loss
//! of every step and the test predictions. apprentice fine-tunes `MODEL_DIR` with the same
//! recipe from that same layer, in that same order, with dropout off (the trace must come from
//! a run without dropout, where nothing else is drawn at random), and prints where the losses
//! part, both test accuracies and how many test predictions agree. `--out` writes the same as
//! JSON.
//!
//! Two runs that agree here differ, in a normal run, only by their random draws; two runs that
//! part here differ in their arithmetic somewhere in a whole run.

use std::path::PathBuf;

use apprentice::backend::{ComputeDevice, keep_freed_buffers};
use apprentice::text::PretrainedEncoder;
use apprentice::text::classifier::linear_from_pytorch;
use apprentice::text::finetune::{FinetuneObjective, FinetuneSettings, finetune_with};
use apprentice::text::transformer_config::FinetuneConfig;
use apprentice::text::transformer_run::teacher_to_finetune;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Recipe {
    epochs: usize,
    batch_size: usize,
    lr: f64,
    weight_decay: f64,
    warmup_ratio: f64,
    max_grad_norm: f64,
    max_length: usize,
    dropout: Option<f64>,
}

#[derive(Deserialize)]
struct Classifier {
    weight: Vec<Vec<f32>>,
    bias: Vec<f32>,
}

#[derive(Deserialize)]
struct Trace {
    seed: u64,
    torch_seed: u64,
    recipe: Recipe,
    train_ids: Vec<Vec<u32>>,
    train_labels: Vec<u32>,
    test_ids: Vec<Vec<u32>>,
    test_labels: Vec<u32>,
    initial_classifier: Classifier,
    orders: Vec<Vec<usize>>,
    losses: Vec<f64>,
    test_predictions: Vec<u32>,
    accuracy: f64,
}

/// One replayed run against its trace.
#[derive(Serialize)]
struct Comparison {
    seed: u64,
    torch_seed: u64,
    steps: usize,
    /// First step (from 1) whose losses differ by more than 1e-3; `None`: none does.
    first_parting_step: Option<usize>,
    /// Largest loss difference over the first tenth of the steps, and over all of them.
    early_loss_difference: f64,
    loss_difference: f64,
    /// Mean loss of the last epoch, each side.
    pytorch_last_epoch_loss: f64,
    apprentice_last_epoch_loss: f64,
    pytorch_accuracy: f64,
    apprentice_accuracy: f64,
    /// Fraction of test texts both predict the same class for.
    agreement: f64,
}

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    keep_freed_buffers();
    let mut positional = Vec::new();
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = Some(args.next().ok_or("--out: expected a file")?.into()),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [model_dir, traces @ ..] = positional.as_slice() else {
        return Err("usage: finetune_replay MODEL_DIR TRACE.json... [--out FILE]".into());
    };
    if traces.is_empty() {
        return Err("expected at least one trace after MODEL_DIR".into());
    }
    let device = ComputeDevice::cpu();
    let encoder = PretrainedEncoder::load(model_dir, &device).map_err(|e| e.to_string())?;
    let mut comparisons = Vec::new();
    for path in traces {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let trace: Trace =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if trace.recipe.dropout != Some(0.0) {
            return Err(format!(
                "{}: the trace's recipe has dropout {:?}; only runs without dropout replay",
                path.display(),
                trace.recipe.dropout
            ));
        }
        let comparison = replay(&encoder, &trace, &device)?;
        println!(
            "seed {} torch {}: losses part at step {:?} of {} (first tenth within {:.1e}, all \
             within {:.1e}); last epoch loss {:.4} / {:.4}; accuracy pytorch {:.2}% apprentice \
             {:.2}%; predictions agree on {:.1}%",
            comparison.seed,
            comparison.torch_seed,
            comparison.first_parting_step,
            comparison.steps,
            comparison.early_loss_difference,
            comparison.loss_difference,
            comparison.pytorch_last_epoch_loss,
            comparison.apprentice_last_epoch_loss,
            100.0 * comparison.pytorch_accuracy,
            100.0 * comparison.apprentice_accuracy,
            100.0 * comparison.agreement,
        );
        comparisons.push(comparison);
    }
    if let Some(out) = out {
        let json = serde_json::to_string_pretty(&serde_json::json!({ "runs": comparisons }))
            .map_err(|e| e.to_string())?;
        std::fs::write(&out, json + "\n").map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(())
}

fn replay(
    encoder: &PretrainedEncoder,
    trace: &Trace,
    device: &ComputeDevice,
) -> Result<Comparison, String> {
    let recipe = FinetuneConfig {
        epochs: trace.recipe.epochs,
        batch_size: trace.recipe.batch_size,
        lr: trace.recipe.lr,
        weight_decay: trace.recipe.weight_decay,
        warmup_ratio: trace.recipe.warmup_ratio,
        max_grad_norm: trace.recipe.max_grad_norm,
        max_length: trace.recipe.max_length,
        dropout: Some(0.0),
        ..FinetuneConfig::default()
    };
    let classes = trace.initial_classifier.bias.len();
    let mut untrained = teacher_to_finetune(encoder, &recipe, classes, trace.seed, device);
    // PyTorch's initial classification layer.
    let training = device.training();
    let initial = &trace.initial_classifier;
    untrained.model.classifier = linear_from_pytorch(&initial.weight, &initial.bias, &training);
    let settings = FinetuneSettings {
        epoch_orders: Some(trace.orders.clone()),
        ..recipe.settings(trace.seed)
    };
    let outcome = finetune_with(
        untrained.model,
        &untrained.config,
        &trace.train_ids,
        &trace.train_labels,
        FinetuneObjective::Labels,
        None,
        &settings,
        &training,
        &mut (),
    )
    .map_err(|e| e.to_string())?;
    let ours = &outcome.step_losses;
    if ours.len() != trace.losses.len() {
        return Err(format!(
            "{} steps here, {} in the trace",
            ours.len(),
            trace.losses.len()
        ));
    }
    let differences: Vec<f64> = ours
        .iter()
        .zip(&trace.losses)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let largest = |values: &[f64]| values.iter().copied().fold(0.0, f64::max);
    let steps = ours.len();
    let per_epoch = steps / trace.recipe.epochs;
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    let logits = outcome.model.logits(
        &trace.test_ids,
        0,
        trace.recipe.max_length,
        64,
        &device.inference(),
    );
    let predictions: Vec<u32> = logits
        .chunks(classes)
        .map(|row| {
            (0..classes)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .unwrap_or(0) as u32
        })
        .collect();
    let correct = predictions
        .iter()
        .zip(&trace.test_labels)
        .filter(|(p, l)| p == l)
        .count();
    let agree = predictions
        .iter()
        .zip(&trace.test_predictions)
        .filter(|(a, b)| a == b)
        .count();
    Ok(Comparison {
        seed: trace.seed,
        torch_seed: trace.torch_seed,
        steps,
        first_parting_step: differences.iter().position(|&d| d > 1e-3).map(|k| k + 1),
        early_loss_difference: largest(&differences[..steps.div_ceil(10)]),
        loss_difference: largest(&differences),
        pytorch_last_epoch_loss: mean(&trace.losses[steps - per_epoch..]),
        apprentice_last_epoch_loss: mean(&ours[steps - per_epoch..]),
        pytorch_accuracy: trace.accuracy,
        apprentice_accuracy: correct as f64 / trace.test_labels.len() as f64,
        agreement: agree as f64 / trace.test_labels.len() as f64,
    })
}

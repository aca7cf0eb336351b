//! Fine-tuning the real all-MiniLM-L6-v2 takes the steps PyTorch + `transformers` take: from
//! the same initial classification layer, on the first 64 Rotten Tomatoes snippets in one
//! batch with dropout off, apprentice's word-piece ids, per-step losses (warm-up, clipping and
//! decay) and final logits match the committed `fixtures/minilm-finetune/steps.json`, made by
//! `make_steps.py` beside it. The tiny-model version of this check is in `bert_finetune.rs`;
//! this one runs the real shapes (12 heads, the folder's pooler, 64-piece texts).

mod common;

use apprentice::backend::ComputeDevice;
use apprentice::text::PretrainedEncoder;
use apprentice::text::classifier::linear_from_pytorch;
use apprentice::text::finetune::{FinetuneObjective, finetune_with};
use apprentice::text::transformer_config::FinetuneConfig;
use apprentice::text::transformer_run::teacher_to_finetune;

#[derive(serde::Deserialize)]
struct Classifier {
    weight: Vec<Vec<f32>>,
    bias: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct Steps {
    steps: usize,
    warmup_ratio: f64,
    lr: f64,
    weight_decay: f64,
    max_grad_norm: f64,
    max_length: usize,
    texts: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    labels: Vec<u32>,
    initial_classifier: Classifier,
    losses: Vec<f64>,
    logits: Vec<Vec<f32>>,
}

#[test]
fn fine_tuning_minilm_takes_the_steps_pytorch_takes() {
    let Some(data) = common::shared_data("fine_tuning_minilm_takes_the_steps_pytorch_takes") else {
        return;
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/minilm-finetune/steps.json");
    let reference: Steps = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let device = ComputeDevice::cpu();
    let encoder = PretrainedEncoder::load(&data.join("all-MiniLM-L6-v2"), &device).unwrap();
    for (text, ids) in reference.texts.iter().zip(&reference.input_ids) {
        assert_eq!(&encoder.tokenizer.encode(text).unwrap(), ids, "{text:?}");
    }

    let recipe = FinetuneConfig {
        epochs: reference.steps,
        batch_size: reference.input_ids.len(),
        lr: reference.lr,
        weight_decay: reference.weight_decay,
        warmup_ratio: reference.warmup_ratio,
        max_grad_norm: reference.max_grad_norm,
        max_length: reference.max_length,
        dropout: Some(0.0),
        ..FinetuneConfig::default()
    };
    let mut untrained = teacher_to_finetune(&encoder, &recipe, 2, 0, &device);
    // PyTorch's initial classification layer.
    let training = device.training();
    let initial = &reference.initial_classifier;
    untrained.model.classifier = linear_from_pytorch(&initial.weight, &initial.bias, &training);

    let outcome = finetune_with(
        untrained.model,
        &untrained.config,
        &reference.input_ids,
        &reference.labels,
        FinetuneObjective::Labels,
        None,
        &recipe.settings(0),
        &training,
        &mut (),
    )
    .unwrap();
    assert_eq!(outcome.step_losses.len(), reference.losses.len());
    for (k, (ours, theirs)) in outcome
        .step_losses
        .iter()
        .zip(&reference.losses)
        .enumerate()
    {
        assert!(
            (ours - theirs).abs() < 1e-5,
            "step {k}: loss {ours}, PyTorch {theirs}"
        );
    }
    let ours = outcome.model.logits(
        &reference.input_ids,
        0,
        reference.max_length,
        16,
        &device.inference(),
    );
    let theirs: Vec<f32> = reference.logits.concat();
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-4, "logits after training differ by {worst}");
}

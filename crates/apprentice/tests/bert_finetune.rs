//! Fine-tuning a BERT classifier and its Hugging Face folders, on a small random BERT so that
//! it runs in seconds:
//! - the loss falls on a task the model can learn, and two runs with one seed are identical;
//! - with `train_top_layers` only the top layers (and the head) move;
//! - the recipe's `dropout` replaces the config's everywhere (0: the run of a config without
//!   dropout, step for step);
//! - given epoch orders replace the seed's shuffle (the first step's loss is that of the given
//!   first batch, computed here from the initial logits), and bad orders are refused;
//! - save → load gives the same logits;
//! - from a saved folder, with dropout off, the recipe takes the steps PyTorch + `transformers`
//!   take (losses, learning rates, final logits of the committed `training-steps.json`, made by
//!   `make_training_steps.py` beside the fixture);
//! - a folder saved by apprentice gives, in `transformers`, the logits of the committed fixture
//!   (`fixtures/bert-classifier/`, made by `make_logits.py` beside it), to 1e-4;
//! - a missing classifier, mismatched `num_labels` or an unknown architecture is one line that
//!   names the file and the tensor or field.

use std::path::{Path, PathBuf};

use apprentice::backend::ComputeDevice;
use apprentice::text::bert::{Bert, BertConfig};
use apprentice::text::classifier::{BertClassifier, ClassifierPooling};
use apprentice::text::classifier_folder::{load_classifier, save_classifier};
use apprentice::text::finetune::{FinetuneSettings, finetune, linear_schedule};
use burn::module::Module;

fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 50, "hidden_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 3, "intermediate_size": 40, "max_position_embeddings": 32,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1
    }))
    .unwrap()
}

/// Sequences `[CLS] … [SEP]` (ids 1 and 2) of 3 to 12 random pieces: class 1 draws its pieces
/// from ids 3..26, class 0 from 26..50.
fn task(count: usize) -> (Vec<Vec<u32>>, Vec<u32>) {
    let mut state = 12345u64;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut sequences = Vec::new();
    let mut labels = Vec::new();
    for k in 0..count {
        let len = 3 + next(10) as usize;
        let positive = k % 2 == 0;
        let base = if positive { 3 } else { 26 };
        let mut s = vec![1u32];
        s.extend((0..len).map(|_| base + next(23) as u32));
        s.push(2);
        sequences.push(s);
        labels.push(positive as u32);
    }
    (sequences, labels)
}

fn classifier(config: &BertConfig, seed: u64, pooling: ClassifierPooling) -> BertClassifier {
    let device = ComputeDevice::cpu().training();
    device.seed(seed);
    BertClassifier::new(Bert::random(config, &device), config, 2, pooling, &device)
}

fn settings() -> FinetuneSettings {
    FinetuneSettings {
        epochs: 8,
        batch_size: 16,
        lr: 5e-3,
        warmup_ratio: 0.1,
        max_length: 32,
        seed: 3,
        ..FinetuneSettings::default()
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn the_loss_falls_and_a_seed_repeats_the_run() {
    let config = tiny_config();
    let (sequences, labels) = task(96);
    let device = ComputeDevice::cpu().training();
    // One initial model for both runs: burn's generator, which draws it, is shared with the
    // tests running alongside; the fine-tuning itself draws only from its seed.
    let initial = classifier(&config, 1, ClassifierPooling::Cls);
    let run = || {
        finetune(
            initial.clone(),
            &config,
            &sequences,
            &labels,
            &settings(),
            &device,
            &mut (),
        )
        .unwrap()
    };
    let first = run();
    let losses = &first.step_losses;
    assert_eq!(losses.len(), 8 * 6);
    let (start, end) = (mean(&losses[..4]), mean(&losses[losses.len() - 4..]));
    assert!(end < 0.6 * start, "loss {start:.3} → {end:.3}");
    let second = run();
    assert_eq!(first.step_losses, second.step_losses, "same seed, same run");
}

#[test]
fn the_schedule_warms_up_then_decays_to_zero() {
    assert_eq!(linear_schedule(0, 4, 20, 1.0), 0.0);
    assert!((linear_schedule(3, 4, 20, 1.0) - 0.75).abs() < 1e-12);
    assert!((linear_schedule(4, 4, 20, 1.0) - 1.0).abs() < 1e-12);
    assert!((linear_schedule(12, 4, 20, 1.0) - 0.5).abs() < 1e-12);
    assert_eq!(linear_schedule(20, 4, 20, 1.0), 0.0);
}

fn host<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    apprentice::backend::to_host(t)
}

#[test]
fn top_layers_alone_move_when_the_rest_is_frozen() {
    let config = tiny_config();
    let (sequences, labels) = task(32);
    let device = ComputeDevice::cpu().training();
    let model = classifier(&config, 2, ClassifierPooling::Mean);
    let before_word = host(model.bert.embeddings.word.weight.val());
    let before_low = host(model.bert.layers[0].query.weight.val());
    let before_top = host(model.bert.layers[1].query.weight.val());
    let mut recipe = settings();
    recipe.epochs = 1;
    recipe.train_top_layers = Some(1);
    let trained = finetune(
        model,
        &config,
        &sequences,
        &labels,
        &recipe,
        &device,
        &mut (),
    )
    .unwrap()
    .model;
    assert_eq!(host(trained.bert.embeddings.word.weight.val()), before_word);
    assert_eq!(host(trained.bert.layers[0].query.weight.val()), before_low);
    assert_ne!(host(trained.bert.layers[1].query.weight.val()), before_top);
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-classifier")
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn save_then_load_gives_the_same_logits() {
    let config = tiny_config();
    let (sequences, labels) = task(16);
    let device = ComputeDevice::cpu().inference();
    for pooling in [ClassifierPooling::Cls, ClassifierPooling::Mean] {
        let model = classifier(&config, 4, pooling).valid();
        let ours = model.logits(&sequences, 0, 32, 5, &device);
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["absent".to_string(), "present".to_string()];
        save_classifier(&model, &config, &names, None, dir.path()).unwrap();
        let loaded = load_classifier(dir.path(), &device).unwrap();
        assert_eq!(loaded.labels, names);
        assert_eq!(loaded.model.pooling(), pooling);
        let theirs = loaded.model.logits(&sequences, 0, 32, 16, &device);
        assert!(max_difference(&ours, &theirs) < 1e-6, "{pooling:?}");
        let _ = &labels;
    }
}

#[derive(serde::Deserialize)]
struct FixtureLogits {
    input_ids: Vec<Vec<u32>>,
    logits: Vec<Vec<f32>>,
}

/// Writes the committed fixture folder: a small classifier fine-tuned by apprentice for one
/// epoch and saved. Run on purpose only (`--ignored`), then `make_logits.py`.
#[test]
#[ignore]
fn write_the_fixture_folder() {
    // A wider initialisation than BERT's, so that the logits vary from input to input.
    let mut config = tiny_config();
    config.initializer_range = 0.3;
    let (sequences, labels) = task(32);
    let device = ComputeDevice::cpu().training();
    let mut recipe = settings();
    recipe.epochs = 1;
    let model = classifier(&config, 5, ClassifierPooling::Cls);
    let trained = finetune(
        model,
        &config,
        &sequences,
        &labels,
        &recipe,
        &device,
        &mut (),
    )
    .unwrap()
    .model;
    let names = vec!["absent".to_string(), "present".to_string()];
    save_classifier(&trained, &config, &names, None, &fixture()).unwrap();
}

#[test]
fn transformers_reads_an_apprentice_folder_with_the_same_logits() {
    let folder = fixture();
    let device = ComputeDevice::cpu().inference();
    let loaded = load_classifier(&folder, &device).unwrap();
    let expected: FixtureLogits = serde_json::from_str(
        &std::fs::read_to_string(folder.join("transformers-logits.json")).unwrap(),
    )
    .unwrap();
    let ours = loaded.model.logits(&expected.input_ids, 0, 32, 4, &device);
    let theirs: Vec<f32> = expected.logits.concat();
    let worst = max_difference(&ours, &theirs);
    assert!(
        worst < 1e-4,
        "apprentice and transformers differ by {worst}"
    );
    // Saving the loaded folder again gives the same tensors under the same names.
    let dir = tempfile::tempdir().unwrap();
    save_classifier(
        &loaded.model,
        &loaded.config,
        &loaded.labels,
        None,
        dir.path(),
    )
    .unwrap();
    let original = std::fs::read(folder.join("model.safetensors")).unwrap();
    let again = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let a = safetensors::SafeTensors::deserialize(&original).unwrap();
    let b = safetensors::SafeTensors::deserialize(&again).unwrap();
    let mut names: Vec<String> = a.names().into_iter().map(String::from).collect();
    names.sort();
    let mut again_names: Vec<String> = b.names().into_iter().map(String::from).collect();
    again_names.sort();
    assert_eq!(names, again_names);
    for name in names {
        assert_eq!(
            a.tensor(&name).unwrap().data(),
            b.tensor(&name).unwrap().data(),
            "{name}"
        );
    }
}

/// A copy of the fixture folder with `edit` applied to its config and `drop` removed from its
/// weights; the load error.
fn broken(edit: impl Fn(&mut serde_json::Value), drop: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let source = fixture();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("config.json")).unwrap())
            .unwrap();
    edit(&mut config);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let bytes = std::fs::read(source.join("model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| Some(name.as_str()) != drop)
        .collect();
    safetensors::serialize_to_file(kept, None, &dir.path().join("model.safetensors")).unwrap();
    let device = ComputeDevice::cpu().inference();
    let error = load_classifier(dir.path(), &device)
        .unwrap_err()
        .to_string();
    assert!(!error.contains('\n'), "one line: {error}");
    let _: &Path = dir.path();
    error
}

#[test]
fn broken_folders_are_named_in_one_line() {
    let missing = broken(|_| {}, Some("classifier.weight"));
    assert!(
        missing.contains("model.safetensors") && missing.contains("\"classifier.weight\""),
        "{missing}"
    );
    let labels = broken(|c| c["num_labels"] = 3.into(), None);
    assert!(
        labels.contains("config.json") && labels.contains("num_labels"),
        "{labels}"
    );
    let mismatched = broken(
        |c| {
            c["id2label"] = serde_json::json!({"0": "a", "1": "b", "2": "c"});
            c["num_labels"] = 3.into();
        },
        None,
    );
    assert!(
        mismatched.contains("\"classifier.weight\"") && mismatched.contains("[3, 24]"),
        "{mismatched}"
    );
    let architecture = broken(
        |c| c["architectures"] = serde_json::json!(["BertForMaskedLM"]),
        None,
    );
    assert!(
        architecture.contains("config.json") && architecture.contains("unknown architecture"),
        "{architecture}"
    );
}

#[derive(serde::Deserialize)]
struct ReferenceRecipe {
    epochs: usize,
    batch_size: usize,
    lr: f64,
    weight_decay: f64,
    warmup_ratio: f64,
    max_grad_norm: f64,
}

#[derive(serde::Deserialize)]
struct ReferenceStep {
    loss: f64,
    learning_rate: f64,
}

#[derive(serde::Deserialize)]
struct ReferenceSteps {
    recipe: ReferenceRecipe,
    sequences: Vec<Vec<u32>>,
    labels: Vec<u32>,
    steps: Vec<ReferenceStep>,
    logits: Vec<Vec<f32>>,
}

#[test]
fn the_recipe_takes_the_steps_pytorch_takes() {
    let folder = fixture();
    let reference: ReferenceSteps =
        serde_json::from_str(&std::fs::read_to_string(folder.join("training-steps.json")).unwrap())
            .unwrap();
    let device = ComputeDevice::cpu().training();
    let loaded = load_classifier(&folder, &device).unwrap();
    // Dropout off on both sides: the masks are each side's own random draws.
    let mut config = loaded.config.clone();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    let recipe = &reference.recipe;
    let settings = FinetuneSettings {
        epochs: recipe.epochs,
        batch_size: recipe.batch_size,
        lr: recipe.lr,
        weight_decay: recipe.weight_decay,
        warmup_ratio: recipe.warmup_ratio,
        max_grad_norm: recipe.max_grad_norm,
        max_length: 32,
        head_dropout: Some(0.0),
        ..FinetuneSettings::default()
    };
    let outcome = finetune(
        loaded.model,
        &config,
        &reference.sequences,
        &reference.labels,
        &settings,
        &device,
        &mut (),
    )
    .unwrap();
    let total = reference.steps.len();
    let warmup = (recipe.warmup_ratio * total as f64).ceil() as usize;
    assert_eq!(outcome.step_losses.len(), total);
    for (k, (ours, theirs)) in outcome.step_losses.iter().zip(&reference.steps).enumerate() {
        let rate = linear_schedule(k, warmup, total, recipe.lr);
        assert!(
            (rate - theirs.learning_rate).abs() < 1e-12,
            "step {k}: learning rate {rate}, PyTorch {}",
            theirs.learning_rate
        );
        assert!(
            (ours - theirs.loss).abs() < 1e-4,
            "step {k}: loss {ours}, PyTorch {}",
            theirs.loss
        );
    }
    let ours = outcome.model.logits(
        &reference.sequences,
        0,
        32,
        reference.sequences.len(),
        &ComputeDevice::cpu().inference(),
    );
    let worst = max_difference(&ours, &reference.logits.concat());
    assert!(worst < 1e-4, "logits after training differ by {worst}");
}

#[test]
fn the_recipe_dropout_replaces_the_configs() {
    let config = tiny_config();
    let (sequences, labels) = task(48);
    let device = ComputeDevice::cpu().training();
    // One initial model for every run: the weights do not depend on dropout.
    let initial = classifier(&config, 6, ClassifierPooling::Cls);
    let run = |config: &BertConfig, settings: FinetuneSettings| {
        finetune(
            initial.clone(),
            config,
            &sequences,
            &labels,
            &settings,
            &device,
            &mut (),
        )
        .unwrap()
        .step_losses
    };
    let mut silent = config.clone();
    silent.hidden_dropout_prob = 0.0;
    silent.attention_probs_dropout_prob = 0.0;
    let without = run(
        &silent,
        FinetuneSettings {
            head_dropout: Some(0.0),
            ..settings()
        },
    );
    let overridden = run(
        &config,
        FinetuneSettings {
            dropout: Some(0.0),
            ..settings()
        },
    );
    assert_eq!(without, overridden);
    assert_ne!(
        run(&config, settings()),
        without,
        "the config's dropout is on"
    );
}

#[test]
fn given_epoch_orders_replace_the_seeds_shuffle() {
    let config = tiny_config();
    let (sequences, labels) = task(40);
    let device = ComputeDevice::cpu().training();
    let initial = classifier(&config, 8, ClassifierPooling::Cls);
    let forward: Vec<usize> = (0..40).map(|i| (i * 7) % 40).collect();
    let backward: Vec<usize> = forward.iter().rev().copied().collect();
    let run = |seed: u64, orders: Vec<Vec<usize>>| {
        let settings = FinetuneSettings {
            epochs: 2,
            seed,
            dropout: Some(0.0),
            epoch_orders: Some(orders),
            ..settings()
        };
        finetune(
            initial.clone(),
            &config,
            &sequences,
            &labels,
            &settings,
            &device,
            &mut (),
        )
        .map(|outcome| outcome.step_losses)
    };
    let given = run(3, vec![forward.clone(), backward.clone()]).unwrap();
    assert_eq!(
        given,
        run(99, vec![forward.clone(), backward.clone()]).unwrap(),
        "with the order given and dropout off, the seed draws nothing"
    );
    assert_ne!(
        given,
        run(3, vec![backward.clone(), forward.clone()]).unwrap()
    );

    // The first step's loss is the cross-entropy of the initial model on the first 16 given.
    let first: Vec<Vec<u32>> = forward[..16]
        .iter()
        .map(|&i| sequences[i].clone())
        .collect();
    let logits = initial
        .valid()
        .logits(&first, 0, 32, 16, &ComputeDevice::cpu().inference());
    let expected = forward[..16]
        .iter()
        .enumerate()
        .map(|(row, &i)| {
            let (a, b) = (logits[2 * row] as f64, logits[2 * row + 1] as f64);
            let top = a.max(b);
            let log_sum = top + ((a - top).exp() + (b - top).exp()).ln();
            log_sum - [a, b][labels[i] as usize]
        })
        .sum::<f64>()
        / 16.0;
    assert!(
        (given[0] - expected).abs() < 1e-5,
        "first step {}, expected {expected}",
        given[0]
    );

    let mut repeated = forward.clone();
    repeated[1] = repeated[0];
    let error = run(3, vec![forward.clone(), repeated])
        .unwrap_err()
        .to_string();
    assert!(error.contains("epoch 2 is not a permutation"), "{error}");
    let error = run(3, vec![forward]).unwrap_err().to_string();
    assert!(error.contains("1 epoch orders for 2 epochs"), "{error}");
}

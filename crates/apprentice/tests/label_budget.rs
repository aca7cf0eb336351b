//! The label budget below 100%: a distilled student that learns from the teacher on every
//! input never reads a hidden label, and the scratch and `kd-labelled` students of a fraction
//! see the same labelled samples in the same number of steps.

use apprentice::backend::ComputeDevice;
use apprentice::config::{ExperimentConfig, TrainConfig};
use apprentice::data::augment::Augmentation;
use apprentice::data::digits::load_digits;
use apprentice::data::split::stratified_subset_indices;
use apprentice::distill::loss::KdWeights;
use apprentice::distill::optim::OptimizerSpec;
use apprentice::distill::train::{
    OnNan, Silent, Supervision, TeacherSignal, TrainOutcome, TrainSettings, TrainingSet,
    predict_logits, train,
};
use apprentice::experiment::{RunOptions, run_experiment};
use apprentice::models::{MlpSpec, ModelSpec, Network};
use apprentice::report::results::ModelResult;

fn mlp(hidden: Vec<usize>, seed: u64, device: &ComputeDevice) -> Network {
    let spec = ModelSpec::Mlp(MlpSpec {
        hidden,
        activation: Default::default(),
        dropout: 0.1,
    });
    Network::new(
        &spec,
        apprentice::data::SampleShape::image(1, 8, 8),
        10,
        seed,
        &device.training(),
    )
    .unwrap()
}

/// The student of `kd-all` trained on the digits with 10% of the labels visible, the teacher's
/// soft targets on every input, and the training labels `labels` (only the visible ones may
/// matter). Returns the outcome and the final weights' logits on the validation samples.
fn kd_all(labels: &[u32], mask: &[bool]) -> (TrainOutcome, Vec<f32>) {
    let device = ComputeDevice::cpu();
    let digits = load_digits().unwrap();
    let mut train_data = digits.subset(&(0..600).collect::<Vec<_>>(), "digits/train");
    train_data.labels = labels.to_vec();
    let validation = digits.subset(&(600..800).collect::<Vec<_>>(), "digits/validation");
    // Any fixed teacher will do: the question is only which labels the student reads.
    let teacher = mlp(vec![24], 11, &device);
    let teacher_logits = predict_logits(&teacher, &train_data, &device);
    let train_config = TrainConfig {
        epochs: 3,
        batch_size: 32,
        early_stopping_patience: None,
    };
    let optimizer = OptimizerSpec::default();
    let settings = TrainSettings {
        train: &train_config,
        optimizer: &optimizer,
        augmentation: Augmentation::default(),
        fill: &[],
        seed: 5,
        on_nan: OnNan::Stop,
        checkpointing: None,
    };
    let set = TrainingSet {
        data: &train_data,
        labelled: Some(mask),
        samples_per_epoch: train_data.len(),
        validation: &validation,
    };
    let supervision = Supervision::Distill {
        teacher: TeacherSignal::Cached(&teacher_logits),
        objective: std::sync::Arc::new(KdWeights {
            temperature: 4.0,
            alpha: 0.5,
        }),
    };
    let outcome = train(
        "kd-all",
        mlp(vec![16], 3, &device),
        &set,
        &supervision,
        &settings,
        &device,
        &mut Silent::default(),
    )
    .unwrap();
    let logits = predict_logits(&outcome.model, &validation, &device);
    (outcome, logits)
}

#[test]
fn kd_all_never_reads_a_hidden_label() {
    let labels = load_digits().unwrap().labels[..600].to_vec();
    let visible = stratified_subset_indices(&labels, 10, 0.1, 42);
    let mut mask = vec![false; labels.len()];
    for &i in &visible {
        mask[i] = true;
    }
    assert!((50..80).contains(&visible.len()), "{}", visible.len());
    // Every hidden label moved to another class; the visible ones kept.
    let scrambled: Vec<u32> = labels
        .iter()
        .zip(&mask)
        .enumerate()
        .map(|(i, (&label, &seen))| {
            if seen {
                label
            } else {
                (label + 1 + (i as u32 % 9)) % 10
            }
        })
        .collect();
    assert!(
        labels
            .iter()
            .zip(&scrambled)
            .zip(&mask)
            .all(|((a, b), &seen)| seen == (a == b))
    );
    let (original, original_logits) = kd_all(&labels, &mask);
    let (hidden_scrambled, scrambled_logits) = kd_all(&scrambled, &mask);
    assert_eq!(original.train_loss, hidden_scrambled.train_loss);
    assert_eq!(original_logits, scrambled_logits);
    // The check can fail: scrambling a visible label changes the run.
    let mut one_visible_moved = labels.clone();
    let first = visible[0];
    one_visible_moved[first] = (labels[first] + 1) % 10;
    let (moved, _) = kd_all(&one_visible_moved, &mask);
    assert_ne!(original.train_loss, moved.train_loss);
}

/// A tiny digits experiment: 10% of the labels, the student distilled on the labelled inputs
/// only, with `alpha` the weight of its cross-entropy.
fn labelled_only_config(alpha: f64) -> ExperimentConfig {
    let text = format!(
        r#"
name = "label-budget"
seeds = [0]

[data]
source = "digits"
label_fractions = [0.1]

[teacher.model]
kind = "mlp"
hidden = [32]

[teacher.train]
epochs = 3
batch_size = 64

[student.model]
kind = "mlp"
hidden = [16]
dropout = 0.1

[student.train]
epochs = 4
batch_size = 16

[distill]
method = "kd"
temperature = 4.0
alpha = {alpha}
transfer = ["labelled"]
"#
    );
    ExperimentConfig::from_toml(&text, "label-budget.toml").unwrap()
}

fn run(config: &ExperimentConfig) -> Vec<ModelResult> {
    let folder = tempfile::tempdir().unwrap();
    let options = RunOptions {
        run_dir: folder.path().to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: false,
    };
    run_experiment(config, &options, &mut Silent::default())
        .unwrap()
        .models
}

fn model<'a>(models: &'a [ModelResult], name: &str) -> &'a ModelResult {
    models.iter().find(|m| m.name == name).unwrap_or_else(|| {
        panic!(
            "no {name} among {:?}",
            models.iter().map(|m| &m.name).collect::<Vec<_>>()
        )
    })
}

#[test]
fn scratch_and_kd_labelled_take_the_same_steps_on_the_same_labelled_samples() {
    // With α = 1 the KD loss is the cross-entropy alone (the soft term is weighted by 0), so a
    // kd-labelled student that draws the same labelled samples, in the same order, for the
    // same number of steps from the same initial weights is the scratch student, to the bit.
    let models = run(&labelled_only_config(1.0));
    let scratch = model(&models, "scratch@10%");
    let kd = model(&models, "kd-labelled@10%");
    assert_eq!(scratch.epochs_run, kd.epochs_run);
    assert_eq!(scratch.curves[0].train_loss, kd.curves[0].train_loss);
    assert_eq!(
        scratch.curves[0].validation_accuracy,
        kd.curves[0].validation_accuracy
    );
    assert_eq!(scratch.test.accuracy, kd.test.accuracy);
    assert_eq!(scratch.test.nll, kd.test.nll);
    // The check can fail: with the teacher's soft targets weighted in, the runs differ.
    let models = run(&labelled_only_config(0.5));
    let scratch = model(&models, "scratch@10%");
    let kd = model(&models, "kd-labelled@10%");
    assert_ne!(scratch.curves[0].train_loss, kd.curves[0].train_loss);
}

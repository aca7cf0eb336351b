//! The training step (`distill::step::TrainStep`) is what `train` runs for every batch: driving
//! it by hand over the batches `train` would draw gives the same loss of every epoch and the
//! same trained weights, to the bit, for labels with a label mask, a live teacher one batch
//! ahead and a cached teacher; a non-finite loss leaves the parameters untouched.

mod common;

use common::toy_data;
use std::sync::Arc;

use apprentice::backend::ComputeDevice;
use apprentice::config::TrainConfig;
use apprentice::data::Dataset;
use apprentice::data::augment::Augmentation;
use apprentice::data::batch::gather;
use apprentice::distill::loss::KdWeights;
use apprentice::distill::optim::{OptimizerKind, OptimizerSpec};
use apprentice::distill::step::{StepBatch, StepOutcome, TrainStep};
use apprentice::distill::train::{
    Learner, OnNan, Silent, Supervision, TeacherSignal, TrainSettings, TrainingSet, epoch_indices,
    predict_logits, train,
};
use apprentice::models::{ModelSpec, Network};
use burn::module::Module;

const SEED: u64 = 3;
const EPOCHS: usize = 2;
const BATCH: usize = 16;
const AUGMENTATION: Augmentation = Augmentation {
    max_shift: 1,
    horizontal_flip: true,
};

fn mlp(hidden: usize, dropout: f64) -> ModelSpec {
    toml::from_str(&format!(
        "kind = \"mlp\"\nhidden = [{hidden}]\ndropout = {dropout}"
    ))
    .unwrap()
}

fn optimizer() -> OptimizerSpec {
    OptimizerSpec {
        optimizer: OptimizerKind::Adam,
        lr: 0.01,
        ..OptimizerSpec::default()
    }
}

/// The student every run starts from: dropout on, so the step's masks matter.
fn student(data: &Dataset, device: &ComputeDevice) -> Network {
    Network::new(&mlp(12, 0.25), data.shape, 3, 11, &device.training()).unwrap()
}

/// `train` for `EPOCHS` epochs: the mean loss of each epoch and the student's logits on `probe`.
fn by_train(
    data: &Dataset,
    labelled: Option<&[bool]>,
    supervision: &Supervision<'_>,
    probe: &Dataset,
) -> (Vec<f64>, Vec<f32>) {
    let device = ComputeDevice::cpu();
    let train_config = TrainConfig {
        epochs: EPOCHS,
        batch_size: BATCH,
        early_stopping_patience: None,
    };
    let optimizer = optimizer();
    let fill = vec![0.0; data.shape.len()];
    let settings = TrainSettings {
        train: &train_config,
        optimizer: &optimizer,
        augmentation: AUGMENTATION,
        fill: &fill,
        seed: SEED,
        on_nan: OnNan::Stop,
        checkpointing: None,
    };
    let set = TrainingSet {
        data,
        labelled,
        samples_per_epoch: data.len(),
        validation: probe,
    };
    let outcome = train(
        "student",
        student(data, &device),
        &set,
        supervision,
        &settings,
        &device,
        &mut Silent::default(),
    )
    .unwrap();
    let logits = predict_logits(&outcome.model, probe, &device);
    (outcome.train_loss, logits)
}

/// The same run taken one `TrainStep::run` at a time over the batches `train` draws.
fn by_steps(
    data: &Dataset,
    labelled: Option<&[bool]>,
    supervision: &Supervision<'_>,
    probe: &Dataset,
) -> (Vec<f64>, Vec<f32>) {
    let device = ComputeDevice::cpu();
    let spec = optimizer();
    let mut optimizer = spec.build();
    let width = data.shape.len();
    let fill = vec![0.0; width];
    let mut runner = TrainStep::new(supervision, labelled, SEED, width, 3, &device);
    let mut learner = Learner::single(student(data, &device));
    let steps_per_epoch = data.len().div_ceil(BATCH);
    let make = |indices: &[usize], epoch: usize, step: usize| {
        let (mut features, mut labels) = (Vec::new(), Vec::new());
        gather(data, indices, &mut features, &mut labels);
        AUGMENTATION.apply(
            &mut features,
            data.shape,
            &fill,
            SEED,
            epoch as u64,
            step as u64,
        );
        (features, labels)
    };
    let mut epoch_losses = Vec::new();
    for epoch in 0..EPOCHS {
        let order = epoch_indices(data.len(), data.len(), SEED, epoch);
        let batches: Vec<&[usize]> = order.chunks(BATCH).collect();
        let mut sum = 0.0f64;
        for (step, indices) in batches.iter().enumerate() {
            let (features, labels) = make(indices, epoch, step);
            let next = batches
                .get(step + 1)
                .filter(|_| runner.looks_ahead())
                .map(|next| make(next, epoch, step + 1).0);
            let learning_rate = spec.learning_rate(
                epoch * steps_per_epoch + step,
                steps_per_epoch,
                steps_per_epoch * EPOCHS,
            );
            let batch = StepBatch {
                features: &features,
                labels: &labels,
                indices,
                epoch,
                step,
            };
            let (updated, outcome) = runner
                .run(
                    learner,
                    &mut optimizer,
                    learning_rate,
                    &batch,
                    next.as_deref(),
                )
                .unwrap();
            learner = updated;
            match outcome {
                StepOutcome::Updated { loss } => sum += loss as f64,
                StepOutcome::NonFinite { loss } => panic!("a non-finite loss {loss}"),
            }
        }
        epoch_losses.push(sum / batches.len() as f64);
    }
    let model = learner.valid().members.remove(0);
    (epoch_losses, predict_logits(&model, probe, &device))
}

fn assert_same_run(what: &str, a: &(Vec<f64>, Vec<f32>), b: &(Vec<f64>, Vec<f32>)) {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&a.0),
        bits(&b.0),
        "{what}: epoch losses {:?} against {:?}",
        a.0,
        b.0
    );
    assert_eq!(a.1.len(), b.1.len());
    assert!(
        a.1.iter()
            .zip(&b.1)
            .all(|(x, y)| x.to_bits() == y.to_bits()),
        "{what}: the trained students differ"
    );
}

#[test]
fn steps_taken_by_hand_are_the_training_loops_steps() {
    let device = ComputeDevice::cpu();
    // 40 samples in batches of 16: the last batch of each epoch is short.
    let data = toy_data(40, 99);
    let probe = toy_data(30, 5);
    let teacher = Network::new(&mlp(32, 0.0), data.shape, 3, 5, &device.inference()).unwrap();
    let cached = predict_logits(&teacher, &data, &device);
    let kd = || -> Arc<KdWeights> {
        Arc::new(KdWeights {
            temperature: 4.0,
            alpha: 0.5,
        })
    };
    // Every third sample unlabelled: the mask selects rows by their training-set index.
    let labelled: Vec<bool> = (0..data.len()).map(|i| i % 3 != 0).collect();
    let cases: [(&str, Supervision<'_>, Option<&[bool]>); 3] = [
        (
            "labels with a label mask",
            Supervision::Labels,
            Some(&labelled),
        ),
        (
            "a live teacher",
            Supervision::Distill {
                teacher: TeacherSignal::Live(&teacher),
                objective: kd(),
            },
            None,
        ),
        (
            "a cached teacher with a label mask",
            Supervision::Distill {
                teacher: TeacherSignal::Cached(&cached),
                objective: kd(),
            },
            Some(&labelled),
        ),
    ];
    let mut finals = Vec::new();
    for (what, supervision, mask) in &cases {
        let looped = by_train(&data, *mask, supervision, &probe);
        let stepped = by_steps(&data, *mask, supervision, &probe);
        assert!(looped.0.iter().all(|l| l.is_finite() && *l > 0.0), "{what}");
        assert_same_run(what, &looped, &stepped);
        finals.push(looped.0);
    }
    // The cases train differently: the comparison above is not of constants.
    assert_ne!(finals[0], finals[1]);
    assert_ne!(finals[1], finals[2]);
}

#[test]
fn a_non_finite_loss_updates_nothing() {
    let device = ComputeDevice::cpu();
    let data = toy_data(8, 1);
    let probe = toy_data(6, 2);
    let supervision = Supervision::Labels;
    let mut runner = TrainStep::new(&supervision, None, SEED, data.shape.len(), 3, &device);
    let mut optimizer = optimizer().build();
    let learner = Learner::single(student(&data, &device));
    let before = predict_logits(&learner.valid().members[0], &probe, &device);
    let indices: Vec<usize> = (0..data.len()).collect();
    let mut features = data.features.clone();
    features[5] = f32::NAN;
    let batch = StepBatch {
        features: &features,
        labels: &data.labels,
        indices: &indices,
        epoch: 0,
        step: 0,
    };
    let (learner, outcome) = runner
        .run(learner, &mut optimizer, 0.01, &batch, None)
        .unwrap();
    assert!(
        matches!(outcome, StepOutcome::NonFinite { loss } if loss.is_nan()),
        "{outcome:?}"
    );
    let after = predict_logits(&learner.valid().members[0], &probe, &device);
    assert_eq!(before, after, "a skipped step changed the parameters");
    // With finite inputs the same step does update.
    let batch = StepBatch {
        features: &data.features,
        ..batch
    };
    let (learner, outcome) = runner
        .run(learner, &mut optimizer, 0.01, &batch, None)
        .unwrap();
    assert!(matches!(outcome, StepOutcome::Updated { loss } if loss.is_finite()));
    let updated = predict_logits(&learner.valid().members[0], &probe, &device);
    assert_ne!(
        before, updated,
        "a finite step left the parameters as they were"
    );
}

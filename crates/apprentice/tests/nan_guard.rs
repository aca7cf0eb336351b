//! The NaN guard: a non-finite loss stops the run (`stop`) or skips that batch (`skip-batch`),
//! and the model is never saved with non-finite weights.

use apprentice::backend::ComputeDevice;
use apprentice::config::TrainConfig;
use apprentice::data::augment::Augmentation;
use apprentice::data::{Dataset, SampleShape};
use apprentice::distill::optim::OptimizerSpec;
use apprentice::distill::train::{
    OnNan, Silent, Supervision, TrainError, TrainSettings, TrainingSet, train,
};
use apprentice::models::{MlpSpec, ModelSpec, Network};

/// Two separable classes, with one sample poisoned by a NaN feature.
fn poisoned_data() -> Dataset {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for i in 0..64 {
        let class = (i % 2) as u32;
        let x = if class == 0 { -1.0 } else { 1.0 };
        features.extend([x + (i as f32) * 0.001, -x]);
        labels.push(class);
    }
    features[10] = f32::NAN;
    Dataset {
        name: "poisoned".into(),
        features,
        labels,
        shape: SampleShape::flat(2),
        num_classes: 2,
    }
}

fn run(on_nan: OnNan, lr: f64) -> Result<(usize, f64), TrainError> {
    let data = poisoned_data();
    let device = ComputeDevice::cpu();
    let spec = ModelSpec::Mlp(MlpSpec {
        hidden: vec![4],
        activation: Default::default(),
        dropout: 0.0,
    });
    let network = Network::new(&spec, data.shape, 2, 0, &device.training()).unwrap();
    let train_config = TrainConfig {
        epochs: 3,
        batch_size: 8,
        early_stopping_patience: None,
    };
    let optimizer = OptimizerSpec {
        lr,
        ..OptimizerSpec::default()
    };
    let fill = vec![0.0; 2];
    let settings = TrainSettings {
        train: &train_config,
        optimizer: &optimizer,
        augmentation: Augmentation::default(),
        fill: &fill,
        seed: 1,
        on_nan,
        checkpointing: None,
    };
    let validation = data.subset(&[0, 1, 2, 3], "validation");
    let set = TrainingSet {
        data: &data,
        labelled: None,
        samples_per_epoch: data.len(),
        validation: &validation,
    };
    let mut observer = Silent::default();
    let outcome = train(
        "nan-test",
        network,
        &set,
        &Supervision::Labels,
        &settings,
        &device,
        &mut observer,
    )?;
    assert!(outcome.model.parameters_are_finite());
    assert_eq!(observer.warnings.len(), outcome.skipped_batches);
    Ok((outcome.skipped_batches, outcome.final_validation_accuracy))
}

#[test]
fn stop_ends_the_run_at_the_first_nan_loss() {
    let error = run(OnNan::Stop, 1e-2).expect_err("a NaN sample must stop the run");
    assert!(
        matches!(error, TrainError::NonFiniteLoss { epoch: 1, .. }),
        "{error}"
    );
}

#[test]
fn skip_batch_skips_exactly_the_poisoned_batch_of_each_epoch() {
    let (skipped, accuracy) = run(OnNan::SkipBatch, 1e-2).expect("the run goes on");
    assert_eq!(skipped, 3, "one poisoned batch per epoch");
    assert!(
        accuracy >= 0.75,
        "the clean batches still teach: {accuracy}"
    );
}

#[test]
fn an_exploding_learning_rate_is_caught_in_either_mode() {
    for mode in [OnNan::Stop, OnNan::SkipBatch] {
        let error = run(mode, 1e38).expect_err("weights blow up");
        let text = error.to_string();
        assert!(
            text.contains("nan-test") && text.contains("learning rate"),
            "{text}"
        );
    }
}

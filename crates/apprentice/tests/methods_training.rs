//! The methods in training: feature objectives, cached teacher views, deep mutual learning,
//! born-again generations, multi-teacher mixtures and teacher assistants, through the real
//! training loop and experiment runner.

use apprentice::backend::{self, ComputeDevice};
use apprentice::config::{ExperimentConfig, TrainConfig};
use apprentice::data::augment::Augmentation;
use apprentice::data::{Dataset, SampleShape};
use apprentice::distill::methods::multi_teacher::mixture_logits;
use apprentice::distill::methods::{AttentionSettings, FitNetSettings, RkdSettings};
use std::sync::Arc;

use apprentice::distill::objective::{FeatureLoss, FeatureObjective, TeacherViews};
use apprentice::distill::optim::OptimizerSpec;
use apprentice::distill::train::{
    Learner, OnNan, Silent, Supervision, TeacherSignal, TrainHooks, TrainSettings, TrainingSet,
    predict_logits, train, train_learner,
};
use apprentice::experiment::{RunOptions, run_experiment};
use apprentice::models::{ModelSpec, Network};
use apprentice::report::results::Role;
use burn::module::Module;

fn spec(text: &str) -> ModelSpec {
    toml::from_str(text).expect("a model spec")
}

/// 64 samples of 8×8 "images" in 4 classes, each class a bright quadrant plus noise.
fn toy_data() -> Dataset {
    let shape = SampleShape::image(1, 8, 8);
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut state = 12345u64;
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    for i in 0..64 {
        let class = i % 4;
        for y in 0..8 {
            for x in 0..8 {
                let quadrant = (y / 4) * 2 + x / 4;
                let base = if quadrant == class { 1.0 } else { 0.0 };
                features.push(base + 0.3 * noise());
            }
        }
        labels.push(class as u32);
    }
    Dataset {
        name: "toy".into(),
        features,
        labels,
        shape,
        num_classes: 4,
    }
}

fn settings<'a>(train: &'a TrainConfig, optimizer: &'a OptimizerSpec) -> TrainSettings<'a> {
    TrainSettings {
        train,
        optimizer,
        augmentation: Augmentation::default(),
        fill: &[],
        seed: 7,
        on_nan: OnNan::Stop,
        checkpointing: None,
    }
}

fn network(spec_text: &str, seed: u64, device: &ComputeDevice) -> Network {
    Network::new(
        &spec(spec_text),
        SampleShape::image(1, 8, 8),
        4,
        seed,
        &device.training(),
    )
    .unwrap()
}

fn example_features(
    net: &Network,
    data: &Dataset,
    device: &ComputeDevice,
) -> Vec<apprentice::models::network::Feature> {
    let x = backend::matrix(data.sample(0).to_vec(), 1, 64, &device.inference());
    net.valid().forward(x, None).features
}

const CNN_TEACHER: &str = r#"kind = "cnn"
channels = [8, 8]
hidden = [16]"#;
const CNN_STUDENT: &str = r#"kind = "cnn"
channels = [2, 4]
hidden = [6]"#;
const MLP_STUDENT: &str = r#"kind = "mlp"
hidden = [6]"#;

#[test]
fn default_pairs_are_the_last_features_and_attention_pairs_stages_by_resolution() {
    let device = ComputeDevice::cpu();
    let data = toy_data();
    let teacher = example_features(&network(CNN_TEACHER, 1, &device), &data, &device);
    let cnn = example_features(&network(CNN_STUDENT, 2, &device), &data, &device);
    let mlp = example_features(&network(MLP_STUDENT, 3, &device), &data, &device);
    let objective = |method: Arc<dyn FeatureLoss>| FeatureObjective {
        method,
        student_feature: None,
        teacher_feature: None,
    };
    let rkd = objective(Arc::new(RkdSettings::default()))
        .resolve(&mlp, &teacher)
        .unwrap();
    assert_eq!(rkd.description, "hidden1→hidden1");
    let at = objective(Arc::new(AttentionSettings::default()))
        .resolve(&cnn, &teacher)
        .unwrap();
    assert_eq!(at.description, "block1→block1, block2→block2");
    let error = objective(Arc::new(AttentionSettings::default()))
        .resolve(&mlp, &teacher)
        .unwrap_err();
    assert!(error.contains("use a cnn student"), "{error}");
    let mut named = objective(Arc::new(FitNetSettings::default()));
    named.student_feature = Some("block2".into());
    let error = named.resolve(&cnn, &teacher).unwrap_err();
    assert!(error.contains("not of the same kind"), "{error}");
    named.teacher_feature = Some("block9".into());
    let error = named.resolve(&cnn, &teacher).unwrap_err();
    assert!(error.contains("no feature \"block9\""), "{error}");
}

/// Cached teacher views give the same training as running the teacher at every step.
#[test]
fn cached_views_train_exactly_like_the_live_teacher() {
    let device = ComputeDevice::cpu();
    let data = toy_data();
    let teacher = network(CNN_TEACHER, 1, &device).valid();
    let train_config = TrainConfig {
        epochs: 3,
        batch_size: 16,
        early_stopping_patience: None,
    };
    let optimizer = OptimizerSpec::default();
    let set = TrainingSet {
        data: &data,
        labelled: None,
        samples_per_epoch: data.len(),
        validation: &data,
    };
    let methods: [Arc<dyn FeatureLoss>; 2] = [
        Arc::new(FitNetSettings::default()),
        Arc::new(AttentionSettings::default()),
    ];
    for method in methods {
        let student = network(CNN_STUDENT, 2, &device);
        let resolved = FeatureObjective {
            method,
            student_feature: Some("block2".into()),
            teacher_feature: Some("block2".into()),
        }
        .resolve(
            &example_features(&student, &data, &device),
            &example_features(&teacher, &data, &device),
        )
        .unwrap();
        let widths = resolved.regressor_widths(
            &example_features(&student, &data, &device),
            &example_features(&teacher, &data, &device),
        );
        let logits = predict_logits(&teacher, &data, &device);
        let views = TeacherViews::compute(&teacher, &data, &resolved, &device);
        assert_eq!(views.len(), data.len());
        let run = |signal: TeacherSignal<'_>| {
            let regressors = widths
                .iter()
                .map(|&(i, o)| {
                    apprentice::distill::methods::FitNetRegressor::new(i, o, 99, &device.training())
                })
                .collect();
            let learner = Learner::new(vec![network(CNN_STUDENT, 2, &device)], regressors);
            train_learner(
                "features",
                learner,
                &set,
                &Supervision::Features {
                    teacher: signal,
                    objective: resolved.clone(),
                },
                &settings(&train_config, &optimizer),
                TrainHooks::default(),
                &device,
                &mut Silent::default(),
            )
            .unwrap()
            .train_loss
        };
        let cached = run(TeacherSignal::CachedWithViews {
            logits: &logits,
            views: &views,
        });
        let live = run(TeacherSignal::Live(&teacher));
        for (a, b) in cached.iter().zip(&live) {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "{cached:?} vs {live:?}"
            );
        }
        // The distillation term is really there: the loss differs from cross-entropy alone.
        let scratch = train(
            "scratch",
            network(CNN_STUDENT, 2, &device),
            &set,
            &Supervision::Labels,
            &settings(&train_config, &optimizer),
            &device,
            &mut Silent::default(),
        )
        .unwrap()
        .train_loss;
        assert!(
            (cached[0] - scratch[0]).abs() > 1e-4,
            "{cached:?} vs {scratch:?}"
        );
    }
}

/// Two identical members teach each other nothing (their KL is zero), so the cohort's loss is
/// exactly twice a single network's cross-entropy, epoch after epoch.
#[test]
fn mutual_learning_of_identical_twins_is_twice_plain_training() {
    let device = ComputeDevice::cpu();
    let data = toy_data();
    let train_config = TrainConfig {
        epochs: 3,
        batch_size: 16,
        early_stopping_patience: None,
    };
    let optimizer = OptimizerSpec::default();
    let set = TrainingSet {
        data: &data,
        labelled: None,
        samples_per_epoch: data.len(),
        validation: &data,
    };
    let single = train(
        "single",
        network(MLP_STUDENT, 5, &device),
        &set,
        &Supervision::Labels,
        &settings(&train_config, &optimizer),
        &device,
        &mut Silent::default(),
    )
    .unwrap();
    let twins = train_learner(
        "twins",
        Learner::new(
            vec![
                network(MLP_STUDENT, 5, &device),
                network(MLP_STUDENT, 5, &device),
            ],
            Vec::new(),
        ),
        &set,
        &Supervision::Mutual { temperature: 1.0 },
        &settings(&train_config, &optimizer),
        TrainHooks::default(),
        &device,
        &mut Silent::default(),
    )
    .unwrap();
    assert_eq!(twins.peers.len(), 1);
    for (cohort, alone) in twins.train_loss.iter().zip(&single.train_loss) {
        assert!(
            (cohort - 2.0 * alone).abs() < 1e-5,
            "{cohort} vs 2 × {alone}"
        );
    }
    // Different members do teach each other: the cohort loss then differs.
    let different = train_learner(
        "pair",
        Learner::new(
            vec![
                network(MLP_STUDENT, 5, &device),
                network(MLP_STUDENT, 6, &device),
            ],
            Vec::new(),
        ),
        &set,
        &Supervision::Mutual { temperature: 1.0 },
        &settings(&train_config, &optimizer),
        TrainHooks::default(),
        &device,
        &mut Silent::default(),
    )
    .unwrap();
    assert!((different.train_loss[0] - 2.0 * single.train_loss[0]).abs() > 1e-4);
    // A cohort under another supervision is refused.
    let error = train_learner(
        "bad",
        Learner::new(
            vec![
                network(MLP_STUDENT, 5, &device),
                network(MLP_STUDENT, 6, &device),
            ],
            Vec::new(),
        ),
        &set,
        &Supervision::Labels,
        &settings(&train_config, &optimizer),
        TrainHooks::default(),
        &device,
        &mut Silent::default(),
    )
    .err()
    .expect("refused");
    assert!(error.to_string().contains("mutual"), "{error}");
}

/// The probe is measured on the initial weights, every k epochs and after the last epoch.
#[test]
fn the_probe_runs_on_its_schedule() {
    let device = ComputeDevice::cpu();
    let data = toy_data();
    let train_config = TrainConfig {
        epochs: 5,
        batch_size: 32,
        early_stopping_patience: None,
    };
    let optimizer = OptimizerSpec::default();
    let set = TrainingSet {
        data: &data,
        labelled: None,
        samples_per_epoch: data.len(),
        validation: &data,
    };
    let measure = |net: &Network| -> Result<Vec<f64>, String> {
        let logits = predict_logits(net, &data, &ComputeDevice::cpu());
        Ok(vec![logits.iter().map(|&v| v as f64).sum()])
    };
    let outcome = train_learner(
        "probed",
        Learner::single(network(MLP_STUDENT, 5, &device)),
        &set,
        &Supervision::Labels,
        &settings(&train_config, &optimizer),
        TrainHooks {
            probe: Some((2, &measure)),
            snapshot: None,
        },
        &device,
        &mut Silent::default(),
    )
    .unwrap();
    let epochs: Vec<usize> = outcome.probes.iter().map(|p| p.epoch).collect();
    assert_eq!(epochs, [0, 2, 4, 5]);
    // The last point measures the returned model.
    let last = measure(&outcome.model).unwrap()[0];
    assert!((outcome.probes[3].values[0] - last).abs() <= 1e-6 * last.abs().max(1.0));
}

#[test]
fn mixture_logits_soften_to_the_weighted_mean_of_the_teachers() {
    let a = [2.0f32, -1.0, 0.5, 10.0, 0.0, -3.0];
    let b = [0.0f32, 3.0, -2.0, 1.0, 1.0, 1.0];
    let temperature = 4.0;
    let mixed = mixture_logits(&[&a, &b], &[1.0, 3.0], 3, temperature);
    let softmax = |row: &[f32]| {
        let exps: Vec<f64> = row
            .iter()
            .map(|&v| (v as f64 / temperature).exp())
            .collect();
        let sum: f64 = exps.iter().sum();
        exps.into_iter().map(|e| e / sum).collect::<Vec<f64>>()
    };
    for row in 0..2 {
        let range = row * 3..row * 3 + 3;
        let got = softmax(&mixed[range.clone()]);
        let pa = softmax(&a[range.clone()]);
        let pb = softmax(&b[range]);
        for c in 0..3 {
            let expected = 0.25 * pa[c] + 0.75 * pb[c];
            assert!((got[c] - expected).abs() < 1e-6, "{got:?}");
        }
    }
}

const EVERY_METHOD: &str = r#"
name = "methods"
seeds = [0]

[data]
source = "digits"

[teacher.model]
kind = "mlp"
hidden = [64]

[teacher.train]
epochs = 4

[teacher.optimizer]
optimizer = "adam"
lr = 0.005

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 3

[student.optimizer]
optimizer = "adam"
lr = 0.01

[distill]
methods = ["kd", "dkd", "dist", "fitnet", "rkd", "pkt", "sp", "born-again", "dml", "multi-teacher", "ta"]

[distill.born_again]
generations = 2

[[distill.multi_teacher.extra]]
model = { kind = "mlp", hidden = [32] }
train = { epochs = 3 }
optimizer = { optimizer = "adam", lr = 0.005 }

[distill.assistant]
model = { kind = "mlp", hidden = [16] }
"#;

#[test]
fn one_run_compares_every_method_deterministically() {
    let config = ExperimentConfig::from_toml(EVERY_METHOD, "methods.toml").unwrap();
    let run = || {
        let folder = tempfile::tempdir().unwrap();
        let options = RunOptions {
            run_dir: folder.path().to_path_buf(),
            data_path: None,
            device: ComputeDevice::cpu(),
            save_checkpoints: false,
        };
        run_experiment(&config, &options, &mut Silent::default()).unwrap()
    };
    let results = run();
    let names: Vec<&str> = results.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "teacher",
            "teacher-2",
            "scratch",
            "kd",
            "dkd",
            "dist",
            "fitnet",
            "rkd",
            "pkt",
            "sp",
            "born-again-1",
            "born-again-2",
            "born-again-ensemble",
            "dml",
            "multi-teacher",
            "assistant",
            "ta",
        ]
    );
    let role = |name: &str| results.models.iter().find(|m| m.name == name).unwrap();
    assert_eq!(role("teacher-2").role, Role::Teacher);
    assert_eq!(role("assistant").role, Role::Teacher);
    assert_eq!(
        role("born-again-ensemble").params,
        2 * role("scratch").params
    );
    assert_eq!(role("fitnet").params, role("scratch").params);
    // Every student learned something, and the methods really differ from one another.
    let accuracies: Vec<f64> = results
        .models
        .iter()
        .map(|m| m.test.accuracy.mean)
        .collect();
    assert!(accuracies.iter().all(|&a| a > 0.3), "{accuracies:?}");
    let losses: Vec<f64> = results
        .models
        .iter()
        .filter(|m| m.role == Role::Distilled && m.name != "born-again-ensemble")
        .map(|m| m.curves[0].train_loss[0])
        .collect();
    for (i, a) in losses.iter().enumerate() {
        for b in &losses[i + 1..] {
            assert!(
                (a - b).abs() > 1e-9,
                "two methods trained identically: {losses:?}"
            );
        }
    }
    // Same seed, same numbers.
    let again = run();
    for (a, b) in results.models.iter().zip(&again.models) {
        assert_eq!(
            a.test.accuracy.per_seed, b.test.accuracy.per_seed,
            "{}",
            a.name
        );
    }
}

#[test]
fn method_settings_that_cannot_work_are_refused_by_key() {
    let with = |distill: &str| {
        let text = EVERY_METHOD.split("[distill]").next().unwrap().to_string() + distill;
        ExperimentConfig::from_toml(&text, "m.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(with("[distill]\nmethods = [\"at\"]\n").contains("needs a cnn student"));
    assert!(with("[distill]\nmethods = [\"ta\"]\n").contains("[distill.assistant]"));
    assert!(
        with("[distill]\nmethods = [\"dml\"]\n[distill.dml]\nstudents = 1\n")
            .contains("distill.dml.students")
    );
    assert!(with("[distill]\nmethods = [\"kd\", \"kd\"]\n").contains("listed twice"));
    let unknown = with("[distill]\nmethods = [\"crd\"]\n");
    assert!(
        unknown.starts_with("m.toml:")
            && unknown.contains("distill.methods[0]: unknown method \"crd\"; expected one of: kd,"),
        "{unknown}"
    );
    assert!(
        with("[distill]\nmethods = [\"multi-teacher\"]\n[distill.multi_teacher]\nteachers = 2\nweights = [1.0]\n")
            .contains("distill.multi_teacher.weights")
    );
    assert!(with("[distill]\nmethods = []\n").contains("at least one method"));
}

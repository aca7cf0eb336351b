//! Online distillation: the student learns from the teacher's checkpoints along its training.

use apprentice::backend::ComputeDevice;
use apprentice::config::{ExperimentConfig, TrainConfig};
use apprentice::data::augment::Augmentation;
use apprentice::data::prepare::{load_raw, prepare};
use apprentice::distill::loss::KdWeights;
use apprentice::distill::optim::OptimizerSpec;
use apprentice::distill::state::Checkpointing;
use apprentice::distill::train::{
    Learner, OnNan, Silent, Supervision, TeacherSignal, TrainHooks, TrainObserver, TrainSettings,
    TrainingSet, teacher_epoch_for, train_learner,
};
use apprentice::experiment::{RunOptions, run_experiment, student_init_seed};
use apprentice::models::Network;

#[test]
fn equal_epoch_counts_map_each_epoch_to_its_own_checkpoint() {
    for epoch in 1..=8 {
        assert_eq!(teacher_epoch_for(epoch, 8, 8, 1), epoch);
    }
}

#[test]
fn unequal_epoch_counts_map_by_the_fraction_of_training() {
    // 20 student epochs over 8 teacher epochs: the same fraction, rounded up.
    let map: Vec<usize> = (1..=20).map(|e| teacher_epoch_for(e, 20, 8, 1)).collect();
    assert_eq!(
        map,
        [1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 8]
    );
    // Fewer student epochs than teacher epochs skip checkpoints; the last is always the last.
    let map: Vec<usize> = (1..=3).map(|e| teacher_epoch_for(e, 3, 10, 1)).collect();
    assert_eq!(map, [4, 7, 10]);
    // Checkpoints every 3 epochs (and the last, 8): rounded up to one that exists.
    let map: Vec<usize> = (1..=8).map(|e| teacher_epoch_for(e, 8, 8, 3)).collect();
    assert_eq!(map, [3, 3, 3, 6, 6, 6, 8, 8]);
}

const ONLINE: &str = r#"
name = "online"
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
hidden = [16]

[student.train]
epochs = 6

[student.optimizer]
optimizer = "adam"
lr = 0.01

[distill]
methods = ["kd", "online"]
temperature = 1.0
alpha = 0.0
"#;

#[test]
fn an_online_run_keeps_the_teacher_checkpoints_and_learns_from_them() {
    let config = ExperimentConfig::from_toml(ONLINE, "online.toml").unwrap();
    let folder = tempfile::tempdir().unwrap();
    let options = RunOptions {
        run_dir: folder.path().to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: false,
    };
    let results = run_experiment(&config, &options, &mut Silent::default()).unwrap();
    let names: Vec<&str> = results.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["teacher", "scratch", "kd", "online"]);
    let mut kept: Vec<String> = std::fs::read_dir(folder.path().join("seed-0/teacher.epochs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            "epoch-0001.safetensors",
            "epoch-0002.safetensors",
            "epoch-0003.safetensors",
            "epoch-0004.safetensors"
        ]
    );
    let model = |name: &str| results.models.iter().find(|m| m.name == name).unwrap();
    // Same loss as kd, other targets in the early epochs, the final teacher's at the end.
    assert_ne!(
        model("online").curves[0].train_loss[0],
        model("kd").curves[0].train_loss[0]
    );
    assert!(model("online").test.accuracy.mean > 0.5);
    // A loaded teacher without its checkpoint folder cannot teach online.
    let text = ONLINE.replace(
        "[teacher.model]\nkind = \"mlp\"\nhidden = [64]\n\n[teacher.train]\nepochs = 4\n",
        "[teacher]\ncheckpoint = \"t.safetensors\"\n",
    );
    let error = ExperimentConfig::from_toml(&text, "online.toml").unwrap_err();
    assert!(error.to_string().contains("teacher.checkpoints"), "{error}");
}

/// Stops the run by panicking when an epoch ends, before that epoch's state is saved.
struct Interrupt {
    at_epoch: usize,
}

impl TrainObserver for Interrupt {
    fn start(&mut self, _: &str, _: usize, _: usize) {}
    fn epoch(&mut self, epoch: usize, _: f64, _: f64) {
        if epoch == self.at_epoch {
            panic!("interrupted");
        }
    }
    fn finish(&mut self) {}
}

/// A run interrupted in its third epoch and resumed learns from the same teacher checkpoints as
/// one that was never interrupted: the schedule follows the epoch, not the process.
#[test]
fn a_resumed_online_run_keeps_the_right_teacher_checkpoint() {
    let config = ExperimentConfig::from_toml(ONLINE, "online.toml").unwrap();
    let device = ComputeDevice::cpu();
    let raw = load_raw(&config.data, None).unwrap();
    let data = prepare(&raw, &config.data, 0).unwrap();
    let classes = data.train.num_classes;
    // Two "teacher checkpoints" that disagree: epochs 1-2 learn from one, 3-4 from the other.
    let first: Vec<f32> = (0..data.train.len() * classes)
        .map(|i| if i % classes == 0 { 5.0 } else { 0.0 })
        .collect();
    let second: Vec<f32> = data
        .train
        .labels
        .iter()
        .flat_map(|&label| (0..classes).map(move |c| if c == label as usize { 5.0 } else { 0.0 }))
        .collect();
    let schedule: Vec<&[f32]> = vec![&first, &first, &second, &second];
    let train_config = TrainConfig {
        epochs: 4,
        batch_size: 64,
        early_stopping_patience: None,
    };
    let optimizer = OptimizerSpec::default();
    let set = TrainingSet {
        data: &data.train,
        labelled: None,
        samples_per_epoch: data.train.len(),
        validation: &data.validation,
    };
    let supervision = Supervision::Distill {
        teacher: TeacherSignal::PerEpoch(&schedule),
        objective: std::sync::Arc::new(KdWeights {
            temperature: 1.0,
            alpha: 0.0,
        }),
    };
    let student = || {
        Network::new(
            &config.student.model,
            data.train.shape,
            classes,
            student_init_seed(0),
            &device.training(),
        )
        .unwrap()
    };
    let run = |checkpointing: Option<&Checkpointing>, observer: &mut dyn TrainObserver| {
        let settings = TrainSettings {
            train: &train_config,
            optimizer: &optimizer,
            augmentation: Augmentation::default(),
            fill: &[],
            seed: 3,
            on_nan: OnNan::Stop,
            checkpointing,
        };
        train_learner(
            "online",
            Learner::single(student()),
            &set,
            &supervision,
            &settings,
            TrainHooks::default(),
            &device,
            observer,
        )
    };
    let straight = run(None, &mut Silent::default()).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let checkpointing = Checkpointing {
        dir: folder.path().join("state"),
        every_steps: 0,
        keep_last: 2,
        identity: "online-test".into(),
    };
    let interrupted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = run(Some(&checkpointing), &mut Interrupt { at_epoch: 3 });
    }));
    assert!(interrupted.is_err(), "the run was interrupted");
    let resumed = run(Some(&checkpointing), &mut Silent::default()).unwrap();
    assert_eq!(resumed.train_loss, straight.train_loss);
    // The checkpoints really differ: the third epoch's loss is not the second's teacher's.
    let constant: Vec<&[f32]> = vec![&first; 4];
    let other = Supervision::Distill {
        teacher: TeacherSignal::PerEpoch(&constant),
        objective: std::sync::Arc::new(KdWeights {
            temperature: 1.0,
            alpha: 0.0,
        }),
    };
    let settings = TrainSettings {
        train: &train_config,
        optimizer: &optimizer,
        augmentation: Augmentation::default(),
        fill: &[],
        seed: 3,
        on_nan: OnNan::Stop,
        checkpointing: None,
    };
    let unchanged = train_learner(
        "constant",
        Learner::single(student()),
        &set,
        &other,
        &settings,
        TrainHooks::default(),
        &device,
        &mut Silent::default(),
    )
    .unwrap();
    assert_eq!(unchanged.train_loss[..2], straight.train_loss[..2]);
    assert_ne!(unchanged.train_loss[2], straight.train_loss[2]);
}

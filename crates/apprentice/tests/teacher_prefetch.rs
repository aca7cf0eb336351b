//! The live teacher one batch ahead on a thread of its own (`distill::prefetch`): the logits it
//! hands back are the teacher's, in submission order, and distillation from a live teacher
//! trains to the same bits on one thread (teacher inline) and on two (teacher on its worker).

mod common;

use apprentice::backend::{self, ComputeDevice};
use apprentice::config::TrainConfig;
use apprentice::data::SampleShape;
use apprentice::data::augment::Augmentation;
use apprentice::distill::loss::KdWeights;
use apprentice::distill::optim::OptimizerSpec;
use apprentice::distill::prefetch::TeacherPrefetcher;
use apprentice::distill::train::{
    OnNan, Silent, Supervision, TeacherSignal, TrainOutcome, TrainSettings, TrainingSet,
    predict_logits, train,
};
use apprentice::models::{ModelSpec, Network};
use common::toy_data;

fn mlp(hidden: usize) -> ModelSpec {
    toml::from_str(&format!("kind = \"mlp\"\nhidden = [{hidden}]")).unwrap()
}

fn on_threads<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(work)
}

#[test]
fn the_worker_hands_back_the_teachers_logits_in_order() {
    let device = ComputeDevice::cpu();
    let data = toy_data(40, 7);
    let width = data.shape.len();
    let teacher = Network::new(&mlp(24), data.shape, 3, 5, &device.inference()).unwrap();
    // Batches of unequal sizes, the last one short, as at the end of an epoch.
    let batches = [(0, 16), (16, 16), (32, 8), (3, 1)];
    let direct: Vec<Vec<f32>> = batches
        .iter()
        .map(|&(start, rows)| {
            let values = data.features[start * width..(start + rows) * width].to_vec();
            let inputs = backend::matrix(values, rows, width, &device.inference());
            backend::to_host(teacher.logits(inputs))
        })
        .collect();
    for worker in [false, true] {
        let mut prefetcher = TeacherPrefetcher::with_worker(&teacher, &device, width, worker);
        assert_eq!(prefetcher.uses_worker(), worker);
        assert!(prefetcher.next_logits().is_err(), "nothing was submitted");
        // Two in flight at a time, as the training loop keeps them.
        let submit = |prefetcher: &mut TeacherPrefetcher, k: usize| {
            let (start, rows) = batches[k];
            prefetcher.submit(&data.features[start * width..(start + rows) * width], rows);
        };
        submit(&mut prefetcher, 0);
        for k in 0..batches.len() {
            if k + 1 < batches.len() {
                submit(&mut prefetcher, k + 1);
            }
            let logits = prefetcher.next_logits().unwrap();
            assert_eq!(logits.len(), batches[k].1 * 3);
            let same = logits
                .iter()
                .zip(&direct[k])
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "worker {worker}: batch {k} differs from the teacher's own logits"
            );
        }
        assert_eq!(prefetcher.pending(), 0);
    }
}

#[test]
fn a_failing_teacher_is_reported_not_hung_on() {
    let device = ComputeDevice::cpu();
    let teacher = Network::new(
        &mlp(8),
        SampleShape::image(1, 6, 6),
        3,
        5,
        &device.inference(),
    )
    .unwrap();
    let mut prefetcher = TeacherPrefetcher::with_worker(&teacher, &device, 36, true);
    // Ten values cannot be one row of 36 features: the forward pass fails on the worker.
    prefetcher.submit(&[0.5; 10], 1);
    let error = prefetcher.next_logits().unwrap_err();
    assert!(error.contains("teacher"), "{error}");
}

/// Distillation from a live teacher, with augmentation and a last batch that is short.
fn distill(threads: usize) -> (TrainOutcome, bool) {
    on_threads(threads, || {
        let device = ComputeDevice::cpu();
        let data = toy_data(100, 99);
        let validation = toy_data(30, 5);
        let teacher = Network::new(&mlp(32), data.shape, 3, 5, &device.inference()).unwrap();
        let student = Network::new(&mlp(8), data.shape, 3, 11, &device.training()).unwrap();
        let train_config = TrainConfig {
            epochs: 3,
            batch_size: 16,
            early_stopping_patience: None,
        };
        let optimizer = OptimizerSpec::default();
        let fill = vec![0.0; data.shape.len()];
        let settings = TrainSettings {
            train: &train_config,
            optimizer: &optimizer,
            augmentation: Augmentation {
                max_shift: 1,
                horizontal_flip: true,
            },
            fill: &fill,
            seed: 3,
            on_nan: OnNan::Stop,
            checkpointing: None,
        };
        let set = TrainingSet {
            data: &data,
            labelled: None,
            samples_per_epoch: data.len(),
            validation: &validation,
        };
        let outcome = train(
            "student",
            student,
            &set,
            &Supervision::Distill {
                teacher: TeacherSignal::Live(&teacher),
                objective: std::sync::Arc::new(KdWeights {
                    temperature: 4.0,
                    alpha: 0.5,
                }),
            },
            &settings,
            &device,
            &mut Silent::default(),
        )
        .unwrap();
        (outcome, TeacherPrefetcher::worker_allowed(&device))
    })
}

#[test]
fn live_distillation_is_the_same_with_the_teacher_on_its_own_thread() {
    let (inline, worker_inline) = distill(1);
    let (threaded, worker_threaded) = distill(2);
    assert!(
        !worker_inline,
        "one thread allowed: the teacher must stay inline"
    );
    assert!(
        worker_threaded,
        "two threads allowed: the teacher gets its own"
    );
    assert_eq!(inline.train_loss, threaded.train_loss);
    assert_eq!(inline.validation_accuracy, threaded.validation_accuracy);
    let device = ComputeDevice::cpu();
    let probe = toy_data(30, 1234);
    let a = predict_logits(&inline.model, &probe, &device);
    let b = predict_logits(&threaded.model, &probe, &device);
    assert!(
        a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
        "the trained students differ"
    );
}

/// Without augmentation the teacher's logits can be computed once beforehand: the threaded live
/// teacher must give every batch exactly its own rows (no batch early, late or twice).
#[test]
fn the_threaded_live_teacher_trains_like_its_precomputed_logits() {
    let device = ComputeDevice::cpu();
    let data = toy_data(100, 42);
    let teacher = Network::new(&mlp(32), data.shape, 3, 5, &device.inference()).unwrap();
    let cached = predict_logits(&teacher, &data, &device);
    let train_config = TrainConfig {
        epochs: 2,
        batch_size: 12,
        early_stopping_patience: None,
    };
    let optimizer = OptimizerSpec::default();
    let settings = TrainSettings {
        train: &train_config,
        optimizer: &optimizer,
        augmentation: Augmentation::default(),
        fill: &[],
        seed: 8,
        on_nan: OnNan::Stop,
        checkpointing: None,
    };
    let set = TrainingSet {
        data: &data,
        labelled: None,
        samples_per_epoch: 130,
        validation: &data,
    };
    let run = |teacher: TeacherSignal<'_>| {
        on_threads(2, || {
            let student = Network::new(&mlp(8), data.shape, 3, 11, &device.training()).unwrap();
            let supervision = Supervision::Distill {
                teacher,
                objective: std::sync::Arc::new(KdWeights {
                    temperature: 4.0,
                    alpha: 0.5,
                }),
            };
            train(
                "student",
                student,
                &set,
                &supervision,
                &settings,
                &device,
                &mut Silent::default(),
            )
            .unwrap()
            .train_loss
        })
    };
    assert_eq!(
        run(TeacherSignal::Live(&teacher)),
        run(TeacherSignal::Cached(&cached))
    );
}

//! How fast training runs: the knowledge-distillation step on fixed workloads (the same shapes,
//! loss, optimiser and thread count as `bench/reference/kd_step.py` runs in PyTorch), and one
//! student epoch of an experiment with the teacher's logits cached on disk against computing
//! them with the live teacher.
//!
//! Every step is [`TrainStep::run`], the function the training loop calls for each batch: the
//! student's forward pass, the frozen teacher one batch ahead of it (on a thread of its own when
//! one is allowed), the loss, the backward pass and the optimiser's update, with the batch copied
//! from host memory and the loss read back. The epoch measurement is [`train`] itself.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::backend::ComputeDevice;
use crate::config::ExperimentConfig;
use crate::data::SampleShape;
use crate::data::batch::mix_seed;
use crate::data::prepare::{load_raw, prepare};
use crate::distill::cache::{
    CacheError, CacheStorage, ShardRange, TeacherCache, data_hash, teacher_hash, write_shard,
};
use crate::distill::learner::Learner;
use crate::distill::loss::{KdWeights, LogitLoss};
use crate::distill::optim::{OptimizerKind, OptimizerSpec};
use crate::distill::settings::TrainConfig;
use crate::distill::step::{StepBatch, StepError, StepOutcome, TrainStep};
use crate::distill::supervision::{Supervision, TeacherSignal};
use crate::distill::train::{
    OnNan, Silent, TrainError, TrainSettings, TrainingSet, predict_logits, train,
};
use crate::models::{Activation, CnnSpec, MlpSpec, ModelSpec, Network};

/// Samples per step in every step workload.
pub const STEP_BATCH: usize = 128;
/// Fashion-MNIST-sized inputs: one 28×28 grey image.
const IMAGE: [usize; 3] = [1, 28, 28];
const CLASSES: usize = 10;
/// Distinct random batches cycled through, so that the inputs change from step to step as in
/// training without the generator's cost entering the timing.
const POOL_BATCHES: usize = 8;
/// The distillation loss of every step workload.
const KD: KdWeights = KdWeights {
    temperature: 4.0,
    alpha: 0.5,
};

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum StepBenchError {
    /// The experiment file of the epoch workload.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Its data.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The teacher cache.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A training run of the epoch workload.
    #[error(transparent)]
    Training(#[from] TrainError),
    /// A step of a step workload.
    #[error("{workload}: {source}")]
    Step {
        /// The workload's name.
        workload: &'static str,
        /// Why.
        source: StepError,
    },
    /// A step workload's loss became NaN or infinite.
    #[error("{workload}: the loss became {value}")]
    NonFinite {
        /// The workload's name.
        workload: &'static str,
        /// The value seen.
        value: f32,
    },
    /// A model that cannot be built, or settings the workload cannot use.
    #[error("{0}")]
    Invalid(String),
    /// The work folder.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One step workload: a student architecture and its optimiser, distilled from an MLP
/// 784-1200-1200-10 teacher with KD at T = 4, α = 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepWorkload {
    /// Student MLP 784-800-800-10, Adam.
    MlpAdam,
    /// Student MLP 784-800-800-10, SGD with momentum.
    MlpSgd,
    /// Student CNN, Adam.
    CnnAdam,
    /// Student CNN, SGD with momentum.
    CnnSgd,
}

impl StepWorkload {
    /// Every step workload, in the order `all` runs them.
    pub const ALL: [StepWorkload; 4] = [Self::MlpAdam, Self::MlpSgd, Self::CnnAdam, Self::CnnSgd];

    /// The workload's name on the command line and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::MlpAdam => "mlp-adam",
            Self::MlpSgd => "mlp-sgd",
            Self::CnnAdam => "cnn-adam",
            Self::CnnSgd => "cnn-sgd",
        }
    }

    /// The workload of that name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Student MLP 784-800-800-10, or the CNN conv3×3 1→32, ReLU, max-pool 2, conv3×3 32→64,
    /// ReLU, max-pool 2, dense 3136→10 (our conv block without batch norm is exactly that).
    pub fn student(self) -> ModelSpec {
        match self {
            Self::MlpAdam | Self::MlpSgd => mlp(&[800, 800]),
            Self::CnnAdam | Self::CnnSgd => ModelSpec::Cnn(CnnSpec {
                channels: vec![32, 64],
                kernel_size: 3,
                batch_norm: false,
                pool: true,
                hidden: Vec::new(),
                activation: Activation::Relu,
                dropout: 0.0,
            }),
        }
    }

    /// Adam at 1e-3, or SGD at 0.01 with momentum 0.9 (PyTorch's defaults otherwise).
    pub fn optimizer(self) -> OptimizerSpec {
        match self {
            Self::MlpAdam | Self::CnnAdam => OptimizerSpec {
                optimizer: OptimizerKind::Adam,
                lr: 1e-3,
                ..OptimizerSpec::default()
            },
            Self::MlpSgd | Self::CnnSgd => OptimizerSpec {
                optimizer: OptimizerKind::Sgd,
                lr: 0.01,
                momentum: 0.9,
                ..OptimizerSpec::default()
            },
        }
    }
}

/// The frozen teacher of every step workload: MLP 784-1200-1200-10.
pub fn step_teacher_spec() -> ModelSpec {
    mlp(&[1200, 1200])
}

fn mlp(hidden: &[usize]) -> ModelSpec {
    ModelSpec::Mlp(MlpSpec {
        hidden: hidden.to_vec(),
        activation: Activation::Relu,
        dropout: 0.0,
    })
}

/// How a step workload is timed.
#[derive(Debug, Clone, Copy)]
pub struct StepTiming {
    /// Timed steps per repeat (at least 1).
    pub steps: usize,
    /// Untimed steps before the first repeat (allocator and caches warm up).
    pub warmup: usize,
    /// Timed repeats (at least 1); the median is reported.
    pub repeats: usize,
    /// Keep the teacher on the student's thread even when a second one is allowed.
    pub teacher_inline: bool,
    /// Update with burn's optimisers instead of the fused one-pass updates training uses.
    pub unfused_optimizer: bool,
}

/// What one workload measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measurement {
    /// The workload's name.
    pub workload: String,
    /// Median over repeats (for `fashion-epoch`: training steps of the cached epoch, opening
    /// the cache and validation included).
    pub steps_per_s: f64,
    /// `1000 / steps_per_s`.
    pub ms_per_step: f64,
    /// Every repeat, steps per second.
    pub repeats: Vec<f64>,
    /// Steps per repeat.
    pub steps: usize,
    /// The loss of the last step: the same seeds give the same value, so it shows whether two
    /// builds or thread counts compute the same thing.
    pub final_loss: f64,
    /// Whether the teacher ran on a thread of its own (step workloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teacher_thread: Option<bool>,
    /// Whether the optimiser took the fused one-pass updates (step workloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fused_optimizer: Option<bool>,
    /// Extra figures of the epoch workload (seconds), absent for step workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<EpochTimes>,
}

/// The `fashion-epoch` figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochTimes {
    /// Training samples in the epoch.
    pub samples: usize,
    /// Computing the teacher's logits on every training input and writing the cache (once).
    pub cache_build_s: f64,
    /// Opening and verifying the cache.
    pub cache_open_s: f64,
    /// One student epoch reading the cached logits (validation included).
    pub cached_epoch_s: f64,
    /// One student epoch running the teacher on every batch (validation included).
    pub live_epoch_s: f64,
    /// (cache open + cached epoch) / live epoch.
    pub cached_over_live: f64,
    /// Mean training loss of the epoch with the cache.
    pub cached_loss: f64,
    /// Mean training loss of the epoch with the live teacher (equal to the cached one when the
    /// inputs are not augmented).
    pub live_loss: f64,
}

/// A batch of random normalised inputs and labels, kept on the host like a data set.
struct HostBatch {
    features: Vec<f32>,
    labels: Vec<u32>,
}

fn random_batches(seed: u64) -> Vec<HostBatch> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let width: usize = IMAGE.iter().product();
    (0..POOL_BATCHES)
        .map(|_| HostBatch {
            features: (0..STEP_BATCH * width)
                .map(|_| rng.random_range(-1.0f32..1.0))
                .collect(),
            labels: (0..STEP_BATCH)
                .map(|_| rng.random_range(0..CLASSES as u32))
                .collect(),
        })
        .collect()
}

/// Times the KD step of `workload`: `timing.warmup` steps, then `timing.repeats` runs of
/// `timing.steps` steps, cycling through a pool of seeded random batches.
pub fn measure_step(
    workload: StepWorkload,
    timing: &StepTiming,
) -> Result<Measurement, StepBenchError> {
    let device = ComputeDevice::cpu();
    let shape = SampleShape::image(IMAGE[0], IMAGE[1], IMAGE[2]);
    let width = shape.len();
    let teacher = Network::new(
        &step_teacher_spec(),
        shape,
        CLASSES,
        mix_seed(7, 1),
        &device.inference(),
    )
    .map_err(StepBenchError::Invalid)?;
    let student = Network::new(
        &workload.student(),
        shape,
        CLASSES,
        mix_seed(7, 2),
        &device.training(),
    )
    .map_err(StepBenchError::Invalid)?;
    let spec = workload.optimizer();
    let mut optimizer = if timing.unfused_optimizer {
        spec.build_unfused()
    } else {
        spec.build()
    };
    let supervision = Supervision::Distill {
        teacher: TeacherSignal::Live(&teacher),
        objective: Arc::new(KD),
    };
    let worker = !timing.teacher_inline
        && crate::distill::prefetch::TeacherPrefetcher::worker_allowed(&device);
    let mut runner =
        TrainStep::with_teacher_worker(&supervision, None, 7, width, CLASSES, &device, worker);
    let batches = random_batches(11);
    // The rows' places in the pool; only a cached teacher or a label mask would read them.
    let indices: Vec<usize> = (0..STEP_BATCH).collect();
    let mut learner = Learner::single(student);
    let mut taken = 0;
    let mut step = |learner: Learner| -> Result<(Learner, f32), StepBenchError> {
        let batch = &batches[taken % batches.len()];
        let following = &batches[(taken + 1) % batches.len()];
        let inputs = StepBatch {
            features: &batch.features,
            labels: &batch.labels,
            indices: &indices,
            epoch: 0,
            step: taken,
        };
        taken += 1;
        let (learner, outcome) = runner
            .run(
                learner,
                &mut optimizer,
                spec.lr,
                &inputs,
                Some(&following.features),
            )
            .map_err(|source| StepBenchError::Step {
                workload: workload.name(),
                source,
            })?;
        match outcome {
            StepOutcome::Updated { loss } => Ok((learner, loss)),
            StepOutcome::NonFinite { loss } => Err(StepBenchError::NonFinite {
                workload: workload.name(),
                value: loss,
            }),
        }
    };
    for _ in 0..timing.warmup {
        learner = step(learner)?.0;
    }
    let mut repeats = Vec::with_capacity(timing.repeats);
    let mut final_loss = f32::NAN;
    for _ in 0..timing.repeats {
        let started = Instant::now();
        for _ in 0..timing.steps {
            (learner, final_loss) = step(learner)?;
        }
        repeats.push(timing.steps as f64 / started.elapsed().as_secs_f64());
    }
    let steps_per_s = median(&repeats);
    Ok(Measurement {
        workload: workload.name().to_string(),
        steps_per_s,
        ms_per_step: 1e3 / steps_per_s,
        repeats,
        steps: timing.steps,
        final_loss: final_loss as f64,
        teacher_thread: Some(runner.teacher_on_worker()),
        fused_optimizer: Some(!timing.unfused_optimizer),
        epoch: None,
    })
}

/// The median of `values` (the mean of the middle two for an even count; NaN when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[middle],
        _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
    }
}

/// One student epoch of `config` (seed 0, all labels, its KD settings), `repeats` times: with
/// the teacher's logits read from a cache written by [`write_shard`] into `work` and opened
/// with [`TeacherCache::open`], against the live teacher. The teacher is the config's
/// architecture at its seeded initial weights: its values do not change the cost. `data`
/// overrides `data.path`; `progress` hears what is being done.
pub fn measure_epoch(
    config: &ExperimentConfig,
    data: Option<&Path>,
    work: &Path,
    repeats: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Measurement, StepBenchError> {
    let device = ComputeDevice::cpu();
    let raw = load_raw(&config.data, data)?;
    let seed = 0;
    let data = prepare(&raw, &config.data, seed)?;
    let train_set = &data.train;
    let shape = train_set.shape;
    let classes = train_set.num_classes;
    let teacher_model = config.teacher.model.as_ref().ok_or_else(|| {
        StepBenchError::Invalid(
            "teacher.model: the epoch workload needs the teacher's architecture".into(),
        )
    })?;
    let teacher = Network::new(
        teacher_model,
        shape,
        classes,
        mix_seed(seed, 3),
        &device.inference(),
    )
    .map_err(StepBenchError::Invalid)?;

    progress(&format!(
        "caching the teacher's logits on {} training inputs",
        train_set.len()
    ));
    let started = Instant::now();
    let logits = predict_logits(&teacher, train_set, &device);
    let teacher_digest = teacher_hash(&teacher)?;
    let data_digest = data_hash(train_set);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StepBenchError::Io { path, source }
    };
    std::fs::create_dir_all(work).map_err(io(work))?;
    let cache_dir = work.join("fashion-teacher-cache");
    if cache_dir.exists() {
        std::fs::remove_dir_all(&cache_dir).map_err(io(&cache_dir))?;
    }
    std::fs::create_dir_all(&cache_dir).map_err(io(&cache_dir))?;
    write_shard(
        &cache_dir,
        &logits,
        ShardRange {
            start: 0,
            end: train_set.len(),
        },
        classes,
        CacheStorage::Full,
        &teacher_digest,
        &data_digest,
    )?;
    let cache_build_s = started.elapsed().as_secs_f64();
    drop(logits);

    let train_config = TrainConfig {
        epochs: 1,
        ..config.student.train.clone()
    };
    let fill = data.normalizer.normalized_zero();
    let settings = TrainSettings {
        train: &train_config,
        optimizer: &config.student.optimizer,
        augmentation: config.augment,
        fill: &fill,
        seed,
        on_nan: OnNan::Stop,
        checkpointing: None,
    };
    let set = TrainingSet {
        data: train_set,
        labelled: None,
        samples_per_epoch: train_set.len(),
        validation: &data.validation,
    };
    // The workload distils with KD at the experiment's temperature.
    let temperature = config.distill.temperature.fixed().ok_or_else(|| {
        StepBenchError::Invalid(
            "distill.temperature: the epoch workload needs a number, not \"auto\"".into(),
        )
    })?;
    let objective: Arc<dyn LogitLoss> = Arc::new(config.distill.shared(temperature).kd());
    let student = || {
        Network::new(
            &config.student.model,
            shape,
            classes,
            mix_seed(seed, 4),
            &device.training(),
        )
        .map_err(StepBenchError::Invalid)
    };
    let mut cached_runs = Vec::new();
    let mut live_runs = Vec::new();
    let mut open_runs = Vec::new();
    let mut losses = Vec::new();
    for repeat in 0..repeats.max(1) {
        progress(&format!("repeat {}/{}", repeat + 1, repeats.max(1)));
        let started = Instant::now();
        let cache = TeacherCache::open(
            &cache_dir,
            &teacher_digest,
            &data_digest,
            train_set.len(),
            classes,
        )?;
        let opened = started.elapsed().as_secs_f64();
        let supervision = Supervision::Distill {
            teacher: TeacherSignal::Cached(cache.logits()),
            objective: objective.clone(),
        };
        let cached = train(
            "cached",
            student()?,
            &set,
            &supervision,
            &settings,
            &device,
            &mut Silent::default(),
        )?;
        cached_runs.push(started.elapsed().as_secs_f64());
        open_runs.push(opened);
        drop(cache);

        let started = Instant::now();
        let supervision = Supervision::Distill {
            teacher: TeacherSignal::Live(&teacher),
            objective: objective.clone(),
        };
        let live = train(
            "live",
            student()?,
            &set,
            &supervision,
            &settings,
            &device,
            &mut Silent::default(),
        )?;
        live_runs.push(started.elapsed().as_secs_f64());
        losses.push((cached.train_loss[0], live.train_loss[0]));
    }
    let cached_total = median(&cached_runs);
    let cache_open_s = median(&open_runs);
    let live_epoch_s = median(&live_runs);
    let (cached_loss, live_loss) = losses[0];
    let steps = train_set.len().div_ceil(train_config.batch_size);
    Ok(Measurement {
        workload: "fashion-epoch".to_string(),
        steps_per_s: steps as f64 / cached_total,
        ms_per_step: cached_total * 1e3 / steps as f64,
        repeats: cached_runs.iter().map(|s| steps as f64 / s).collect(),
        steps,
        final_loss: cached_loss,
        teacher_thread: None,
        fused_optimizer: None,
        epoch: Some(EpochTimes {
            samples: train_set.len(),
            cache_build_s,
            cache_open_s,
            cached_epoch_s: cached_total - cache_open_s,
            live_epoch_s,
            cached_over_live: cached_total / live_epoch_s,
            cached_loss,
            live_loss,
        }),
    })
}

//! `apprentice bench-step`: how fast one knowledge-distillation training step runs, on fixed
//! workloads that `bench/reference/kd_step.py` runs in PyTorch with the same shapes, loss,
//! optimiser and thread count, and how long one student epoch of the Fashion-MNIST experiment
//! takes with the teacher's logits cached on disk against computing them with the live teacher.
//!
//! Every step goes through the code a real run uses: [`Network`] built from a [`ModelSpec`],
//! the frozen teacher's forward pass on the inference device, one batch ahead of the student
//! through [`TeacherPrefetcher`] (on a thread of its own when more than one is allowed),
//! [`kd_loss`], the backward pass and
//! [`Optimizer::step`](apprentice::distill::optim::Optimizer::step), with the batch copied from
//! host memory and the loss read back as `distill::train` does.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use apprentice::backend::{self, ComputeDevice};
use apprentice::config::{ExperimentConfig, TrainConfig};
use apprentice::data::SampleShape;
use apprentice::data::batch::mix_seed;
use apprentice::data::prepare::{load_raw, prepare};
use apprentice::distill::cache::{
    CacheStorage, ShardRange, TeacherCache, data_hash, teacher_hash, write_shard,
};
use apprentice::distill::loss::{KdWeights, kd_loss};
use apprentice::distill::optim::{OptimizerKind, OptimizerSpec};
use apprentice::distill::prefetch::TeacherPrefetcher;
use apprentice::distill::train::{
    Learner, OnNan, Silent, Supervision, TeacherSignal, TrainSettings, TrainingSet, predict_logits,
    train,
};
use apprentice::fsutil::write_atomic;
use apprentice::models::{Activation, CnnSpec, MlpSpec, ModelSpec, Network};
use burn::optim::GradientsParams;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Samples per step in every step workload.
const BATCH: usize = 128;
/// Fashion-MNIST-sized inputs: one 28×28 grey image.
const IMAGE: [usize; 3] = [1, 28, 28];
const CLASSES: usize = 10;
/// Distinct random batches cycled through, so that the inputs change from step to step as in
/// training without the generator's cost entering the timing.
const POOL_BATCHES: usize = 8;
const KD: KdWeights = KdWeights {
    temperature: 4.0,
    alpha: 0.5,
};

/// Arguments of `apprentice bench-step`.
#[derive(clap::Args, Debug)]
pub struct BenchStepArgs {
    /// `mlp-adam`, `mlp-sgd`, `cnn-adam`, `cnn-sgd`, `all` (the four step workloads) or
    /// `fashion-epoch` (one student epoch of the Fashion-MNIST experiment, cached teacher
    /// against live teacher; needs the data).
    #[arg(long, default_value = "all")]
    pub workload: String,
    /// Timed steps per repeat.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Untimed steps before the first repeat (allocator and caches warm up).
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Timed repeats; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Worker threads (default: every core). With more than one, the frozen teacher runs on a
    /// thread of its own, one batch ahead of the student, and apprentice's convolution kernels
    /// split each batch over them; only a build with the `parallel` feature also spreads burn's
    /// own operations (matrix products of dense layers, ...) over them.
    #[arg(long)]
    pub threads: Option<usize>,
    /// `off` keeps the teacher on the student's thread even with several threads (to measure
    /// what running it alongside gains); `auto` runs it as training does.
    #[arg(long, value_enum, default_value_t = TeacherThread::Auto)]
    pub teacher_thread: TeacherThread,
    /// Update with burn's optimisers (about ten tensor operations per parameter) instead of
    /// the fused one-pass updates training uses, to measure what fusing gains; same values.
    #[arg(long)]
    pub unfused_optimizer: bool,
    /// Also write the measurements to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Experiment file of the `fashion-epoch` workload.
    #[arg(long, default_value = "configs/fashion-mnist.toml")]
    pub config: PathBuf,
    /// Data folder of the `fashion-epoch` workload, overriding `data.path`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Folder for the teacher cache written by the `fashion-epoch` workload.
    #[arg(long, default_value = "target/bench-step")]
    pub work: PathBuf,
}

/// Where `bench-step` runs the frozen teacher.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeacherThread {
    /// As training does: on its own thread when more than one thread is allowed.
    Auto,
    /// On the student's thread.
    Off,
}

/// One step workload: a student architecture and its optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepWorkload {
    MlpAdam,
    MlpSgd,
    CnnAdam,
    CnnSgd,
}

impl StepWorkload {
    const ALL: [StepWorkload; 4] = [Self::MlpAdam, Self::MlpSgd, Self::CnnAdam, Self::CnnSgd];

    fn name(self) -> &'static str {
        match self {
            Self::MlpAdam => "mlp-adam",
            Self::MlpSgd => "mlp-sgd",
            Self::CnnAdam => "cnn-adam",
            Self::CnnSgd => "cnn-sgd",
        }
    }

    /// Student MLP 784-800-800-10, or the CNN conv3×3 1→32, ReLU, max-pool 2, conv3×3 32→64,
    /// ReLU, max-pool 2, dense 3136→10 (our conv block without batch norm is exactly that).
    fn student(self) -> ModelSpec {
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
    fn optimizer(self) -> OptimizerSpec {
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
fn teacher_spec() -> ModelSpec {
    mlp(&[1200, 1200])
}

fn mlp(hidden: &[usize]) -> ModelSpec {
    ModelSpec::Mlp(MlpSpec {
        hidden: hidden.to_vec(),
        activation: Activation::Relu,
        dropout: 0.0,
    })
}

/// What one workload measured.
#[derive(Debug, serde::Serialize)]
struct Measurement {
    workload: String,
    /// Median over repeats (for `fashion-epoch`: training steps of the cached epoch, opening
    /// the cache and validation included).
    steps_per_s: f64,
    ms_per_step: f64,
    /// Every repeat, steps per second.
    repeats: Vec<f64>,
    steps: usize,
    /// The loss of the last step: the same seeds give the same value, so it shows whether two
    /// builds or thread counts compute the same thing.
    final_loss: f64,
    /// Whether the teacher ran on a thread of its own (step workloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    teacher_thread: Option<bool>,
    /// Whether the optimiser took the fused one-pass updates (step workloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    fused_optimizer: Option<bool>,
    /// Extra figures of the epoch workload (seconds), absent for step workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<EpochTimes>,
}

/// The `fashion-epoch` figures.
#[derive(Debug, serde::Serialize)]
struct EpochTimes {
    /// Training samples in the epoch.
    samples: usize,
    /// Computing the teacher's logits on every training input and writing the cache (once).
    cache_build_s: f64,
    /// Opening and verifying the cache.
    cache_open_s: f64,
    /// One student epoch reading the cached logits (validation included).
    cached_epoch_s: f64,
    /// One student epoch running the teacher on every batch (validation included).
    live_epoch_s: f64,
    /// (cache open + cached epoch) / live epoch.
    cached_over_live: f64,
    /// Mean training loss of the epoch with the cache and with the live teacher (equal when
    /// the inputs are not augmented).
    cached_loss: f64,
    live_loss: f64,
}

/// Runs `apprentice bench-step`.
pub fn bench_step(args: BenchStepArgs) -> anyhow::Result<()> {
    if args.steps == 0 || args.repeats == 0 {
        anyhow::bail!("--steps and --repeats: expected at least 1");
    }
    let threads = match args.threads {
        Some(0) => anyhow::bail!("--threads: expected at least 1"),
        Some(threads) => threads,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // burn's CPU backend and its matrix products share rayon's global pool; it must be sized
    // before the first tensor operation.
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("--threads: cannot size the worker pool")?;
    let parallel = cfg!(feature = "parallel");
    if args.threads.is_some_and(|t| t > 1) && !parallel {
        eprintln!(
            "note: this build runs burn's own operations on one thread; --threads {threads} gives the teacher a thread of its own and splits the convolution kernels' batches; build with `--features parallel` for every core in every operation"
        );
    }
    let mut results = Vec::new();
    match args.workload.as_str() {
        "all" => {
            for workload in StepWorkload::ALL {
                results.push(measure_step(workload, &args)?);
            }
        }
        "fashion-epoch" => results.push(measure_fashion_epoch(&args)?),
        name => match StepWorkload::ALL.iter().find(|w| w.name() == name) {
            Some(&workload) => results.push(measure_step(workload, &args)?),
            None => anyhow::bail!(
                "--workload: expected mlp-adam, mlp-sgd, cnn-adam, cnn-sgd, all or fashion-epoch, found {name:?}"
            ),
        },
    }
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "implementation": "apprentice",
            "backend": "burn 0.22.1 flex",
            "threads": threads,
            "parallel": parallel,
            "batch_size": BATCH,
            "results": results,
        });
        write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())
            .with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
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
            features: (0..BATCH * width)
                .map(|_| rng.random_range(-1.0f32..1.0))
                .collect(),
            labels: (0..BATCH)
                .map(|_| rng.random_range(0..CLASSES as u32))
                .collect(),
        })
        .collect()
}

/// Times the KD step of `workload`: warm-up, then `repeats` runs of `steps` steps.
fn measure_step(workload: StepWorkload, args: &BenchStepArgs) -> anyhow::Result<Measurement> {
    let device = ComputeDevice::cpu();
    let shape = SampleShape::image(IMAGE[0], IMAGE[1], IMAGE[2]);
    let teacher = Network::new(
        &teacher_spec(),
        shape,
        CLASSES,
        mix_seed(7, 1),
        &device.inference(),
    )
    .map_err(anyhow::Error::msg)?;
    let student = Network::new(
        &workload.student(),
        shape,
        CLASSES,
        mix_seed(7, 2),
        &device.training(),
    )
    .map_err(anyhow::Error::msg)?;
    let spec = workload.optimizer();
    let width: usize = IMAGE.iter().product();
    let teacher = match args.teacher_thread {
        TeacherThread::Auto => TeacherPrefetcher::new(&teacher, &device, width),
        TeacherThread::Off => TeacherPrefetcher::with_worker(&teacher, &device, width, false),
    };
    let mut stepper = KdStepper {
        learner: Some(Learner::single(student)),
        optimizer: if args.unfused_optimizer {
            spec.build_unfused()
        } else {
            spec.build()
        },
        learning_rate: spec.lr,
        teacher,
        device,
        batches: random_batches(11),
        scratch: Vec::new(),
        next: 0,
    };
    eprintln!("{}: {} warm-up steps", workload.name(), args.warmup);
    for _ in 0..args.warmup {
        stepper.step()?;
    }
    let mut repeats = Vec::with_capacity(args.repeats);
    let mut final_loss = f32::NAN;
    for _ in 0..args.repeats {
        let started = Instant::now();
        for _ in 0..args.steps {
            final_loss = stepper.step()?;
        }
        repeats.push(args.steps as f64 / started.elapsed().as_secs_f64());
    }
    let steps_per_s = median(&repeats);
    let teacher_thread = stepper.teacher.uses_worker();
    println!(
        "{:<14} {:>8.2} steps/s  {:>8.2} ms/step  (median of {} × {} steps; last loss {final_loss:.7}; teacher {}, {} optimiser)",
        workload.name(),
        steps_per_s,
        1e3 / steps_per_s,
        args.repeats,
        args.steps,
        if teacher_thread {
            "on its own thread"
        } else {
            "on the student's thread"
        },
        if args.unfused_optimizer {
            "burn's"
        } else {
            "fused"
        },
    );
    Ok(Measurement {
        workload: workload.name().to_string(),
        steps_per_s,
        ms_per_step: 1e3 / steps_per_s,
        repeats,
        steps: args.steps,
        final_loss: final_loss as f64,
        teacher_thread: Some(teacher_thread),
        fused_optimizer: Some(!args.unfused_optimizer),
        epoch: None,
    })
}

/// One training step at a time, as the training loop takes them.
struct KdStepper {
    /// Always `Some` between steps; taken while the optimiser consumes it.
    learner: Option<Learner>,
    optimizer: apprentice::distill::optim::Optimizer,
    learning_rate: f64,
    /// The frozen teacher, one batch ahead of the student as in `distill::train`.
    teacher: TeacherPrefetcher,
    device: ComputeDevice,
    batches: Vec<HostBatch>,
    /// The gathered batch, reused like the training loop's buffer.
    scratch: Vec<f32>,
    next: usize,
}

impl KdStepper {
    fn step(&mut self) -> anyhow::Result<f32> {
        let batch = &self.batches[self.next % self.batches.len()];
        self.next += 1;
        let rows = batch.labels.len();
        let width = batch.features.len() / rows;
        self.scratch.clear();
        self.scratch.extend_from_slice(&batch.features);
        if self.teacher.pending() == 0 {
            self.teacher.submit(&self.scratch, rows);
        }
        // The next batch goes to the teacher before the student starts on this one.
        let following = &self.batches[self.next % self.batches.len()];
        self.teacher
            .submit(&following.features, following.labels.len());
        let train_device = self.device.training();
        let learner = self.learner.take().expect("a learner between steps");
        let inputs = backend::matrix(self.scratch.clone(), rows, width, &train_device);
        let mut masks = ChaCha8Rng::seed_from_u64(self.next as u64);
        let student = learner.members[0].forward(inputs, Some(&mut masks));
        let teacher_logits = self.teacher.next_logits().map_err(anyhow::Error::msg)?;
        let teacher_logits = backend::matrix(teacher_logits, rows, CLASSES, &train_device);
        let labels = backend::class_indices(&batch.labels, &train_device);
        let loss = kd_loss(student.logits, teacher_logits, labels, None, KD);
        let value = backend::scalar(loss.clone());
        if !value.is_finite() {
            anyhow::bail!("the loss became {value}");
        }
        let grads = GradientsParams::from_grads(loss.backward(), &learner);
        self.learner = Some(self.optimizer.step(self.learning_rate, learner, grads));
        Ok(value)
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// One student epoch of the experiment in `args.config` (seed 0, all labels, its KD settings):
/// with the teacher's logits read from a cache written by [`write_shard`] and opened with
/// [`TeacherCache::open`], against the live teacher. The teacher is the config's architecture
/// at its seeded initial weights: its values do not change the cost.
fn measure_fashion_epoch(args: &BenchStepArgs) -> anyhow::Result<Measurement> {
    let config = ExperimentConfig::from_file(&args.config)?;
    let device = ComputeDevice::cpu();
    let raw = load_raw(&config.data, args.data.as_deref())?;
    let seed = 0;
    let data = prepare(&raw, &config.data, seed)?;
    let train_set = &data.train;
    let shape = train_set.shape;
    let classes = train_set.num_classes;
    let teacher_model = config.teacher.model.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: teacher.model: the fashion-epoch workload needs the teacher's architecture",
            args.config.display()
        )
    })?;
    let teacher = Network::new(
        teacher_model,
        shape,
        classes,
        mix_seed(seed, 3),
        &device.inference(),
    )
    .map_err(anyhow::Error::msg)?;

    eprintln!(
        "fashion-epoch: caching the teacher's logits on {} training inputs",
        train_set.len()
    );
    let started = Instant::now();
    let logits = predict_logits(&teacher, train_set, &device);
    let teacher_digest = teacher_hash(&teacher)?;
    let data_digest = data_hash(train_set);
    std::fs::create_dir_all(&args.work)
        .with_context(|| format!("--work {}", args.work.display()))?;
    let cache_dir = args.work.join("fashion-teacher-cache");
    if cache_dir.exists() {
        std::fs::remove_dir_all(&cache_dir).with_context(|| format!("{}", cache_dir.display()))?;
    }
    std::fs::create_dir_all(&cache_dir).with_context(|| format!("{}", cache_dir.display()))?;
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
    // The workloads distil with KD at the experiment's temperature.
    let temperature = config.distill.temperature.fixed().ok_or_else(|| {
        anyhow::anyhow!("distill.temperature: bench-step needs a number, not \"auto\"")
    })?;
    let objective: std::sync::Arc<dyn apprentice::distill::loss::LogitLoss> =
        std::sync::Arc::new(config.distill.shared(temperature).kd());
    let student = || {
        Network::new(
            &config.student.model,
            shape,
            classes,
            mix_seed(seed, 4),
            &device.training(),
        )
        .map_err(anyhow::Error::msg)
    };
    let mut cached_runs = Vec::new();
    let mut live_runs = Vec::new();
    let mut open_runs = Vec::new();
    let mut losses = Vec::new();
    for repeat in 0..args.repeats {
        eprintln!("fashion-epoch: repeat {}/{}", repeat + 1, args.repeats);
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
        let outcome = train(
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
        losses.push((outcome.train_loss[0], live.train_loss[0]));
    }
    let cached_total = median(&cached_runs);
    let cache_open_s = median(&open_runs);
    let live_epoch_s = median(&live_runs);
    let (cached_loss, live_loss) = losses[0];
    println!(
        "fashion-epoch  {} samples: cache built once in {cache_build_s:.2} s; cached epoch {cached_total:.2} s (opening the cache {cache_open_s:.3} s), live teacher {live_epoch_s:.2} s: {:.2}×; mean train loss {cached_loss:.6} cached, {live_loss:.6} live ({})",
        train_set.len(),
        cached_total / live_epoch_s,
        if cached_loss == live_loss {
            "identical"
        } else {
            "different"
        }
    );
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

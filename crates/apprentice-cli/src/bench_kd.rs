//! `apprentice bench-step`: how fast one knowledge-distillation training step runs, on fixed
//! workloads that `bench/reference/kd_step.py` runs in PyTorch with the same shapes, loss,
//! optimiser and thread count, and how long one student epoch of the Fashion-MNIST experiment
//! takes with the teacher's logits cached on disk against computing them with the live teacher.
//!
//! The measurements are [`apprentice::experiment::step_bench`]'s, which time the training
//! loop's own step; this command sizes the worker pool, prints and writes the JSON.

use std::path::PathBuf;

use anyhow::Context;
use apprentice::config::ExperimentConfig;
use apprentice::experiment::step_bench::{
    Measurement, STEP_BATCH, StepTiming, StepWorkload, measure_epoch, measure_step,
};
use apprentice::fsutil::write_atomic;

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
    let workloads = match args.workload.as_str() {
        "all" => StepWorkload::ALL.to_vec(),
        "fashion-epoch" => Vec::new(),
        name => match StepWorkload::from_name(name) {
            Some(workload) => vec![workload],
            None => anyhow::bail!(
                "--workload: expected mlp-adam, mlp-sgd, cnn-adam, cnn-sgd, all or fashion-epoch, found {name:?}"
            ),
        },
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
    let timing = StepTiming {
        steps: args.steps,
        warmup: args.warmup,
        repeats: args.repeats,
        teacher_inline: args.teacher_thread == TeacherThread::Off,
        unfused_optimizer: args.unfused_optimizer,
    };
    let mut results = Vec::new();
    for &workload in &workloads {
        eprintln!("{}: {} warm-up steps", workload.name(), args.warmup);
        let measured = measure_step(workload, &timing)?;
        print_step(&measured, &timing);
        results.push(measured);
    }
    if workloads.is_empty() {
        let config = ExperimentConfig::from_file(&args.config)?;
        let measured = measure_epoch(
            &config,
            args.data.as_deref(),
            &args.work,
            args.repeats,
            &mut |note| eprintln!("fashion-epoch: {note}"),
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
        print_epoch(&measured);
        results.push(measured);
    }
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "implementation": "apprentice",
            "backend": "burn 0.22.1 flex",
            "cpu_model": apprentice::eval::efficiency::cpu_model(),
            "threads": threads,
            "parallel": parallel,
            "batch_size": STEP_BATCH,
            "results": results,
        });
        write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())
            .with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
}

/// One line per step workload.
fn print_step(measured: &Measurement, timing: &StepTiming) {
    println!(
        "{:<14} {:>8.2} steps/s  {:>8.2} ms/step  (median of {} × {} steps; last loss {:.7}; teacher {}, {} optimiser)",
        measured.workload,
        measured.steps_per_s,
        measured.ms_per_step,
        timing.repeats,
        timing.steps,
        measured.final_loss as f32,
        if measured.teacher_thread == Some(true) {
            "on its own thread"
        } else {
            "on the student's thread"
        },
        if timing.unfused_optimizer {
            "burn's"
        } else {
            "fused"
        },
    );
}

/// The line of the epoch workload.
fn print_epoch(measured: &Measurement) {
    let Some(epoch) = &measured.epoch else {
        return;
    };
    let cached_total = epoch.cached_epoch_s + epoch.cache_open_s;
    println!(
        "fashion-epoch  {} samples: cache built once in {:.2} s; cached epoch {cached_total:.2} s (opening the cache {:.3} s), live teacher {:.2} s: {:.2}×; mean train loss {:.6} cached, {:.6} live ({})",
        epoch.samples,
        epoch.cache_build_s,
        epoch.cache_open_s,
        epoch.live_epoch_s,
        epoch.cached_over_live,
        epoch.cached_loss,
        epoch.live_loss,
        if epoch.cached_loss == epoch.live_loss {
            "identical"
        } else {
            "different"
        }
    );
}

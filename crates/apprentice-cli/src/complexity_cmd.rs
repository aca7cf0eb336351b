//! `apprentice complexity`: how hard each set of targets is for the student to learn, measured
//! by the supervision complexity with the student's empirical NTK on a fixed subset of the
//! training inputs. The study is [`apprentice::experiment::complexity_study`]'s; this command
//! checks the arguments, picks the output folder and prints the table.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use apprentice::backend::ComputeDevice;
use apprentice::complexity::{KernelKind, SolverOptions};
use apprentice::config::ExperimentConfig;
use apprentice::experiment::complexity_study::{
    DEFAULT_TARGETS, StudyError, StudyRequest, TargetList, run_study, run_teacher,
};
use apprentice::fsutil::{create_unique_dir, utc_timestamp};

use crate::progress::Bars;

/// Arguments of `apprentice complexity`.
#[derive(clap::Args)]
pub struct ComplexityArgs {
    /// Experiment file (TOML). Without it, the quickstart on the embedded digits.
    config: Option<PathBuf>,
    /// Data folder or file, overriding `data.path`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The experiment seed: the split, the student's initial weights and the teacher's training
    /// are those of `apprentice run` with this seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of training inputs measured (a seeded, stratified subset).
    #[arg(long, default_value_t = 500)]
    subset: usize,
    /// Comma-separated targets: labels, random, uniform (1/C everywhere), teacher (T = 1), teacher:T=1,2,4 (one per
    /// temperature), kd (the config's KD mixture α·labels + (1 − α)·teacher at T),
    /// teacher-checkpoints\[:DIR\] (every *.safetensors in DIR, in name order; without DIR, the
    /// snapshots of the teacher used here).
    #[arg(long, default_value = DEFAULT_TARGETS)]
    targets: String,
    /// Teacher checkpoint (instead of the config's teacher).
    #[arg(long, conflicts_with = "run")]
    teacher: Option<PathBuf>,
    /// A finished `apprentice run` folder: its teacher of this seed, and its teacher snapshots
    /// for `teacher-checkpoints` when it has them.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Student checkpoint whose kernel is measured (default: the config's student at its
    /// initial weights for this seed).
    #[arg(long)]
    student: Option<PathBuf>,
    /// `trace` (n × n, the default) or `block` (nC × nC) kernel.
    #[arg(long, default_value = "trace")]
    kernel: String,
    /// Ridge relative to the mean diagonal of the kernel.
    #[arg(long, default_value_t = SolverOptions::default().relative_ridge)]
    ridge: f64,
    /// Folder for complexity.json and complexity.png (default: a new folder under runs/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the inputs and the kernel to this safetensors file (for the PyTorch
    /// reference), and time the kernel (median of three after a warm-up).
    #[arg(long)]
    dump_kernel: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_kernel(text: &str) -> anyhow::Result<KernelKind> {
    match text {
        "trace" => Ok(KernelKind::Trace),
        "block" => Ok(KernelKind::Block),
        other => bail!("--kernel: expected trace or block, found {other:?}"),
    }
}

/// Runs `apprentice complexity`.
pub fn complexity(args: ComplexityArgs) -> anyhow::Result<()> {
    // Everything the user typed is checked before any data is read or any model trained.
    let targets: TargetList = args
        .targets
        .parse()
        .map_err(|e| anyhow!("--targets: {e}"))?;
    let kind = parse_kernel(&args.kernel)?;
    if !(args.ridge.is_finite() && args.ridge >= 0.0) {
        bail!(
            "--ridge: expected a number at or above zero, found {}",
            args.ridge
        );
    }
    if args.subset == 0 {
        bail!("--subset: expected at least one input");
    }
    let mut config = match &args.config {
        Some(path) => ExperimentConfig::from_file(path)?,
        None => {
            ExperimentConfig::from_toml(crate::QUICKSTART, "configs/quickstart.toml (embedded)")?
        }
    };
    if let Some(path) = &args.data {
        config.data.path = Some(path.clone());
    }
    let seed = args.seed;
    let device = ComputeDevice::new(config.device).map_err(|e| anyhow!("device: {e}"))?;
    if let Some(run) = &args.run {
        let path = run_teacher(run, seed);
        if !path.is_file() {
            bail!(
                "--run {}: no teacher checkpoint for seed {seed} (expected {})",
                run.display(),
                path.display()
            );
        }
    }
    let out = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow!("--out: cannot create {}: {e}", dir.display()))?;
            dir.clone()
        }
        None => {
            let now = apprentice::task::now_unix_s();
            let stem = format!("complexity-{}-{}", config.name, utc_timestamp(now));
            create_unique_dir(Path::new("runs"), &stem)
                .map_err(|e| anyhow!("cannot create a folder in runs: {e}"))?
        }
    };

    let request = StudyRequest {
        config: &config,
        seed,
        subset: args.subset,
        targets: &targets.0,
        teacher: args.teacher.as_deref(),
        run: args.run.as_deref(),
        student: args.student.as_deref(),
        kernel: kind,
        ridge: args.ridge,
        out: &out,
        dump_kernel: args.dump_kernel.as_deref(),
    };
    let mut bars = Bars::new(args.quiet);
    let quiet = args.quiet;
    let outcome = run_study(&request, &device, &mut bars, &mut |note| {
        if !quiet {
            eprintln!("{note}");
        }
    })
    .map_err(|e| match e {
        StudyError::Subset { requested, message } => anyhow!("--subset {requested}: {message}"),
        other => other.into(),
    })?;
    let report = &outcome.report;
    if let Some(dump) = &outcome.dump {
        println!(
            "kernel: {} inputs, {} kernel of {} × {} in {:.4} s (median of 3) -> {} (student {})",
            report.kernel.examples,
            args.kernel,
            dump.dim,
            dump.dim,
            report.kernel.seconds,
            dump.path.display(),
            dump.student.display()
        );
    }
    println!("{}", report.table());
    println!("results: {}", outcome.json.display());
    println!("plot: {}", outcome.png.display());
    Ok(())
}

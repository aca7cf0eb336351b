//! `apprentice run` on a language-model experiment file (one with an `[lm]` table): a GGUF
//! teacher distilled into small decoders, one per objective, compared on held-out text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use apprentice::backend::{ComputeDevice, DeviceKind};
use apprentice::fsutil::{create_unique_dir, utc_timestamp, write_atomic};
use apprentice::layout::{RunLayout, lm_curves_csv};
use apprentice::lm::config::LmExperimentConfig;
use apprentice::lm::experiment::{LmRunOptions, LmRunOutput, run_lm_experiment};
use apprentice::report::lm_table::lm_table;

/// What `apprentice run` passes on for a language-model experiment.
pub struct LmRunArgs<'a> {
    /// The experiment, as read from its file.
    pub config: LmExperimentConfig,
    /// The folder relative teacher and corpus paths are resolved against.
    pub data: Option<PathBuf>,
    /// Parent folder of run folders.
    pub out: &'a Path,
    /// Seeds overriding the file's.
    pub seeds: Option<Vec<u64>>,
    /// Device overriding the file's.
    pub device: Option<String>,
    /// A teacher cache file (or a run folder holding one) to reuse when it matches, or a
    /// folder of shards written by `apprentice cache-teacher`.
    pub teacher_cache: Option<PathBuf>,
    /// Whether to write student checkpoints.
    pub save_checkpoints: bool,
    /// No stage lines.
    pub quiet: bool,
}

/// Runs a language-model experiment, prints its table and writes its run folder.
pub fn run(args: LmRunArgs<'_>) -> anyhow::Result<()> {
    let mut config = args.config;
    if let Some(seeds) = args.seeds {
        if seeds.is_empty() {
            anyhow::bail!("--seeds: expected at least one seed");
        }
        config.seeds = seeds;
    }
    if let Some(device) = args.device {
        config.device = DeviceKind::parse(&device).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    }
    config.resolve(args.data.as_deref());
    let device = ComputeDevice::new(config.device).map_err(|e| anyhow::anyhow!("device: {e}"))?;
    let now = apprentice::task::now_unix_s();
    let run_dir = create_unique_dir(args.out, &format!("{}-{}", config.name, utc_timestamp(now)))
        .map_err(|e| {
        anyhow::anyhow!("cannot create a run folder in {}: {e}", args.out.display())
    })?;
    let layout = RunLayout::new(&run_dir);
    write_atomic(&layout.config(), toml::to_string(&config)?.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", layout.config().display()))?;
    finish(
        config,
        run_dir,
        device,
        args.teacher_cache,
        args.save_checkpoints,
        args.quiet,
    )
}

/// Continues the interrupted language-model run in `run_dir` with `config`, the config saved
/// there: its teacher cache and finished students are read back, the others trained.
pub fn resume(config: LmExperimentConfig, run_dir: &Path, quiet: bool) -> anyhow::Result<()> {
    let device = ComputeDevice::new(config.device).map_err(|e| anyhow::anyhow!("device: {e}"))?;
    finish(config, run_dir.to_path_buf(), device, None, true, quiet)
}

/// Runs (or continues) the experiment in `run_dir`, then writes results.json and the curves.
fn finish(
    config: LmExperimentConfig,
    run_dir: PathBuf,
    device: ComputeDevice,
    teacher_cache: Option<PathBuf>,
    save_checkpoints: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let layout = RunLayout::new(&run_dir);
    let now = apprentice::task::now_unix_s();
    let options = LmRunOptions {
        device,
        run_dir: run_dir.clone(),
        save_checkpoints,
        created_unix_s: now,
        teacher_cache,
    };
    let output = run_lm_experiment(&config, &options, &mut |line| {
        if !quiet {
            eprintln!("{line}");
        }
    })?;
    let results_path = layout.results();
    write_atomic(&results_path, output.to_json_pretty().as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", results_path.display()))?;
    let curves_path = lm_curves_csv(&layout);
    write_atomic(&curves_path, curves_csv(&output).as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", curves_path.display()))?;
    println!();
    println!("{}", lm_table(&output.results, &output.lm));
    println!("results: {}", results_path.display());
    println!("perplexity curves: {}", curves_path.display());
    match apprentice::report::load_run(&run_dir)
        .and_then(|run| apprentice::report::write_report(&run, &Default::default()))
    {
        Ok(files) => println!("report: {}", files.html.display()),
        Err(error) => eprintln!(
            "warning: the report was not written ({error}); run `apprentice report {}` to retry",
            run_dir.display()
        ),
    }
    Ok(())
}

/// Every curve point of every student: `model,seed,step,perplexity,accuracy,train_loss`.
fn curves_csv(output: &LmRunOutput) -> String {
    let mut csv = String::from("model,seed,step,perplexity,accuracy,train_loss,learning_rate\n");
    for model in &output.results.models {
        for curve in &model.curves {
            let points = output
                .lm
                .models
                .iter()
                .find(|m| m.name == model.name)
                .and_then(|m| m.curves.iter().find(|c| c.seed == curve.seed));
            let Some(points) = points else { continue };
            for (i, step) in points.steps.iter().enumerate() {
                let cell = |v: Option<&f64>| v.map_or(String::new(), |v| format!("{v}"));
                let _ = writeln!(
                    csv,
                    "{},{},{step},{},{},{},{}",
                    model.name,
                    curve.seed,
                    cell(points.perplexity.get(i)),
                    cell(curve.validation_accuracy.get(i)),
                    cell(curve.train_loss.get(i).filter(|v| v.is_finite())),
                    cell(curve.learning_rate.get(i)),
                );
            }
        }
    }
    csv
}

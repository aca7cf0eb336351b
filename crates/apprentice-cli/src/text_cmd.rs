//! `apprentice run` on a text experiment file (one with a `[text]` table): a pretrained
//! sentence encoder (frozen with a head, or fine-tuned) as the teacher, distilled into small
//! text students and smaller transformers; `apprentice run --resume RUN` continues a killed
//! text run.

use std::path::{Path, PathBuf};

use apprentice::backend::{ComputeDevice, DeviceKind};
use apprentice::fsutil::{create_unique_dir, utc_timestamp, write_atomic};
use apprentice::layout::RunLayout;
use apprentice::report::table::comparison_table;
use apprentice::report::{ReportOptions, Results, Role, write_report};
use apprentice::text::config::TextExperimentConfig;
use apprentice::text::experiment::{TextRunOptions, run_text_experiment, scratch_baseline};
use apprentice::text::speed::speed_table;

/// What `apprentice run` passes on for a text experiment.
pub struct TextRunArgs<'a> {
    /// The experiment, as read from its file.
    pub config: TextExperimentConfig,
    /// The folder the model and data paths are relative to.
    pub data: Option<PathBuf>,
    /// Parent folder of run folders.
    pub out: &'a Path,
    /// Seeds overriding the file's.
    pub seeds: Option<Vec<u64>>,
    /// Device overriding the file's.
    pub device: Option<String>,
    /// No progress bars or stage lines.
    pub quiet: bool,
    /// Save each finished model in the run folder (without them the run cannot resume).
    pub checkpoints: bool,
}

/// Continues the interrupted text run in `run_dir` with `config`, the config saved there:
/// finished models are read back, the others trained. `data` overrides the recorded data folder.
pub fn resume(
    mut config: TextExperimentConfig,
    run_dir: &Path,
    data: Option<PathBuf>,
    quiet: bool,
) -> anyhow::Result<()> {
    if data.is_some() {
        config.data_root = data;
    }
    let device = ComputeDevice::new(config.device).map_err(|e| anyhow::anyhow!("device: {e}"))?;
    finish(config, run_dir.to_path_buf(), device, quiet, true)
}

/// Runs a text experiment, prints its tables and writes its run folder and report.
pub fn run(args: TextRunArgs<'_>) -> anyhow::Result<()> {
    let mut config = args.config;
    if args.data.is_some() {
        // Recorded in the run's config.toml, so that `--resume` finds the files again.
        config.data_root = args.data;
    }
    if let Some(seeds) = args.seeds {
        if seeds.is_empty() {
            anyhow::bail!("--seeds: expected at least one seed");
        }
        config.seeds = seeds;
    }
    if let Some(device) = args.device {
        config.device = DeviceKind::parse(&device).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    }
    let device = ComputeDevice::new(config.device).map_err(|e| anyhow::anyhow!("device: {e}"))?;
    let now = apprentice::task::now_unix_s();
    // Made and written to before the encoder runs, so an unwritable output folder fails at once.
    let run_dir = create_unique_dir(args.out, &format!("{}-{}", config.name, utc_timestamp(now)))
        .map_err(|e| {
        anyhow::anyhow!("cannot create a run folder in {}: {e}", args.out.display())
    })?;
    let config_path = RunLayout::new(&run_dir).config();
    write_atomic(&config_path, toml::to_string(&config)?.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;

    finish(config, run_dir, device, args.quiet, args.checkpoints)
}

/// Runs (or continues) the experiment in `run_dir`, then writes results.json and the report.
fn finish(
    config: TextExperimentConfig,
    run_dir: PathBuf,
    device: ComputeDevice,
    quiet: bool,
    checkpoints: bool,
) -> anyhow::Result<()> {
    let options = TextRunOptions {
        data_root: None,
        device,
        run_dir: checkpoints.then(|| run_dir.clone()),
    };
    let mut bars = crate::progress::Bars::new(quiet);
    let output = run_text_experiment(&config, &options, &mut bars, &mut |line| {
        if !quiet {
            eprintln!("{line}");
        }
    })?;
    let results_path = RunLayout::new(&run_dir).results();
    write_atomic(&results_path, output.to_json_pretty().as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", results_path.display()))?;

    println!();
    for table in family_tables(&output.results) {
        println!("{table}");
    }
    if let Some(speed) = &output.speed {
        println!(
            "sentences per second, tokenizer included ({} threads, seed {} models):",
            speed.threads, speed.seed
        );
        println!("{}", speed_table(speed));
    }
    println!("results: {}", results_path.display());
    match write_report(
        &apprentice::report::load_run(&run_dir)?,
        &ReportOptions::default(),
    ) {
        Ok(files) => println!("report: {}", files.html.display()),
        Err(error) => eprintln!(
            "warning: the report was not written ({error}); run `apprentice report {}` to retry",
            run_dir.display()
        ),
    }
    Ok(())
}

/// One comparison table per student architecture (the teacher, its scratch student and the
/// students distilled into that architecture), so that each gain line compares a distilled
/// student with the scratch student of its own architecture.
fn family_tables(results: &Results) -> Vec<String> {
    let scratch: Vec<&str> = results
        .models
        .iter()
        .filter(|m| m.role == Role::Scratch)
        .map(|m| m.name.as_str())
        .collect();
    let mut tables = Vec::new();
    for family in &scratch {
        let mut subset = results.clone();
        subset.models.retain(|m| {
            m.role == Role::Teacher
                || m.name == *family
                || scratch_baseline(&m.name) == Some(*family)
        });
        tables.push(comparison_table(&subset));
    }
    // Distilled students whose scratch baseline is not in the run.
    let orphans: Vec<_> = results
        .models
        .iter()
        .filter(|m| {
            m.role == Role::Distilled
                && !scratch_baseline(&m.name).is_some_and(|base| scratch.contains(&base))
        })
        .collect();
    if scratch.is_empty() || !orphans.is_empty() {
        let mut subset = results.clone();
        subset
            .models
            .retain(|m| m.role == Role::Teacher || orphans.iter().any(|o| o.name == m.name));
        tables.push(comparison_table(&subset));
    }
    tables
}

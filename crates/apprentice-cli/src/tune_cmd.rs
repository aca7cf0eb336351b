//! `apprentice tune`: the table `temperature = "auto"` decides from, and optionally the grid
//! trained for real to see where the choice lands.

use std::path::PathBuf;

use apprentice::backend::ComputeDevice;
use apprentice::config::ExperimentConfig;
use apprentice::distill::train::Silent;
use apprentice::experiment::RunOptions;
use apprentice::experiment::tune::choice_table;
use apprentice::experiment::tune_verify::{choose_on_every_seed, train_temperature_grid};
use apprentice::fsutil::write_atomic;
use apprentice::report::tune_table::{TUNE_SCHEMA_VERSION, TuneResults};

/// Arguments of `apprentice tune`.
#[derive(clap::Args)]
pub struct TuneArgs {
    /// Experiment file (TOML); without it, the quickstart.
    config: Option<PathBuf>,
    /// Data folder or file, overriding `data.path`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seeds to choose for (comma-separated); default: the file's.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Also train a KD student at every candidate temperature (the file's schedule and seeds)
    /// and show where the choice ranks by test accuracy.
    #[arg(long)]
    verify: bool,
    /// With --verify: also write the choices and the grid's results as JSON to this file
    /// (`apprentice report --markdown=tune FILE` makes its table).
    #[arg(long, requires = "verify", value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs the command; errors are one line.
pub fn tune(args: TuneArgs, quickstart: &str) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => ExperimentConfig::from_file(path)?,
        None => ExperimentConfig::from_toml(quickstart, "quickstart.toml")?,
    };
    if let Some(seeds) = args.seeds {
        config.seeds = seeds;
    }
    if !config.augment.is_identity() {
        anyhow::bail!(
            "tune: the choice measures the teacher's cached predictions, which augmentation would make inexact; turn augmentation off"
        );
    }
    let device = ComputeDevice::cpu();
    let scratch = work_folder()?;
    let options = RunOptions {
        run_dir: scratch.path().to_path_buf(),
        data_path: args.data.clone(),
        device: device.clone(),
        save_checkpoints: false,
    };
    let seed_choices =
        choose_on_every_seed(&config, &options, &mut Silent::default(), &mut |seed| {
            eprintln!("seed {seed}: getting the teacher…");
        })?;
    let mut chosen = Vec::new();
    let mut choices = Vec::new();
    for choice in &seed_choices {
        print!("{}", choice_table(choice));
        println!();
        chosen.push(choice.chosen);
        choices.push(serde_json::to_value(choice)?);
    }
    if !args.verify {
        return Ok(());
    }
    // One KD run per candidate on every seed, to rank the candidates by what they give.
    eprintln!(
        "training kd students at T = {:?}…",
        config.distill.auto_temperatures
    );
    let grid_folder = work_folder()?;
    let grid_points = train_temperature_grid(
        &config,
        &options,
        grid_folder.path(),
        &mut Silent::default(),
    )?;
    let rows: Vec<(f64, String, f64, f64)> = grid_points
        .iter()
        .flat_map(|point| {
            point.models.iter().map(|m| {
                (
                    point.temperature,
                    m.name.clone(),
                    m.test.accuracy.mean,
                    m.test.accuracy.std,
                )
            })
        })
        .collect();
    if let Some(path) = &args.out {
        let document = TuneResults {
            schema_version: TUNE_SCHEMA_VERSION,
            experiment: config.name.clone(),
            seeds: config.seeds.clone(),
            choices,
            grid: grid_points,
        };
        let mut text = serde_json::to_string_pretty(&document)?;
        text.push('\n');
        write_atomic(path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("--out {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    let mut names: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    names.dedup();
    names.sort();
    names.dedup();
    for name in names {
        let mut of_name: Vec<_> = rows.iter().filter(|r| r.1 == name).collect();
        of_name.sort_by(|a, b| b.2.total_cmp(&a.2));
        println!("{name}: test accuracy of KD at each candidate, best first");
        for (rank, row) in of_name.iter().enumerate() {
            let mark = if chosen.contains(&row.0) {
                "  ← chosen"
            } else {
                ""
            };
            println!(
                "  {}. T = {:<4} {:.2} ± {:.2}{mark}",
                rank + 1,
                row.0,
                row.2 * 100.0,
                row.3 * 100.0
            );
        }
    }
    Ok(())
}

/// A temporary folder for runs whose files are not kept.
fn work_folder() -> anyhow::Result<tempfile::TempDir> {
    tempfile::tempdir().map_err(|e| anyhow::anyhow!("cannot create a work folder: {e}"))
}

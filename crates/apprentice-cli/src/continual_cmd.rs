//! `apprentice continual`: learn data arriving in stages, with and without Learning without
//! Forgetting, and print old- and new-class accuracy after every stage.

use std::path::PathBuf;

use apprentice::backend::ComputeDevice;
use apprentice::experiment::continual::{
    ContinualConfig, ContinualOptions, continual_table, run_continual,
};
use apprentice::fsutil::{create_unique_dir, utc_timestamp, write_atomic};
use apprentice::layout::RunLayout;

/// Arguments of `apprentice continual`.
#[derive(clap::Args)]
pub struct ContinualArgs {
    /// Continual experiment file (TOML), e.g. configs/continual-fashion.toml.
    pub config: PathBuf,
    /// Data folder or file, overriding `data.path`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Seeds, overriding `seeds` (comma-separated, e.g. `0,1,2`).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Parent folder of run folders.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `apprentice continual`.
pub fn continual(args: ContinualArgs) -> anyhow::Result<()> {
    let config = ContinualConfig::from_file(&args.config)?;
    run(config, args)
}

/// Runs the continual experiment `config` (read by `apprentice continual` or `apprentice run`),
/// with the overrides of `args` (whose `config` path is not read again).
pub fn run(mut config: ContinualConfig, args: ContinualArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.data {
        // Recorded in the run's config.toml and checkpoints, so that `apprentice eval` finds it.
        config.data.path = Some(path.clone());
    }
    if let Some(seeds) = args.seeds {
        if seeds.is_empty() {
            anyhow::bail!("--seeds: expected at least one seed");
        }
        config.seeds = seeds;
    }
    let device = ComputeDevice::new(config.device).map_err(|e| anyhow::anyhow!("device: {e}"))?;
    let now = apprentice::task::now_unix_s();
    // Made and written to before any training, so that an unwritable output folder fails at
    // once.
    let run_dir = create_unique_dir(
        &args.out,
        &format!("{}-{}", config.name, utc_timestamp(now)),
    )
    .map_err(|e| anyhow::anyhow!("cannot create a run folder in {}: {e}", args.out.display()))?;
    let config_path = RunLayout::new(&run_dir).config();
    write_atomic(&config_path, toml::to_string(&config)?.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
    let options = ContinualOptions {
        run_dir: run_dir.clone(),
        data_path: None,
        device,
        save_checkpoints: true,
    };
    let mut observer = crate::progress::Bars::new(args.quiet);
    let results = run_continual(&config, &options, &mut observer)?;
    println!("\n{}", continual_table(&results));
    println!(
        "results: {}",
        RunLayout::new(&run_dir).continual_results().display()
    );
    Ok(())
}

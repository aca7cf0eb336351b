//! The choice of `temperature = "auto"` on every seed, and checking it against the truth: a KD student trained at every candidate
//! temperature, on the experiment's own seeds and schedule, so that the choice can be ranked
//! by the test accuracy each candidate actually gives (`apprentice tune --verify`).
//!
//! Its own module because it runs whole experiments ([`super::run`]), which themselves call
//! the choice ([`super::tune`]); in `tune` it would close a cycle.

use std::path::Path;

use super::run::{RunOptions, run_experiment};
use super::teacher::seed_teacher;
use super::tune::{TemperatureChoice, choose_temperature};
use crate::config::{ExperimentConfig, MethodName, TemperatureSetting};
use crate::data::prepare::{load_raw, prepare};
use crate::distill::train::TrainObserver;
use crate::error::Result;
use crate::report::tune_table::GridPoint;

/// One KD run per temperature of `config.distill.auto_temperatures`, each in its own folder
/// under `work_dir` (`T-<t>`), with the config's seeds, label fractions and schedule; the KD
/// students' results of each.
///
/// The runs keep no checkpoints and measure no complexity along training: only their test
/// accuracy is wanted.
pub fn train_temperature_grid(
    config: &ExperimentConfig,
    options: &RunOptions,
    work_dir: &Path,
    observer: &mut dyn TrainObserver,
) -> Result<Vec<GridPoint>> {
    let mut grid = Vec::new();
    for &temperature in &config.distill.auto_temperatures {
        let mut candidate = config.clone();
        candidate.distill.temperature = TemperatureSetting::Fixed(temperature);
        candidate.distill.methods = Some(vec![MethodName::Kd]);
        candidate.complexity.every_epochs = 0;
        let folder = work_dir.join(format!("T-{temperature}"));
        std::fs::create_dir_all(&folder).map_err(|source| crate::error::Error::Io {
            path: folder.clone(),
            source,
        })?;
        let run_options = RunOptions {
            run_dir: folder,
            save_checkpoints: false,
            ..options.clone()
        };
        let results = run_experiment(&candidate, &run_options, observer)?;
        grid.push(GridPoint {
            temperature,
            models: results
                .models
                .into_iter()
                .filter(|m| m.method == "kd")
                .collect(),
        });
    }
    Ok(grid)
}

/// The temperature `"auto"` chooses on every seed of `config`, each against the teacher that
/// seed trains (or the configured checkpoint), with the data prepared as a run prepares it;
/// `note` hears each seed before its teacher is trained.
pub fn choose_on_every_seed(
    config: &ExperimentConfig,
    options: &RunOptions,
    observer: &mut dyn TrainObserver,
    note: &mut dyn FnMut(u64),
) -> Result<Vec<TemperatureChoice>> {
    let raw = load_raw(&config.data, options.data_path.as_deref())?;
    let mut choices = Vec::with_capacity(config.seeds.len());
    for &seed in &config.seeds {
        let data = prepare(&raw, &config.data, seed)?;
        note(seed);
        let teacher = seed_teacher(config, options, &data, seed, observer)?;
        choices.push(choose_temperature(
            config,
            &data,
            &teacher,
            seed,
            &options.device,
        )?);
    }
    Ok(choices)
}

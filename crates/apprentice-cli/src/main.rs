//! `apprentice`: the command-line front of the apprentice library.
//!
//! A thin layer: it parses arguments, draws progress bars and prints tables; all the work is in
//! the library.

mod bench_cmd;
mod bench_kd;
mod cache_cmd;
mod complexity_cmd;
mod continual_cmd;
mod docs_cmd;
mod export_cmd;
mod generate_cmd;
mod lm_cmd;
mod methods_cmd;
mod progress;
mod report_cmd;
mod text_cmd;
mod tune_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use apprentice::backend::{ComputeDevice, DeviceKind};
use apprentice::config::ExperimentConfig;
use apprentice::distill::checkpoint_eval::evaluate_checkpoint;
use apprentice::eval::split::EvalSplit;
use apprentice::experiment::{RunOptions, run_experiment};
use apprentice::experiment_file::ExperimentFile;
use apprentice::fsutil::{create_unique_dir, utc_timestamp, write_atomic};
use apprentice::layout::RunLayout;
use apprentice::report::table::comparison_table;
use apprentice::text::evaluate::evaluate_text_model;
use apprentice::text::saved_model::{SavedModelKind, saved_model_kind};
use clap::{Parser, Subcommand};

/// The quickstart experiment, embedded so that `apprentice run` works from anywhere.
const QUICKSTART: &str = include_str!("../../../configs/quickstart.toml");

#[derive(Parser)]
#[command(
    name = "apprentice",
    version,
    about = "Knowledge distillation: teach a small student what a large teacher knows"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train (or load) a teacher, train the student from scratch and by distillation, compare.
    Run(RunArgs),
    /// Evaluate a saved model on the test split it was trained against (or on all samples).
    Eval {
        /// A `.safetensors` checkpoint written by `apprentice run`, or a model of a text run
        /// (`<run>/seed-N/<model>.safetensors`).
        checkpoint: PathBuf,
        /// Data folder or file, when not the embedded digits or the path recorded at training
        /// (for a text run: the folder its encoder and data paths are relative to).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Which samples: `test` (the run's test split) or `all`.
        #[arg(long, default_value = "test")]
        split: String,
    },
    /// Print the quickstart experiment file, a starting point for your own.
    Example,
    /// List the distillation methods with their papers and hyper-parameters.
    Methods,
    /// Write a run's report: report.html (charts, efficiency), summary.md and plots/*.png.
    Report(report_cmd::ReportArgs),
    /// Regenerate the tables and numbers of Markdown pages from the raw files they name
    /// (--check: only say which pages are out of date).
    Docs(docs_cmd::DocsArgs),
    /// Measure what checkpoints cost to run: size, FLOPs, latency, throughput, memory, energy.
    BenchModel(bench_cmd::BenchArgs),
    /// Time one distillation training step on fixed workloads (compare with
    /// bench/reference/kd_step.py), or a Fashion-MNIST epoch with a cached against a live teacher.
    BenchStep(bench_kd::BenchStepArgs),
    /// Run a trained teacher once over an experiment's training inputs and write its logits to
    /// a teacher cache (one shard of N with --shard i/N).
    CacheTeacher(cache_cmd::CacheArgs),
    /// Supervision complexity of labels, random labels and a teacher's predictions for a student.
    Complexity(complexity_cmd::ComplexityArgs),
    /// Learn data arriving in stages, with and without Learning without Forgetting (old- and
    /// new-class accuracy after every stage).
    Continual(continual_cmd::ContinualArgs),
    /// Show how `temperature = "auto"` chooses the distillation temperature (and, with
    /// --verify, where its choice ranks when every candidate is trained).
    Tune(tune_cmd::TuneArgs),
    /// Write a trained model as an ONNX file (opset 17): an image MLP or CNN with its
    /// normalisation inside the graph, a text student or BERT classifier that takes token ids,
    /// or a student language model (optionally with a key/value cache for generation).
    Export(export_cmd::ExportArgs),
    /// Continue a prompt with a student language model (or a GGUF teacher).
    Generate(generate_cmd::GenerateArgs),
}

/// Arguments of `apprentice run`.
#[derive(clap::Args)]
struct RunArgs {
    /// Experiment file (TOML). Without it, the quickstart on the embedded digits runs.
    config: Option<PathBuf>,
    /// Data folder or file, overriding `data.path`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Parent folder of run folders.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Seeds, overriding `seeds` (comma-separated, e.g. `0,1,2`).
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// cpu, cuda or wgpu, overriding `device`.
    #[arg(long)]
    device: Option<String>,
    /// Read the teacher's training logits from this cache folder (written by `apprentice
    /// cache-teacher`; `DIR/seed-<S>` per seed when present), overriding `teacher_cache`.
    #[arg(long, value_name = "DIR")]
    teacher_cache: Option<PathBuf>,
    /// Do not write model checkpoints (the run then cannot be resumed).
    #[arg(long)]
    no_checkpoints: bool,
    /// Continue an interrupted run in this run folder, with the config saved there; models
    /// already finished are reused and the one in training restarts from its last checkpoint.
    #[arg(long, conflicts_with_all = ["config", "seeds", "out"])]
    resume: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    apprentice::backend::keep_freed_buffers();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = error.print();
                return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line, like every other error; clap's usage hint would make it two.
            let text = error.render().to_string();
            eprintln!(
                "{}",
                text.lines().next().unwrap_or("error: invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Eval {
            checkpoint,
            data,
            split,
        } => eval(&checkpoint, data, &split),
        Command::Methods => {
            methods_cmd::list();
            Ok(())
        }
        Command::Example => {
            print!("{QUICKSTART}");
            Ok(())
        }
        Command::Report(args) => report_cmd::report(args),
        Command::Docs(args) => docs_cmd::docs(args),
        Command::BenchModel(args) => bench_cmd::bench(args),
        Command::BenchStep(args) => bench_kd::bench_step(args),
        Command::CacheTeacher(args) => cache_cmd::cache_teacher(args),
        Command::Complexity(args) => complexity_cmd::complexity(args),
        Command::Continual(args) => continual_cmd::continual(args),
        Command::Tune(args) => tune_cmd::tune(args, QUICKSTART),
        Command::Export(args) => export_cmd::export(args),
        Command::Generate(args) => generate_cmd::generate_text(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let RunArgs {
        config: config_path,
        data,
        out,
        seeds,
        device,
        teacher_cache,
        no_checkpoints,
        resume,
        quiet,
    } = args;
    // Every experiment file, and the config.toml of a run folder, is read once, as the
    // config of the task it describes.
    let file = match (&resume, config_path.as_deref()) {
        (Some(run_dir), _) => {
            let saved = RunLayout::new(run_dir).config();
            if !saved.is_file() {
                anyhow::bail!(
                    "--resume {}: not a run folder (no config.toml in it)",
                    run_dir.display()
                );
            }
            ExperimentFile::read(&saved)?
        }
        (None, Some(path)) => ExperimentFile::read(path)?,
        (None, None) => ExperimentFile::Image(Box::new(ExperimentConfig::from_toml(
            QUICKSTART,
            "configs/quickstart.toml (embedded)",
        )?)),
    };
    let kind = file.kind();
    let unsupported =
        |option: &str| anyhow::anyhow!("{option}: not available for a {} experiment", kind.name());
    let mut config = match file {
        ExperimentFile::Image(config) => *config,
        ExperimentFile::Text(config) => {
            if teacher_cache.is_some() {
                anyhow::bail!(
                    "--teacher-cache: a text experiment caches its teacher's embeddings itself (in runs/cache/)"
                );
            }
            return match &resume {
                Some(run_dir) => text_cmd::resume(*config, run_dir, data, quiet),
                None => text_cmd::run(text_cmd::TextRunArgs {
                    config: *config,
                    data,
                    out: &out,
                    seeds,
                    device,
                    quiet,
                    checkpoints: !no_checkpoints,
                }),
            };
        }
        ExperimentFile::Language(config) => {
            if let Some(run_dir) = &resume {
                return lm_cmd::resume(*config, run_dir, quiet);
            }
            return lm_cmd::run(lm_cmd::LmRunArgs {
                config: *config,
                data,
                out: &out,
                seeds,
                device,
                teacher_cache,
                save_checkpoints: !no_checkpoints,
                quiet,
            });
        }
        ExperimentFile::Continual(config) => {
            if resume.is_some() {
                return Err(unsupported("--resume"));
            }
            if teacher_cache.is_some() {
                return Err(unsupported("--teacher-cache"));
            }
            if device.is_some() {
                return Err(unsupported("--device"));
            }
            if no_checkpoints {
                return Err(unsupported("--no-checkpoints"));
            }
            return continual_cmd::run(
                *config,
                continual_cmd::ContinualArgs {
                    config: config_path.unwrap_or_default(),
                    data,
                    seeds,
                    out,
                    quiet,
                },
            );
        }
    };
    let save_checkpoints = !no_checkpoints;
    let out = out.as_path();
    if let Some(path) = &data {
        // Recorded in the run's config.toml as given, so that a resumed run or a later
        // `apprentice eval` started from the same folder finds the data without being told
        // again (from elsewhere, pass --data again).
        config.data.path = Some(path.clone());
    }
    if let Some(folder) = teacher_cache {
        config.teacher_cache = Some(folder);
    }
    if let Some(seeds) = seeds {
        if seeds.is_empty() {
            anyhow::bail!("--seeds: expected at least one seed");
        }
        config.seeds = seeds;
    }
    if let Some(device) = device {
        config.device = DeviceKind::parse(&device).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    }
    let device = ComputeDevice::new(config.device).map_err(|e| anyhow::anyhow!("device: {e}"))?;
    let now = apprentice::task::now_unix_s();
    let run_dir = match resume {
        Some(run_dir) => run_dir,
        None => {
            // Made and written to before any training, so that an unwritable output folder
            // fails in a second rather than after hours.
            let run_dir =
                create_unique_dir(out, &format!("{}-{}", config.name, utc_timestamp(now)))
                    .map_err(|e| {
                        anyhow::anyhow!("cannot create a run folder in {}: {e}", out.display())
                    })?;
            let config_text = toml::to_string(&config)?;
            write_atomic(&RunLayout::new(&run_dir).config(), config_text.as_bytes()).map_err(
                |e| anyhow::anyhow!("{}: {e}", RunLayout::new(&run_dir).config().display()),
            )?;
            run_dir
        }
    };
    let options = RunOptions {
        run_dir: run_dir.clone(),
        data_path: None,
        device,
        save_checkpoints,
    };
    let mut observer = progress::Bars::new(quiet);
    let results = run_experiment(&config, &options, &mut observer)?;
    println!("\n{}", comparison_table(&results));
    println!("results: {}", RunLayout::new(&run_dir).results().display());
    report_cmd::after_run(&run_dir, &options, quiet);
    Ok(())
}

fn eval(checkpoint_path: &Path, data: Option<PathBuf>, split: &str) -> anyhow::Result<()> {
    let split = EvalSplit::parse(split)
        .ok_or_else(|| anyhow::anyhow!("--split: expected test or all, found {split:?}"))?;
    if saved_model_kind(checkpoint_path)? == SavedModelKind::TextRun {
        let scores = evaluate_text_model(checkpoint_path, data.as_deref(), split)?;
        println!(
            "model     {} ({}, {} parameters)",
            scores.model, scores.architecture, scores.params
        );
        println!(
            "data      {} ({} of seed {}, {} texts)",
            scores.data,
            split.name(),
            scores.seed,
            scores.texts
        );
        return print_metrics(&scores.metrics);
    }
    let scores = evaluate_checkpoint(checkpoint_path, data.as_deref(), split)?;
    println!(
        "model     {} ({}, {} parameters)",
        scores.model, scores.architecture, scores.params
    );
    println!(
        "data      {} ({}, {} samples)",
        scores.data,
        split.name(),
        scores.samples
    );
    print_metrics(&scores.metrics)
}

fn print_metrics(metrics: &apprentice::eval::metrics::Metrics) -> anyhow::Result<()> {
    println!("accuracy  {:.2}%", metrics.accuracy * 100.0);
    println!("nll       {:.4}", metrics.nll);
    println!("ece       {:.2}%", metrics.ece * 100.0);
    Ok(())
}

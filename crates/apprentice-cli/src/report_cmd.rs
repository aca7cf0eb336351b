//! `apprentice report`, and the report written at the end of `apprentice run`.

use std::path::{Path, PathBuf};

use apprentice::backend::{ComputeDevice, DeviceKind};
use apprentice::eval::efficiency::BenchSettings;
use apprentice::experiment::RunOptions;
use apprentice::report::extensions::store_sections;
use apprentice::report::markdown::{BlockSpec, TableKind, render_block};
use apprentice::report::{
    LoadedRun, MeasureOptions, ReportFiles, ReportOptions, load_run, measure_run, write_report,
};

/// Arguments of `apprentice report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A run folder written by `apprentice run` (or its results.json).
    pub run: PathBuf,
    /// Write the report here instead of into the run folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Learning speed: the first epoch reaching this fraction of the teacher's validation
    /// accuracy.
    #[arg(long, default_value_t = 0.95)]
    pub threshold: f64,
    /// First measure the efficiency of the run's checkpoints (and the teacher–student
    /// confusion) with the thorough benchmark settings, and store it in results.json.
    #[arg(long)]
    pub measure: bool,
    /// With --measure: the quick benchmark settings (about 1 s per model) instead of the
    /// thorough ones (about 5 s).
    #[arg(long, requires = "measure")]
    pub quick: bool,
    /// Data folder or file for the confusion, when the run's config does not record it.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// cpu, cuda or wgpu: where models are timed with --measure.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Print one Markdown table instead of writing the report: `comparison` (the default),
    /// `fractions`, `efficiency`, `methods`, `verdicts`, `complexity-curves`, `lm`,
    /// `lm-curves`, `text-speed` or `reference` of a run's results; `complexity` of a
    /// `complexity.json`; `continual` of a `continual.json`; `tune` of `tune --out`'s file;
    /// `trace-vs-block` of that example's JSON: the tables the documentation's generated
    /// blocks hold.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "comparison", value_name = "KIND")]
    pub markdown: Option<String>,
    /// With --markdown=efficiency: the student compared with the teacher (default: the first
    /// distilled model measured).
    #[arg(long, requires = "markdown")]
    pub student: Option<String>,
    /// With --markdown=reference: the reference implementation's results file.
    #[arg(long, requires = "markdown", value_name = "PATH")]
    pub reference: Option<PathBuf>,
}

/// Runs `apprentice report`.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    // Checked before a measurement that may take a while.
    if !(args.threshold > 0.0 && args.threshold <= 1.0) {
        anyhow::bail!(
            "--threshold: expected a fraction of the teacher's accuracy in (0, 1], found {}",
            args.threshold
        );
    }
    if let Some(kind) = &args.markdown {
        let kind = TableKind::parse(kind).ok_or_else(|| {
            anyhow::anyhow!(
                "--markdown: expected one of {}, found {kind:?}",
                TableKind::NAMES.join(", ")
            )
        })?;
        let spec = BlockSpec {
            kind,
            source: args.run.clone(),
            student: args.student.clone(),
            reference: args.reference.clone(),
        };
        print!("{}", render_block(&spec, Path::new(""))?);
        return Ok(());
    }
    let mut run = load_run(&args.run)?;
    if args.measure {
        let kind = DeviceKind::parse(&args.device).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
        let device = ComputeDevice::new(kind).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
        let (bench, bench_name) = if args.quick {
            (BenchSettings::quick(), "quick")
        } else {
            (BenchSettings::standard(), "standard")
        };
        let options = MeasureOptions {
            device,
            data_path: args.data.clone(),
            bench,
            bench_name: bench_name.to_string(),
        };
        run = measure_and_store(&run, &options, false)?;
    }
    let files = write_report(
        &run,
        &ReportOptions {
            out_dir: args.out,
            threshold: args.threshold,
        },
    )?;
    print_files(&files);
    for omission in &files.omitted {
        println!("left out: {} chart ({})", omission.chart, omission.reason);
    }
    Ok(())
}

/// Measures the run's checkpoints, stores the measurements in its results.json, and reads
/// the run back.
fn measure_and_store(
    run: &LoadedRun,
    options: &MeasureOptions,
    quiet: bool,
) -> anyhow::Result<LoadedRun> {
    let total = run.results.models.len();
    let mut index = 0;
    let measured = measure_run(&run.run_dir, &run.results, options, &mut |name| {
        index += 1;
        if !quiet {
            eprintln!("measuring {name} ({index}/{total})");
        }
    });
    for note in &measured.notes {
        eprintln!("note: {note}");
    }
    if measured.efficiency.is_some() || measured.teacher_agreement.is_some() {
        store_sections(
            &run.results_path,
            measured.efficiency.as_ref(),
            measured.teacher_agreement.as_ref(),
        )
        .map_err(anyhow::Error::msg)?;
    }
    Ok(load_run(&run.results_path)?)
}

fn print_files(files: &ReportFiles) {
    println!("report: {}", files.html.display());
    println!("summary: {}", files.summary.display());
    if let Some(folder) = files.pngs.first().and_then(|p| p.parent()) {
        println!("plots: {} ({} PNG)", folder.display(), files.pngs.len());
    }
    for warning in &files.warnings {
        eprintln!("warning: {warning}");
    }
}

/// After `apprentice run`: measures the first seed's checkpoints quickly, stores the
/// efficiency in results.json and writes the report into the run folder.
///
/// The experiment has succeeded by then and its results are on disk, so a failure here is a
/// warning, not an error: `apprentice report` can be run again later.
pub fn after_run(run_dir: &Path, options: &RunOptions, quiet: bool) {
    let outcome = (|| -> anyhow::Result<ReportFiles> {
        let mut run = load_run(run_dir)?;
        if options.save_checkpoints {
            let measure = MeasureOptions {
                device: options.device.clone(),
                data_path: options.data_path.clone(),
                bench: BenchSettings::quick(),
                bench_name: "quick".to_string(),
            };
            if !quiet {
                eprintln!(
                    "measuring the efficiency of {} models (about a second each)",
                    run.results.models.len()
                );
            }
            run = measure_and_store(&run, &measure, true)?;
        }
        Ok(write_report(&run, &ReportOptions::default())?)
    })();
    match outcome {
        Ok(files) => print_files(&files),
        Err(error) => eprintln!(
            "warning: the report was not written ({error}); run `apprentice report {}` to retry",
            run_dir.display()
        ),
    }
}

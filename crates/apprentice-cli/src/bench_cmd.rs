//! `apprentice bench-model`: what checkpoints cost to run, side by side.

use apprentice::report::units::{bytes, duration, energy, si, thousands, times};
use std::path::PathBuf;
use std::time::Duration;

use apprentice::text::model_bench::{bench_text_model, text_bench_table};
use apprentice::text::run_model::read_split;
use apprentice::text::saved_model::{SavedModelKind, saved_model_kind};

use apprentice::backend::{ComputeDevice, DeviceKind};
use apprentice::eval::efficiency::{
    BenchSettings, CountingAllocator, Efficiency, measure_checkpoint,
};

/// Every heap allocation of the program goes through this counter, so that the peak memory
/// of an inference is exact; see [`CountingAllocator`] for what is counted.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Arguments of `apprentice bench-model`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// One or more `.safetensors` checkpoints, or models of one text run
    /// (`<run>/seed-N/<model>.safetensors`); the others are compared with the first (give the
    /// teacher first).
    #[arg(required = true)]
    pub checkpoints: Vec<PathBuf>,
    /// Print the measurements as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Shorter measurement (about 1 s per model instead of 5 s), as at the end of a run.
    #[arg(long)]
    pub quick: bool,
    /// cpu, cuda or wgpu.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// For models of a text run: the folder their encoder and data paths are relative to,
    /// when not the one the run recorded.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Runs `apprentice bench-model`.
pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let kind = DeviceKind::parse(&args.device).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    let device = ComputeDevice::new(kind).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    let (settings, name) = if args.quick {
        (BenchSettings::quick(), "quick")
    } else {
        (BenchSettings::standard(), "standard")
    };
    // Every file is read before any is timed, so that a wrong path fails at once, on one line.
    let mut kinds = Vec::new();
    for path in &args.checkpoints {
        kinds.push(saved_model_kind(path)?);
    }
    if kinds.contains(&SavedModelKind::TextRun) {
        if let Some(index) = kinds.iter().position(|&k| k == SavedModelKind::Checkpoint) {
            anyhow::bail!(
                "{}: an image checkpoint cannot be compared with a text run's models; bench them \
                 apart",
                args.checkpoints[index].display()
            );
        }
        return bench_text(&args);
    }
    let mut measured = Vec::new();
    for path in &args.checkpoints {
        if !args.json {
            eprintln!("measuring {}", path.display());
        }
        measured.push(measure_checkpoint(path, &device, &settings)?);
    }
    if args.json {
        let entries: Vec<serde_json::Value> = measured
            .iter()
            .enumerate()
            .map(|(index, model)| {
                let mut value = serde_json::to_value(model).unwrap_or_default();
                if index > 0
                    && let Some(object) = value.as_object_mut()
                {
                    object.insert(
                        "ratio_to_first".to_string(),
                        serde_json::to_value(model.ratios_to(&measured[0])).unwrap_or_default(),
                    );
                }
                value
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        print!("{}", table(&measured, name));
    }
    Ok(())
}

/// Sentences per second of a text run's models, tokenizer included (FLOPs, latency
/// percentiles, memory and energy are measured for image checkpoints only).
fn bench_text(args: &BenchArgs) -> anyhow::Result<()> {
    if args.device != "cpu" {
        anyhow::bail!("--device: a text run's models are timed on the cpu only");
    }
    let budget = Duration::from_secs_f64(if args.quick { 0.5 } else { 2.5 });
    // Each seed's split is read before anything is timed, so that a missing one fails at once.
    for path in &args.checkpoints {
        read_split(path)?;
    }
    let mut measured = Vec::new();
    for path in &args.checkpoints {
        if !args.json {
            eprintln!("measuring {}", path.display());
        }
        measured.push(bench_text_model(path, args.data.as_deref(), budget)?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&measured)?);
    } else {
        print!("{}", text_bench_table(&measured));
    }
    Ok(())
}

/// The measurements as a table: one column per model, and for every model after the first
/// a column comparing it with the first.
fn table(models: &[Efficiency], settings: &str) -> String {
    let Some(first) = models.first() else {
        return String::new();
    };
    type Ratio = fn(&Efficiency, &Efficiency) -> String;
    let unavailable = || "unavailable".to_string();
    let mut kinds: Vec<&String> = models
        .iter()
        .flat_map(|m| m.flops.by_layer_type.keys())
        .collect();
    kinds.sort();
    kinds.dedup();

    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec![String::new()];
    header.extend(models.iter().map(|m| m.name.clone()));
    header.extend(
        models[1..]
            .iter()
            .map(|m| format!("{} vs {}", m.name, first.name)),
    );
    rows.push(header);
    let mut add = |title: &str, cell: &dyn Fn(&Efficiency) -> String, ratio: Option<Ratio>| {
        let mut row = vec![title.to_string()];
        row.extend(models.iter().map(cell));
        row.extend(models[1..].iter().map(|m| match ratio {
            Some(ratio) => ratio(m, first),
            None => String::new(),
        }));
        rows.push(row);
    };
    add("architecture", &|m| m.architecture.clone(), None);
    add(
        "parameters",
        &|m| thousands(m.params as u64),
        Some(|m, t| times(m.ratios_to(t).params, "fewer", "more")),
    );
    add(
        "checkpoint file",
        &|m| m.file_bytes.map_or_else(|| "—".to_string(), bytes),
        Some(|m, t| {
            m.ratios_to(t)
                .file_bytes
                .map_or_else(String::new, |r| times(r, "smaller", "larger"))
        }),
    );
    add(
        "FLOPs / example",
        &|m| thousands(m.flops.total),
        Some(|m, t| times(m.ratios_to(t).flops, "fewer", "more")),
    );
    for kind in kinds {
        let kind = kind.clone();
        let mut row = vec![format!("  {kind}")];
        row.extend(
            models
                .iter()
                .map(|m| thousands(m.flops.by_layer_type.get(&kind).copied().unwrap_or(0))),
        );
        row.extend(models[1..].iter().map(|_| String::new()));
        rows.push(row);
    }
    let mut add = |title: &str, cell: &dyn Fn(&Efficiency) -> String, ratio: Option<Ratio>| {
        let mut row = vec![title.to_string()];
        row.extend(models.iter().map(cell));
        row.extend(models[1..].iter().map(|m| match ratio {
            Some(ratio) => ratio(m, first),
            None => String::new(),
        }));
        rows.push(row);
    };
    add(
        "latency p50, batch 1",
        &|m| duration(m.latency.p50_ms / 1e3),
        Some(|m, t| times(m.ratios_to(t).latency_p50, "faster", "slower")),
    );
    add(
        "latency p95, batch 1",
        &|m| duration(m.latency.p95_ms / 1e3),
        Some(|m, t| times(m.latency.p95_ms / t.latency.p95_ms, "faster", "slower")),
    );
    add(
        "throughput",
        &|m| {
            format!(
                "{}/s (batch {})",
                si(m.throughput.examples_per_s),
                m.throughput.batch_size
            )
        },
        // A higher throughput is the good direction, so the ratio is inverted for the words.
        Some(|m, t| times(1.0 / m.ratios_to(t).throughput, "higher", "lower")),
    );
    add(
        "peak memory, batch 1",
        &|m| m.peak_memory_batch1_bytes().map_or_else(unavailable, bytes),
        Some(|m, t| {
            m.ratios_to(t)
                .peak_memory_batch1
                .map_or_else(String::new, |r| times(r, "less", "more"))
        }),
    );
    add(
        "  model",
        &|m| {
            m.memory
                .as_ref()
                .and_then(|h| h.model_bytes)
                .map_or_else(unavailable, bytes)
        },
        None,
    );
    add(
        "  inference, batch 1",
        &|m| {
            m.memory
                .as_ref()
                .map_or_else(unavailable, |h| bytes(h.inference_peak_batch1_bytes))
        },
        None,
    );
    add(
        "  inference, large batch",
        &|m| {
            m.memory
                .as_ref()
                .map_or_else(unavailable, |h| bytes(h.inference_peak_batch_bytes))
        },
        None,
    );
    add(
        "CPU time / example, batch 1",
        &|m| {
            m.cpu
                .as_ref()
                .map_or_else(unavailable, |c| duration(c.seconds_per_example_batch1))
        },
        None,
    );
    add(
        "CPU time / example, large batch",
        &|m| {
            m.cpu
                .as_ref()
                .map_or_else(unavailable, |c| duration(c.seconds_per_example_batch))
        },
        Some(|m, t| {
            m.ratios_to(t)
                .cpu_seconds_per_example
                .map_or_else(String::new, |r| times(r, "less", "more"))
        }),
    );
    add(
        "energy / example, batch 1",
        &|m| {
            m.energy
                .as_ref()
                .map_or_else(unavailable, |e| energy(e.joules_per_example_batch1))
        },
        None,
    );
    add(
        "energy / example, large batch",
        &|m| {
            m.energy
                .as_ref()
                .map_or_else(unavailable, |e| energy(e.joules_per_example_batch))
        },
        Some(|m, t| {
            m.ratios_to(t)
                .energy_per_example
                .map_or_else(String::new, |r| times(r, "less", "more"))
        }),
    );

    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let env = &first.environment;
    out.push_str(&format!(
        "\nmeasured on {} ({} thread{}{}) with the {settings} settings.\n\
         a call copies the input in, runs the model and copies the logits out.\n\
         latency: p50 and p95 of {} calls after a warm-up; throughput: the median of {} calls.\n\
         FLOPs are counted from the architecture (a multiply-add is 2).\n\
         memory is exact heap use: the loaded model plus the most extra heap during one call.\n\
         CPU time is user + system time of the whole process, per example.\n",
        env.device,
        env.threads,
        if env.threads == 1 { "" } else { "s" },
        env.cpu_model
            .as_ref()
            .map_or_else(String::new, |model| format!(", {model}")),
        first.latency.runs,
        first.throughput.runs,
    ));
    if let Some(reason) = models.iter().find_map(|m| m.energy_unavailable.as_ref()) {
        out.push_str(&format!(
            "energy is unavailable: {reason}; it is not estimated, CPU time stands in for it.\n"
        ));
    }
    if let Some(reason) = models.iter().find_map(|m| m.memory_unavailable.as_ref()) {
        out.push_str(&format!("memory is unavailable: {reason}.\n"));
    }
    out
}

//! The measurement itself: [`measure`] times a network already in memory, reads its heap,
//! CPU time and energy, and counts its FLOPs; [`measure_checkpoint`] does the same for a
//! checkpoint file and adds its sizes. This is where the other parts of the module meet.

use std::hint::black_box;
use std::path::Path;

use super::flops::count_flops;
use super::heap::{heap_counter_installed, heap_in_use, heap_peak, reset_heap_peak};
use super::rapl::{RAPL_ROOT, Rapl};
use super::results::{CpuTime, Efficiency, Energy, Environment, HeapUse, Latency, Throughput};
use super::settings::BenchSettings;
use super::timing::{percentile, pseudo_random_inputs, sorted_ms, timed_loop};
use crate::backend::{self, ComputeDevice};
use crate::checkpoint::{self, CheckpointError};
use crate::models::Network;

/// Why a model could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum EfficiencyError {
    /// The checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The settings or the model make a measurement impossible.
    #[error("{0}")]
    Invalid(String),
}

/// Loads the checkpoint at `path` and measures it; see the [module documentation](super).
///
/// # Errors
///
/// When the checkpoint cannot be read, or the settings are unusable (a batch of 0).
pub fn measure_checkpoint(
    path: &Path,
    device: &ComputeDevice,
    settings: &BenchSettings,
) -> Result<Efficiency, EfficiencyError> {
    let file_bytes = std::fs::metadata(path)
        .map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let (network, meta) = checkpoint::load(path, device)?;
    let tensor_bytes = tensor_bytes(path)?;
    let architecture = meta.spec.describe(meta.input_shape.len(), meta.num_classes);
    let mut efficiency = measure(&network, &meta.name, &architecture, device, settings)?;
    efficiency.file_bytes = Some(file_bytes);
    if let Some(memory) = &mut efficiency.memory {
        memory.model_bytes = Some(tensor_bytes);
    }
    Ok(efficiency)
}

/// Bytes of tensor data in a safetensors file: its length less the 8-byte length prefix and the
/// header.
fn tensor_bytes(path: &Path) -> Result<u64, EfficiencyError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (header, _) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| CheckpointError::Invalid {
            path: path.to_path_buf(),
            message: format!("not a safetensors file: {e}"),
        })?;
    Ok((bytes.len() - 8 - header) as u64)
}

/// Measures `network` (in inference mode on `device`); `name` and `architecture` label it.
///
/// # Errors
///
/// When the settings are unusable (a throughput batch of 0, no timed runs).
pub fn measure(
    network: &Network,
    name: &str,
    architecture: &str,
    device: &ComputeDevice,
    settings: &BenchSettings,
) -> Result<Efficiency, EfficiencyError> {
    if settings.throughput_batch == 0 || settings.min_runs == 0 || settings.max_runs == 0 {
        return Err(EfficiencyError::Invalid(
            "benchmark settings: batch size and run counts must be at least 1".into(),
        ));
    }
    let width = network.input_shape().len();
    let batch = settings.throughput_batch;
    let inputs = pseudo_random_inputs(batch * width);
    let one = &inputs[..width];
    let inference = device.inference();
    let call = |rows: &[f32], count: usize| {
        let x = backend::matrix(rows.to_vec(), count, width, &inference);
        black_box(backend::to_host(network.logits(x)));
    };

    let rapl = Rapl::open(Path::new(RAPL_ROOT));
    let latency_loop = timed_loop(settings, settings.latency_budget, &rapl, || call(one, 1));
    let throughput_loop = timed_loop(settings, settings.throughput_budget, &rapl, || {
        call(&inputs, batch)
    });

    let (memory, memory_unavailable) = if heap_counter_installed() {
        let peak_of = |rows: &[f32], count: usize| {
            let base = heap_in_use();
            reset_heap_peak();
            call(rows, count);
            heap_peak().saturating_sub(base) as u64
        };
        let memory = HeapUse {
            model_bytes: None,
            inference_peak_batch1_bytes: peak_of(one, 1),
            inference_peak_batch_bytes: peak_of(&inputs, batch),
        };
        (Some(memory), None)
    } else {
        (
            None,
            Some("the program does not count heap allocations (no counting allocator)".into()),
        )
    };

    let cpu = match (latency_loop.cpu_s, throughput_loop.cpu_s) {
        (Some(single), Some(batched)) => Some(CpuTime {
            seconds_per_example_batch1: single / latency_loop.durations.len() as f64,
            seconds_per_example_batch: batched / (throughput_loop.durations.len() * batch) as f64,
        }),
        _ => None,
    };
    let (energy, energy_unavailable) = match (&rapl, latency_loop.joules, throughput_loop.joules) {
        (Ok(meter), Some(single), Some(batched)) => (
            Some(Energy {
                source: meter.describe(),
                joules_per_example_batch1: single / latency_loop.durations.len() as f64,
                joules_per_example_batch: batched
                    / (throughput_loop.durations.len() * batch) as f64,
            }),
            None,
        ),
        (Err(reason), _, _) => (None, Some(reason.clone())),
        (Ok(_), _, _) => (
            None,
            Some("RAPL energy counters stopped answering during the measurement".into()),
        ),
    };

    let latency_ms = sorted_ms(&latency_loop.durations);
    let batch_ms = sorted_ms(&throughput_loop.durations);
    let median_batch_ms = percentile(&batch_ms, 0.5);
    Ok(Efficiency {
        name: name.to_string(),
        architecture: architecture.to_string(),
        params: network.parameter_count(),
        file_bytes: None,
        flops: count_flops(network),
        latency: Latency {
            batch_size: 1,
            p50_ms: percentile(&latency_ms, 0.5),
            p95_ms: percentile(&latency_ms, 0.95),
            runs: latency_ms.len(),
        },
        throughput: Throughput {
            batch_size: batch,
            examples_per_s: if median_batch_ms > 0.0 {
                batch as f64 / (median_batch_ms / 1000.0)
            } else {
                f64::INFINITY
            },
            median_batch_ms,
            runs: batch_ms.len(),
        },
        memory,
        memory_unavailable,
        cpu,
        energy,
        energy_unavailable,
        environment: environment(device),
    })
}

fn environment(device: &ComputeDevice) -> Environment {
    Environment {
        device: format!("{:?}", device.kind()).to_lowercase(),
        threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model: cpu_model(),
    }
}

/// The processor model from `/proc/cpuinfo` (Linux), if any.
pub fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
        .filter(|model| !model.is_empty())
}

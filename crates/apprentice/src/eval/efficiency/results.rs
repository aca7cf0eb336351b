//! What a measurement finds, as saved in `results.json`: [`Efficiency`] and its parts (latency,
//! throughput, heap, CPU time, energy, environment). Plain serialisable records, separate from
//! the code that fills them in, so that a saved measurement reads back without it.

use serde::{Deserialize, Serialize};

use super::flops::FlopCount;

/// Reads an `f64` that may be `null`: serde_json writes NaN and ±∞ as `null`, and a saved
/// measurement must read back whatever it held.
pub(super) fn nullable_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// Time of single-example inferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Examples per call (1).
    pub batch_size: usize,
    /// Median time of one call, in milliseconds.
    #[serde(deserialize_with = "nullable_number")]
    pub p50_ms: f64,
    /// 95th percentile (nearest rank) of one call, in milliseconds.
    #[serde(deserialize_with = "nullable_number")]
    pub p95_ms: f64,
    /// Number of timed calls.
    pub runs: usize,
}

/// Examples per second at a large batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Examples per call (256).
    pub batch_size: usize,
    /// `batch_size` divided by the median time of one call.
    #[serde(deserialize_with = "nullable_number")]
    pub examples_per_s: f64,
    /// Median time of one call, in milliseconds.
    #[serde(deserialize_with = "nullable_number")]
    pub median_batch_ms: f64,
    /// Number of timed calls.
    pub runs: usize,
}

/// Heap use counted by [`CountingAllocator`](super::CountingAllocator), in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeapUse {
    /// Memory held by the model's tensors (weights and batch-norm statistics, as stored in the
    /// checkpoint); absent when the model was measured without a checkpoint. Taken from the
    /// file rather than from heap growth across loading, which other threads' allocations
    /// would distort.
    pub model_bytes: Option<u64>,
    /// Most heap in use during one batch-1 inference, above the level just before it: input,
    /// activations, workspace and output.
    pub inference_peak_batch1_bytes: u64,
    /// The same for one inference of a throughput batch.
    pub inference_peak_batch_bytes: u64,
}

/// CPU time per example (user + system, every thread of the process), in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuTime {
    /// During the batch-1 latency loop, divided by its examples.
    #[serde(deserialize_with = "nullable_number")]
    pub seconds_per_example_batch1: f64,
    /// During the throughput loop, divided by its examples.
    #[serde(deserialize_with = "nullable_number")]
    pub seconds_per_example_batch: f64,
}

/// Energy per example read from RAPL counters, in joules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Energy {
    /// The counters read, e.g. `rapl package-0`. They cover whole processor packages, so other
    /// work on the machine during the loop is included.
    pub source: String,
    /// During the batch-1 latency loop, divided by its examples.
    #[serde(deserialize_with = "nullable_number")]
    pub joules_per_example_batch1: f64,
    /// During the throughput loop, divided by its examples.
    #[serde(deserialize_with = "nullable_number")]
    pub joules_per_example_batch: f64,
}

/// Where the measurement ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// Compute device kind: `cpu`, `cuda` or `wgpu`.
    pub device: String,
    /// Hardware threads available to the process (the CPU backend uses them all).
    pub threads: usize,
    /// Processor model, where the operating system tells it.
    pub cpu_model: Option<String>,
}

/// Everything [`measure`](super::measure) found out about one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Efficiency {
    /// The model's name (from its checkpoint), e.g. `teacher` or `kd-all@5%`.
    pub name: String,
    /// Human-readable architecture, e.g. `mlp 64-32-10`.
    pub architecture: String,
    /// Number of trainable parameters.
    pub params: usize,
    /// Size of the checkpoint file in bytes; absent for a network that was not read from one.
    pub file_bytes: Option<u64>,
    /// Analytic FLOPs of one example's forward pass.
    pub flops: FlopCount,
    /// Batch-1 latency.
    pub latency: Latency,
    /// Large-batch throughput.
    pub throughput: Throughput,
    /// Exact heap use; absent when [`CountingAllocator`](super::CountingAllocator) is not the global allocator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<HeapUse>,
    /// Why `memory` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_unavailable: Option<String>,
    /// CPU time per example; absent where the operating system does not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuTime>,
    /// Measured energy per example; absent where no RAPL counter can be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<Energy>,
    /// Why `energy` is absent, e.g. no RAPL counters on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_unavailable: Option<String>,
    /// Where the numbers were measured.
    pub environment: Environment,
}

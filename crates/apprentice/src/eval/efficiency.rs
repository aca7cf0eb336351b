//! What a trained model costs to run: size, arithmetic, time, memory and energy.
//!
//! Distillation is done for efficiency, so the cost side is measured rather than assumed.
//! [`measure_checkpoint`] (and [`measure`] for a network already in memory) reports:
//!
//! * **parameters** and **file size** of the checkpoint;
//! * **FLOPs per example**, counted analytically by layer type ([`count_flops`]);
//! * **latency** at batch 1: p50 and p95 over many timed calls after a warm-up;
//! * **throughput** at batch 256: examples per second from the median of many timed batches;
//! * **peak memory**: exact heap bytes, when the program installed [`CountingAllocator`];
//! * **CPU time** per example, from `getrusage` (user + system time of the whole process);
//! * **energy** per example from the RAPL counters of Linux's powercap interface where they
//!   can be read, and marked unavailable (with the reason) everywhere else: energy is never
//!   estimated from other numbers.
//!
//! # What one timed call is
//!
//! One inference is the whole host-to-host path a caller pays for: the input rows are copied
//! into a tensor, the network's forward pass runs without dropout, and the logits are copied
//! back to host memory. The copy back forces asynchronous backends to finish, so the time is
//! the real time.
//!
//! # Caveats, stated where the numbers are shown
//!
//! * Times are wall-clock on a machine that may be doing other work; the median and the
//!   percentiles resist outliers but not a machine that is busy throughout.
//! * CPU time and RAPL energy belong to the whole process and the whole processor package
//!   respectively: they include every thread of the backend's pool, and RAPL also includes
//!   whatever else the machine ran meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::backend::{self, ComputeDevice};
use crate::checkpoint::{self, CheckpointError};
use crate::models::Network;

// ---------------------------------------------------------------------------------------------
// Heap counting
// ---------------------------------------------------------------------------------------------

/// Heap bytes currently allocated through [`CountingAllocator`].
static HEAP_IN_USE: AtomicUsize = AtomicUsize::new(0);
/// Highest value [`HEAP_IN_USE`] reached since the last [`reset_heap_peak`].
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

/// A global allocator that forwards to the system allocator and counts the bytes in use.
///
/// A program opts in with
///
/// ```ignore
/// #[global_allocator]
/// static ALLOCATOR: apprentice::eval::efficiency::CountingAllocator =
///     apprentice::eval::efficiency::CountingAllocator;
/// ```
///
/// and [`measure`] then reports exact peak heap use. What is counted: every byte requested
/// from the heap by any thread of the process (Rust allocations, hence every tensor of the
/// CPU backend), at its requested size. Not counted: stack, code, memory mapped directly from
/// the operating system, allocator bookkeeping, and GPU memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

impl CountingAllocator {
    fn grow(bytes: usize) {
        let now = HEAP_IN_USE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
    }

    fn shrink(bytes: usize) {
        HEAP_IN_USE.fetch_sub(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// are atomics and never affect what is returned.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            Self::grow(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            Self::grow(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(pointer, layout) };
        Self::shrink(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        let new_pointer = unsafe { System.realloc(pointer, layout, new_size) };
        if !new_pointer.is_null() {
            if new_size >= layout.size() {
                Self::grow(new_size - layout.size());
            } else {
                Self::shrink(layout.size() - new_size);
            }
        }
        new_pointer
    }
}

/// True when this program's global allocator is [`CountingAllocator`].
pub fn heap_counter_installed() -> bool {
    // A live allocation must show in the count; without the allocator the count stays 0.
    // While the probe lives, a counting allocator's count includes it; any other allocator
    // leaves the count at 0, whatever other threads do meanwhile.
    let probe = black_box(vec![0u8; 4096]);
    let during = HEAP_IN_USE.load(Ordering::Relaxed);
    drop(probe);
    during >= 4096
}

/// Heap bytes in use now, as counted by [`CountingAllocator`] (0 when it is not installed).
pub fn heap_in_use() -> usize {
    HEAP_IN_USE.load(Ordering::Relaxed)
}

/// Starts a new peak: from now on [`heap_peak`] reports the highest use from this level on.
pub fn reset_heap_peak() {
    HEAP_PEAK.store(HEAP_IN_USE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// The highest heap use since the last [`reset_heap_peak`].
pub fn heap_peak() -> usize {
    HEAP_PEAK.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// FLOPs
// ---------------------------------------------------------------------------------------------

/// Floating-point operations of one forward pass for a single example, counted from the
/// architecture.
///
/// Conventions, the usual ones of the model-compression literature:
///
/// * a multiply-add is **2** FLOPs; a bias add is 1 per output value;
/// * `dense`: `2·inputs·outputs + outputs`;
/// * `conv`: `2·k²·in_channels·out_channels·H·W + out_channels·H·W` for the 'same'-padded,
///   stride-1 convolutions apprentice builds (padding positions are counted, as is usual);
/// * `batch_norm`: 2 per value (a scale and a shift once the statistics are folded in);
/// * `activation`: 1 per value, whatever the function (ReLU, GELU, tanh, leaky ReLU);
/// * `max_pool`: 3 comparisons per output value of a 2×2 pool;
/// * the softmax is not counted: the model's output is its logits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlopCount {
    /// All FLOPs of one example's forward pass.
    pub total: u64,
    /// Multiply-adds of the dense and convolution layers (each counted 2 in `total`).
    pub multiply_adds: u64,
    /// FLOPs per layer type (`dense`, `conv`, `batch_norm`, `activation`, `max_pool`); types
    /// the network does not have are left out.
    pub by_layer_type: BTreeMap<String, u64>,
}

/// Counts the FLOPs of one example's forward pass through `network`; see [`FlopCount`].
pub fn count_flops(network: &Network) -> FlopCount {
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut multiply_adds = 0u64;
    let mut add = |kind: &str, flops: u64| {
        if flops > 0 {
            *by_type.entry(kind.to_string()).or_insert(0) += flops;
        }
    };
    let [_, mut height, mut width] = network.input_dims.map(|d| d as u64);
    for block in &network.blocks {
        let [out_channels, in_channels, kernel_h, kernel_w] = block.weight.val().dims();
        let (out_channels, in_channels) = (out_channels as u64, in_channels as u64);
        let positions = height * width;
        let macs = (kernel_h * kernel_w) as u64 * in_channels * out_channels * positions;
        multiply_adds += macs;
        add("conv", 2 * macs + out_channels * positions);
        if block.norm.is_some() {
            add("batch_norm", 2 * out_channels * positions);
        }
        add("activation", out_channels * positions);
        // The same rule as the forward pass: a map too small to halve is left as it is.
        if block.pool && height >= 2 && width >= 2 {
            height /= 2;
            width /= 2;
            add("max_pool", 3 * out_channels * height * width);
        }
    }
    let last = network.dense.len().saturating_sub(1);
    for (index, layer) in network.dense.iter().enumerate() {
        let [inputs, outputs] = layer.weight.val().dims();
        let (inputs, outputs) = (inputs as u64, outputs as u64);
        multiply_adds += inputs * outputs;
        add("dense", 2 * inputs * outputs + outputs);
        if index < last {
            add("activation", outputs);
        }
    }
    FlopCount {
        total: by_type.values().sum(),
        multiply_adds,
        by_layer_type: by_type,
    }
}

/// Reads an `f64` that may be `null`: serde_json writes NaN and ±∞ as `null`, and a saved
/// measurement must read back whatever it held.
fn nullable_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

// ---------------------------------------------------------------------------------------------
// Settings and results
// ---------------------------------------------------------------------------------------------

/// How long and how often to time a model.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSettings {
    /// Untimed calls before each timed loop, at least this long (and at least 3 calls), so
    /// that caches, thread pools and allocator pools are warm.
    pub warmup: Duration,
    /// Time budget of the batch-1 latency loop; it stops after this long once `min_runs`
    /// calls are done.
    pub latency_budget: Duration,
    /// Time budget of the throughput loop.
    pub throughput_budget: Duration,
    /// Fewest timed calls of each loop, whatever the budget.
    pub min_runs: usize,
    /// Most timed calls of each loop, which bounds the memory the timings take; the time
    /// budget ends the loop first for any real model.
    pub max_runs: usize,
    /// Batch size of the throughput loop.
    pub throughput_batch: usize,
}

impl BenchSettings {
    /// Thorough settings for `apprentice bench-model`: about 5 s per model.
    pub fn standard() -> Self {
        Self {
            warmup: Duration::from_millis(500),
            latency_budget: Duration::from_secs(2),
            throughput_budget: Duration::from_secs(2),
            min_runs: 30,
            max_runs: 1_000_000,
            throughput_batch: 256,
        }
    }

    /// Shorter settings for the measurement at the end of a run: under a second per model.
    pub fn quick() -> Self {
        Self {
            warmup: Duration::from_millis(100),
            latency_budget: Duration::from_millis(300),
            throughput_budget: Duration::from_millis(300),
            min_runs: 15,
            max_runs: 1_000_000,
            throughput_batch: 256,
        }
    }
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

/// Heap use counted by [`CountingAllocator`], in bytes.
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

/// Everything [`measure`] found out about one model.
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
    /// Exact heap use; absent when [`CountingAllocator`] is not the global allocator.
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

// ---------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------

/// Loads the checkpoint at `path` and measures it; see the module documentation.
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

/// Deterministic inputs in `[-1, 1)`: the values do not change the work of dense and
/// convolution kernels, and fixed values make runs comparable.
fn pseudo_random_inputs(len: usize) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            // xorshift64*: plenty for filler values.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
            (bits as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// What one timed loop saw.
struct LoopRecord {
    durations: Vec<Duration>,
    cpu_s: Option<f64>,
    joules: Option<f64>,
}

/// Warms up, then times `call` until the budget is spent (within the run limits), reading CPU
/// time and energy around the timed part only.
fn timed_loop(
    settings: &BenchSettings,
    budget: Duration,
    rapl: &Result<Rapl, String>,
    mut call: impl FnMut(),
) -> LoopRecord {
    let warmup_start = Instant::now();
    let mut warm_calls = 0;
    while warm_calls < 3 || warmup_start.elapsed() < settings.warmup {
        call();
        warm_calls += 1;
    }
    let cpu_before = process_cpu_seconds();
    let energy_before = rapl.as_ref().ok().and_then(|meter| meter.read().ok());
    let started = Instant::now();
    let mut durations = Vec::new();
    while durations.len() < settings.max_runs
        && (durations.len() < settings.min_runs || started.elapsed() < budget)
    {
        let start = Instant::now();
        call();
        durations.push(start.elapsed());
    }
    let energy_after = rapl.as_ref().ok().and_then(|meter| meter.read().ok());
    let cpu_after = process_cpu_seconds();
    let joules = match (rapl, energy_before, energy_after) {
        (Ok(meter), Some(before), Some(after)) => Some(meter.joules_between(&before, &after)),
        _ => None,
    };
    LoopRecord {
        durations,
        cpu_s: cpu_before
            .zip(cpu_after)
            .map(|(before, after)| (after - before).max(0.0)),
        joules,
    }
}

/// Durations in milliseconds, ascending.
fn sorted_ms(durations: &[Duration]) -> Vec<f64> {
    let mut ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// The nearest-rank `p`-quantile of ascending `sorted` values (NaN when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// User plus system CPU seconds of this process so far.
#[cfg(unix)]
fn process_cpu_seconds() -> Option<f64> {
    // SAFETY: `getrusage` only writes into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// CPU time is read through `getrusage`, which only Unix systems have.
#[cfg(not(unix))]
fn process_cpu_seconds() -> Option<f64> {
    None
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
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
        .filter(|model| !model.is_empty())
}

// ---------------------------------------------------------------------------------------------
// RAPL
// ---------------------------------------------------------------------------------------------

/// Where Linux exposes RAPL energy counters.
pub const RAPL_ROOT: &str = "/sys/class/powercap";

/// One package-level RAPL counter.
#[derive(Debug, Clone)]
struct RaplDomain {
    label: String,
    energy_file: PathBuf,
    /// The counter wraps to 0 after this many microjoules.
    range_uj: u64,
}

/// The package-level RAPL counters of the machine, read together.
///
/// Only top-level domains (`intel-rapl:N`, one per processor package) are summed: their
/// sub-domains (cores, uncore, DRAM) are parts of them, and adding them would count energy
/// twice. AMD processors expose the same interface under the same names.
#[derive(Debug, Clone)]
pub struct Rapl {
    domains: Vec<RaplDomain>,
}

impl Rapl {
    /// Finds and tries the counters under `root` (normally [`RAPL_ROOT`]).
    ///
    /// # Errors
    ///
    /// A one-line reason when there are no package counters, or they cannot be read (reading
    /// them usually needs root since Linux 5.10).
    pub fn open(root: &Path) -> Result<Rapl, String> {
        let entries = std::fs::read_dir(root)
            .map_err(|_| "no RAPL energy counters on this machine (no powercap interface)")?;
        let mut domains = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(index) = file_name.strip_prefix("intel-rapl:") else {
                continue;
            };
            if index.contains(':') || index.parse::<u32>().is_err() {
                continue;
            }
            let dir = entry.path();
            let label = std::fs::read_to_string(dir.join("name"))
                .map(|name| name.trim().to_string())
                .unwrap_or_else(|_| file_name.clone());
            let range_uj = std::fs::read_to_string(dir.join("max_energy_range_uj"))
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            domains.push(RaplDomain {
                label,
                energy_file: dir.join("energy_uj"),
                range_uj,
            });
        }
        if domains.is_empty() {
            return Err("no RAPL package energy counters on this machine".into());
        }
        domains.sort_by(|a, b| a.label.cmp(&b.label));
        let meter = Rapl { domains };
        meter.read().map_err(|error| {
            format!("RAPL energy counters exist but cannot be read ({error}); reading them usually needs root")
        })?;
        Ok(meter)
    }

    /// The counters' names, e.g. `rapl package-0, package-1`.
    pub fn describe(&self) -> String {
        let labels: Vec<&str> = self.domains.iter().map(|d| d.label.as_str()).collect();
        format!("rapl {}", labels.join(", "))
    }

    /// Current value of each counter, in microjoules.
    fn read(&self) -> Result<Vec<u64>, String> {
        self.domains
            .iter()
            .map(|domain| {
                let text = std::fs::read_to_string(&domain.energy_file)
                    .map_err(|error| format!("{}: {error}", domain.energy_file.display()))?;
                text.trim().parse::<u64>().map_err(|_| {
                    format!(
                        "{}: not a counter value: {:?}",
                        domain.energy_file.display(),
                        text.trim()
                    )
                })
            })
            .collect()
    }

    /// Joules spent between two readings, allowing each counter to have wrapped once.
    fn joules_between(&self, before: &[u64], after: &[u64]) -> f64 {
        let microjoules: u64 = self
            .domains
            .iter()
            .zip(before.iter().zip(after))
            .map(|(domain, (&start, &end))| {
                if end >= start {
                    end - start
                } else {
                    domain.range_uj.saturating_sub(start).saturating_add(end)
                }
            })
            .sum();
        microjoules as f64 / 1e6
    }
}

// ---------------------------------------------------------------------------------------------
// Ratios
// ---------------------------------------------------------------------------------------------

/// A student's costs divided by the teacher's: below 1 means cheaper (for throughput, above
/// 1 means faster). A ratio is absent when either side lacks the measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostRatios {
    /// Parameters, student / teacher.
    #[serde(deserialize_with = "nullable_number")]
    pub params: f64,
    /// Checkpoint file size, student / teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_bytes: Option<f64>,
    /// FLOPs per example, student / teacher.
    #[serde(deserialize_with = "nullable_number")]
    pub flops: f64,
    /// Median batch-1 latency, student / teacher.
    #[serde(deserialize_with = "nullable_number")]
    pub latency_p50: f64,
    /// Throughput at the large batch, student / teacher (above 1: the student is faster).
    #[serde(deserialize_with = "nullable_number")]
    pub throughput: f64,
    /// Peak heap of a batch-1 inference including the model, student / teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_batch1: Option<f64>,
    /// CPU seconds per example at the large batch, student / teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds_per_example: Option<f64>,
    /// Joules per example at the large batch, student / teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_per_example: Option<f64>,
}

impl Efficiency {
    /// Peak heap of one batch-1 inference including the model itself, when both are known.
    pub fn peak_memory_batch1_bytes(&self) -> Option<u64> {
        let memory = self.memory.as_ref()?;
        Some(memory.model_bytes? + memory.inference_peak_batch1_bytes)
    }

    /// This model's costs relative to `teacher`'s.
    pub fn ratios_to(&self, teacher: &Efficiency) -> CostRatios {
        let ratio = |ours: f64, theirs: f64| ours / theirs;
        let optional = |ours: Option<f64>, theirs: Option<f64>| {
            ours.zip(theirs)
                .map(|(a, b)| a / b)
                .filter(|value| value.is_finite())
        };
        CostRatios {
            params: ratio(self.params as f64, teacher.params as f64),
            file_bytes: optional(
                self.file_bytes.map(|b| b as f64),
                teacher.file_bytes.map(|b| b as f64),
            ),
            flops: ratio(self.flops.total as f64, teacher.flops.total as f64),
            latency_p50: ratio(self.latency.p50_ms, teacher.latency.p50_ms),
            throughput: ratio(
                self.throughput.examples_per_s,
                teacher.throughput.examples_per_s,
            ),
            peak_memory_batch1: optional(
                self.peak_memory_batch1_bytes().map(|b| b as f64),
                teacher.peak_memory_batch1_bytes().map(|b| b as f64),
            ),
            cpu_seconds_per_example: optional(
                self.cpu.as_ref().map(|c| c.seconds_per_example_batch),
                teacher.cpu.as_ref().map(|c| c.seconds_per_example_batch),
            ),
            energy_per_example: optional(
                self.energy.as_ref().map(|e| e.joules_per_example_batch),
                teacher.energy.as_ref().map(|e| e.joules_per_example_batch),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.95), 95.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert_eq!(percentile(&[3.0], 0.95), 3.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn filler_inputs_are_bounded_and_varied() {
        let values = pseudo_random_inputs(1000);
        assert!(values.iter().all(|v| (-1.0..1.0).contains(v)));
        let distinct: std::collections::BTreeSet<u32> =
            values.iter().map(|v| v.to_bits()).collect();
        assert!(distinct.len() > 900);
    }

    #[test]
    fn rapl_reads_packages_and_survives_wrap_around() {
        let root = tempfile::tempdir().unwrap();
        let write = |dir: &str, name: &str, energy: u64| {
            let path = root.path().join(dir);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(path.join("energy_uj"), format!("{energy}\n")).unwrap();
            std::fs::write(path.join("max_energy_range_uj"), "1000000\n").unwrap();
        };
        write("intel-rapl:0", "package-0", 999_000);
        write("intel-rapl:0:0", "core", 5);
        write("intel-rapl:1", "package-1", 10);
        let meter = Rapl::open(root.path()).unwrap();
        assert_eq!(meter.describe(), "rapl package-0, package-1");
        let before = meter.read().unwrap();
        assert_eq!(before, vec![999_000, 10]);
        // Package 0 wrapped past its range; package 1 moved on normally.
        let joules = meter.joules_between(&before, &[500, 2_010]);
        assert!((joules - (0.0015 + 0.002)).abs() < 1e-12, "{joules}");
    }

    #[test]
    fn rapl_absence_is_a_reason_not_an_error() {
        let root = tempfile::tempdir().unwrap();
        let missing = Rapl::open(&root.path().join("nothing")).unwrap_err();
        assert!(missing.contains("no RAPL"), "{missing}");
        let empty = Rapl::open(root.path()).unwrap_err();
        assert!(empty.contains("no RAPL"), "{empty}");
        let dir = root.path().join("intel-rapl:0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("energy_uj"), "garbage").unwrap();
        let unreadable = Rapl::open(root.path()).unwrap_err();
        assert!(unreadable.contains("cannot be read"), "{unreadable}");
    }
}

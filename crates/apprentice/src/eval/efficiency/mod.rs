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
//!
//! # Layout
//!
//! One concept per file: `measurement` runs the measurement, with `timing` (the timed loop and
//! its statistics), `heap` (the counting allocator), `rapl` (the energy counters) and `flops`
//! (the analytic count); `settings` holds [`BenchSettings`], `results` the saved records
//! ([`Efficiency`] and its parts) and `ratios` the comparison with a teacher ([`CostRatios`]).

mod flops;
mod heap;
mod measurement;
mod rapl;
mod ratios;
mod results;
mod settings;
mod timing;

pub use flops::{FlopCount, count_flops};
pub use heap::{
    CountingAllocator, heap_counter_installed, heap_in_use, heap_peak, reset_heap_peak,
};
pub use measurement::{EfficiencyError, cpu_model, measure, measure_checkpoint};
pub use rapl::{RAPL_ROOT, Rapl};
pub use ratios::CostRatios;
pub use results::{CpuTime, Efficiency, Energy, Environment, HeapUse, Latency, Throughput};
pub use settings::BenchSettings;
pub use timing::percentile;

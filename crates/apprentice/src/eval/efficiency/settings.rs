//! [`BenchSettings`]: how long and how often a model is timed, with the thorough and the quick
//! presets. Kept apart from the measurement so that callers choose settings without reading
//! how they are used.

use std::time::Duration;

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

//! A student's costs relative to its teacher's: [`CostRatios`] and
//! [`Efficiency::ratios_to`]. Kept apart from the measurement because ratios are computed
//! afterwards, from two saved measurements.

use serde::{Deserialize, Serialize};

use super::results::{Efficiency, nullable_number};

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

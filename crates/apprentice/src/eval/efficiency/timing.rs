//! One timed loop and the statistics of its times: warm-up, the timed calls within a budget,
//! CPU time and energy read around them, nearest-rank percentiles and the fixed filler inputs.
//! Separate from [`measure`](super::measure) so that the loop's rules sit in one place.

use std::time::{Duration, Instant};

use super::rapl::Rapl;
use super::settings::BenchSettings;

/// Deterministic inputs in `[-1, 1)`: the values do not change the work of dense and
/// convolution kernels, and fixed values make runs comparable.
pub(super) fn pseudo_random_inputs(len: usize) -> Vec<f32> {
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
pub(super) struct LoopRecord {
    pub(super) durations: Vec<Duration>,
    pub(super) cpu_s: Option<f64>,
    pub(super) joules: Option<f64>,
}

/// Warms up, then times `call` until the budget is spent (within the run limits), reading CPU
/// time and energy around the timed part only.
pub(super) fn timed_loop(
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
pub(super) fn sorted_ms(durations: &[Duration]) -> Vec<f64> {
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
}

//! Comparing kernels with burn's operations bit for bit, and running them on a given number of
//! threads.

/// Fails unless `ours` and `reference` hold the same floats bit for bit (so -0 differs from 0),
/// saying how many differ and by how much at most.
pub fn assert_same_bits(what: &str, ours: &[f32], reference: &[f32]) {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths");
    let differing = ours
        .iter()
        .zip(reference)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    let largest = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert_eq!(
        differing, 0,
        "{what}: {differing} values differ, by up to {largest}"
    );
}

/// `work` run inside a rayon pool of `threads` threads.
pub fn on_threads<R: Send>(threads: usize, work: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
        .install(work)
}

//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod bits;
pub mod exhaustive;
pub mod lm;
pub mod methods;
pub mod numeric;
#[cfg(feature = "onnx")]
pub mod onnx;

use std::path::PathBuf;

use apprentice::data::{Dataset, SampleShape};

/// The folder of real data sets, from `APPRENTICE_SHARED_DATA`, defaulting to `../shared/data`
/// beside the repository. `None` (with a note on stderr) when it is absent, unless
/// `APPRENTICE_REQUIRE_SHARED_DATA=1` (as in CI), where its absence fails the test.
pub fn shared_data(test: &str) -> Option<PathBuf> {
    let folder = std::env::var_os("APPRENTICE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if folder.is_dir() {
        return Some(folder);
    }
    if std::env::var("APPRENTICE_REQUIRE_SHARED_DATA").as_deref() == Ok("1") {
        panic!(
            "{test}: the shared data folder {} is required but absent",
            folder.display()
        );
    }
    eprintln!(
        "SKIPPED {test}: shared data not found at {} (set APPRENTICE_SHARED_DATA)",
        folder.display()
    );
    None
}

/// `n` samples of 6×6 images in 3 classes: a bright row per class plus noise.
pub fn toy_data(n: usize, seed: u64) -> Dataset {
    let mut state = seed;
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let class = i % 3;
        for y in 0..6 {
            for _ in 0..6 {
                features.push(if y == 2 * class { 1.0 } else { 0.0 } + 0.5 * noise());
            }
        }
        labels.push(class as u32);
    }
    Dataset {
        name: "toy".into(),
        features,
        labels,
        shape: SampleShape::image(1, 6, 6),
        num_classes: 3,
    }
}

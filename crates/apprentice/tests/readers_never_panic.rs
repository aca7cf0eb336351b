//! Every reader of outside input, fed arbitrary and mutated bytes: it may refuse them, but it
//! must never panic, and a header that claims a huge size must not make it allocate that much.
//!
//! These properties run in CI with a fixed number of cases; the coverage-guided fuzz targets in
//! `fuzz/` run the same readers for much longer.

use apprentice::backend::ComputeDevice;
use apprentice::checkpoint;
use apprentice::config::ExperimentConfig;
use apprentice::data::csv::{CsvOptions, LabelColumn, parse_csv};
use apprentice::data::idx::parse_idx;
use apprentice::report::results::Results;
use proptest::prelude::*;

const QUICKSTART: &str = include_str!("../../../configs/quickstart.toml");

/// A valid IDX file of `n` 3×2 images.
fn idx_images(n: u32) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, 3];
    for dim in [n, 3, 2] {
        bytes.extend(dim.to_be_bytes());
    }
    bytes.extend((0..n * 6).map(|i| (i % 251) as u8));
    bytes
}

/// Applies up to a few byte edits: overwrite, insert, delete, truncate.
fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(kind, position, value) in edits {
        if bytes.is_empty() {
            bytes.push(value);
            continue;
        }
        let at = position % bytes.len();
        match kind % 4 {
            0 => bytes[at] = value,
            1 => bytes.insert(at, value),
            2 => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn idx_reader_refuses_or_reads_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_idx(&bytes, "fuzz.idx");
    }

    #[test]
    fn idx_reader_survives_mutations_of_a_valid_file(n in 0u32..5, edits in edits()) {
        let bytes = mutate(idx_images(n), &edits);
        if let Ok(array) = parse_idx(&bytes, "fuzz.idx") {
            let declared: usize = array.dims.iter().product();
            prop_assert_eq!(declared, array.data.len());
        }
    }

    #[test]
    fn idx_headers_claiming_huge_sizes_are_refused_without_allocating(dims in proptest::collection::vec(1u32.., 1..4)) {
        let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
        for dim in &dims {
            bytes.extend(dim.to_be_bytes());
        }
        bytes.extend([1, 2, 3]);
        let declared: u128 = dims.iter().map(|&d| d as u128).product();
        let result = parse_idx(&bytes, "huge.idx");
        prop_assert_eq!(result.is_ok(), declared == 3);
    }

    #[test]
    fn csv_reader_refuses_or_reads_any_text(text in "[0-9a-z,.\\-\" \\n]{0,120}", header: bool, last: bool) {
        let options = CsvOptions {
            label_column: if last { LabelColumn::Last } else { LabelColumn::First },
            has_header: header,
            ..CsvOptions::default()
        };
        if let Ok(data) = parse_csv(text.as_bytes(), "fuzz.csv", &options) {
            prop_assert_eq!(data.features.len(), data.len() * data.shape.len());
            prop_assert!(data.labels.iter().all(|&l| (l as usize) < data.num_classes));
        }
    }

    #[test]
    fn config_reader_refuses_or_reads_mutated_experiment_files(edits in edits()) {
        let bytes = mutate(QUICKSTART.as_bytes().to_vec(), &edits);
        let text = String::from_utf8_lossy(&bytes);
        if let Err(error) = ExperimentConfig::from_toml(&text, "fuzz.toml") {
            let message = error.to_string();
            prop_assert!(!message.contains('\n'), "multi-line error: {}", message);
        }
    }

    #[test]
    fn results_reader_refuses_or_reads_any_text(text in "\\PC{0,80}") {
        let _ = Results::from_json(&text, "results.json");
    }
}

proptest! {
    // Each case loads a model; fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn checkpoint_reader_refuses_or_loads_mutated_checkpoints(edits in edits()) {
        let bytes = mutate(valid_checkpoint().clone(), &edits);
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("fuzz.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(error) = checkpoint::load(&path, &ComputeDevice::cpu()) {
            prop_assert!(error.to_string().contains("fuzz.safetensors"));
        }
    }
}

/// A real checkpoint, written once.
fn valid_checkpoint() -> &'static Vec<u8> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        use apprentice::config::{DataConfig, DataSource};
        use apprentice::data::SampleShape;
        use apprentice::data::normalize::{Normalization, Normalizer};
        use apprentice::models::{MlpSpec, ModelSpec, Network};
        let spec = ModelSpec::Mlp(MlpSpec {
            hidden: vec![4],
            activation: Default::default(),
            dropout: 0.0,
        });
        let device = ComputeDevice::cpu();
        let network = Network::new(
            &spec,
            SampleShape::image(1, 2, 2),
            3,
            0,
            &device.inference(),
        )
        .unwrap();
        let meta = checkpoint::CheckpointMeta {
            format_version: checkpoint::CHECKPOINT_FORMAT_VERSION,
            spec,
            input_shape: SampleShape::image(1, 2, 2),
            num_classes: 3,
            normalizer: Normalizer {
                mode: Normalization::None,
                mean: vec![0.0; 4],
                std: vec![1.0; 4],
            },
            name: "fuzz".into(),
            seed: 0,
            data: "fuzz".into(),
            data_config: DataConfig {
                source: DataSource::Digits,
                path: None,
                validation_fraction: 0.1,
                test_fraction: 0.2,
                normalization: Normalization::None,
                label_fractions: vec![1.0],
                label_column: LabelColumn::Last,
                has_header: false,
                image_shape: None,
                image_folder: None,
            },
            class_names: Vec::new(),
        };
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("valid.safetensors");
        checkpoint::save(&path, &network, &meta).unwrap();
        std::fs::read(&path).unwrap()
    })
}

//! Networks: seeded initialisation, parameter counts, named features and checkpoint round trips.

use apprentice::backend::{ComputeDevice, matrix, to_host};
use apprentice::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CheckpointMeta};
use apprentice::config::{DataConfig, DataSource};
use apprentice::data::SampleShape;
use apprentice::data::csv::LabelColumn;
use apprentice::data::normalize::{Normalization, Normalizer};
use apprentice::models::{CnnSpec, FeatureTensor, MlpSpec, ModelSpec, Network};

fn mlp(hidden: Vec<usize>, dropout: f64) -> ModelSpec {
    ModelSpec::Mlp(MlpSpec {
        hidden,
        activation: Default::default(),
        dropout,
    })
}

fn cnn() -> ModelSpec {
    ModelSpec::Cnn(CnnSpec {
        channels: vec![4, 6],
        kernel_size: 3,
        batch_norm: true,
        pool: true,
        hidden: vec![12],
        activation: Default::default(),
        dropout: 0.2,
    })
}

fn inputs(rows: usize, width: usize) -> Vec<f32> {
    (0..rows * width)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect()
}

#[test]
fn parameter_counts_match_the_architecture() {
    let device = ComputeDevice::cpu().inference();
    let net = Network::new(
        &mlp(vec![256, 256], 0.3),
        SampleShape::image(1, 8, 8),
        10,
        0,
        &device,
    )
    .unwrap();
    assert_eq!(
        net.parameter_count(),
        64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    );
    let net = Network::new(&cnn(), SampleShape::image(1, 8, 8), 10, 0, &device).unwrap();
    // conv 1→4 (3×3) + BN, conv 4→6 + BN, 8×8 pooled twice → 2×2×6 = 24 → 12 → 10.
    let expected = (4 * 9 + 4 + 8) + (6 * 4 * 9 + 6 + 12) + (24 * 12 + 12) + (12 * 10 + 10);
    assert_eq!(net.parameter_count(), expected);
}

#[test]
fn the_same_seed_gives_the_same_weights_and_another_seed_does_not() {
    let device = ComputeDevice::cpu().inference();
    let shape = SampleShape::image(1, 8, 8);
    let x = || matrix(inputs(3, 64), 3, 64, &device);
    let a = to_host(
        Network::new(&mlp(vec![16], 0.0), shape, 10, 7, &device)
            .unwrap()
            .logits(x()),
    );
    let b = to_host(
        Network::new(&mlp(vec![16], 0.0), shape, 10, 7, &device)
            .unwrap()
            .logits(x()),
    );
    let c = to_host(
        Network::new(&mlp(vec![16], 0.0), shape, 10, 8, &device)
            .unwrap()
            .logits(x()),
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn forward_returns_named_features_of_the_right_shapes() {
    let device = ComputeDevice::cpu().inference();
    let net = Network::new(&cnn(), SampleShape::image(1, 8, 8), 10, 0, &device).unwrap();
    let out = net.forward(matrix(inputs(5, 64), 5, 64, &device), None);
    assert_eq!(out.logits.dims(), [5, 10]);
    let names: Vec<&str> = out.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["block1", "block2", "hidden1"]);
    match &out.features[1].value {
        FeatureTensor::Map(map) => assert_eq!(map.dims(), [5, 6, 2, 2]),
        other => panic!("block2 should be a feature map, found {other:?}"),
    }
}

#[test]
fn cnn_refuses_flat_inputs() {
    let device = ComputeDevice::cpu().inference();
    let error = Network::new(&cnn(), SampleShape::flat(64), 10, 0, &device).unwrap_err();
    assert!(error.contains("image inputs"), "{error}");
}

fn meta(spec: ModelSpec) -> CheckpointMeta {
    CheckpointMeta {
        format_version: CHECKPOINT_FORMAT_VERSION,
        spec,
        input_shape: SampleShape::image(1, 8, 8),
        num_classes: 10,
        normalizer: Normalizer {
            mode: Normalization::Channel,
            mean: vec![0.5; 64],
            std: vec![2.0; 64],
        },
        name: "teacher".into(),
        seed: 3,
        data: "digits".into(),
        data_config: DataConfig {
            source: DataSource::Digits,
            path: None,
            validation_fraction: 0.1,
            test_fraction: 0.2,
            normalization: Normalization::Channel,
            label_fractions: vec![1.0],
            label_column: LabelColumn::Last,
            has_header: false,
            image_shape: None,
            image_folder: None,
        },
        class_names: Vec::new(),
    }
}

#[test]
fn checkpoints_round_trip_exactly_including_batch_norm_statistics() {
    let device = ComputeDevice::cpu();
    let folder = tempfile::tempdir().unwrap();
    for spec in [mlp(vec![32, 16], 0.3), cnn()] {
        // Train-mode forward passes move batch-norm running statistics away from their initial
        // values, so the round trip has something to preserve.
        let net = Network::new(
            &spec,
            SampleShape::image(1, 8, 8),
            10,
            11,
            &device.training(),
        )
        .unwrap();
        for _ in 0..3 {
            let _ = net.forward(matrix(inputs(8, 64), 8, 64, &device.training()), None);
        }
        let net = burn::module::Module::valid(&net);
        let path = folder.path().join("model.safetensors");
        let written = meta(spec.clone());
        checkpoint::save(&path, &net, &written).unwrap();
        let (loaded, read) = checkpoint::load(&path, &device).unwrap();
        assert_eq!(read, written);
        let x = || matrix(inputs(4, 64), 4, 64, &device.inference());
        assert_eq!(
            to_host(net.logits(x())),
            to_host(loaded.logits(x())),
            "{spec:?}"
        );
    }
}

#[test]
fn damaged_checkpoints_are_refused_with_the_file_name() {
    let device = ComputeDevice::cpu();
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("broken.safetensors");
    std::fs::write(&path, b"not a checkpoint at all").unwrap();
    let error = checkpoint::load(&path, &device).unwrap_err().to_string();
    assert!(error.contains("broken.safetensors"), "{error}");

    let net = Network::new(
        &mlp(vec![8], 0.0),
        SampleShape::image(1, 8, 8),
        10,
        0,
        &device.inference(),
    )
    .unwrap();
    let good = folder.path().join("good.safetensors");
    checkpoint::save(&good, &net, &meta(mlp(vec![8], 0.0))).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let error = checkpoint::load(&path, &device).unwrap_err().to_string();
    assert!(error.contains("broken.safetensors"), "{error}");
}

//! Students out to ONNX: the exported graph, run by tract (here) and by onnxruntime (the
//! committed fixture of `fixtures/onnx/make_onnxruntime_reference.py`), gives apprentice's
//! logits on raw inputs, normalisation included.

mod common;

use std::path::Path;

use common::onnx::{FixtureJson, fixture_dir, max_diff};

use apprentice::backend::{ComputeDevice, matrix, to_host, vector};
use apprentice::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CheckpointMeta};
use apprentice::data::SampleShape;
use apprentice::data::normalize::{Normalization, Normalizer};
use apprentice::models::{Activation, CnnSpec, MlpSpec, ModelSpec, Network};
use apprentice::onnx::{
    OnnxInput, OnnxTeacher, OnnxTeacherConfig, export_checkpoint, network_to_onnx_bytes,
};
use burn::module::{Param, RunningState};

/// Raw inputs in [0, 1], like pixels / 255.
fn inputs(rows: usize, width: usize, salt: usize) -> Vec<f32> {
    (0..rows * width)
        .map(|i| ((i * 37 + salt * 11) % 101) as f32 / 100.0)
        .collect()
}

/// A network of `spec` whose batch-norm layers have statistics and affine parameters far from
/// their initial values (ones and zeros would hide a swapped or missing term).
fn network(spec: &ModelSpec, shape: SampleShape, classes: usize, seed: u64) -> Network {
    let device = ComputeDevice::cpu().inference();
    let mut net = Network::new(spec, shape, classes, seed, &device).unwrap();
    for (b, block) in net.blocks.iter_mut().enumerate() {
        if let Some(norm) = block.norm.as_mut() {
            let [channels] = norm.gamma.val().dims();
            let values = |offset: f32, step: f32| -> Vec<f32> {
                (0..channels)
                    .map(|c| offset + step * ((c * 7 + b * 3) % 5) as f32)
                    .collect()
            };
            norm.gamma = Param::from_tensor(vector(values(0.6, 0.2), &device));
            norm.beta = Param::from_tensor(vector(values(-0.3, 0.15), &device));
            norm.running_mean = RunningState::new(vector(values(-0.2, 0.1), &device));
            norm.running_var = RunningState::new(vector(values(0.4, 0.3), &device));
        }
    }
    net
}

/// Per-channel statistics, repeated over each channel's pixels as apprentice stores them.
fn channel_normalizer(shape: SampleShape) -> Normalizer {
    let plane = shape.height * shape.width;
    Normalizer {
        mode: Normalization::Channel,
        mean: (0..shape.len())
            .map(|i| 0.3 + 0.05 * (i / plane) as f32)
            .collect(),
        std: (0..shape.len())
            .map(|i| 0.25 + 0.1 * (i / plane) as f32)
            .collect(),
    }
}

/// Apprentice's logits of raw `samples`: normalised, then the network.
fn apprentice_logits(net: &Network, normalizer: &Normalizer, samples: &[f32]) -> Vec<f32> {
    let width = net.input_shape().len();
    let mut x = samples.to_vec();
    normalizer.apply_to(&mut x);
    let rows = x.len() / width;
    to_host(net.logits(matrix(x, rows, width, &ComputeDevice::cpu().inference())))
}

/// tract's logits of raw `samples` through the ONNX file at `path`.
fn tract_logits(path: &Path, shape: SampleShape, samples: &[f32]) -> Vec<f32> {
    let dims = if shape.is_image() {
        vec![shape.channels, shape.height, shape.width]
    } else {
        vec![shape.len()]
    };
    let mut config = OnnxTeacherConfig::new(path, OnnxInput::new("images", dims));
    config.batch_size = 16;
    OnnxTeacher::load(&config)
        .expect("the export loads in tract")
        .logits(samples)
        .expect("tract runs it")
}

fn cnn(channels: Vec<usize>, batch_norm: bool, activation: Activation) -> ModelSpec {
    ModelSpec::Cnn(CnnSpec {
        channels,
        kernel_size: 3,
        batch_norm,
        pool: true,
        hidden: vec![16],
        activation,
        dropout: 0.3,
    })
}

fn mlp(hidden: Vec<usize>, activation: Activation) -> ModelSpec {
    ModelSpec::Mlp(MlpSpec {
        hidden,
        activation,
        dropout: 0.2,
    })
}

/// A checkpoint's metadata; the data section is read from TOML so that it keeps its defaults.
fn meta(
    spec: &ModelSpec,
    shape: SampleShape,
    classes: usize,
    normalizer: Normalizer,
) -> CheckpointMeta {
    CheckpointMeta {
        format_version: CHECKPOINT_FORMAT_VERSION,
        spec: spec.clone(),
        input_shape: shape,
        num_classes: classes,
        normalizer,
        name: "kd-all".into(),
        seed: 5,
        data: "synthetic".into(),
        data_config: toml::from_str("source = \"digits\"").expect("a data section"),
        class_names: Vec::new(),
    }
}

#[test]
fn exported_students_give_apprentices_logits_in_tract() {
    let folder = tempfile::tempdir().unwrap();
    let cases = [
        (
            "mlp on images, gelu",
            mlp(vec![24, 12], Activation::Gelu),
            SampleShape::image(1, 8, 8),
        ),
        (
            "mlp on flat features, tanh",
            mlp(vec![9], Activation::Tanh),
            SampleShape::flat(13),
        ),
        (
            "linear classifier",
            mlp(vec![], Activation::Relu),
            SampleShape::flat(5),
        ),
        (
            "cnn with batch norm and pooling, odd map sizes",
            cnn(vec![4, 6, 5], true, Activation::Relu),
            SampleShape::image(1, 11, 9),
        ),
        (
            "cnn without batch norm (fused kernel)",
            cnn(vec![5, 3], false, Activation::Relu),
            SampleShape::image(2, 8, 8),
        ),
        (
            "rgb cnn, leaky relu",
            cnn(vec![6], true, Activation::LeakyRelu),
            SampleShape::image(3, 6, 7),
        ),
    ];
    for (index, (what, spec, shape)) in cases.into_iter().enumerate() {
        let classes = 3 + index;
        let net = network(&spec, shape, classes, 40 + index as u64);
        let normalizer = if shape.is_image() {
            channel_normalizer(shape)
        } else {
            // Feature mode: one statistic per value.
            let n = shape.len();
            Normalizer {
                mode: Normalization::Feature,
                mean: (0..n).map(|i| 0.1 * i as f32).collect(),
                std: (0..n).map(|i| 0.5 + 0.2 * i as f32).collect(),
            }
        };
        let checkpoint_path = folder.path().join(format!("model-{index}.safetensors"));
        checkpoint::save(
            &checkpoint_path,
            &net,
            &meta(&spec, shape, classes, normalizer.clone()),
        )
        .unwrap();
        let onnx_path = folder.path().join(format!("model-{index}.onnx"));
        let summary = export_checkpoint(&checkpoint_path, &onnx_path).unwrap();
        assert_eq!(summary.num_classes, classes);
        assert_eq!(summary.input_shape[0], None, "dynamic batch");

        let samples = inputs(37, shape.len(), index);
        let expected = apprentice_logits(&net, &normalizer, &samples);
        let got = tract_logits(&onnx_path, shape, &samples);
        let diff = max_diff(&expected, &got);
        println!("{what}: max |tract − apprentice| = {diff:.2e}");
        assert!(diff <= 1e-5, "{what}: {diff}");
    }
}

#[test]
fn without_normalisation_the_graph_takes_normalised_inputs() {
    let shape = SampleShape::image(1, 6, 6);
    let spec = cnn(vec![3], true, Activation::Relu);
    let net = network(&spec, shape, 4, 1);
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("plain.onnx");
    std::fs::write(&path, network_to_onnx_bytes(&net, None, "test").unwrap()).unwrap();
    let samples = inputs(5, shape.len(), 0);
    let identity = Normalizer {
        mode: Normalization::None,
        mean: vec![0.0; shape.len()],
        std: vec![1.0; shape.len()],
    };
    let diff = max_diff(
        &apprentice_logits(&net, &identity, &samples),
        &tract_logits(&path, shape, &samples),
    );
    assert!(diff <= 1e-5, "{diff}");
    // ... and the normalised export differs, so the normalisation really is in the graph.
    let normalised = folder.path().join("normalised.onnx");
    let bytes = network_to_onnx_bytes(&net, Some(&channel_normalizer(shape)), "test").unwrap();
    std::fs::write(&normalised, bytes).unwrap();
    assert!(
        max_diff(
            &tract_logits(&path, shape, &samples),
            &tract_logits(&normalised, shape, &samples)
        ) > 1e-3
    );
}

#[test]
fn a_normaliser_of_another_shape_is_refused() {
    let shape = SampleShape::flat(6);
    let net = network(&mlp(vec![4], Activation::Relu), shape, 3, 0);
    let wrong = channel_normalizer(SampleShape::flat(5));
    let error = network_to_onnx_bytes(&net, Some(&wrong), "test").unwrap_err();
    assert!(error.to_string().contains("5 values per sample"), "{error}");
}

#[test]
fn a_damaged_checkpoint_is_named() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("broken.safetensors");
    std::fs::write(&path, b"not a checkpoint").unwrap();
    let error = export_checkpoint(&path, &folder.path().join("out.onnx")).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("broken.safetensors") && !message.contains('\n'),
        "{message}"
    );
}

// The onnxruntime fixture: one CNN (batch norm, pooling, GELU) and one MLP (leaky ReLU) on
// flat features, each built from a fixed seed, exported by `write_onnxruntime_fixture_models`
// and run by onnxruntime in `make_onnxruntime_reference.py`.

/// The fixture's models: file stem, network, normaliser.
fn fixture_models() -> Vec<(&'static str, Network, Normalizer)> {
    let cnn_shape = SampleShape::image(3, 10, 10);
    let cnn_net = network(&cnn(vec![4, 5], true, Activation::Gelu), cnn_shape, 6, 17);
    let mlp_shape = SampleShape::flat(12);
    let mlp_net = network(&mlp(vec![10, 8], Activation::LeakyRelu), mlp_shape, 4, 23);
    let mlp_normalizer = Normalizer {
        mode: Normalization::Feature,
        mean: (0..12).map(|i| 0.04 * i as f32).collect(),
        std: (0..12).map(|i| 0.3 + 0.05 * i as f32).collect(),
    };
    vec![
        ("student-cnn", cnn_net, channel_normalizer(cnn_shape)),
        ("student-mlp", mlp_net, mlp_normalizer),
    ]
}

/// Rewrites the fixture's ONNX files; run it with `--ignored`, then the Python script.
#[test]
#[ignore = "writes the fixture files; run by hand before make_onnxruntime_reference.py"]
fn write_onnxruntime_fixture_models() {
    for (stem, net, normalizer) in fixture_models() {
        let bytes = network_to_onnx_bytes(&net, Some(&normalizer), stem).unwrap();
        std::fs::write(fixture_dir().join(format!("{stem}.onnx")), bytes).unwrap();
    }
}

#[test]
fn onnxruntime_gives_apprentices_logits() {
    let fixture = FixtureJson::read("onnxruntime-logits.json");
    for (stem, net, normalizer) in fixture_models() {
        let entry = fixture.entry(stem);
        let samples = entry.floats("inputs");
        let onnxruntime = entry.floats("logits");
        let expected = apprentice_logits(&net, &normalizer, &samples);
        let diff = max_diff(&expected, &onnxruntime);
        println!(
            "{stem}: {} samples, max |onnxruntime {} − apprentice| = {diff:.2e}",
            samples.len() / net.input_shape().len(),
            entry.get("onnxruntime")
        );
        assert!(diff <= 1e-5, "{stem}: {diff}");
        // The committed file is the model built here: tract agrees on it too.
        let file = fixture_dir().join(format!("{stem}.onnx"));
        let diff = max_diff(&expected, &tract_logits(&file, net.input_shape(), &samples));
        assert!(diff <= 1e-5, "{stem} in tract: {diff}");
    }
}

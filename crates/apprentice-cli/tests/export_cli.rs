//! `apprentice export CHECKPOINT --onnx OUT`: writes an ONNX file that tract runs with the
//! checkpoint's logits; bad arguments end with one line naming the file and status 2.

use std::path::Path;
use std::process::{Command, Output};

use apprentice::backend::{ComputeDevice, matrix, to_host};
use apprentice::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CheckpointMeta};
use apprentice::data::SampleShape;
use apprentice::data::normalize::{Normalization, Normalizer};
use apprentice::models::{CnnSpec, ModelSpec, Network};
use apprentice::onnx::{OnnxInput, OnnxTeacher, OnnxTeacherConfig};

fn apprentice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A small CNN checkpoint on 1 × 8 × 8 images.
fn write_checkpoint(path: &Path) -> (Network, Normalizer) {
    let spec = ModelSpec::Cnn(CnnSpec {
        channels: vec![3],
        kernel_size: 3,
        batch_norm: true,
        pool: true,
        hidden: vec![],
        activation: Default::default(),
        dropout: 0.0,
    });
    let shape = SampleShape::image(1, 8, 8);
    let net = Network::new(&spec, shape, 4, 9, &ComputeDevice::cpu().inference()).unwrap();
    let normalizer = Normalizer {
        mode: Normalization::Channel,
        mean: vec![0.4; 64],
        std: vec![0.3; 64],
    };
    let meta = CheckpointMeta {
        format_version: CHECKPOINT_FORMAT_VERSION,
        spec,
        input_shape: shape,
        num_classes: 4,
        normalizer: normalizer.clone(),
        name: "student".into(),
        seed: 0,
        data: "synthetic".into(),
        data_config: toml::from_str("source = \"digits\"").unwrap(),
        class_names: Vec::new(),
    };
    checkpoint::save(path, &net, &meta).unwrap();
    (net, normalizer)
}

#[test]
fn export_writes_a_model_tract_runs_with_the_checkpoints_logits() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint_path = dir.path().join("student.safetensors");
    let (net, normalizer) = write_checkpoint(&checkpoint_path);
    let out = dir.path().join("student.onnx");
    let output = apprentice(&[
        "export",
        checkpoint_path.to_str().unwrap(),
        "--onnx",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("input images [N, 1, 8, 8]"), "{stdout}");

    let samples: Vec<f32> = (0..6 * 64).map(|i| (i % 17) as f32 / 16.0).collect();
    let teacher = OnnxTeacher::load(&OnnxTeacherConfig::new(
        &out,
        OnnxInput::new("images", vec![1, 8, 8]),
    ))
    .unwrap();
    let got = teacher.logits(&samples).unwrap();
    let mut normalised = samples.clone();
    normalizer.apply_to(&mut normalised);
    let expected =
        to_host(net.logits(matrix(normalised, 6, 64, &ComputeDevice::cpu().inference())));
    let diff = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= 1e-5, "{diff}");
}

/// Exit status 2 and one line on stderr that names `file`.
fn assert_one_line_error(output: &Output, file: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error") && stderr.contains(file),
        "{stderr}"
    );
}

#[test]
fn bad_checkpoints_and_outputs_end_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let out = out.to_str().unwrap();

    let missing = dir.path().join("missing.safetensors");
    let output = apprentice(&["export", missing.to_str().unwrap(), "--onnx", out]);
    assert_one_line_error(&output, "missing.safetensors");

    let broken = dir.path().join("broken.safetensors");
    std::fs::write(&broken, b"\x08\0\0\0\0\0\0\0{\"a\":1}").unwrap();
    let output = apprentice(&["export", broken.to_str().unwrap(), "--onnx", out]);
    assert_one_line_error(&output, "broken.safetensors");

    let good = dir.path().join("good.safetensors");
    write_checkpoint(&good);
    let unwritable = dir.path().join("no/such/folder/model.onnx");
    let output = apprentice(&[
        "export",
        good.to_str().unwrap(),
        "--onnx",
        unwritable.to_str().unwrap(),
    ]);
    assert_one_line_error(&output, "model.onnx");
}

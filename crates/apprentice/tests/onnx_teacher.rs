//! The ONNX teacher: a ResNet trained in PyTorch and exported to ONNX gives, through tract, the
//! logits PyTorch computed on the 10,000 Fashion-MNIST test images; and the usual mistakes in
//! its settings give one-line errors naming the file.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use apprentice::data::idx::load_idx_pair;
use apprentice::onnx::{Layout, OnnxError, OnnxInput, OnnxTeacher, OnnxTeacherConfig};

/// The model's folder, or `None` (skipped) without the shared data.
fn resnet_folder(test: &str) -> Option<PathBuf> {
    Some(common::shared_data(test)?.join("fashion-resnet-onnx"))
}

/// The teacher's settings as its `model.json` describes them: input name and shape from the
/// file; the preprocessing `pixel / 255, then (x - 0.2860) / 0.3530` (apprentice's IDX reader
/// already divides by 255, so `scale` stays 1).
fn resnet_config(folder: &Path) -> OnnxTeacherConfig {
    let text = std::fs::read_to_string(folder.join("model.json")).expect("model.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("model.json is JSON");
    let input = &json["input"];
    assert!(
        input["preprocessing"]
            .as_str()
            .is_some_and(|p| p.contains("0.2860") && p.contains("0.3530")),
        "model.json describes other preprocessing: {}",
        input["preprocessing"]
    );
    let shape: Vec<usize> = input["shape"].as_array().expect("input.shape")[1..]
        .iter()
        .map(|d| d.as_u64().expect("a fixed size") as usize)
        .collect();
    let mut onnx_input = OnnxInput::new(input["name"].as_str().expect("input.name"), shape);
    onnx_input.mean = vec![0.2860];
    onnx_input.std = vec![0.3530];
    OnnxTeacherConfig::new(
        folder.join(json["model"].as_str().expect("model")),
        onnx_input,
    )
}

/// The reference logits `[10000, 10]` and labels written by PyTorch.
fn reference(folder: &Path) -> (Vec<f32>, Vec<u32>) {
    let bytes = std::fs::read(folder.join("test-logits.safetensors")).expect("reference logits");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let logits = tensors.tensor("logits").expect("logits");
    assert_eq!(logits.dtype(), safetensors::Dtype::F32);
    let logits = logits
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let labels = tensors.tensor("labels").expect("labels");
    assert_eq!(labels.dtype(), safetensors::Dtype::I64);
    let labels = labels
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as u32)
        .collect();
    (logits, labels)
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

#[test]
fn resnet_teacher_reproduces_pytorch_logits_on_the_test_set() {
    let Some(folder) = resnet_folder("resnet_teacher_reproduces_pytorch_logits_on_the_test_set")
    else {
        return;
    };
    let fashion = folder.parent().unwrap().join("fashion-mnist");
    let test = load_idx_pair(
        &fashion.join("t10k-images-idx3-ubyte.gz"),
        &fashion.join("t10k-labels-idx1-ubyte.gz"),
        "fashion-mnist/test",
    )
    .expect("Fashion-MNIST test set");
    let (expected, labels) = reference(&folder);
    assert_eq!(labels, test.labels, "the reference is in file order");

    let start = Instant::now();
    let teacher = OnnxTeacher::load(&resnet_config(&folder)).expect("teacher loads");
    let loaded = start.elapsed();
    assert_eq!(teacher.num_classes(), 10);
    let logits = teacher.logits(&test.features).expect("teacher runs");
    let ran = start.elapsed() - loaded;
    assert_eq!(logits.len(), expected.len());

    let max_diff = logits
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let correct = logits
        .chunks_exact(10)
        .zip(&labels)
        .filter(|(row, label)| argmax(row) == **label)
        .count();
    let accuracy = correct as f64 / labels.len() as f64;
    let reference_correct = expected
        .chunks_exact(10)
        .zip(&labels)
        .filter(|(row, label)| argmax(row) == **label)
        .count();
    println!(
        "ONNX teacher on {} test images: accuracy {:.2}% (PyTorch {:.2}%), max |logit − PyTorch| \
         {max_diff:.2e}; load {:.2} s, run {:.2} s",
        labels.len(),
        100.0 * accuracy,
        100.0 * reference_correct as f64 / labels.len() as f64,
        loaded.as_secs_f64(),
        ran.as_secs_f64()
    );
    assert!(max_diff <= 1e-4, "max difference {max_diff} above 1e-4");
    assert_eq!(correct, reference_correct);
}

#[test]
fn batch_size_does_not_change_the_logits_and_a_feature_can_be_named() {
    let Some(folder) =
        resnet_folder("batch_size_does_not_change_the_logits_and_a_feature_can_be_named")
    else {
        return;
    };
    let fashion = folder.parent().unwrap().join("fashion-mnist");
    let test = load_idx_pair(
        &fashion.join("t10k-images-idx3-ubyte.gz"),
        &fashion.join("t10k-labels-idx1-ubyte.gz"),
        "fashion-mnist/test",
    )
    .expect("Fashion-MNIST test set");
    let samples = &test.features[..37 * 784];
    let mut config = resnet_config(&folder);
    let whole = OnnxTeacher::load(&config).unwrap().logits(samples).unwrap();
    config.batch_size = 5;
    config.feature = Some(FEATURE.into());
    let teacher = OnnxTeacher::load(&config).unwrap();
    let output = teacher.forward(samples).unwrap();
    let max_diff = whole
        .iter()
        .zip(&output.logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff <= 1e-5, "batches of 5 differ by {max_diff}");
    let feature = output.feature.expect("the feature was asked for");
    // The last residual stage's output: 96 channels of 7 × 7.
    assert_eq!(feature.shape, vec![96, 7, 7]);
    assert_eq!(feature.values.len(), 37 * 96 * 49);
    assert!(feature.values.iter().all(|v| *v >= 0.0), "a ReLU output");
}

/// The output of the last residual block's ReLU in the exported graph.
const FEATURE: &str = "/l3/Relu_1_output_0";

/// Loads `config` and returns its error message, which must be one line naming the file.
fn load_error(config: &OnnxTeacherConfig) -> (OnnxError, String) {
    let error = OnnxTeacher::load(config).expect_err("the settings are wrong");
    let message = error.to_string();
    println!("{message}");
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(
        message.contains(&config.path.display().to_string()),
        "names the file: {message}"
    );
    (error, message)
}

#[test]
fn wrong_settings_give_one_line_errors_naming_the_file() {
    let Some(folder) = resnet_folder("wrong_settings_give_one_line_errors_naming_the_file") else {
        return;
    };
    let good = resnet_config(&folder);

    let mut config = good.clone();
    config.input.name = "pixels".into();
    let (error, message) = load_error(&config);
    assert!(matches!(error, OnnxError::MissingInput { .. }), "{message}");
    assert!(message.contains("\"pixels\"") && message.contains("\"images\""));

    let mut config = good.clone();
    config.input.shape = vec![3, 32, 32];
    let (error, message) = load_error(&config);
    assert!(matches!(error, OnnxError::InputShape { .. }), "{message}");
    assert!(message.contains("[batch, 1, 28, 28]") && message.contains("[N, 3, 32, 32]"));

    let mut config = good.clone();
    config.input.layout = Layout::Nhwc;
    let (error, _) = load_error(&config);
    assert!(matches!(error, OnnxError::InputShape { .. }));

    let mut config = good.clone();
    config.output = Some("probabilities".into());
    let (error, message) = load_error(&config);
    assert!(
        matches!(error, OnnxError::MissingOutput { .. }),
        "{message}"
    );
    assert!(message.contains("\"logits\""));

    let mut config = good.clone();
    config.feature = Some("/no/such/value".into());
    let (error, _) = load_error(&config);
    assert!(matches!(error, OnnxError::MissingOutput { .. }));

    let mut config = good.clone();
    config.input.mean = vec![0.1, 0.2];
    let (error, _) = load_error(&config);
    assert!(matches!(error, OnnxError::Invalid { .. }));
}

#[test]
fn files_that_are_not_onnx_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = OnnxInput::new("images", vec![1, 28, 28]);
    for (name, bytes) in [
        ("notes.onnx", b"this is a text file, not a model\n".to_vec()),
        ("empty.onnx", Vec::new()),
        (
            "random.onnx",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
        ("image.onnx", {
            // The start of a PNG file.
            let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
            png.extend([0u8; 64]);
            png
        }),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (error, message) = load_error(&OnnxTeacherConfig::new(&path, input.clone()));
        assert!(
            matches!(error, OnnxError::NotOnnx { .. }),
            "{name}: {message}"
        );
    }
    let missing = dir.path().join("absent.onnx");
    let (error, _) = load_error(&OnnxTeacherConfig::new(&missing, input));
    assert!(matches!(error, OnnxError::Io { .. }));
}

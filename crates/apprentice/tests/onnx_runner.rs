//! The ONNX teacher through `run_experiment`, on images read from class folders: the PyTorch
//! ResNet teaches an MLP student by a logit method and by a feature method (a graph value named
//! as the teacher's feature); its test accuracy in the results is the one its PyTorch logits
//! give on the same images; class names reach `results.json` and the checkpoints; and the
//! settings that cannot work with an ONNX teacher are refused with one line naming the key.

mod common;

use std::path::{Path, PathBuf};

use apprentice::backend::ComputeDevice;
use apprentice::checkpoint;
use apprentice::config::ExperimentConfig;
use apprentice::data::Dataset;
use apprentice::data::idx::load_idx_pair;
use apprentice::distill::train::Silent;
use apprentice::experiment::{RunOptions, run_experiment};
use apprentice::layout::RunLayout;
use image::GrayImage;

/// Fashion-MNIST's classes in label order, as folder names; sorted, they are in another
/// order, so `data.image_folder.classes` must give the teacher's order.
const CLASSES: [&str; 10] = [
    "t-shirt-top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
];

/// The first `per_class` images of each class of `data` (in file order) as PNG files under
/// `root/<class>/`; returns their indices in `data`, in the order the folder reader lists them
/// (class by class in label order, then by file name).
fn write_split(data: &Dataset, root: &Path, per_class: usize) -> Vec<usize> {
    let mut written = Vec::new();
    for (label, class) in CLASSES.iter().enumerate() {
        let folder = root.join(class);
        std::fs::create_dir_all(&folder).unwrap();
        let indices: Vec<usize> = (0..data.len())
            .filter(|&i| data.labels[i] as usize == label)
            .take(per_class)
            .collect();
        for &index in &indices {
            let pixels: Vec<u8> = data
                .sample(index)
                .iter()
                .map(|v| (v * 255.0).round() as u8)
                .collect();
            GrayImage::from_raw(28, 28, pixels)
                .unwrap()
                .save(folder.join(format!("{index:05}.png")))
                .unwrap();
        }
        written.extend(indices);
    }
    written
}

/// The ResNet's PyTorch logits on the official test images, `[10000, 10]`.
fn reference_logits(folder: &Path) -> Vec<f32> {
    let bytes = std::fs::read(folder.join("test-logits.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    tensors
        .tensor("logits")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

/// An experiment on `root` with the ResNet as teacher; `extra` is appended.
fn config_text(root: &Path, model: &Path, distill: &str) -> String {
    let classes: Vec<String> = CLASSES.iter().map(|c| format!("{c:?}")).collect();
    format!(
        r#"
name = "onnx-teacher"
seeds = [3]

[data]
source = "image-folder"
path = {root:?}
validation_fraction = 0.2
label_fractions = [1.0, 0.5]

[data.image_folder]
size = [28, 28]
color = "grayscale"
classes = [{classes}]

[teacher]
onnx = {model:?}
feature = "/Flatten_output_0"

[teacher.input]
name = "images"
shape = [1, 28, 28]
mean = [0.2860]
std = [0.3530]

[student.model]
kind = "mlp"
hidden = [16]

[student.train]
epochs = 2
batch_size = 32

[student.optimizer]
optimizer = "adam"
lr = 0.003

{distill}
"#,
        classes = classes.join(", ")
    )
}

#[test]
fn an_onnx_teacher_teaches_students_on_images_from_class_folders() {
    let Some(shared) =
        common::shared_data("an_onnx_teacher_teaches_students_on_images_from_class_folders")
    else {
        return;
    };
    let fashion = shared.join("fashion-mnist");
    let resnet = shared.join("fashion-resnet-onnx");
    let read = |stem: &str, name: &str| {
        load_idx_pair(
            &fashion.join(format!("{stem}-images-idx3-ubyte.gz")),
            &fashion.join(format!("{stem}-labels-idx1-ubyte.gz")),
            name,
        )
        .unwrap()
    };
    let train = read("train", "train");
    let test = read("t10k", "test");
    let root = tempfile::tempdir().unwrap();
    write_split(&train, &root.path().join("train"), 30);
    let test_indices = write_split(&test, &root.path().join("test"), 20);

    let model = resnet.join("fashion-resnet.onnx");
    let text = config_text(
        root.path(),
        &model,
        "[distill]\nmethods = [\"kd\", \"pkt\"]\ntemperature = 4.0\nalpha = 0.5\ntransfer = [\"all\"]",
    );
    let config = ExperimentConfig::from_toml(&text, "onnx-teacher.toml").unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        run_dir: run_dir.path().to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: true,
    };
    let results = run_experiment(&config, &options, &mut Silent::default()).unwrap();

    // The teacher's accuracy is what PyTorch's logits give on the very images written.
    let reference = reference_logits(&resnet);
    let correct = test_indices
        .iter()
        .filter(|&&i| argmax(&reference[i * 10..(i + 1) * 10]) == test.labels[i] as usize)
        .count();
    let expected = correct as f64 / test_indices.len() as f64;
    let teacher = results.models.iter().find(|m| m.name == "teacher").unwrap();
    println!(
        "ONNX teacher: {:.2}% on {} test images from class folders (PyTorch's logits: {:.2}%), {} parameters",
        teacher.test.accuracy.mean * 100.0,
        test_indices.len(),
        expected * 100.0,
        teacher.params
    );
    assert_eq!(teacher.method, "onnx");
    assert!((teacher.test.accuracy.mean - expected).abs() < 1e-12);
    assert!(teacher.test.accuracy.mean > 0.85);
    // The values in the graph's initializers, as the `onnx` Python package counts them
    // (`sum(prod(t.dims) for t in graph.initializer)`): fewer than the 173,842 trainable
    // parameters of the PyTorch model, because the exporter folded batch norm into the
    // convolutions.
    assert_eq!(teacher.params, 173_338);

    // Every student trained, and the distilled ones are compared with the ONNX teacher.
    let names: Vec<&str> = results.models.iter().map(|m| m.name.as_str()).collect();
    for name in [
        "scratch",
        "kd",
        "pkt",
        "scratch@50%",
        "kd-all@50%",
        "pkt-all@50%",
    ] {
        let model = results
            .models
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no {name} among {names:?}"));
        assert!(model.test.accuracy.mean > 0.3, "{name} did not learn");
        if name != "scratch" && name != "scratch@50%" {
            assert!(model.test.agreement.is_some(), "{name}: no agreement");
        }
    }

    // Class names in results.json and in every checkpoint.
    let layout = RunLayout::new(run_dir.path());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout.results()).unwrap()).unwrap();
    let recorded: Vec<&str> = json["class_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(recorded, CLASSES);
    let (_, meta) =
        checkpoint::load(&layout.seed(3).checkpoint("kd"), &ComputeDevice::cpu()).unwrap();
    assert_eq!(meta.class_names, CLASSES);

    // The same run again in the same folder (as `--resume` does) takes every finished student
    // from its checkpoint and record: nothing is retrained (the training times are the
    // recorded ones), the ONNX teacher's outputs are computed again, and the results are equal.
    let again = run_experiment(&config, &options, &mut Silent::default()).unwrap();
    for (first, second) in results.models.iter().zip(&again.models) {
        assert_eq!(first.name, second.name);
        assert_eq!(first.test, second.test, "{}", first.name);
        if first.name != "teacher" {
            assert_eq!(
                first.train_time_s, second.train_time_s,
                "{} was retrained",
                first.name
            );
        }
    }
}

#[test]
fn settings_an_onnx_teacher_cannot_serve_are_refused_naming_the_key() {
    let root = PathBuf::from("images");
    let model = PathBuf::from("teacher.onnx");
    let error = |distill: &str, edit: &dyn Fn(String) -> String| {
        let text = edit(config_text(&root, &model, distill));
        let message = ExperimentConfig::from_toml(&text, "x.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(message.lines().count(), 1, "{message}");
        message
    };
    let kd = "[distill]\nmethod = \"kd\"";
    let same = |t: String| t;
    let no_feature = |t: String| t.replace("feature = \"/Flatten_output_0\"\n", "");
    let message = error("[distill]\nmethod = \"fitnet\"", &no_feature);
    assert!(message.contains("teacher.feature"), "{message}");
    let message = error("[distill]\nmethod = \"online\"", &same);
    assert!(message.contains("ONNX teacher"), "{message}");
    let message = error("[distill]\nmethod = \"multi-teacher\"", &same);
    assert!(message.contains("teacher.onnx"), "{message}");
    let message = error(kd, &|t: String| {
        t.replace("[teacher]\n", "[teacher]\ncheckpoint = \"t.safetensors\"\n")
    });
    assert!(
        message.contains("teacher.checkpoint: not with teacher.onnx"),
        "{message}"
    );
    let message = error(kd, &|t: String| {
        let start = t.find("[teacher.input]").unwrap();
        let end = t.find("[student.model]").unwrap();
        format!("{}{}", &t[..start], &t[end..])
    });
    assert!(message.contains("teacher.input"), "{message}");
    let message = error(kd, &|t: String| {
        t.replace("std = [0.3530]", "std = [0.3, 0.5]")
    });
    assert!(message.contains("teacher.input.std"), "{message}");
    let message = error(kd, &|t: String| {
        format!("{t}\n[augment]\nhorizontal_flip = true\n")
    });
    assert!(message.contains("augmentation"), "{message}");
    let message = error(kd, &|t: String| {
        t.replace(
            "[teacher]\nonnx",
            "[teacher]\nmodel = { kind = \"mlp\", hidden = [8] }\nonnx",
        )
    });
    assert!(
        message.contains("teacher.model: not with teacher.onnx"),
        "{message}"
    );
    let message = error(kd, &|t: String| {
        t.replace("source = \"image-folder\"", "source = \"idx\"")
    });
    assert!(
        message.contains("data.image_folder: only with"),
        "{message}"
    );
}

#[test]
fn an_onnx_teacher_for_other_samples_is_refused_naming_the_file() {
    let Some(shared) =
        common::shared_data("an_onnx_teacher_for_other_samples_is_refused_naming_the_file")
    else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    // Two classes of 8×8 grey images: the ResNet takes 28×28 and predicts 10 classes.
    for class in ["a", "b"] {
        std::fs::create_dir(root.path().join(class)).unwrap();
        for i in 0..6u8 {
            GrayImage::from_pixel(8, 8, image::Luma([i * 40]))
                .save(root.path().join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let model = shared.join("fashion-resnet-onnx/fashion-resnet.onnx");
    let text = config_text(root.path(), &model, "[distill]\nmethod = \"kd\"")
        .replace("size = [28, 28]", "size = [8, 8]")
        .replace(
            &format!(
                "classes = [{}]",
                CLASSES.map(|c| format!("{c:?}")).join(", ")
            ),
            "classes = [\"a\", \"b\"]",
        );
    let config = ExperimentConfig::from_toml(&text, "x.toml").unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        run_dir: run_dir.path().to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: false,
    };
    let message = run_experiment(&config, &options, &mut Silent::default())
        .unwrap_err()
        .to_string();
    println!("{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("fashion-resnet.onnx"), "{message}");
    assert!(
        message.contains("[1, 28, 28]") && message.contains("[1, 8, 8]"),
        "{message}"
    );
}

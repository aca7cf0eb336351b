//! An ONNX teacher from the command line: `apprentice cache-teacher` writes its logits into a
//! teacher cache, and `apprentice run --teacher-cache` reads them and ends with exactly the
//! students of a run that computed them itself; `apprentice complexity` measures its targets.

mod shared_data;

use shared_data::shared_data;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use apprentice::data::idx::load_idx_pair;

fn apprentice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn succeeded(output: &Output) -> bool {
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    output.status.success()
}

/// The first 12 Fashion-MNIST training images of each class as PNG files, one folder per
/// class named by its label digit (so the sorted order is the teacher's label order).
fn image_folder(fashion: &Path, root: &Path) {
    let train = load_idx_pair(
        &fashion.join("train-images-idx3-ubyte.gz"),
        &fashion.join("train-labels-idx1-ubyte.gz"),
        "train",
    )
    .unwrap();
    for label in 0..10u32 {
        let folder = root.join(format!("class-{label}"));
        std::fs::create_dir_all(&folder).unwrap();
        let indices = (0..train.len()).filter(|&i| train.labels[i] == label);
        for index in indices.take(12) {
            let pixels: Vec<u8> = train
                .sample(index)
                .iter()
                .map(|v| (v * 255.0).round() as u8)
                .collect();
            let file = std::fs::File::create(folder.join(format!("{index:05}.png"))).unwrap();
            let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 28, 28);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            encoder
                .write_header()
                .unwrap()
                .write_image_data(&pixels)
                .unwrap();
        }
    }
}

/// The test accuracy and agreement of every student in a run's results.json, by name.
fn students(run_parent: &Path) -> Vec<(String, String)> {
    let run = std::fs::read_dir(run_parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    json["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].to_string(), m["test"].to_string()))
        .collect()
}

#[test]
fn an_onnx_teachers_cache_gives_the_students_of_a_live_run() {
    let Some(shared) = shared_data("an_onnx_teachers_cache_gives_the_students_of_a_live_run")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    image_folder(&shared.join("fashion-mnist"), &images);
    let model = shared.join("fashion-resnet-onnx/fashion-resnet.onnx");
    let config = dir.path().join("onnx.toml");
    std::fs::write(
        &config,
        format!(
            r#"
name = "onnx-cli"
seeds = [5]

[data]
source = "image-folder"
path = {images:?}
validation_fraction = 0.2
test_fraction = 0.25

[data.image_folder]
size = [28, 28]
color = "grayscale"

[teacher]
onnx = {model:?}

[teacher.input]
shape = [1, 28, 28]
mean = [0.2860]
std = [0.3530]

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 2
batch_size = 16

[distill]
method = "kd"
"#
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let cached = apprentice(&[
        "cache-teacher",
        config.to_str().unwrap(),
        "--out",
        cache.to_str().unwrap(),
    ]);
    assert!(succeeded(&cached));
    let live_runs = dir.path().join("live");
    let cached_runs = dir.path().join("cached");
    for (out, extra) in [(&live_runs, None), (&cached_runs, Some(&cache))] {
        let mut args = vec![
            "run",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-checkpoints",
        ];
        if let Some(cache) = extra {
            args.extend(["--teacher-cache", cache.to_str().unwrap()]);
        }
        assert!(succeeded(&apprentice(&args)));
    }
    let live = students(&live_runs);
    assert!(live.iter().any(|(name, _)| name == "\"kd\""), "{live:?}");
    assert_eq!(live, students(&cached_runs));
    let run = std::fs::read_dir(&cached_runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        json["teacher_cache"][0]["used"], true,
        "{}",
        json["teacher_cache"]
    );
    let names: Vec<String> = (0..10).map(|l| format!("class-{l}")).collect();
    assert_eq!(json["class_names"], serde_json::json!(names));

    // The supervision complexity of the ONNX teacher's targets, for the student's kernel.
    let study = dir.path().join("study");
    let measured = apprentice(&[
        "complexity",
        config.to_str().unwrap(),
        "--subset",
        "40",
        "--targets",
        "labels,teacher:T=1,4,kd",
        "--out",
        study.to_str().unwrap(),
    ]);
    assert!(succeeded(&measured));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study.join("complexity.json")).unwrap())
            .unwrap();
    assert_eq!(json["teacher"]["architecture"], "ONNX fashion-resnet.onnx");
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 4);
    // The teacher's targets at any temperature have the teacher's accuracy on the subset.
    assert_eq!(targets[1]["accuracy"], json["teacher"]["subset_accuracy"]);
    assert_eq!(targets[2]["accuracy"], json["teacher"]["subset_accuracy"]);
    let refused = apprentice(&[
        "complexity",
        config.to_str().unwrap(),
        "--subset",
        "40",
        "--targets",
        "teacher-checkpoints",
        "--out",
        dir.path().join("refused").to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(
        message.contains("no checkpoints along its training"),
        "{message}"
    );
}

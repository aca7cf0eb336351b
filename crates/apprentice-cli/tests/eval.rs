//! `apprentice eval` rebuilds the test split of the run that trained a checkpoint and scores
//! the model on it exactly as the run did.

use std::process::{Command, Stdio};

const CONFIG: &str = r#"
name = "evaluable"
seeds = [3]

[data]
source = "digits"

[teacher.model]
kind = "mlp"
hidden = [32]

[teacher.train]
epochs = 3

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 2
"#;

#[test]
fn eval_reproduces_the_runs_test_accuracy() {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("evaluable.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = folder.path().join("runs");
    let status = Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(&config)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let run = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    for (index, stem) in [(0, "teacher"), (1, "scratch"), (2, "kd")] {
        let model = &results["models"][index];
        let expected = model["test"]["accuracy"]["per_seed"][0].as_f64().unwrap() * 100.0;
        let output = Command::new(env!("CARGO_BIN_EXE_apprentice"))
            .arg("eval")
            .arg(run.join(format!("seed-3/{stem}.safetensors")))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find(|l| l.starts_with("accuracy"))
            .expect("an accuracy line");
        assert!(
            line.contains(&format!("{expected:.2}%")),
            "{stem}: run said {expected:.2}%, eval said {line}"
        );
    }
}

//! Helpers shared by the report tests: a tiny run made with the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Two seeds, all labels and 10% of them, a small teacher and student: trains in a second or
/// two on the embedded digits.
pub const TINY: &str = r#"
name = "tiny-report"
seeds = [0, 1]

[data]
source = "digits"
label_fractions = [1.0, 0.1]

[teacher.model]
kind = "mlp"
hidden = [64]

[teacher.train]
epochs = 10

[student.model]
kind = "mlp"
hidden = [16]

[student.train]
epochs = 20

[distill]
transfer = ["all"]
"#;

/// Runs the `apprentice` binary with `args`.
pub fn apprentice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(args)
        .output()
        .expect("the apprentice binary runs")
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the tiny experiment into `parent` with the extra `args` and returns its run folder.
pub fn tiny_run(parent: &Path, args: &[&str]) -> PathBuf {
    let config = parent.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let out = parent.join("runs");
    let config_arg = config.to_str().unwrap();
    let out_arg = out.to_str().unwrap();
    let mut all = vec!["run", config_arg, "--out", out_arg, "--quiet"];
    all.extend_from_slice(args);
    let output = apprentice(&all);
    assert!(
        output.status.success(),
        "the tiny run fails:\n{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "one run folder");
    runs.pop().unwrap()
}

//! `apprentice continual` end to end on the embedded digits, and its one-line errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The tiny continual config (digits 0-4, then 5-9; an MLP 64-32-10; replay of 10 per class).
fn tiny_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/continual-tiny.toml")
}

fn apprentice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(args)
        .output()
        .expect("cannot start the apprentice binary")
}

/// `apprentice continual CONFIG --out OUT --quiet EXTRA...`.
fn continual(config: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "continual",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    apprentice(&args)
}

/// The one line of stderr of a failed command, after checking the exit status.
fn one_line_error(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "exit status");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0].to_string()
}

#[test]
fn continual_runs_prints_the_table_and_writes_its_folder() {
    let out = tempfile::tempdir().unwrap();
    let output = continual(&tiny_config(), out.path(), &["--seeds", "3,4"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("continual-tiny: digits (10 classes), 2 stages"),
        "{stdout}"
    );
    assert!(stdout.contains("after stage 2 (classes 5-9)"), "{stdout}");
    for variant in [
        "finetune",
        "lwf",
        "finetune+replay-10",
        "lwf+replay-10",
        "joint",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{variant} "))),
            "{variant} row missing:\n{stdout}"
        );
    }
    let runs: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert!(
        run.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("continual-tiny-")
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("continual.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["seeds"], serde_json::json!([3, 4]));
    let lwf = &json["variants"][1];
    assert_eq!(lwf["name"], "lwf");
    assert_eq!(
        lwf["stages"][1]["old"]["per_seed"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(run.join("config.toml").is_file());
    for seed in [3, 4] {
        assert!(
            run.join(format!("seed-{seed}/stage-1.safetensors"))
                .is_file()
        );
        assert!(
            run.join(format!("seed-{seed}/stage-2-lwf-replay-10.safetensors"))
                .is_file()
        );
    }
    assert!(stdout.contains(&run.join("continual.json").display().to_string()));
}

#[test]
fn a_bad_config_is_one_line_naming_file_line_and_key() {
    let folder = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(tiny_config())
        .unwrap()
        .replace("temperature = 2.0", "temperature = \"two\"");
    let bad = folder.path().join("bad.toml");
    std::fs::write(&bad, text).unwrap();
    let out = folder.path().join("runs");
    let line = one_line_error(&continual(&bad, &out, &[]));
    assert!(
        line.starts_with(&format!("error: {}:", bad.display())),
        "{line}"
    );
    assert!(line.contains("lwf.temperature: invalid type"), "{line}");
    assert!(
        !out.exists(),
        "no run folder for a config that does not parse"
    );

    let missing = folder.path().join("absent.toml");
    let line = one_line_error(&continual(&missing, &out, &[]));
    assert!(line.contains("absent.toml"), "{line}");

    let text = std::fs::read_to_string(tiny_config())
        .unwrap()
        .replace("classes = [5, 6, 7, 8, 9]", "classes = [5, 10]");
    let unknown_class = folder.path().join("class.toml");
    std::fs::write(&unknown_class, text).unwrap();
    let line = one_line_error(&continual(&unknown_class, &out, &[]));
    assert_eq!(
        line,
        "error: stages[1].classes: class 10 is not in the data, which has classes 0 to 9"
    );
}

#[test]
fn run_reads_a_continual_file_as_one_and_gives_the_same_table() {
    let out = tempfile::tempdir().unwrap();
    let by_run = apprentice(&[
        "run",
        tiny_config().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--quiet",
        "--seeds",
        "3",
    ]);
    assert!(
        by_run.status.success(),
        "{}",
        String::from_utf8_lossy(&by_run.stderr)
    );
    let by_continual = continual(&tiny_config(), out.path(), &["--seeds", "3"]);
    assert!(by_continual.status.success());
    // The tables are the same but for the run folder's name on the last line.
    let table = |output: &Output| {
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let lines: Vec<&str> = stdout.lines().collect();
        lines[..lines.len() - 1].join("\n")
    };
    assert!(
        table(&by_run).contains("after stage 2"),
        "{}",
        table(&by_run)
    );
    assert_eq!(table(&by_run), table(&by_continual));
}

#[test]
fn run_refuses_options_a_continual_experiment_does_not_have() {
    let out = tempfile::tempdir().unwrap();
    let config = tiny_config();
    let output = apprentice(&[
        "run",
        config.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let line = one_line_error(&output);
    assert!(
        line.contains("--device") && line.contains("continual learning"),
        "{line}"
    );
}

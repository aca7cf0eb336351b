//! `apprentice cache-teacher --shard i/N` written by separate processes, then
//! `apprentice run --teacher-cache DIR`; a truncated shard stops the run with one line naming it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const TEACHER: &str = r#"
name = "cli-teacher"
seeds = [0]

[data]
source = "digits"

[teacher.model]
kind = "mlp"
hidden = [32]

[teacher.train]
epochs = 2

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 1
"#;

const STUDENTS: &str = r#"
name = "cli-students"
seeds = [0]

[data]
source = "digits"

[teacher]
checkpoint = {checkpoint}

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 2
"#;

fn apprentice(args: &[&str], paths: &[&Path]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_apprentice"));
    command.args(args).args(paths).stdin(Stdio::null());
    command.output().unwrap()
}

fn succeeded(output: &Output) -> bool {
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    output.status.success()
}

/// The only run folder under `out`.
fn run_folder(out: &Path) -> PathBuf {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    folders.pop().unwrap()
}

fn results(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap()
}

#[test]
fn sharded_cache_then_run_and_a_truncated_shard_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let folder = folder.path();
    let teacher_config = folder.join("teacher.toml");
    std::fs::write(&teacher_config, TEACHER).unwrap();
    let teacher_runs = folder.join("teacher-runs");
    assert!(succeeded(&apprentice(
        &["run", "--quiet", "--out"],
        &[&teacher_runs, &teacher_config]
    )));
    let checkpoint = run_folder(&teacher_runs).join("seed-0/teacher.safetensors");
    let config = folder.join("students.toml");
    std::fs::write(
        &config,
        STUDENTS.replace(
            "{checkpoint}",
            &format!("{:?}", checkpoint.display().to_string()),
        ),
    )
    .unwrap();

    // Two shards from two processes, as two array tasks would write them.
    let cache = folder.join("cache");
    for shard in ["0/2", "1/2"] {
        let output = apprentice(
            &["cache-teacher", "--shard", shard, "--out"],
            &[&cache, &config],
        );
        assert!(succeeded(&output), "shard {shard}");
    }
    let mut shards: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    shards.sort();
    assert_eq!(shards.len(), 2, "{shards:?}");

    // Without checkpoints a run skips measuring them, which is most of its time here.
    let live_runs = folder.join("live");
    assert!(succeeded(&apprentice(
        &["run", "--quiet", "--no-checkpoints", "--out"],
        &[&live_runs, &config]
    )));
    let cached_runs = folder.join("cached");
    assert!(succeeded(&apprentice(
        &["run", "--quiet", "--no-checkpoints", "--teacher-cache"],
        &[&cache, Path::new("--out"), &cached_runs, &config]
    )));
    let live = results(&run_folder(&live_runs));
    let cached_run = run_folder(&cached_runs);
    let cached = results(&cached_run);
    assert_eq!(cached["teacher_cache"][0]["used"], true, "{cached}");
    assert_eq!(cached["teacher_cache"][0]["shards"], 2);
    assert!(live.get("teacher_cache").is_none());
    for (live, cached) in live["models"]
        .as_array()
        .unwrap()
        .iter()
        .zip(cached["models"].as_array().unwrap())
    {
        assert_eq!(live["name"], cached["name"]);
        assert_eq!(
            live["curves"][0]["train_loss"],
            cached["curves"][0]["train_loss"]
        );
        assert_eq!(live["test"]["accuracy"], cached["test"]["accuracy"]);
    }
    // The run's saved config keeps the folder, so that `--resume` reads the same cache.
    let saved = std::fs::read_to_string(cached_run.join("config.toml")).unwrap();
    assert!(saved.contains("teacher_cache"), "{saved}");

    // A shard cut short (an interrupted copy) stops the run with one line naming it.
    let bytes = std::fs::read(&shards[1]).unwrap();
    std::fs::write(&shards[1], &bytes[..bytes.len() - 100]).unwrap();
    let output = apprentice(
        &["run", "--quiet", "--no-checkpoints", "--teacher-cache"],
        &[
            &cache,
            Path::new("--out"),
            &folder.join("truncated"),
            &config,
        ],
    );
    assert!(!output.status.success());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    let name = shards[1].file_name().unwrap().to_str().unwrap();
    assert!(
        stderr.contains(name) && stderr.contains("truncated"),
        "{stderr}"
    );
}

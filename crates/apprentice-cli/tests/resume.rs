//! Nothing lost: a run killed with SIGKILL and resumed ends with exactly the metrics of an
//! uninterrupted run; a damaged checkpoint is skipped with a warning naming it; an
//! unwritable output folder fails before training.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CONFIG: &str = r#"
name = "resumable"
seeds = [0]

[data]
source = "digits"
label_fractions = [1.0, 0.1]

[teacher.model]
kind = "mlp"
hidden = [128]
dropout = 0.2

[teacher.train]
epochs = 30
batch_size = 32

[student.model]
kind = "mlp"
hidden = [12]
dropout = 0.1

[student.train]
epochs = 25
batch_size = 32

[student.optimizer]
optimizer = "sgd"
lr = 0.05
momentum = 0.9
schedule = "cosine"

[distill]
transfer = ["all"]

[checkpoint]
every_steps = 7
keep_last = 3
"#;

fn apprentice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
}

fn write_config(folder: &Path) -> PathBuf {
    let path = folder.join("resumable.toml");
    std::fs::write(&path, CONFIG).unwrap();
    path
}

/// The only run folder inside `out`.
fn run_dir(out: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "expected one run folder in {}",
        out.display()
    );
    entries[0].clone()
}

/// results.json without what measures time (wall times, and the efficiency section's
/// latencies, which are measurements of this machine's speed, not results of training).
fn comparable(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("results.json")).expect("results.json exists");
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["created_unix_s"] = serde_json::Value::Null;
    value["efficiency"] = serde_json::Value::Null;
    for model in value["models"].as_array_mut().unwrap() {
        model["train_time_s"] = serde_json::Value::Null;
    }
    value
}

fn uninterrupted(folder: &Path, config: &Path) -> serde_json::Value {
    let out = folder.join("straight");
    let status = apprentice()
        .arg("run")
        .arg(config)
        .arg("--quiet")
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    comparable(&run_dir(&out))
}

/// A delay that differs from run to run, so that repeated test runs kill at different steps.
fn random_delay(max_ms: u64) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(nanos % max_ms.max(1))
}

/// Starts a run, waits until `ready(run_dir)` holds, waits `delay` more, and kills it with
/// SIGKILL. Returns the run folder, or `None` if the run finished before it was killed.
fn start_and_kill(
    config: &Path,
    out: &Path,
    ready: impl Fn(&Path) -> bool,
    delay: Duration,
) -> Option<PathBuf> {
    let mut child = apprentice()
        .arg("run")
        .arg(config)
        .arg("--quiet")
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the run failed on its own");
            return None;
        }
        if std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
            && ready(&run_dir(out))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run never reached the kill point"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(delay);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    if status.signal() != Some(9) {
        return None;
    }
    eprintln!("killed {delay:?} after the kill point");
    Some(run_dir(out))
}

/// Kills runs of `config` until one dies while `model` is training: its mid-training state is
/// on disk and its finished record is not. Each attempt waits a random delay after the state
/// appears (so that repeated test runs kill at different steps); after a miss the delay
/// shrinks, and the last attempts kill at once. Panics when no attempt lands.
fn kill_while_training(folder: &Path, config: &Path, label: &str, model: &str) -> PathBuf {
    const ATTEMPTS: usize = 6;
    let mut max_delay_ms = 150;
    for attempt in 0..ATTEMPTS {
        let out = folder.join(format!("killed-{label}-{attempt}"));
        let delay = random_delay(max_delay_ms);
        match start_and_kill(config, &out, |run| has_state(run, model), delay) {
            Some(run) if has_state(&run, model) && !is_finished(&run, model) => return run,
            Some(_) => eprintln!("attempt {attempt}: killed after {model} had finished"),
            None => eprintln!("attempt {attempt}: the run finished before it was killed"),
        }
        max_delay_ms /= 4;
    }
    panic!("no kill of {ATTEMPTS} landed while {model} was training");
}

fn has_state(run: &Path, model: &str) -> bool {
    std::fs::read_dir(run.join(format!("seed-0/{model}.state")))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().starts_with("state-"))
        })
        .unwrap_or(false)
}

/// Whether `model` finished: its record is written when training ends (and its mid-training
/// states are then removed).
fn is_finished(run: &Path, model: &str) -> bool {
    run.join(format!("seed-0/{model}.record.json")).is_file()
}

fn resume(run: &Path) -> std::process::Output {
    apprentice()
        .arg("run")
        .arg("--resume")
        .arg(run)
        .arg("--quiet")
        .output()
        .unwrap()
}

#[test]
fn killed_runs_resume_to_exactly_the_uninterrupted_metrics() {
    let folder = tempfile::tempdir().unwrap();
    let config = write_config(folder.path());
    let expected = uninterrupted(folder.path(), &config);

    // Killed while the teacher trains (a plain run), then while a student distils.
    for (attempt, model) in ["teacher", "kd-all-at-10pct"].iter().enumerate() {
        let run = kill_while_training(folder.path(), &config, &attempt.to_string(), model);
        assert!(
            !run.join("results.json").exists(),
            "a killed run must not leave results.json"
        );
        let output = resume(&run);
        assert!(
            output.status.success(),
            "resume failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            is_finished(&run, model),
            "the resumed run did not finish {model}"
        );
        assert_eq!(
            comparable(&run),
            expected,
            "resumed after a kill during {model}: metrics differ"
        );
    }
}

#[test]
fn a_corrupted_checkpoint_is_skipped_for_the_previous_good_one() {
    let folder = tempfile::tempdir().unwrap();
    let config = write_config(folder.path());
    let expected = uninterrupted(folder.path(), &config);
    let out = folder.path().join("corrupted");
    // Wait for at least two states of the teacher, so that an older good one exists.
    let count_states = |run: &Path| {
        std::fs::read_dir(run.join("seed-0/teacher.state"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("state-"))
                    .count()
            })
            .unwrap_or(0)
    };
    let Some(run) = start_and_kill(
        &config,
        &out,
        |run| count_states(run) >= 2,
        random_delay(150),
    ) else {
        panic!("the run finished before it could be killed");
    };
    let state_dir = run.join("seed-0/teacher.state");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&state_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("state-")
        })
        .collect();
    manifests.sort();
    let newest = manifests.last().unwrap().clone();
    let step = newest
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("state-")
        .to_string();
    let model = state_dir.join(format!("model-{step}.safetensors"));
    let mut bytes = std::fs::read(&model).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&model, &bytes).unwrap();

    let output = resume(&run);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "resume failed: {stderr}");
    let newest_name = newest.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        stderr.lines().any(|l| l.starts_with("warning:")
            && l.contains(&newest_name)
            && l.contains("resuming from")),
        "no warning naming the damaged checkpoint and the one used: {stderr}"
    );
    assert_eq!(comparable(&run), expected);
}

#[test]
fn an_unwritable_output_folder_fails_before_training() {
    let folder = tempfile::tempdir().unwrap();
    let config = write_config(folder.path());
    // A file where a folder is needed: unwritable even for root.
    let blocker = folder.path().join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let started = Instant::now();
    let output = apprentice()
        .arg("run")
        .arg(&config)
        .arg("--quiet")
        .arg("--out")
        .arg(blocker.join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not-a-folder") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it should fail before any training"
    );
}

#[test]
fn resume_refuses_a_folder_that_is_not_a_run() {
    let folder = tempfile::tempdir().unwrap();
    let output = apprentice()
        .arg("run")
        .arg("--resume")
        .arg(folder.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("not a run folder"), "{stderr}");
}

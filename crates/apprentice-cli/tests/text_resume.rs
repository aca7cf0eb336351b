//! Text runs keep their models: a text run with a fine-tuned transformer teacher and
//! transformer and small students, killed with SIGKILL mid-way and resumed with
//! `apprentice run --resume`, ends with exactly the metrics of an uninterrupted run; the
//! teacher it saved is a Hugging Face folder that another run loads as its teacher. The
//! encoder is a tiny random BERT with all-MiniLM-L6-v2's tokenizer, so the run takes seconds.

mod cli_common;
mod shared_data;

use cli_common::{FINETUNE, text_config, tiny_encoder};
use shared_data::shared_data;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn apprentice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
}

fn run(config: &Path, data: &Path, out: &Path) -> Output {
    apprentice()
        .arg("run")
        .arg(config)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .output()
        .unwrap()
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

/// results.json without what measures time (wall times, when it was made).
fn comparable(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("results.json")).expect("results.json exists");
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["created_unix_s"] = serde_json::Value::Null;
    for model in value["models"].as_array_mut().unwrap() {
        model["train_time_s"] = serde_json::Value::Null;
    }
    value
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_killed_text_run_resumes_to_the_uninterrupted_metrics() {
    let Some(data) = shared_data("a_killed_text_run_resumes_to_the_uninterrupted_metrics") else {
        return;
    };
    let folder = tempfile::tempdir().unwrap();
    let model = folder.path().join("tiny-bert");
    tiny_encoder(&data, &model);
    let config = folder.path().join("tiny.toml");
    std::fs::write(&config, text_config(&model, FINETUNE)).unwrap();

    let straight_out = folder.path().join("straight");
    let output = run(&config, &data, &straight_out);
    assert!(output.status.success(), "{}", stderr(&output));
    let straight = run_dir(&straight_out);
    let expected = comparable(&straight);
    let names: Vec<&str> = expected["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "teacher",
            "shallow",
            "shallow-kd",
            "narrow",
            "narrow-kd",
            "bag",
            "bag-kd",
            "cnn",
            "cnn-kd"
        ]
    );
    // Every model of every seed is kept with its record; transformers as Hugging Face folders.
    for seed in [0, 1] {
        let dir = straight.join(format!("seed-{seed}"));
        for name in &names {
            assert!(dir.join(format!("{name}.record.json")).is_file(), "{name}");
        }
        for name in ["teacher", "shallow", "narrow-kd"] {
            let hf = dir.join(format!("{name}.hf"));
            for file in ["config.json", "model.safetensors", "tokenizer.json"] {
                assert!(hf.join(file).is_file(), "{}", hf.join(file).display());
            }
        }
        assert!(dir.join("cnn-kd.safetensors").is_file());
    }

    // Killed once the first seed's shallow student has finished: the run must really die
    // mid-way (by the signal, with the second seed's teacher not yet trained).
    let killed_out = folder.path().join("killed");
    let mut child = apprentice()
        .arg("run")
        .arg(&config)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&killed_out)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let ready = |out: &Path| {
        std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some())
            && run_dir(out).join("seed-0/shallow.record.json").is_file()
    };
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it could be killed");
        }
        if ready(&killed_out) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run never reached the kill point"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the run finished ({status}) before the kill"
    );
    let killed = run_dir(&killed_out);
    assert!(!killed.join("results.json").exists());
    assert!(
        !killed.join("seed-1/teacher.record.json").exists(),
        "the kill came after the second seed's teacher: not mid-way"
    );

    let output = apprentice()
        .arg("run")
        .arg("--resume")
        .arg(&killed)
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "resume failed: {log}");
    assert!(
        log.contains("teacher (seed 0): finished earlier"),
        "the resumed run did not reuse the finished teacher: {log}"
    );
    assert_eq!(comparable(&killed), expected, "resumed metrics differ");

    // The saved teacher is a BertForSequenceClassification folder another run reads as its
    // teacher: on seed 0's split it scores what it scored when it was fine-tuned.
    let saved = straight.join("seed-0/teacher.hf");
    let folder_teacher = format!(
        "[teacher]\nkind = \"folder\"\nfolder = \"{}\"\n",
        saved.display()
    );
    let loaded_config = folder.path().join("loaded.toml");
    std::fs::write(
        &loaded_config,
        text_config(&model, &folder_teacher).replace("seeds = [0, 1]", "seeds = [0]"),
    )
    .unwrap();
    let loaded_out = folder.path().join("loaded");
    let output = run(&loaded_config, &data, &loaded_out);
    assert!(output.status.success(), "{}", stderr(&output));
    let loaded = comparable(&run_dir(&loaded_out));
    let teacher_accuracy =
        |v: &serde_json::Value| v["models"][0]["test"]["accuracy"]["per_seed"][0].clone();
    assert_eq!(teacher_accuracy(&loaded), teacher_accuracy(&expected));
    assert_eq!(loaded["models"][0]["method"], "loaded");
    // The loaded teacher is copied into the run folder, where `eval` scores it as recorded.
    let copy = run_dir(&loaded_out).join("seed-0/teacher.hf");
    let output = Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(["eval", copy.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", stderr(&output));
    let recorded = teacher_accuracy(&loaded).as_f64().unwrap();
    assert!(
        stdout.contains(&format!("{:.2}%", 100.0 * recorded)),
        "eval of the copied teacher: {stdout} (recorded {recorded})"
    );
}

#[test]
fn a_folder_teacher_with_the_wrong_classes_is_a_one_line_error() {
    let Some(data) = shared_data("a_folder_teacher_with_the_wrong_classes_is_a_one_line_error")
    else {
        return;
    };
    let folder = tempfile::tempdir().unwrap();
    let model = folder.path().join("tiny-bert");
    tiny_encoder(&data, &model);
    // A 3-class classifier for 2-class data.
    let text = std::fs::read_to_string(model.join("config.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["id2label"] = serde_json::json!({"0": "a", "1": "b", "2": "c"});
    value["num_labels"] = 3.into();
    std::fs::write(model.join("config.json"), value.to_string()).unwrap();
    let teacher = format!(
        "[teacher]\nkind = \"folder\"\nfolder = \"{}\"\n",
        model.display()
    );
    let config = folder.path().join("bad.toml");
    std::fs::write(&config, text_config(&model, &teacher)).unwrap();
    let output = run(&config, &data, &folder.path().join("runs"));
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{log}");
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("tiny-bert/"), "{log}");
}

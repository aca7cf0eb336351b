//! `apprentice run` on a text experiment: a pretrained BERT teacher, its head and the text
//! students on 200 Rotten Tomatoes rows; the run folder, the tables, the cache of the
//! teacher's embeddings, the same numbers on a rerun, and one-line errors.

mod shared_data;

use shared_data::shared_data;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn apprentice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(args)
        .output()
        .expect("the apprentice binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The tiny experiment: 200 rows, one seed, every student but the static one (its teacher
/// pass over the whole vocabulary takes about a minute), a few epochs.
fn tiny_config(cache: &Path) -> String {
    format!(
        r#"
name = "tiny-text"
seeds = [0]

[text]
model = "all-MiniLM-L6-v2"
cache_dir = "{}"
bench_seconds = 0.05

[data]
path = "rotten-tomatoes/rotten_tomatoes_corpus_full.csv.bz2"
text_column = "text"
label_column = "category"
classes = ["rotten", "fresh"]
drop_labels = ["plot"]
max_rows = 200
validation_fraction = 0.15
test_fraction = 0.25

[teacher]
hidden = [32]

[teacher.train]
epochs = 10
batch_size = 32

[students]
kinds = ["bag", "cnn"]
embedding_dim = 16
hidden = [16]
channels = 16

[students.train]
epochs = 3
batch_size = 16

[distill]
embedding = true
"#,
        cache.display()
    )
}

fn run_folder(out: &Path) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    runs.pop().unwrap()
}

/// Each model's test accuracy per seed, by name.
fn accuracies(results: &serde_json::Value) -> Vec<(String, Vec<f64>)> {
    results["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                serde_json::from_value(m["test"]["accuracy"]["per_seed"].clone()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_tiny_text_run_writes_results_and_a_rerun_reads_the_cache() {
    let Some(data) = shared_data("a_tiny_text_run_writes_results_and_a_rerun_reads_the_cache")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny-text.toml");
    std::fs::write(&config, tiny_config(&dir.path().join("cache"))).unwrap();
    let data_arg = data.to_str().unwrap();
    let mut documents = Vec::new();
    for attempt in 0..2 {
        let out = dir.path().join(format!("runs-{attempt}"));
        let output = apprentice(&[
            "run",
            config.to_str().unwrap(),
            "--data",
            data_arg,
            "--out",
            out.to_str().unwrap(),
        ]);
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(output.status.success(), "{stdout}\n{stderr}");
        let cache_line = if attempt == 0 {
            "teacher embeddings: computed and cached"
        } else {
            "teacher embeddings: read from the cache"
        };
        assert!(stderr.contains(cache_line), "{stderr}");
        // One table per student architecture, each with its own scratch baseline.
        assert!(
            stdout.contains("bag-kd: ") && stdout.contains("cnn-kd: "),
            "{stdout}"
        );
        assert!(stdout.contains("bag-embed: "), "{stdout}");
        assert!(stdout.contains("sentences per second"), "{stdout}");

        let run = run_folder(&out);
        for file in ["config.toml", "results.json", "report.html", "summary.md"] {
            assert!(run.join(file).is_file(), "{file}");
        }
        let results_text = std::fs::read_to_string(run.join("results.json")).unwrap();
        // The file reads as an ordinary results file.
        let results =
            apprentice::report::Results::from_json(&results_text, "results.json").unwrap();
        assert_eq!(results.data.num_classes, 2);
        assert_eq!(
            results.data.train + results.data.validation + results.data.test,
            200
        );
        let roles: Vec<String> = results
            .models
            .iter()
            .map(|m| format!("{}:{:?}", m.name, m.role))
            .collect();
        assert_eq!(
            roles,
            [
                "teacher:Teacher",
                "bag:Scratch",
                "bag-kd:Distilled",
                "bag-embed:Distilled",
                "cnn:Scratch",
                "cnn-kd:Distilled"
            ]
        );
        let document: serde_json::Value = serde_json::from_str(&results_text).unwrap();
        let speed = document["text_speed"]["models"].as_array().unwrap();
        assert_eq!(speed.len(), 6);
        for row in speed {
            assert!(row["batch_1_per_s"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["batch_256_per_s"].as_f64().unwrap() > 0.0, "{row}");
        }
        // Every student is far smaller than the teacher.
        let teacher = results.models[0].params;
        assert!(teacher > 22_000_000);
        assert!(results.models[1..].iter().all(|m| m.params * 20 < teacher));
        documents.push(document);
    }
    // Same config and seed: the same numbers, with the embeddings from the cache.
    assert_eq!(accuracies(&documents[0]), accuracies(&documents[1]));

    // The report reads a text run again.
    let output = apprentice(&[
        "report",
        run_folder(&dir.path().join("runs-1")).to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn a_bad_text_experiment_is_a_one_line_error() {
    let Some(data) = shared_data("a_bad_text_experiment_is_a_one_line_error") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    let good = tiny_config(&dir.path().join("cache"));
    let cases = [
        (
            good.replace("text_column = \"text\"", "text_column = \"review\""),
            "rotten_tomatoes_corpus_full.csv.bz2:1: no column \"review\"",
        ),
        (
            good.replace("drop_labels = [\"plot\"]", "drop_labels = []"),
            "label \"plot\" is not one of the classes",
        ),
        (
            good.replace("model = \"all-MiniLM-L6-v2\"", "model = \"fashion-mnist\""),
            "fashion-mnist/config.json: missing file",
        ),
        (
            good.replace("embedding_dim = 16", "embedding_dim = \"wide\""),
            "bad.toml:29:17: students.embedding_dim: invalid type",
        ),
    ];
    for (contents, expected) in cases {
        std::fs::write(&config, contents).unwrap();
        let output = apprentice(&[
            "run",
            config.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            dir.path().join("runs").to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(output.status.code(), Some(2), "{expected}");
        let stderr = text(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line expected:\n{stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        assert!(lines[0].contains(expected), "{expected}: {stderr}");
    }
}

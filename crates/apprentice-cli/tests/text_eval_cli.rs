//! `apprentice eval` and `apprentice bench-model` on the models of a text run: the test-split
//! metrics are the ones each model's record holds (a tiny run on the real encoder, shared
//! data), every text is scored with `--split all`, the speed is measured tokenizer included;
//! and files that are neither kind of model, a seed without `split.json` and a missing data
//! file are refused on one line naming the file (no data needed).

mod cli_common;
mod shared_data;

use cli_common::{apprentice, only_run_folder, text, tiny_encoder, write_text_run};
use shared_data::shared_data;

use apprentice::distill::record::StudentRecord;
use apprentice::text::evaluate::{EvalSplit, evaluate_text_model};

/// 200 texts, one seed, a head teacher, bag and CNN students (with KD and the embedding
/// student) of a few epochs: a few seconds.
const TINY_RUN: &str = r#"
name = "tiny-text"
seeds = [4]

[text]
model = "all-MiniLM-L6-v2"
cache_dir = "CACHE"
bench_seconds = 0

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
max_tokens = 32

[students.train]
epochs = 3
batch_size = 16

[distill]
embedding = true
"#;

/// The line of `stdout` that starts with `key`.
fn line<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} line in {stdout}"))
}

#[test]
fn a_text_runs_models_score_their_recorded_test_metrics_and_are_timed() {
    let Some(data) =
        shared_data("a_text_runs_models_score_their_recorded_test_metrics_and_are_timed")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny-text.toml");
    let cache = dir.path().join("cache");
    std::fs::write(&config, TINY_RUN.replace("CACHE", cache.to_str().unwrap())).unwrap();
    let out = dir.path().join("runs");
    let output = apprentice(&[
        "run",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let seed = only_run_folder(&out).join("seed-4");
    let split: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(seed.join("split.json")).unwrap()).unwrap();
    let test_texts = split["test"].as_array().unwrap().len();

    let mut accuracies = Vec::new();
    for model in ["teacher", "bag", "bag-kd", "bag-embed", "cnn", "cnn-kd"] {
        let record: StudentRecord = serde_json::from_str(
            &std::fs::read_to_string(seed.join(format!("{model}.record.json"))).unwrap(),
        )
        .unwrap();
        let path = seed.join(format!("{model}.safetensors"));
        // The run recorded `data_root`, so the model is found without --data.
        let scores = evaluate_text_model(&path, None, EvalSplit::Test).unwrap();
        assert_eq!(scores.model, model);
        assert_eq!(scores.texts, test_texts);
        assert_eq!(scores.seed, 4);
        assert_eq!(scores.params, record.params, "{model}");
        assert_eq!(scores.architecture, record.architecture, "{model}");
        assert_eq!(
            scores.metrics.accuracy, record.metrics.accuracy,
            "{model}: the test accuracy the run recorded"
        );
        assert!(
            (scores.metrics.nll - record.metrics.nll).abs() < 1e-9
                && (scores.metrics.ece - record.metrics.ece).abs() < 1e-9,
            "{model}: {:?} against the record's {:?}",
            scores.metrics,
            record.metrics
        );
        accuracies.push(record.metrics.accuracy);
    }
    // Scores that differ between models: the comparison above cannot pass by a constant.
    assert!(
        accuracies.iter().any(|&a| a != accuracies[0]),
        "{accuracies:?}"
    );

    // The command prints the same numbers, and scores every text with --split all.
    let record: StudentRecord =
        serde_json::from_str(&std::fs::read_to_string(seed.join("cnn-kd.record.json")).unwrap())
            .unwrap();
    let cnn = seed.join("cnn-kd.safetensors");
    let output = apprentice(&["eval", cnn.to_str().unwrap()]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert_eq!(
        line(&stdout, "accuracy"),
        format!("accuracy  {:.2}%", record.metrics.accuracy * 100.0)
    );
    assert!(
        line(&stdout, "data").contains(&format!("test of seed 4, {test_texts} texts")),
        "{stdout}"
    );
    let output = apprentice(&[
        "eval",
        cnn.to_str().unwrap(),
        "--split",
        "all",
        "--data",
        data.to_str().unwrap(),
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        line(&stdout, "data").contains("all of seed 4, 200 texts"),
        "{stdout}"
    );

    // bench-model: sentences per second of the teacher and a student, as JSON and a table.
    let teacher = seed.join("teacher.safetensors");
    let output = apprentice(&[
        "bench-model",
        "--quick",
        "--json",
        teacher.to_str().unwrap(),
        cnn.to_str().unwrap(),
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[1]["name"], "cnn-kd");
    assert_eq!(rows[1]["params"].as_u64().unwrap() as usize, record.params);
    assert_eq!(
        rows[1]["file_bytes"].as_u64().unwrap(),
        std::fs::metadata(&cnn).unwrap().len()
    );
    for row in rows {
        assert!(row["batch_1_per_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["batch_256_per_s"].as_f64().unwrap() > 0.0, "{row}");
        assert_eq!(row["texts"].as_u64().unwrap() as usize, test_texts);
    }
    let output = apprentice(&["bench-model", "--quick", cnn.to_str().unwrap()]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(line(&stdout, "cnn-kd").contains("/s"), "{stdout}");
}

/// A fine-tuned teacher and shallow and narrow students on a tiny random encoder, with two
/// inner-layer losses beside plain KD.
const TRANSFORMER_RUN: &str = r#"
name = "tiny-transformers"
seeds = [1]

[text]
model = "ENCODER"
cache_dir = ""
bench_seconds = 0.0

[data]
path = "rotten-tomatoes/rotten_tomatoes_corpus_full.csv.bz2"
text_column = "text"
label_column = "category"
classes = ["rotten", "fresh"]
drop_labels = ["plot"]
max_rows = 160
validation_fraction = 0.15
test_fraction = 0.25

[teacher]
kind = "finetune"

[teacher.finetune]
epochs = 2
batch_size = 16
lr = 1e-3
max_length = 24

[students]
kinds = ["shallow", "narrow"]

[students.train]
epochs = 1

[students.shallow]
layers = [1]

[students.shallow.train]
epochs = 1
batch_size = 16
lr = 1e-3
max_length = 20

[students.narrow]
layers = 1
hidden = 8
heads = 2

[students.narrow.train]
epochs = 1
batch_size = 16
lr = 1e-3
max_length = 20

[[distill.layers]]
loss = "hidden"

[[distill.layers]]
loss = "attention"
students = ["shallow"]
"#;

#[test]
fn a_text_runs_transformers_score_their_recorded_test_metrics() {
    let Some(data) = shared_data("a_text_runs_transformers_score_their_recorded_test_metrics")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let encoder = dir.path().join("tiny-bert");
    tiny_encoder(&data, &encoder);
    let config = dir.path().join("tiny-transformers.toml");
    std::fs::write(
        &config,
        TRANSFORMER_RUN.replace("ENCODER", encoder.to_str().unwrap()),
    )
    .unwrap();
    let out = dir.path().join("runs");
    let output = apprentice(&[
        "run",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let seed = only_run_folder(&out).join("seed-1");
    let mut nlls = Vec::new();
    let models = [
        "teacher",
        "shallow",
        "shallow-kd",
        "shallow-kd-hidden",
        "shallow-kd-attention",
        "narrow",
        "narrow-kd",
        "narrow-kd-hidden",
    ];
    for model in models {
        let record: StudentRecord = serde_json::from_str(
            &std::fs::read_to_string(seed.join(format!("{model}.record.json"))).unwrap(),
        )
        .unwrap();
        let folder = seed.join(format!("{model}.hf"));
        let scores = evaluate_text_model(&folder, None, EvalSplit::Test).unwrap();
        assert_eq!(scores.model, model);
        assert_eq!(scores.params, record.params, "{model}");
        assert_eq!(scores.architecture, record.architecture, "{model}");
        assert_eq!(scores.metrics.accuracy, record.metrics.accuracy, "{model}");
        assert!(
            (scores.metrics.nll - record.metrics.nll).abs() < 1e-9,
            "{model}: {:?} against the record's {:?}",
            scores.metrics,
            record.metrics
        );
        nlls.push(record.metrics.nll);
    }
    assert!(nlls.iter().any(|&n| n != nlls[0]), "{nlls:?}");
    // Only the entries' students: attention transfer was for the shallow student alone.
    assert!(!seed.join("narrow-kd-attention.record.json").exists());
    let narrow = seed.join("narrow-kd.hf");
    let output = apprentice(&["eval", narrow.to_str().unwrap(), "--split", "all"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        line(&stdout, "data").contains("all of seed 1, 160 texts"),
        "{stdout}"
    );
}

/// Runs `args`, expects exit code 2 and one line on stderr, and returns that line.
fn one_line_error(args: &[&str]) -> String {
    let output = apprentice(args);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?}");
    stderr
}

#[test]
fn files_that_are_not_a_text_runs_model_or_lack_its_split_or_data_are_refused_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_text_run(dir.path());
    let cnn = run.join("seed-0/cnn-kd.safetensors");

    // The same weights outside a run folder: neither kind of model.
    let stray = dir.path().join("stray.safetensors");
    std::fs::copy(&cnn, &stray).unwrap();
    for command in ["eval", "bench-model"] {
        let stderr = one_line_error(&[command, stray.to_str().unwrap()]);
        assert!(
            stderr.contains("stray.safetensors") && stderr.contains("neither"),
            "{stderr}"
        );
    }

    // A seed folder without split.json.
    for command in ["eval", "bench-model"] {
        let stderr = one_line_error(&[command, cnn.to_str().unwrap()]);
        assert!(
            stderr.contains("seed-0/split.json") && stderr.contains("split"),
            "{stderr}"
        );
    }

    // With the split but without the data file the run read.
    std::fs::write(
        run.join("seed-0/split.json"),
        r#"{"seed": 0, "rows": 3, "train": [0], "validation": [1], "test": [2]}"#,
    )
    .unwrap();
    let stderr = one_line_error(&["eval", cnn.to_str().unwrap()]);
    assert!(stderr.contains("texts.csv"), "{stderr}");
    let stderr = one_line_error(&["eval", cnn.to_str().unwrap(), "--split", "train"]);
    assert!(stderr.contains("--split"), "{stderr}");

    // A split of another data set: the error names split.json.
    std::fs::write(
        dir.path().join("texts.csv"),
        "text,label\na good film,pos\na bad film,neg\n",
    )
    .unwrap();
    let stderr = one_line_error(&["eval", cnn.to_str().unwrap()]);
    assert!(stderr.contains("split.json"), "{stderr}");
}

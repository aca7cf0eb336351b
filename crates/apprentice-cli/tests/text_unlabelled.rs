//! A text run with `distill.unlabelled_texts`: the seed's split names the unlabelled texts
//! (training texts that `data.max_train` left out, apart from every other part), distilled
//! students train on them after their labelled texts, and students from scratch get as many
//! steps as more epochs over their labelled texts. The encoder is a tiny random BERT with
//! all-MiniLM-L6-v2's tokenizer, so the run takes seconds.

mod cli_common;
mod shared_data;

use std::collections::BTreeSet;

use cli_common::{FINETUNE, apprentice, only_run_folder, text, text_config, tiny_encoder};
use shared_data::shared_data;

fn indices(value: &serde_json::Value) -> BTreeSet<u64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn record(run: &std::path::Path, name: &str) -> serde_json::Value {
    let path = run.join(format!("seed-0/{name}.record.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn distilled_students_learn_from_the_texts_max_train_left_out() {
    let Some(data) = shared_data("distilled_students_learn_from_the_texts_max_train_left_out")
    else {
        return;
    };
    let folder = tempfile::tempdir().unwrap();
    let model = folder.path().join("tiny-bert");
    tiny_encoder(&data, &model);
    // The shared tiny run, on one seed, with 100 labelled texts: 80 of the training part are
    // left out, of which 40 are given to the distilled students without labels.
    let config = folder.path().join("tiny.toml");
    let toml = text_config(&model, FINETUNE)
        .replace("seeds = [0, 1]", "seeds = [0]")
        .replace("max_train = 160", "max_train = 100")
        + "\n[distill]\nunlabelled_texts = 40\n";
    std::fs::write(&config, toml).unwrap();
    let out = folder.path().join("out");
    let output = apprentice(&[
        "run",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let log = text(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains("narrow-kd (seed 0): training on 100 texts and 40 without labels"),
        "{log}"
    );
    let run = only_run_folder(&out);

    let split: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("seed-0/split.json")).unwrap())
            .unwrap();
    let [train, validation, test, unlabelled] =
        ["train", "validation", "test", "unlabelled"].map(|k| indices(&split[k]));
    assert_eq!((train.len(), unlabelled.len()), (100, 40));
    for other in [&train, &validation, &test] {
        assert!(
            unlabelled.is_disjoint(other),
            "{unlabelled:?} overlaps {other:?}"
        );
    }
    // What is left is the rest of the training part: 300 rows minus validation and test.
    let rows = split["rows"].as_u64().unwrap() as usize;
    assert!(train.len() + unlabelled.len() <= rows - validation.len() - test.len());

    // Students from scratch: ceil(2 epochs × 140 texts / 100 labelled) = 3 epochs; distilled
    // students: the configured 2 epochs over 140 texts.
    for (name, epochs) in [("cnn", 3), ("narrow", 3), ("cnn-kd", 2), ("narrow-kd", 2)] {
        let record = record(&run, name);
        assert_eq!(
            record["curve"]["train_loss"].as_array().unwrap().len(),
            epochs,
            "{name}"
        );
    }
}

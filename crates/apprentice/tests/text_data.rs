//! Labelled text from CSV and JSON-lines files: the Rotten Tomatoes corpus as the experiment
//! reads it, the seeded stratified split, and one-line errors naming the file and line.

mod common;

use std::io::Write;

use apprentice::text::config::TextExperimentConfig;
use apprentice::text::data::{TextDataOptions, TextFormat, load_text_data, split_text};

fn rotten_tomatoes_options() -> TextDataOptions {
    TextDataOptions {
        text_column: "text".into(),
        label_column: "category".into(),
        classes: vec!["rotten".into(), "fresh".into()],
        drop_labels: vec!["plot".into()],
        max_rows: None,
    }
}

#[test]
fn rotten_tomatoes_fresh_vs_rotten_with_a_stratified_split() {
    let Some(data) = common::shared_data("rotten_tomatoes_fresh_vs_rotten_with_a_stratified_split")
    else {
        return;
    };
    let path = data.join("rotten-tomatoes/rotten_tomatoes_corpus_full.csv.bz2");
    let text = load_text_data(&path, None, &rotten_tomatoes_options()).unwrap();
    // The data README's counts: 7,403 fresh and 5,405 rotten once the 1,097 plot rows are gone.
    assert_eq!(text.class_counts(), vec![5405, 7403]);
    assert_eq!(text.name, "rotten_tomatoes_corpus_full");
    assert!(text.texts.iter().all(|t| !t.trim().is_empty()));

    let split = split_text(&text, 0.1, 0.2, 0).unwrap();
    let mut all: Vec<usize> = [&split.train, &split.validation, &split.test]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..text.len()).collect::<Vec<_>>(),
        "a partition of the rows"
    );
    let fresh = |rows: &[usize]| rows.iter().filter(|&&i| text.labels[i] == 1).count();
    assert_eq!((split.test.len(), fresh(&split.test)), (2562, 1481));
    assert_eq!(
        (split.validation.len(), fresh(&split.validation)),
        (1281, 740)
    );
    assert_eq!(
        split_text(&text, 0.1, 0.2, 0).unwrap(),
        split,
        "same seed, same split"
    );
    assert_ne!(split_text(&text, 0.1, 0.2, 1).unwrap().test, split.test);
}

#[test]
fn compressed_jsonl_and_a_row_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reviews.jsonl.bz2");
    let mut encoder =
        bzip2::write::BzEncoder::new(std::fs::File::create(&path).unwrap(), Default::default());
    for (index, label) in ["pos", "neg", "neutral", "pos", "neg"].iter().enumerate() {
        writeln!(
            encoder,
            "{{\"review\": \"text {index}\", \"stars\": \"{label}\"}}"
        )
        .unwrap();
    }
    encoder.finish().unwrap();
    let options = TextDataOptions {
        text_column: "review".into(),
        label_column: "stars".into(),
        classes: Vec::new(),
        drop_labels: vec!["neutral".into()],
        max_rows: Some(3),
    };
    let data = load_text_data(&path, None, &options).unwrap();
    assert_eq!(data.texts, vec!["text 0", "text 1", "text 3"]);
    assert_eq!(data.classes, vec!["neg", "pos"]);
    assert_eq!(data.labels, vec![1, 0, 1]);
    assert_eq!(TextFormat::from_path(&path), Some(TextFormat::Jsonl));
}

#[test]
fn a_bad_column_or_label_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reviews.csv");
    std::fs::write(
        &path,
        "category,text\nfresh,good\nrotten,bad\nsplendid,great\n",
    )
    .unwrap();
    let shown = path.display().to_string();

    let mut options = rotten_tomatoes_options();
    options.text_column = "review".into();
    let error = load_text_data(&path, None, &options)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!("{shown}:1: no column \"review\"; the header has \"category\", \"text\"")
    );

    let error = load_text_data(&path, None, &rotten_tomatoes_options())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!(
            "{shown}:4: label \"splendid\" is not one of the classes \"rotten\", \"fresh\" \
             (and not dropped)"
        )
    );

    let jsonl = dir.path().join("reviews.jsonl");
    std::fs::write(
        &jsonl,
        "{\"text\": \"a\", \"category\": \"fresh\"}\n{\"text\": [3], \"category\": \"fresh\"}\n",
    )
    .unwrap();
    let error = load_text_data(&jsonl, None, &rotten_tomatoes_options())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!(
            "{}:2: field \"text\": expected a string, found [3]",
            jsonl.display()
        )
    );
}

#[test]
fn experiment_file_errors_are_one_line_with_a_location() {
    let good = include_str!("../../../configs/rotten-tomatoes.toml");
    let config = TextExperimentConfig::from_toml(good, "rt.toml").unwrap();
    assert_eq!(config.seeds, vec![0, 1, 2]);
    use apprentice::task::TaskKind;
    assert_eq!(TaskKind::of_toml(good), TaskKind::Text);
    assert_eq!(
        TaskKind::of_toml(include_str!("../../../configs/quickstart.toml")),
        TaskKind::Image
    );

    let typo = good.replace("embedding_dim = 64", "embeding_dim = 64");
    let error = TextExperimentConfig::from_toml(&typo, "rt.toml")
        .unwrap_err()
        .to_string();
    let line = typo
        .lines()
        .position(|l| l.starts_with("embeding_dim"))
        .unwrap()
        + 1;
    assert!(error.starts_with(&format!("rt.toml:{line}:1: ")), "{error}");
    assert!(error.contains("embeding_dim"), "{error}");
    assert!(!error.contains('\n'));

    let bad = good.replace("validation_fraction = 0.1", "validation_fraction = 0.9");
    let error = TextExperimentConfig::from_toml(&bad, "rt.toml")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("rt.toml: data: validation_fraction + test_fraction"),
        "{error}"
    );
}

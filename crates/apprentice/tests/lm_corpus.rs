//! Corpus readers: the same texts from every format (lines, CSV, JSON lines) and every
//! compression (plain, gzip, bzip2); filters and limits; one-line errors naming the file and
//! line for bad input; and the seeded held-out split.

use std::io::Write;
use std::path::{Path, PathBuf};

use apprentice::lm::corpus::{CorpusFormat, CorpusSpec, held_out_split, load_corpus};

const TEXTS: [&str; 4] = [
    "A quiet, funny film.",
    "Dull, \"long\" and loud",
    "Émouvant 🎬 et\tlent",
    "the end",
];
const CATEGORIES: [&str; 4] = ["fresh", "rotten", "plot", "fresh"];

fn csv_text() -> String {
    let mut text = String::from("category,text,movie\n");
    for (c, t) in CATEGORIES.iter().zip(TEXTS) {
        text.push_str(&format!("{c},\"{}\",m\n", t.replace('"', "\"\"")));
    }
    text
}

fn jsonl_text() -> String {
    CATEGORIES
        .iter()
        .zip(TEXTS)
        .map(|(c, t)| serde_json::json!({"category": c, "text": t, "n": 1}).to_string() + "\n")
        .collect()
}

fn lines_text() -> String {
    TEXTS.join("\n\n") + "\n"
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let compressed = if name.ends_with(".gz") {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    } else if name.ends_with(".bz2") {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    } else {
        bytes.to_vec()
    };
    std::fs::write(&path, compressed).unwrap();
    path
}

fn error(spec: &CorpusSpec) -> String {
    let message = load_corpus(spec).unwrap_err().to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

#[test]
fn every_format_and_compression_gives_the_same_texts() {
    let dir = tempfile::tempdir().unwrap();
    for compression in ["", ".gz", ".bz2"] {
        for (extension, body) in [
            ("txt", lines_text()),
            ("csv", csv_text()),
            ("jsonl", jsonl_text()),
        ] {
            let name = format!("corpus.{extension}{compression}");
            let path = write(dir.path(), &name, body.as_bytes());
            let texts = load_corpus(&CorpusSpec::new(&path)).unwrap();
            assert_eq!(texts, TEXTS, "{name}");
            // Compression is read from the bytes, so a misnamed file reads too.
            let misnamed = write(dir.path(), &format!("misnamed-{name}"), body.as_bytes());
            let renamed = dir.path().join(format!("renamed-{extension}"));
            std::fs::rename(&misnamed, &renamed).unwrap();
            let spec = CorpusSpec {
                format: CorpusFormat::from_path(&path),
                ..CorpusSpec::new(&renamed)
            };
            assert_eq!(load_corpus(&spec).unwrap(), TEXTS, "{name} renamed");
        }
    }
}

#[test]
fn a_filter_and_a_limit_select_texts_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in [("c.csv.gz", csv_text()), ("c.jsonl.bz2", jsonl_text())] {
        let path = write(dir.path(), name, body.as_bytes());
        let spec = CorpusSpec {
            filter_column: Some("category".into()),
            filter_values: vec!["fresh".into(), "rotten".into()],
            ..CorpusSpec::new(&path)
        };
        assert_eq!(
            load_corpus(&spec).unwrap(),
            [TEXTS[0], TEXTS[1], TEXTS[3]],
            "{name}"
        );
        let limited = CorpusSpec {
            max_texts: Some(2),
            ..spec.clone()
        };
        assert_eq!(load_corpus(&limited).unwrap(), [TEXTS[0], TEXTS[1]]);
        let other_column = CorpusSpec {
            text_column: "category".into(),
            ..CorpusSpec::new(&path)
        };
        assert_eq!(load_corpus(&other_column).unwrap(), CATEGORIES);
    }
}

#[test]
fn bad_input_gets_one_line_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("absent.csv");
    assert!(error(&CorpusSpec::new(&missing)).contains("absent.csv"));

    let unknown = write(d, "corpus.dat", b"x\n");
    assert!(error(&CorpusSpec::new(&unknown)).contains("cannot tell the format"));

    let csv = write(d, "c.csv", csv_text().as_bytes());
    let spec = CorpusSpec {
        text_column: "review".into(),
        ..CorpusSpec::new(&csv)
    };
    let message = error(&spec);
    assert!(
        message.contains("c.csv") && message.contains("no column \"review\""),
        "{message}"
    );

    let ragged = write(d, "ragged.csv.gz", b"category,text\nfresh,ok\nrotten,a,b\n");
    let message = error(&CorpusSpec::new(&ragged));
    assert!(
        message.contains("ragged.csv.gz, line 3") && message.contains("expected 2 fields"),
        "{message}"
    );

    let not_json = write(d, "bad.jsonl", b"{\"text\": \"ok\"}\n{\"text\": oops}\n");
    let message = error(&CorpusSpec::new(&not_json));
    assert!(
        message.contains("bad.jsonl, line 2: expected a JSON object"),
        "{message}"
    );

    let number = write(d, "n.jsonl.bz2", b"{\"text\": \"ok\"}\n\n{\"text\": 5}\n");
    let message = error(&CorpusSpec::new(&number));
    assert!(
        message.contains("n.jsonl.bz2, line 3") && message.contains("\"text\" to be a string"),
        "{message}"
    );

    let absent_field = write(d, "f.jsonl", b"{\"body\": \"ok\"}\n");
    assert!(error(&CorpusSpec::new(&absent_field)).contains("line 1: no field \"text\""));

    let latin1 = write(d, "latin1.txt", b"fine\ncaf\xe9\n");
    let message = error(&CorpusSpec::new(&latin1));
    assert!(
        message.contains("latin1.txt, line 2: expected UTF-8"),
        "{message}"
    );

    let mut gz = std::fs::read(write(d, "t.txt.gz", lines_text().as_bytes())).unwrap();
    gz.truncate(gz.len() / 2);
    let truncated = write(d, "truncated.txt", &gz);
    let spec = CorpusSpec {
        format: Some(CorpusFormat::Lines),
        ..CorpusSpec::new(&truncated)
    };
    assert!(error(&spec).contains("truncated.txt"));

    let filtered = CorpusSpec {
        filter_column: Some("category".into()),
        filter_values: vec!["neutral".into()],
        ..CorpusSpec::new(&csv)
    };
    assert!(error(&filtered).contains("no non-empty text whose \"category\""));
    let half = CorpusSpec {
        filter_values: vec!["fresh".into()],
        ..CorpusSpec::new(&csv)
    };
    assert!(error(&half).contains("corpus.filter_column"));
    let lines = write(d, "l.txt", b"a\n");
    let columns_in_lines = CorpusSpec {
        filter_column: Some("category".into()),
        filter_values: vec!["fresh".into()],
        ..CorpusSpec::new(&lines)
    };
    assert!(error(&columns_in_lines).contains("has no columns"));
    let blank = write(d, "blank.txt", b"\n  \n");
    assert!(error(&CorpusSpec::new(&blank)).contains("no non-empty text"));
}

#[test]
fn the_held_out_split_is_seeded_disjoint_and_complete() {
    let split = held_out_split(100, 0.1, 3).unwrap();
    assert_eq!(split.held_out.len(), 10);
    assert_eq!(split.train.len(), 90);
    let mut all: Vec<usize> = split.train.iter().chain(&split.held_out).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(split, held_out_split(100, 0.1, 3).unwrap());
    assert_ne!(
        split.held_out,
        held_out_split(100, 0.1, 4).unwrap().held_out
    );
    // At least one text on each side.
    let tiny = held_out_split(2, 0.01, 0).unwrap();
    assert_eq!((tiny.train.len(), tiny.held_out.len()), (1, 1));
    assert!(held_out_split(1, 0.5, 0).is_err());
    assert!(held_out_split(10, 1.0, 0).is_err());
}

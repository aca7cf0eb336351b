//! Text students out to ONNX: the exported graph of a bag and a CNN student (and of the
//! embedding student with the teacher's head), run by tract (here) and by onnxruntime (the
//! committed fixture of `fixtures/onnx/make_text_reference.py`), gives apprentice's logits on
//! padded batches of texts of different lengths, one of them longer than the student reads.

mod common;

use common::onnx::{FixtureJson, fixture_dir, max_diff, padded_batch, tract_file_logits, unpadded};

use std::path::{Path, PathBuf};

use apprentice::backend::{ComputeDevice, matrix, to_host};
use apprentice::config::TrainConfig;
use apprentice::data::SampleShape;
use apprentice::distill::optim::OptimizerSpec;
use apprentice::models::{Activation, MlpSpec, ModelSpec, Network};
use apprentice::onnx::{TextGraphOptions, text_student_to_onnx_bytes};
use apprentice::text::config::{StudentKind, StudentsConfig};
use apprentice::text::onnx_export::{ExportedStudent, export_student, student_weights};
use apprentice::text::run_store::TextRunStore;
use apprentice::text::students::TextStudent;
use apprentice::text::tokenizer::pad_batch;
use apprentice::text::train::{StudentSettings, student_logits, student_outputs};
use burn::tensor::{Int, Tensor as BurnTensor, TensorData};

const VOCAB: usize = 30;
const PAD: u32 = 2;
const MAX_TOKENS: usize = 10;

/// The students' shared settings: small, a 5-token kernel, one hidden layer.
fn students_config() -> StudentsConfig {
    toml::from_str(&format!(
        "kinds = [\"bag\", \"cnn\"]\nembedding_dim = 6\nhidden = [5]\nchannels = 7\n\
         kernel_size = 5\nmax_tokens = {MAX_TOKENS}\n[train]\nepochs = 1\nbatch_size = 4\n"
    ))
    .expect("a students table")
}

fn student(kind: StudentKind, outputs: usize, seed: u64) -> TextStudent {
    let device = ComputeDevice::cpu().inference();
    TextStudent::new(
        kind,
        &students_config(),
        VOCAB,
        outputs,
        None,
        seed,
        &device,
    )
}

/// The frozen-encoder teacher's head on `dim`-wide sentence embeddings.
fn teacher_head(dim: usize, classes: usize, seed: u64) -> Network {
    let spec = ModelSpec::Mlp(MlpSpec {
        hidden: vec![4],
        activation: Activation::Relu,
        dropout: 0.0,
    });
    let device = ComputeDevice::cpu().inference();
    Network::new(&spec, SampleShape::flat(dim), classes, seed, &device).unwrap()
}

/// Texts of lengths 4, 1, 9, 12 (cut at [`MAX_TOKENS`]), 6, 2 and 0, ids drawn from `salt`.
fn sequences(salt: u32) -> Vec<Vec<u32>> {
    [4usize, 1, 9, 12, 6, 2, 0]
        .iter()
        .enumerate()
        .map(|(row, &len)| {
            (0..len as u32)
                .map(|i| (i * 7 + row as u32 * 5 + salt) % VOCAB as u32)
                .collect()
        })
        .collect()
}

/// The texts as the graph takes them: padded to the longest (uncut), with ids other than the
/// pad id at padded positions, which the graph must read as the pad id.
fn graph_inputs(sequences: &[Vec<u32>]) -> (Vec<i64>, Vec<i64>, usize) {
    padded_batch(sequences, |row, column| ((row * 3 + column) % VOCAB) as i64)
}

/// Apprentice's logits: its own inference path, which batches and pads texts itself.
fn apprentice_logits(
    student: &TextStudent,
    head: Option<&Network>,
    texts: &[Vec<u32>],
) -> Vec<f32> {
    let refs: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
    let device = ComputeDevice::cpu().inference();
    match head {
        None => student_outputs(student, &refs, PAD, MAX_TOKENS, &device),
        Some(head) => {
            let train = TrainConfig {
                epochs: 1,
                batch_size: 4,
                early_stopping_patience: None,
            };
            let optimizer = OptimizerSpec::default();
            let settings = StudentSettings {
                train: &train,
                optimizer: &optimizer,
                seed: 0,
                max_tokens: MAX_TOKENS,
                pad_id: PAD,
                num_classes: head.num_classes,
            };
            student_logits(student, Some(head), &refs, &settings, &device)
        }
    }
}

/// Fails when the logits are the same for every text (a student whose hidden ReLUs are all
/// off would agree with any graph), so that the comparisons mean something.
fn assert_depends_on_the_text(logits: &[f32], rows: usize, what: &str) {
    let width = logits.len() / rows;
    let spread = (1..rows)
        .map(|r| max_diff(&logits[..width], &logits[r * width..(r + 1) * width]))
        .fold(0.0, f32::max);
    assert!(spread > 1e-4, "{what}: the same logits for every text");
}

fn options(head: Option<&Network>) -> TextGraphOptions<'_> {
    TextGraphOptions {
        pad_id: PAD,
        max_tokens: Some(MAX_TOKENS),
        head,
    }
}

#[test]
fn exported_text_students_give_apprentices_logits_in_tract() {
    let folder = tempfile::tempdir().unwrap();
    let head = teacher_head(8, 3, 5);
    let cases: [(&str, TextStudent, Option<&Network>); 3] = [
        ("bag", student(StudentKind::Bag, 3, 11), None),
        ("cnn", student(StudentKind::Cnn, 4, 12), None),
        (
            "bag + teacher head",
            student(StudentKind::Bag, 8, 13),
            Some(&head),
        ),
    ];
    for (index, (what, student, head)) in cases.into_iter().enumerate() {
        let path = folder.path().join(format!("text-{index}.onnx"));
        let bytes =
            text_student_to_onnx_bytes(&student_weights(&student), &options(head), what).unwrap();
        std::fs::write(&path, bytes).unwrap();
        // Two batches of other sizes and lengths through the same file: both axes are dynamic.
        for (salt, texts) in [(1, sequences(1)), (4, sequences(4)[..3].to_vec())] {
            let (ids, mask, len) = graph_inputs(&texts);
            let expected = apprentice_logits(&student, head, &texts);
            assert_depends_on_the_text(&expected, texts.len(), what);
            let got = tract_file_logits(&path, &[&ids, &mask], texts.len(), len);
            let diff = max_diff(&expected, &got);
            println!(
                "{what}, batch {salt} [{} × {len}]: max |tract − apprentice| = {diff:.2e}",
                texts.len()
            );
            assert!(diff <= 1e-5, "{what}: {diff}");
        }
    }
}

/// The padded positions matter to the CNN (the pad vector enters the convolution), so the
/// test above would see a graph that took the ids at padded positions as they come.
#[test]
fn the_cnn_reads_the_pad_vector_at_the_edges() {
    let cnn = student(StudentKind::Cnn, 4, 12);
    let texts = sequences(1);
    let batch = pad_batch(&texts, PAD, MAX_TOKENS);
    let device = ComputeDevice::cpu().inference();
    let forward = |ids: Vec<i64>| {
        let ids =
            BurnTensor::<2, Int>::from_data(TensorData::new(ids, [batch.rows, batch.len]), &device);
        let mask = matrix(batch.mask.clone(), batch.rows, batch.len, &device);
        to_host(cnn.forward(ids, mask))
    };
    let other: Vec<i64> = batch
        .ids
        .iter()
        .zip(&batch.mask)
        .map(|(&id, &m)| {
            if m == 0.0 {
                (id + 5) % VOCAB as i64
            } else {
                id
            }
        })
        .collect();
    assert!(max_diff(&forward(batch.ids.clone()), &forward(other)) > 1e-4);
}

// The onnxruntime fixture: a bag and a CNN student built from fixed seeds, exported by
// `write_text_fixture_models` and run by onnxruntime in `make_text_reference.py`.

/// The fixture's students: file stem and student.
fn fixture_students() -> Vec<(&'static str, TextStudent)> {
    vec![
        ("text-bag", student(StudentKind::Bag, 3, 31)),
        ("text-cnn", student(StudentKind::Cnn, 3, 32)),
    ]
}

/// Rewrites the fixture's ONNX files; run it with `--ignored`, then the Python script.
#[test]
#[ignore = "writes the fixture files; run by hand before make_text_reference.py"]
fn write_text_fixture_models() {
    for (stem, student) in fixture_students() {
        let bytes =
            text_student_to_onnx_bytes(&student_weights(&student), &options(None), stem).unwrap();
        std::fs::write(fixture_dir().join(format!("{stem}.onnx")), bytes).unwrap();
    }
}

#[test]
fn onnxruntime_gives_apprentices_logits_on_text() {
    let fixture = FixtureJson::read("text-onnxruntime-logits.json");
    for (stem, student) in fixture_students() {
        let entry = fixture.entry(stem);
        let (rows, len) = entry.rows_and_length();
        let ids = entry.ints("input_ids");
        let mask = entry.ints("attention_mask");
        let texts = unpadded(&ids, &mask, rows, len);
        let onnxruntime = entry.floats("logits");
        let expected = apprentice_logits(&student, None, &texts);
        assert_depends_on_the_text(&expected, rows, stem);
        let diff = max_diff(&expected, &onnxruntime);
        println!(
            "{stem}: [{rows} × {len}], max |onnxruntime {} − apprentice| = {diff:.2e}",
            entry.get("onnxruntime")
        );
        assert!(diff <= 1e-5, "{stem}: {diff}");
        // The committed file is the model built here: tract agrees on it too.
        let file = fixture_dir().join(format!("{stem}.onnx"));
        let diff = max_diff(
            &expected,
            &tract_file_logits(&file, &[&ids, &mask], rows, len),
        );
        assert!(diff <= 1e-5, "{stem} in tract: {diff}");
    }
}

// A text run's folder, as the run store writes it: `config.toml`, `seed-0/<model>.safetensors`,
// and the encoder folder's `config.json` (the pad id) beside it.

fn write_run(root: &Path) -> (PathBuf, TextStudent, TextStudent, TextStudent, Network) {
    let encoder = root.join("encoder");
    std::fs::create_dir_all(&encoder).unwrap();
    std::fs::write(
        encoder.join("config.json"),
        format!(
            r#"{{"model_type": "bert", "vocab_size": {VOCAB}, "hidden_size": 8,
                "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
                "max_position_embeddings": 32, "pad_token_id": {PAD}}}"#
        ),
    )
    .unwrap();
    let run = root.join("runs/tiny-text-20261203-000000");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("config.toml"),
        format!(
            r#"name = "tiny-text"
data_root = "{}"

[text]
model = "encoder"

[data]
path = "texts.csv"

[teacher]
hidden = [4]

[teacher.train]
epochs = 1

[students]
kinds = ["bag", "cnn"]
embedding_dim = 6
hidden = [5]
channels = 7
kernel_size = 5
max_tokens = {MAX_TOKENS}

[students.train]
epochs = 1
batch_size = 4
"#,
            root.display()
        ),
    )
    .unwrap();
    let store = TextRunStore::new(Some(&run));
    let (bag, cnn) = (
        student(StudentKind::Bag, 3, 41),
        student(StudentKind::Cnn, 3, 42),
    );
    let (embed, head) = (student(StudentKind::Bag, 8, 43), teacher_head(8, 3, 44));
    store.save_module(0, "bag-kd", &bag).unwrap();
    store.save_module(0, "cnn", &cnn).unwrap();
    store.save_module(0, "bag-embed", &embed).unwrap();
    store.save_module(0, "teacher", &head).unwrap();
    (run, bag, cnn, embed, head)
}

#[test]
fn a_text_runs_students_are_exported_from_their_run_folder() {
    let folder = tempfile::tempdir().unwrap();
    let (run, bag, cnn, embed, head) = write_run(folder.path());
    let texts = sequences(2);
    let (ids, mask, len) = graph_inputs(&texts);
    let cases = [
        ("bag-kd", &bag, None, 3),
        ("cnn", &cnn, None, 3),
        ("bag-embed", &embed, Some(&head), 3),
    ];
    for (name, student, head, classes) in cases {
        let checkpoint = run.join(format!("seed-0/{name}.safetensors"));
        let out = folder.path().join(format!("{name}.onnx"));
        let summary = match export_student(&checkpoint, &out).unwrap() {
            ExportedStudent::Text(summary) => summary,
            other => panic!("{name}: exported as {other:?}"),
        };
        assert_eq!(summary.model, name);
        assert_eq!(summary.num_classes, classes);
        assert_eq!((summary.pad_id, summary.max_tokens), (PAD, MAX_TOKENS));
        assert_eq!(
            summary.tokenizer,
            folder.path().join("encoder/tokenizer.json")
        );
        let expected = apprentice_logits(student, head, &texts);
        assert_depends_on_the_text(&expected, texts.len(), name);
        let diff = max_diff(
            &expected,
            &tract_file_logits(&out, &[&ids, &mask], texts.len(), len),
        );
        println!("{name} from its run folder: max |tract − apprentice| = {diff:.2e}");
        assert!(diff <= 1e-5, "{name}: {diff}");
    }
}

#[test]
fn what_is_not_a_small_text_student_is_refused_with_one_line_naming_the_file() {
    let folder = tempfile::tempdir().unwrap();
    let (run, ..) = write_run(folder.path());
    let out = folder.path().join("out.onnx");
    let refused = |path: &Path| -> String {
        let message = export_student(path, &out).unwrap_err().to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        message
    };
    // The teacher's head is not one of the run's small students.
    let message = refused(&run.join("seed-0/teacher.safetensors"));
    assert!(
        message.contains("bag, bag-kd, bag-embed, cnn, cnn-kd"),
        "{message}"
    );
    // Weights outside a run folder, without apprentice's metadata.
    let stray = folder.path().join("stray.safetensors");
    std::fs::copy(run.join("seed-0/cnn.safetensors"), &stray).unwrap();
    let message = refused(&stray);
    assert!(message.contains("neither"), "{message}");
    // A damaged student in a text run.
    let damaged = run.join("seed-0/cnn-kd.safetensors");
    std::fs::write(&damaged, b"not safetensors").unwrap();
    refused(&damaged);
    // The encoder folder is gone: the pad id cannot be known.
    std::fs::remove_file(folder.path().join("encoder/config.json")).unwrap();
    let message = export_student(&run.join("seed-0/cnn.safetensors"), &out)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("config.json") && !message.contains('\n'),
        "{message}"
    );
    assert!(!out.exists(), "nothing written on refusal");
}

/// A text experiment of 60 reviews, one seed, a CNN student of one epoch: about a second.
const TINY_RUN: &str = r#"
name = "tiny-text"

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
max_rows = 60

[teacher]

[teacher.train]
epochs = 1
batch_size = 16

[students]
kinds = ["cnn"]
embedding_dim = 8
channels = 8
max_tokens = 16

[students.train]
epochs = 1
batch_size = 16
"#;

/// The whole way: a real run's CNN student, exported from its run folder, on reviews
/// tokenized by the run's tokenizer and padded as a Hugging Face tokenizer pads them, gives
/// the logits of the student as the run loads it.
#[test]
fn a_real_runs_cnn_gives_apprentices_logits_on_tokenized_reviews() {
    use apprentice::distill::train::Silent;
    use apprentice::text::config::TextExperimentConfig;
    use apprentice::text::experiment::{TextRunOptions, run_text_experiment};
    use apprentice::text::tokenizer::TextTokenizer;

    let Some(data) =
        common::shared_data("a_real_runs_cnn_gives_apprentices_logits_on_tokenized_reviews")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let text = TINY_RUN.replace("CACHE", cache.to_str().unwrap());
    let mut config = TextExperimentConfig::from_toml(&text, "tiny-text").unwrap();
    let run = dir.path().join("run");
    let options = TextRunOptions {
        data_root: Some(data.clone()),
        device: ComputeDevice::cpu(),
        run_dir: Some(run.clone()),
    };
    run_text_experiment(&config, &options, &mut Silent::default(), &mut |_| {}).unwrap();
    // As `apprentice run` records it.
    config.data_root = Some(data.clone());
    std::fs::write(run.join("config.toml"), toml::to_string(&config).unwrap()).unwrap();

    let checkpoint = run.join("seed-0/cnn-kd.safetensors");
    let out = dir.path().join("cnn-kd.onnx");
    let ExportedStudent::Text(summary) = export_student(&checkpoint, &out).unwrap() else {
        panic!("not exported as a text student");
    };
    assert_eq!(
        summary.tokenizer,
        data.join("all-MiniLM-L6-v2/tokenizer.json")
    );
    let tokenizer = TextTokenizer::from_file(&summary.tokenizer, 256).unwrap();
    let reviews = [
        "a gripping, beautifully shot film.",
        "dull.",
        "the plot never goes anywhere, the actors look bored and the jokes land with a thud \
         long before the final act drags itself to a close.",
        "funny, sharp and far too short",
    ];
    let texts = tokenizer.encode_all(&reviews).unwrap();
    assert!(
        texts.iter().any(|t| t.len() > MAX_TOKENS + 6),
        "one review longer than the cut"
    );
    let device = ComputeDevice::cpu().inference();
    let fresh = TextStudent::new(
        StudentKind::Cnn,
        &config.students,
        tokenizer.vocab_size(),
        2,
        None,
        0,
        &device,
    );
    let student = TextRunStore::new(Some(&run))
        .load_module(0, "cnn-kd", fresh)
        .unwrap();
    let refs: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
    let expected = student_outputs(&student, &refs, summary.pad_id, summary.max_tokens, &device);
    // Padded with the pad id to the longest review, uncut.
    let len = texts.iter().map(Vec::len).max().unwrap();
    let padded = pad_batch(&texts, summary.pad_id, len);
    let mask: Vec<i64> = padded.mask.iter().map(|&m| m as i64).collect();
    let got = tract_file_logits(&out, &[&padded.ids, &mask], texts.len(), len);
    assert_depends_on_the_text(&expected, texts.len(), "cnn-kd");
    let diff = max_diff(&expected, &got);
    println!(
        "cnn-kd of a real run, {} reviews × {len} pieces: max |tract − apprentice| = {diff:.2e}",
        texts.len()
    );
    assert!(diff <= 1e-5, "{diff}");
}

//! `apprentice run` on a tiny language-model experiment (the real SmolLM2 teacher, a dozen
//! review snippets, a few steps) and `apprentice generate` on the students it saves: the run
//! folder, the table, the teacher cache reused by a second run with the same numbers, the
//! checkpoints, and one-line errors; and a run whose students start from the teacher's
//! embeddings, which records it and resumes.

mod cli_common;
mod shared_data;

use cli_common::{apprentice, only_run_folder, text};
use shared_data::shared_data;

use std::path::{Path, PathBuf};

const SNIPPETS: [&str; 12] = [
    "A funny, warm and clever film.",
    "Dull and far too long.",
    "The cast is wonderful and the story moves.",
    "I laughed once, maybe twice.",
    "A mess of a movie with no heart.",
    "Beautifully shot, but empty inside.",
    "One of the best films of the year.",
    "Predictable from start to finish.",
    "The actors seem to be having fun.",
    "Too loud, too long, too silly.",
    "A small gem worth seeking out.",
    "It never finds its rhythm.",
];

fn tiny_config(corpus: &Path) -> String {
    format!(
        r#"
name = "tiny-lm"
seeds = [0, 1]

[lm]
teacher = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
max_len = 12
held_out_fraction = 0.25
top_k = 8
score_batch = 4
eval_every = 2
curve_texts = 2
speed_tokens = 3

[corpus]
path = "{}"
filter_column = "category"
filter_values = ["fresh", "rotten"]

[student]
layers = 1
hidden = 16
heads = 2
kv_heads = 1
ffn = 32

[train]
steps = 4
batch_size = 4

[train.optimizer]
lr = 0.01

[[objectives]]
name = "scratch"
kind = "ce"

[[objectives]]
name = "gkd"
kind = "jsd"
beta = 0.5
"#,
        corpus.display()
    )
}

fn results(run_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run_dir.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The snippets as a CSV file in `dir`, a third of them in a category the filter drops.
fn write_corpus(dir: &Path) -> PathBuf {
    let corpus = dir.join("snippets.csv");
    let mut csv = String::from("category,text\n");
    for (i, s) in SNIPPETS.iter().enumerate() {
        csv.push_str(&format!("{},{s:?}\n", ["fresh", "rotten", "plot"][i % 3]));
    }
    std::fs::write(&corpus, csv).unwrap();
    corpus
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_tiny_lm_run_writes_its_folder_and_its_students_generate() {
    let Some(data) = shared_data("a_tiny_lm_run_writes_its_folder_and_its_students_generate")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let corpus = write_corpus(dir.path());
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, tiny_config(&corpus)).unwrap();
    let data = data.to_str().unwrap();
    let out = dir.path().join("runs");
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            config.to_str().unwrap(),
            "--data",
            data,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let output = apprentice(&args);
        assert!(output.status.success(), "{}", text(&output.stderr));
        (text(&output.stdout), text(&output.stderr))
    };
    let (stdout, stderr) = run(&out, &[]);
    for name in ["teacher", "scratch", "gkd", "perplexity", "agreement %"] {
        assert!(stdout.contains(name), "{name} not in the table:\n{stdout}");
    }
    assert!(stderr.contains("computed"), "{stderr}");
    let run_dir = only_run_folder(&out);
    for file in [
        "config.toml",
        "results.json",
        "teacher-logits.safetensors",
        "tokenizer.json",
        "perplexity-curves.csv",
        "report.html",
        "plots/perplexity.png",
        "seed-0/scratch.safetensors",
        "seed-0/scratch.json",
        "seed-1/gkd.safetensors",
    ] {
        assert!(run_dir.join(file).is_file(), "{file} missing");
    }
    let first = results(&run_dir);
    let models = first["models"].as_array().unwrap();
    assert_eq!(models.len(), 3);
    assert_eq!(models[0]["role"], "teacher");
    assert_eq!(models[1]["role"], "scratch");
    assert_eq!(models[2]["role"], "distilled");
    let lm = &first["lm"];
    assert_eq!(lm["texts"], 8, "the plot rows are filtered out");
    assert_eq!(lm["cache"]["reused"], false);
    // Two seeds, and curve points at steps 0, 2 and 4; every student starts from the same
    // weights, so their first curve points are equal.
    let curve = |model: usize, seed: usize| lm["models"][model]["curves"][seed].clone();
    assert_eq!(curve(1, 0)["steps"], serde_json::json!([0, 2, 4]));
    assert_eq!(curve(1, 0)["perplexity"][0], curve(2, 0)["perplexity"][0]);
    assert_ne!(curve(1, 0)["perplexity"][0], curve(1, 1)["perplexity"][0]);
    let perplexity = |doc: &serde_json::Value, model: usize| {
        doc["lm"]["models"][model]["perplexity"]["per_seed"].clone()
    };
    assert_eq!(perplexity(&first, 0).as_array().unwrap().len(), 2);
    let teacher_ppl = first["lm"]["models"][0]["perplexity"]["mean"]
        .as_f64()
        .unwrap();
    let scratch_ppl = first["lm"]["models"][1]["perplexity"]["mean"]
        .as_f64()
        .unwrap();
    assert!(
        teacher_ppl < scratch_ppl,
        "teacher {teacher_ppl} vs an untrained student {scratch_ppl}"
    );

    // A run killed while it trained seed 1's second student: the finished students are read
    // back, that one trains again from its seeded initial weights, and the results are the
    // uninterrupted run's.
    let killed = dir.path().join("killed");
    for file in walk(&run_dir) {
        let relative = file.strip_prefix(&run_dir).unwrap();
        let name = relative.to_string_lossy();
        if name == "results.json" || name.starts_with("seed-1/gkd") {
            continue;
        }
        let target = killed.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, target).unwrap();
    }
    let output = apprentice(&["run", "--resume", killed.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("seed 0: gkd read back"), "{stderr}");
    assert!(stderr.contains("seed 1: scratch read back"), "{stderr}");
    assert!(stderr.contains("seed 1: training gkd"), "{stderr}");
    assert!(!stderr.contains("seed 0: training"), "{stderr}");
    let resumed = results(&killed);
    for model in 0..3 {
        assert_eq!(
            first["lm"]["models"][model]["perplexity"],
            resumed["lm"]["models"][model]["perplexity"]
        );
        assert_eq!(
            first["models"][model]["test"], resumed["models"][model]["test"],
            "model {model}"
        );
        assert_eq!(
            first["lm"]["models"][model]["curves"],
            resumed["lm"]["models"][model]["curves"]
        );
    }

    // A second run reads the first one's teacher cache and gets the same numbers.
    let again = dir.path().join("again");
    let (_, stderr) = run(&again, &["--teacher-cache", run_dir.to_str().unwrap()]);
    assert!(stderr.contains("reused"), "{stderr}");
    let second = results(&only_run_folder(&again));
    assert_eq!(second["lm"]["cache"]["reused"], true);
    for model in 0..3 {
        assert_eq!(perplexity(&first, model), perplexity(&second, model));
        assert_eq!(
            first["models"][model]["test"]["kl_from_teacher"],
            second["models"][model]["test"]["kl_from_teacher"]
        );
    }

    // generate: the same seed gives the same continuation, greedy is deterministic.
    let checkpoint = run_dir.join("seed-0/gkd.safetensors");
    let checkpoint = checkpoint.to_str().unwrap();
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            checkpoint,
            "--prompt",
            "This movie",
            "--max-tokens",
            "6",
        ];
        args.extend(extra);
        let output = apprentice(&args);
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let greedy = generate(&[]);
    assert!(!greedy.trim().is_empty());
    assert_eq!(greedy, generate(&[]));
    let sampled = ["--temperature", "1.5", "--top-p", "0.95", "--seed", "3"];
    assert_eq!(generate(&sampled), generate(&sampled));

    // export: the student out as ONNX, described on two lines.
    let onnx = dir.path().join("gkd.onnx");
    let output = apprentice(&["export", checkpoint, "--onnx", onnx.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let said = text(&output.stdout);
    assert!(
        said.contains("gkd (llama")
            && said.contains("next-token logits")
            && said.contains("tokenizer"),
        "{said}"
    );
    assert!(std::fs::metadata(&onnx).unwrap().len() > 1000);
    let output = apprentice(&[
        "export",
        checkpoint,
        "--onnx",
        onnx.to_str().unwrap(),
        "--kv-cache",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("past_key.i"));

    // One-line errors.
    for (args, expected) in [
        (
            vec!["generate", "absent.safetensors", "--prompt", "x"],
            "absent.json",
        ),
        (
            vec![
                "generate",
                checkpoint,
                "--prompt",
                "x",
                "--max-tokens",
                "100000",
            ],
            "--max-tokens",
        ),
        (
            vec!["generate", checkpoint, "--prompt", "x", "--top-p", "0"],
            "top_p",
        ),
    ] {
        let output = apprentice(&args);
        let message = text(&output.stderr);
        assert!(!output.status.success());
        assert_eq!(message.trim().lines().count(), 1, "{message}");
        assert!(message.contains(expected), "{message}");
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        tiny_config(&corpus).replace("max_len = 12", "max_len = 12\nmax_length = 3"),
    )
    .unwrap();
    let output = apprentice(&["run", bad.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let message = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        message.contains("bad.toml") && message.contains("max_length"),
        "{message}"
    );
}

#[test]
fn a_run_from_the_teachers_embeddings_records_it_and_resumes() {
    let Some(data) = shared_data("a_run_from_the_teachers_embeddings_records_it_and_resumes")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let corpus = write_corpus(dir.path());
    let config = dir.path().join("pca.toml");
    let text_config = tiny_config(&corpus)
        .replace("seeds = [0, 1]", "seeds = [0]")
        .replace("ffn = 32\n", "ffn = 32\ninit = \"pca-embeddings\"\n");
    std::fs::write(&config, text_config).unwrap();
    let out = dir.path().join("runs");
    let output = apprentice(&[
        "run",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    let init = "the teacher's token embeddings reduced from 576 to 16 dimensions by PCA";
    assert!(
        stderr.contains(&format!("students start from {init}")),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("Every student starts from {init}.")),
        "{stdout}"
    );
    let run_dir = only_run_folder(&out);
    let saved = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(saved.contains("init = \"pca-embeddings\""), "{saved}");
    let first = results(&run_dir);
    assert_eq!(first["lm"]["student_init"], init);
    assert_eq!(first["config"]["student"]["init"], "pca-embeddings");
    assert!(
        first["models"][1]["architecture"]
            .as_str()
            .unwrap()
            .ends_with(&format!("from {init}")),
        "{}",
        first["models"][1]["architecture"]
    );
    let meta = std::fs::read_to_string(run_dir.join("seed-0/scratch.json")).unwrap();
    assert!(meta.contains(init), "{meta}");
    // The scratch baseline and the distilled student start from the same weights.
    let curve =
        |doc: &serde_json::Value, model: usize| doc["lm"]["models"][model]["curves"][0].clone();
    assert_eq!(
        curve(&first, 1)["perplexity"][0],
        curve(&first, 2)["perplexity"][0]
    );

    // Killed before the distilled student finished: it trains again from the same initial
    // weights, and the results are the uninterrupted run's.
    for file in [
        "results.json",
        "seed-0/gkd.safetensors",
        "seed-0/gkd.json",
        "seed-0/gkd.record.json",
    ] {
        std::fs::remove_file(run_dir.join(file)).unwrap();
    }
    let output = apprentice(&["run", "--resume", run_dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("seed 0: scratch read back"), "{stderr}");
    assert!(stderr.contains("seed 0: training gkd"), "{stderr}");
    let resumed = results(&run_dir);
    for model in 0..3 {
        assert_eq!(
            first["models"][model]["test"], resumed["models"][model]["test"],
            "model {model}"
        );
        assert_eq!(curve(&first, model), curve(&resumed, model));
    }
}

//! Tokens per second of the language-model teacher's scoring and of one student's training
//! step: the apprentice side of `bench/lm_vs_torch.sh`.
//!
//! ```text
//! cargo run --release --workspace --example lm_speed -- CONFIG --data DIR --out WORK \
//!     [--texts N] [--budget SECONDS] [--threads T]
//! ```
//!
//! `CONFIG` is a language-model experiment file (`configs/lm-rotten-tomatoes.toml`); its paths
//! are resolved against `--data`. The first `--texts` sequences of its corpus (tokenised and
//! cut at its `max_len`, as a run does) are scored by its teacher `score_batch` at a time,
//! pass after pass until `--budget` seconds are spent; then a student of its shape trains on
//! the same sequences, `train.batch_size` at a time, with the forward KL against the teacher's
//! top-`top_k` distributions (the cache a run reads), with AdamW at the configured rate and
//! weight decay, until the budget is spent again. `WORK` receives what the PyTorch reference
//! (`bench/reference/lm_speed.py`) needs to do the very same work: `ids.json` (the sequences,
//! batch sizes, the student's shape and the optimiser), `teacher-logits.safetensors` (the
//! cache) and the measurements, `apprentice.json`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use apprentice::backend::{ComputeDevice, keep_freed_buffers};
use apprentice::lm::config::LmExperimentConfig;
use apprentice::lm::corpus::load_corpus;
use apprentice::lm::experiment::{teacher_distributions, tokenize_corpus};
use apprentice::lm::logit_cache::file_hash;
use apprentice::lm::objectives::{TokenDivergence, TokenLoss};
use apprentice::lm::speed::{scoring_tokens_per_second, training_tokens_per_second};
use apprentice::lm::student::init_student;
use apprentice::lm::teacher::Teacher;
use serde_json::json;

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut data: Option<PathBuf> = None;
    let mut out: Option<PathBuf> = None;
    let mut texts = 64usize;
    let mut budget = 30.0f64;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().ok_or(format!("{arg}: expected a value"));
        match arg.as_str() {
            "--data" => data = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--texts" => texts = value()?.parse().map_err(|e| format!("--texts: {e}"))?,
            "--budget" => budget = value()?.parse().map_err(|e| format!("--budget: {e}"))?,
            "--threads" => threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            _ => positional.push(arg),
        }
    }
    let [config_path] = positional.as_slice() else {
        return Err("usage: lm_speed CONFIG --data DIR --out WORK [options]".into());
    };
    let out = out.ok_or("--out: expected the folder for the reference's inputs")?;
    if texts == 0 || !(budget.is_finite() && budget >= 0.0) {
        return Err("--texts: expected at least 1; --budget: expected seconds ≥ 0".into());
    }
    keep_freed_buffers();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| e.to_string())?;
    let mut config =
        LmExperimentConfig::from_file(Path::new(config_path)).map_err(|e| e.to_string())?;
    config.resolve(data.as_deref());
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    let device = ComputeDevice::cpu();
    let inference = device.inference();
    let teacher = Teacher::open(&config.lm.teacher, &inference).map_err(|e| e.to_string())?;
    let teacher_sha256 = file_hash(&config.lm.teacher)
        .map_err(|e| format!("{}: {e}", config.lm.teacher.display()))?;
    let corpus = load_corpus(&config.corpus).map_err(|e| e.to_string())?;
    let (mut sequences, _) =
        tokenize_corpus(&teacher, &corpus, config.lm.max_len).map_err(|e| e.to_string())?;
    sequences.truncate(texts);
    let tokens: usize = sequences.iter().map(Vec::len).sum();

    // The cache the student learns from; computing it also warms the teacher up.
    let cache_path = out.join("teacher-logits.safetensors");
    let _ = std::fs::remove_file(&cache_path);
    let (cache, _, _) = teacher_distributions(
        &teacher,
        &teacher_sha256,
        &sequences,
        config.lm.top_k,
        config.lm.score_batch,
        &cache_path,
        None,
        &mut |_| {},
    )
    .map_err(|e| e.to_string())?;

    let batch = config.lm.score_batch;
    let (mut scored, mut seconds, mut passes) = (0usize, 0.0f64, 0usize);
    while passes == 0 || seconds < budget {
        let rate = scoring_tokens_per_second(
            &teacher.model,
            &teacher.config,
            &sequences,
            batch,
            &inference,
        )
        .map_err(|e| e.to_string())?;
        scored += tokens;
        seconds += tokens as f64 / rate;
        passes += 1;
    }
    let scoring = scored as f64 / seconds;
    println!(
        "apprentice teacher scoring, batch {batch}: {scoring:.1} tokens/s ({scored} tokens in {seconds:.1} s)"
    );

    let student_config = config
        .student
        .config(&teacher.config)
        .map_err(|e| e.to_string())?;
    let student = init_student(&student_config, 0, &device.training());
    let loss = TokenLoss {
        divergence: TokenDivergence::ForwardKl,
        temperature: 1.0,
        ce_weight: 0.0,
    };
    let train_batch = config.train.batch_size;
    let training = training_tokens_per_second(
        student,
        &sequences,
        Some((&cache, &loss)),
        &config.train.optimizer,
        train_batch,
        2,
        3,
        Duration::from_secs_f64(budget),
        &device,
    )
    .map_err(|e| e.to_string())?;
    println!(
        "apprentice student training, batch {train_batch}: {:.1} tokens/s ({} steps, {} tokens in {:.1} s)",
        training.tokens_per_s(),
        training.steps,
        training.tokens,
        training.seconds
    );

    let shape = &config.student;
    let optimizer = &config.train.optimizer;
    let ids = json!({
        "sequences": sequences,
        "score_batch": batch,
        "train_batch": train_batch,
        "top_k": cache.k,
        "student": {
            "vocab_size": student_config.vocab_size,
            "layers": shape.layers,
            "hidden": shape.hidden,
            "heads": shape.heads,
            "kv_heads": shape.kv_heads,
            "ffn": shape.ffn,
            "rope_theta": student_config.rope_theta,
            "rms_eps": student_config.rms_eps,
            "max_len": student_config.max_len,
        },
        "optimizer": {
            "kind": optimizer.optimizer,
            "lr": optimizer.lr,
            "weight_decay": optimizer.weight_decay,
        },
    });
    write_json(&out.join("ids.json"), &ids)?;
    let measured = json!({
        "engine": format!(
            "apprentice {} (burn {} CPU backend{})",
            env!("CARGO_PKG_VERSION"),
            "0.22.1",
            if cfg!(feature = "parallel") { ", parallel feature" } else { "" }
        ),
        "threads": threads,
        "sequences": sequences.len(),
        "tokens": tokens,
        "teacher_scoring": {
            "batch": batch,
            "passes": passes,
            "tokens": scored,
            "seconds": seconds,
            "tokens_per_s": scoring,
        },
        "student_training": {
            "batch": train_batch,
            "objective": "forward KL against the teacher's top-k cache, τ = 1",
            "parameters": student_config.parameters(),
            "steps": training.steps,
            "tokens": training.tokens,
            "seconds": training.seconds,
            "tokens_per_s": training.tokens_per_s(),
        },
    });
    write_json(&out.join("apprentice.json"), &measured)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

//! Sentences per second of the BERT encoder on documents of up to its maximum length, at given
//! batch sizes: the apprentice side of `bench/bert_vs_torch.sh`.
//!
//! ```text
//! cargo run --release -p apprentice --example bert_speed -- MODEL_DIR TEXTS_CSV \
//!     [--count N] [--batches 1,64] [--budget SECONDS] [--threads T] [--engine host|burn] \
//!     [--finetune-steps N] [--finetune-batch 32] [--finetune-length 64] \
//!     [--ids-out FILE] [--json FILE]
//! ```
//!
//! With `--finetune-steps N` it also times N steps of fine-tuning the encoder with a
//! classification head (`text::finetune`: AdamW, clipping, the model's dropout) on batches
//! of `--finetune-batch` documents cut to exactly `--finetune-length` word pieces, after one
//! untimed step.
//!
//! `TEXTS_CSV` is Rotten Tomatoes' corpus (column `text`); documents are built from its
//! snippets by [`documents_of_growing_length`]. `--ids-out` writes the documents' ids so that
//! the PyTorch reference runs the very same inputs; `--engine burn` times burn's padded
//! operations instead of the host kernels.
//!
//! The JSON also holds what the timed code computed, so that two builds can be checked to do
//! the same arithmetic (`bench/bert_speed_ab.sh`): a fingerprint of every document's
//! embedding at each batch size, and the fine-tuning's step losses.

use std::path::PathBuf;
use std::time::Duration;

use apprentice::backend::{ComputeDevice, keep_freed_buffers};
use apprentice::text::PretrainedEncoder;
use apprentice::text::bert_speed::{documents_of_growing_length, encoder_throughput};
use apprentice::text::data::{TextDataOptions, load_text_data};
use apprentice::text::finetune::{FinetuneObjective, FinetuneSettings, finetune_with};
use apprentice::text::tokenizer::pad_batch;
use apprentice::text::transformer_config::FinetuneConfig;
use apprentice::text::transformer_run::teacher_to_finetune;

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    // As the command-line tool does at start-up, so that the timings are the tool's.
    keep_freed_buffers();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut count = 128usize;
    let mut batches = vec![1usize, 64];
    let mut budget = 10.0f64;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut engine = "host".to_string();
    let mut ids_out: Option<PathBuf> = None;
    let mut json_out: Option<PathBuf> = None;
    let (mut finetune_steps, mut finetune_batch, mut finetune_length) = (0usize, 32usize, 64usize);
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().ok_or(format!("{arg}: expected a value"));
        match arg.as_str() {
            "--count" => count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--batches" => {
                batches = value()?
                    .split(',')
                    .map(|b| b.parse().map_err(|e| format!("--batches: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--budget" => budget = value()?.parse().map_err(|e| format!("--budget: {e}"))?,
            "--threads" => threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--engine" => engine = value()?,
            "--ids-out" => ids_out = Some(PathBuf::from(value()?)),
            "--json" => json_out = Some(PathBuf::from(value()?)),
            "--finetune-steps" => finetune_steps = parse(&arg, value()?)?,
            "--finetune-batch" => finetune_batch = parse(&arg, value()?)?,
            "--finetune-length" => finetune_length = parse(&arg, value()?)?,
            _ => positional.push(arg),
        }
    }
    let [model, texts] = positional.as_slice() else {
        return Err("usage: bert_speed MODEL_DIR TEXTS_CSV [options]".into());
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| e.to_string())?;
    let encoder = PretrainedEncoder::load(model.as_ref(), &ComputeDevice::cpu())
        .map_err(|e| e.to_string())?;
    let options = TextDataOptions {
        text_column: "text".into(),
        label_column: "category".into(),
        classes: vec![],
        drop_labels: vec![],
        max_rows: None,
    };
    let data = load_text_data(texts.as_ref(), None, &options).map_err(|e| e.to_string())?;
    let documents =
        documents_of_growing_length(&encoder, &data.texts, count).map_err(|e| e.to_string())?;
    let finetune_texts =
        fixed_length(&documents, finetune_length, finetune_steps * finetune_batch)?;
    if let Some(path) = &ids_out {
        let text = serde_json::to_string(&serde_json::json!({
            "sequences": documents,
            "finetune": {
                "sequences": finetune_texts,
                "batch_size": finetune_batch,
                "steps": finetune_steps,
            },
        }))
        .map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mean = documents.iter().map(Vec::len).sum::<usize>() as f64 / documents.len() as f64;
    let mut results = Vec::new();
    for &batch in &batches {
        let measured = encoder_throughput(
            &documents,
            batch,
            Duration::from_secs_f64(budget),
            |chunk| {
                let vectors = if engine == "burn" {
                    encoder.embed_batch_burn(&pad_batch(
                        chunk,
                        encoder.config.pad_token_id,
                        encoder.max_length,
                    ))
                } else {
                    encoder.embed_ids(chunk, chunk.len(), &mut |_| {})
                };
                std::hint::black_box(vectors);
            },
        );
        println!(
            "apprentice ({engine}) batch {batch:>3}: {:.2} sentences/s ({} sentences in {:.1} s)",
            measured.sentences_per_s, measured.sentences, measured.seconds
        );
        let embeddings = if engine == "burn" {
            String::new()
        } else {
            fingerprint(&encoder.embed_ids(&documents, batch, &mut |_| {}))
        };
        results.push(serde_json::json!({
            "batch_size": batch,
            "sentences_per_s": measured.sentences_per_s,
            "embeddings_fingerprint": embeddings,
        }));
    }
    let finetune = if finetune_steps > 0 {
        let (steps_per_s, step_losses) = finetune_speed(&encoder, &finetune_texts, finetune_batch)?;
        println!(
            "apprentice fine-tuning: {steps_per_s:.3} steps/s ({finetune_steps} steps of \
             {finetune_batch} × {finetune_length} word pieces)"
        );
        serde_json::json!({
            "steps": finetune_steps,
            "batch_size": finetune_batch,
            "length": finetune_length,
            "steps_per_s": steps_per_s,
            "step_losses": step_losses,
        })
    } else {
        serde_json::Value::Null
    };
    if let Some(path) = &json_out {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "engine": engine,
            "threads": threads,
            "documents": documents.len(),
            "mean_length": mean,
            "results": results,
            "finetune": finetune,
        }))
        .map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn parse(option: &str, value: String) -> Result<usize, String> {
    value.parse().map_err(|e| format!("{option}: {e}"))
}

/// `count` sequences of exactly `length` word pieces: the documents at least that long, cut,
/// taken in turn (fine-tuning's batches then all have one shape, whatever their order).
fn fixed_length(
    documents: &[Vec<u32>],
    length: usize,
    count: usize,
) -> Result<Vec<Vec<u32>>, String> {
    let long: Vec<&Vec<u32>> = documents.iter().filter(|d| d.len() >= length).collect();
    if count > 0 && long.is_empty() {
        return Err(format!(
            "no document has {length} word pieces; raise --count"
        ));
    }
    Ok((0..count)
        .map(|i| long[i % long.len()][..length].to_vec())
        .collect())
}

/// FNV-1a over the floats' bits, in order: different floats give a different text, but for a
/// chance of about 2⁻⁶⁴.
fn fingerprint(values: &[f32]) -> String {
    let hash = values
        .iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{hash:016x} ({} floats)", values.len())
}

/// Fine-tuning steps per second on `texts`, `batch` at a time, after one untimed step, and the
/// timed steps' losses.
fn finetune_speed(
    encoder: &PretrainedEncoder,
    texts: &[Vec<u32>],
    batch: usize,
) -> Result<(f64, Vec<f64>), String> {
    let length = texts.first().map_or(1, Vec::len);
    let recipe = FinetuneConfig {
        epochs: 1,
        batch_size: batch,
        lr: 1e-4,
        max_length: length,
        ..FinetuneConfig::default()
    };
    let device = ComputeDevice::cpu();
    let untrained = teacher_to_finetune(encoder, &recipe, 2, 0, &device);
    let labels: Vec<u32> = (0..texts.len() as u32).map(|i| i % 2).collect();
    let settings = FinetuneSettings {
        warmup_ratio: 0.0,
        ..recipe.settings(0)
    };
    let run = |count: usize| {
        finetune_with(
            untrained.model.clone(),
            &untrained.config,
            &texts[..count],
            &labels[..count],
            FinetuneObjective::Labels,
            None,
            &settings,
            &device.training(),
            &mut (),
        )
        .map_err(|e| e.to_string())
    };
    run(batch)?;
    let outcome = run(texts.len())?;
    Ok((outcome.steps as f64 / outcome.seconds, outcome.step_losses))
}

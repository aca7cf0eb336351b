//! Sentences per second of the BERT encoder on documents of up to its maximum length, at given
//! batch sizes: the apprentice side of `bench/bert_vs_torch.sh`.
//!
//! ```text
//! cargo run --release -p apprentice --example bert_speed -- MODEL_DIR TEXTS_CSV \
//!     [--count N] [--batches 1,64] [--budget SECONDS] [--threads T] [--engine host|burn] \
//!     [--ids-out FILE] [--json FILE]
//! ```
//!
//! `TEXTS_CSV` is Rotten Tomatoes' corpus (column `text`); documents are built from its
//! snippets by [`documents_of_growing_length`]. `--ids-out` writes the documents' ids so that
//! the PyTorch reference runs the very same inputs; `--engine burn` times burn's padded
//! operations instead of the host kernels.

use std::path::PathBuf;
use std::time::Duration;

use apprentice::backend::ComputeDevice;
use apprentice::text::PretrainedEncoder;
use apprentice::text::bert_speed::{documents_of_growing_length, encoder_throughput};
use apprentice::text::data::{TextDataOptions, load_text_data};
use apprentice::text::tokenizer::pad_batch;

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut count = 128usize;
    let mut batches = vec![1usize, 64];
    let mut budget = 10.0f64;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut engine = "host".to_string();
    let mut ids_out: Option<PathBuf> = None;
    let mut json_out: Option<PathBuf> = None;
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
    if let Some(path) = &ids_out {
        let text = serde_json::to_string(&serde_json::json!({ "sequences": documents }))
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
        results.push(serde_json::json!({
            "batch_size": batch,
            "sentences_per_s": measured.sentences_per_s,
        }));
    }
    if let Some(path) = &json_out {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "engine": engine,
            "threads": threads,
            "documents": documents.len(),
            "mean_length": mean,
            "results": results,
        }))
        .map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

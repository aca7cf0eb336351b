//! Encoder throughput on token ids, the workload the PyTorch reference
//! (`bench/reference/bert_speed.py`) runs too: long documents built from short texts, sorted by
//! length and cut into batches (as sentence-transformers' `encode` does), timed batch by batch.

use std::time::{Duration, Instant};

use super::error::TextError;
use super::pretrained::PretrainedEncoder;

/// Token-id sequences of documents of growing length: document `k` of `count` joins texts of
/// `texts` (in order, from where the previous document stopped, cycling) until it has at least
/// `8 + k × (max_length − 8) / count` word pieces, and is then cut at `max_length` by the
/// tokenizer. The lengths spread evenly up to `max_length`, as in a corpus of e-mails.
pub fn documents_of_growing_length<S: AsRef<str>>(
    encoder: &PretrainedEncoder,
    texts: &[S],
    count: usize,
) -> Result<Vec<Vec<u32>>, TextError> {
    if texts.is_empty() {
        return Err(TextError::Invalid(
            "documents_of_growing_length: no texts to build documents from".into(),
        ));
    }
    let max_length = encoder.max_length;
    let floor = 8.min(max_length);
    let mut cursor = 0;
    let mut documents = Vec::with_capacity(count);
    for k in 0..count {
        let target = floor + k * (max_length - floor) / count.max(1);
        let mut text = String::new();
        let mut ids = encoder.tokenizer.encode(&text)?;
        // Every text adds at least one piece unless it is blank; stop after a full cycle.
        for _ in 0..texts.len() {
            if ids.len() >= target {
                break;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(texts[cursor % texts.len()].as_ref());
            cursor += 1;
            ids = encoder.tokenizer.encode(&text)?;
        }
        documents.push(ids);
    }
    Ok(documents)
}

/// What [`encoder_throughput`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Sentences per second over the timed batches.
    pub sentences_per_s: f64,
    /// Sentences embedded while timing.
    pub sentences: usize,
    /// Seconds timed.
    pub seconds: f64,
}

/// Sentences per second of `embed` (an encoder given one batch of id sequences) on
/// `sequences`: sorted by length, cut into batches of `batch_size`, one untimed warm-up batch
/// (the longest), then the batches in order, cycling, until at least `budget` has passed and
/// every batch ran at least once.
pub fn encoder_throughput(
    sequences: &[Vec<u32>],
    batch_size: usize,
    budget: Duration,
    mut embed: impl FnMut(&[Vec<u32>]),
) -> Throughput {
    let mut sorted: Vec<&Vec<u32>> = sequences.iter().collect();
    sorted.sort_by_key(|s| s.len());
    let batches: Vec<Vec<Vec<u32>>> = sorted
        .chunks(batch_size.max(1))
        .map(|chunk| chunk.iter().map(|s| (*s).clone()).collect())
        .collect();
    if batches.is_empty() {
        return Throughput {
            sentences_per_s: 0.0,
            sentences: 0,
            seconds: 0.0,
        };
    }
    let mut run = |batch: &Vec<Vec<u32>>| embed(batch);
    run(batches.last().expect("at least one batch"));
    let started = Instant::now();
    let mut sentences = 0;
    let mut index = 0;
    while index < batches.len() || started.elapsed() < budget {
        let batch = &batches[index % batches.len()];
        run(batch);
        sentences += batch.len();
        index += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    Throughput {
        sentences_per_s: sentences as f64 / seconds,
        sentences,
        seconds,
    }
}

//! The SmolLM2 teacher read from its GGUF file against what `transformers` computes from the
//! same file (`reference.json`, `reference-logits.safetensors`, made by `make-reference.py`
//! beside them): token ids, logits at every position on the vocabulary subset, the top-20 ids,
//! the full last-position logits, the greedy continuation, and the perplexity on review
//! snippets.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use apprentice::backend::ComputeDevice;
use apprentice::lm::generate::{Sampling, generate};
use apprentice::lm::teacher::Teacher;
use safetensors::SafeTensors;

const FOLDER: &str = "smollm2-135m-instruct";
/// Absolute tolerance on logits (their range is about 20).
const TOLERANCE: f32 = 2e-2;

fn teacher(test: &str) -> Option<&'static Teacher> {
    static TEACHER: OnceLock<Option<Teacher>> = OnceLock::new();
    let data = common::shared_data(test)?;
    TEACHER
        .get_or_init(|| {
            let path = data.join(FOLDER).join("SmolLM2-135M-Instruct.Q4_1.gguf");
            Some(Teacher::open(&path, &ComputeDevice::cpu().inference()).unwrap())
        })
        .as_ref()
}

fn folder(test: &str) -> Option<PathBuf> {
    common::shared_data(test).map(|d| d.join(FOLDER))
}

fn reference(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap()
}

fn floats(st: &SafeTensors, name: &str) -> (Vec<f32>, Vec<usize>) {
    let t = st.tensor(name).unwrap();
    let values = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (values, t.shape().to_vec())
}

fn ints(st: &SafeTensors, name: &str) -> Vec<i64> {
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn json_ids(value: &serde_json::Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn token_ids_match_the_reference_for_every_prompt() {
    let (Some(teacher), Some(dir)) = (teacher("token_ids"), folder("token_ids")) else {
        return;
    };
    let reference = reference(&dir);
    let prompts = reference["prompts"].as_array().unwrap();
    assert_eq!(prompts.len(), 5);
    for prompt in prompts {
        let text = prompt["text"].as_str().unwrap();
        let ids = teacher.tokenizer.encode(text).unwrap();
        assert_eq!(ids, json_ids(&prompt["ids"]), "{text:?}");
        assert_eq!(teacher.tokenizer.decode(&ids).unwrap(), text);
    }
    // Control tokens written in the text are single tokens.
    let ids = teacher.tokenizer.encode("<|im_start|>user").unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(teacher.tokenizer.eos_id(), Some(2));
}

#[test]
fn logits_match_the_reference_at_every_position() {
    let (Some(teacher), Some(dir)) = (teacher("logits"), folder("logits")) else {
        return;
    };
    let bytes = std::fs::read(dir.join("reference-logits.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let subset = ints(&st, "vocab_subset");
    let mut worst_subset = 0f32;
    let mut worst_last = 0f32;
    let mut top_checked = 0;
    // All five prompts in one right-padded batch: padding must not change any real position.
    let sequences: Vec<Vec<u32>> = (0..5)
        .map(|i| {
            ints(&st, &format!("p{i}.ids"))
                .iter()
                .map(|&v| v as u32)
                .collect()
        })
        .collect();
    let logits = teacher.logits(&sequences).unwrap();
    let vocab = logits.vocab;
    for (p, seq) in sequences.iter().enumerate() {
        let row = |pos: usize| {
            let start = (p * logits.len + pos) * vocab;
            &logits.values[start..start + vocab]
        };
        let (expected, shape) = floats(&st, &format!("p{p}.logits_subset"));
        assert_eq!(shape, vec![seq.len(), subset.len()]);
        let (top_logits, _) = floats(&st, &format!("p{p}.top_logits"));
        let top_ids = ints(&st, &format!("p{p}.top_ids"));
        for pos in 0..seq.len() {
            let ours = row(pos);
            for (j, &id) in subset.iter().enumerate() {
                let e = (ours[id as usize] - expected[pos * subset.len() + j]).abs();
                worst_subset = worst_subset.max(e);
            }
            // Our top 20, by descending logit.
            let mut order: Vec<usize> = (0..vocab).collect();
            order.select_nth_unstable_by(20, |&a, &b| ours[b].total_cmp(&ours[a]));
            let mut top: Vec<usize> = order[..20].to_vec();
            top.sort_by(|&a, &b| ours[b].total_cmp(&ours[a]));
            let r = &top_logits[pos * 20..pos * 20 + 20];
            let ids = &top_ids[pos * 20..pos * 20 + 20];
            for k in 0..19 {
                // Only ranks whose reference gaps to both neighbours exceed twice the tolerance
                // are fixed; closer ones may swap within it.
                let above = k == 0 || r[k - 1] - r[k] > 2.0 * TOLERANCE;
                let below = r[k] - r[k + 1] > 2.0 * TOLERANCE;
                if above && below {
                    assert_eq!(
                        top[k] as i64, ids[k],
                        "prompt {p}, position {pos}, rank {k}"
                    );
                    top_checked += 1;
                }
            }
        }
        let (last, _) = floats(&st, &format!("p{p}.last_logits"));
        for (ours, theirs) in row(seq.len() - 1).iter().zip(&last) {
            worst_last = worst_last.max((ours - theirs).abs());
        }
    }
    eprintln!(
        "largest logit error: subset {worst_subset:.2e}, last positions {worst_last:.2e}; \
         {top_checked} top-20 ranks checked"
    );
    assert!(
        worst_subset < TOLERANCE,
        "subset logits off by {worst_subset}"
    );
    assert!(
        worst_last < TOLERANCE,
        "last-position logits off by {worst_last}"
    );
    assert!(
        top_checked > 500,
        "only {top_checked} ranks were far enough apart to check"
    );
}

#[test]
fn the_greedy_continuation_matches_the_reference() {
    let (Some(teacher), Some(dir)) = (teacher("greedy"), folder("greedy")) else {
        return;
    };
    let reference = reference(&dir);
    let prompt = json_ids(&reference["prompts"][1]["ids"]);
    let expected = json_ids(&reference["greedy_p1"]["new_tokens"]);
    let out = generate(
        &teacher.model,
        &teacher.config,
        &prompt,
        24,
        &Sampling::greedy(),
        None,
        teacher.device(),
    )
    .unwrap();
    assert_eq!(out, expected);
    assert_eq!(
        teacher.tokenizer.decode(&out).unwrap(),
        reference["greedy_p1"]["text"].as_str().unwrap()
    );
}

/// The first `count` fresh/rotten snippets of the Rotten Tomatoes corpus, in file order.
fn snippets(data: &Path, count: usize) -> Vec<String> {
    let file =
        std::fs::File::open(data.join("rotten-tomatoes/rotten_tomatoes_corpus_full.csv.bz2"))
            .unwrap();
    let mut reader = csv::Reader::from_reader(bzip2::read::BzDecoder::new(file));
    let headers = reader.headers().unwrap().clone();
    let category = headers.iter().position(|h| h == "category").unwrap();
    let text = headers.iter().position(|h| h == "text").unwrap();
    reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| matches!(&r[category], "fresh" | "rotten"))
        .take(count)
        .map(|r| r[text].to_string())
        .collect()
}

fn perplexity(teacher: &Teacher, texts: &[String]) -> (f64, usize) {
    let mut sequences: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| teacher.tokenizer.encode(t).unwrap())
        .collect();
    // Similar lengths together, so that batches carry little padding.
    sequences.sort_by_key(Vec::len);
    let (nll, tokens) = teacher.nll(&sequences, 16).unwrap();
    ((nll / tokens as f64).exp(), tokens)
}

#[test]
fn perplexity_on_review_snippets_matches_the_reference() {
    let (Some(teacher), Some(data)) = (teacher("perplexity"), common::shared_data("perplexity"))
    else {
        return;
    };
    let reference = reference(&data.join(FOLDER));
    let expected = &reference["perplexity_rotten_tomatoes_first_200"];
    let texts = snippets(&data, 200);
    let started = std::time::Instant::now();
    let (ppl, tokens) = perplexity(teacher, &texts);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "perplexity {ppl:.3} over {tokens} tokens in {seconds:.1} s ({:.0} tokens/s)",
        tokens as f64 / seconds
    );
    assert_eq!(tokens as u64, expected["scored_tokens"].as_u64().unwrap());
    let target = expected["perplexity"].as_f64().unwrap();
    assert!(
        (ppl - target).abs() / target < 0.005,
        "perplexity {ppl} vs {target}"
    );
}

//! The BERT teacher read from a real model folder reproduces the reference implementation:
//! the same word-piece ids, and sentence embeddings within 1e-5, for every sentence of
//! `reference-embeddings.json` (empty, Unicode and longer than the 256-piece limit included),
//! whether sentences are embedded alone or padded together in one batch.

mod common;

use apprentice::backend::ComputeDevice;
use apprentice::text::PretrainedEncoder;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    input_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn max_abs_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn ids_and_embeddings_match_the_reference() {
    let Some(data) = common::shared_data("ids_and_embeddings_match_the_reference") else {
        return;
    };
    let folder = data.join("all-MiniLM-L6-v2");
    let reference: Reference = serde_json::from_str(
        &std::fs::read_to_string(folder.join("reference-embeddings.json")).unwrap(),
    )
    .unwrap();
    let encoder = PretrainedEncoder::load(&folder, &ComputeDevice::cpu()).unwrap();
    assert_eq!(encoder.max_length, reference.max_seq_length);
    assert_eq!(encoder.dim(), 384);
    assert!(encoder.notes.is_empty(), "{:?}", encoder.notes);
    assert!(
        reference
            .items
            .iter()
            .any(|i| i.input_ids.len() == reference.max_seq_length),
        "the reference has a truncated sentence"
    );

    for item in &reference.items {
        let ids = encoder.tokenizer.encode(&item.text).unwrap();
        assert_eq!(ids, item.input_ids, "ids of {:?}", item.text);
    }

    let texts: Vec<&str> = reference.items.iter().map(|i| i.text.as_str()).collect();
    let dim = encoder.dim();
    // All sentences padded into one batch, then each on its own.
    let together = encoder
        .embed_texts(&texts, texts.len(), &mut |_| {})
        .unwrap();
    let alone = encoder.embed_texts(&texts, 1, &mut |_| {}).unwrap();
    for (index, item) in reference.items.iter().enumerate() {
        for (how, vectors) in [("batched", &together), ("alone", &alone)] {
            let ours = &vectors[index * dim..(index + 1) * dim];
            let difference = max_abs_difference(ours, &item.embedding);
            assert!(
                difference <= 1e-5,
                "{how}: {:?}: max abs difference {difference}",
                item.text
            );
        }
    }
}

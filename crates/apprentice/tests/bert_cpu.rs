//! The host inference kernels of the BERT encoder compute what burn's padded forward pass
//! computes: for a small random BERT, sentences of different lengths packed without padding give
//! the same token vectors (to 1e-5) as the same sentences padded in one batch, and bad ids or
//! over-long sentences are refused with a message instead of a panic; and the token vectors
//! are the same bits on one thread, two and four, whichever way the products are split.

mod common;

use apprentice::backend::ComputeDevice;
use apprentice::text::bert::{Bert, BertConfig};
use apprentice::text::bert_cpu::HostBert;
use apprentice::text::pooling::{Pooling, PoolingMode};
use apprentice::text::tokenizer::pad_batch;
use burn::tensor::{Int, Tensor, TensorData};
use common::bits::{assert_same_bits, on_threads};

fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 50, "hidden_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 3, "intermediate_size": 40, "max_position_embeddings": 16,
        "initializer_range": 0.3
    }))
    .unwrap()
}

#[test]
fn packed_host_forward_equals_the_padded_burn_forward() {
    let config = tiny_config();
    let device = ComputeDevice::cpu().inference();
    device.seed(7);
    let bert = Bert::random(&config, &device);
    let host = HostBert::from_bert(&bert, &config);
    let sequences: Vec<Vec<u32>> = vec![
        vec![1, 5, 9, 2],
        vec![1, 2],
        (0..16).map(|i| (i * 7 % 50) as u32).collect(),
        vec![3],
    ];
    let packed = host.forward(&sequences).unwrap();
    let batch = pad_batch(&sequences, 0, 16);
    let ids = Tensor::<2, Int>::from_data(TensorData::new(batch.ids.clone(), [4, 16]), &device);
    let mask = apprentice::backend::matrix(batch.mask.clone(), 4, 16, &device);
    let padded = apprentice::backend::to_host(bert.forward(ids, mask.clone()));
    let h = config.hidden_size;
    let mut start = 0;
    let mut largest: f32 = 0.0;
    let mut worst: f32 = 0.0;
    for (row, sequence) in sequences.iter().enumerate() {
        for t in 0..sequence.len() {
            for c in 0..h {
                let ours = packed[(start + t) * h + c];
                let theirs = padded[(row * 16 + t) * h + c];
                worst = worst.max((ours - theirs).abs());
                largest = largest.max(theirs.abs());
            }
        }
        start += sequence.len();
    }
    assert!(largest > 0.1, "a non-trivial model ({largest})");
    assert!(worst < 1e-5, "host and burn differ by {worst}");

    for mode in [PoolingMode::Mean, PoolingMode::Cls] {
        let pooling = Pooling {
            mode,
            normalize: true,
        };
        let lengths: Vec<usize> = sequences.iter().map(Vec::len).collect();
        let ours = pooling.apply_packed(&packed, &lengths, h);
        let hidden = Tensor::<3>::from_data(TensorData::new(padded.clone(), [4, 16, h]), &device);
        let theirs = apprentice::backend::to_host(pooling.apply(hidden, mask.clone()));
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-5, "{mode:?} pooling differs by {worst}");
    }
}

#[test]
fn bad_ids_and_long_sentences_are_refused() {
    let config = tiny_config();
    let device = ComputeDevice::cpu().inference();
    let host = HostBert::from_bert(&Bert::random(&config, &device), &config);
    let error = host.forward(&[vec![1, 50]]).unwrap_err().to_string();
    assert!(error.contains("token id 50"), "{error}");
    let error = host.forward(&[vec![1u32; 17]]).unwrap_err().to_string();
    assert!(error.contains("17 word pieces"), "{error}");
    assert!(host.forward(&[Vec::<u32>::new()]).unwrap().is_empty());
}

#[test]
fn one_thread_two_and_four_give_the_same_bits() {
    // A feed-forward block 600 wide, so that its input product, over fewer than 512 tokens, is
    // split into bands of columns over the pool (the narrower products stay whole); a batch
    // of more than 512 tokens, which `gemm` splits itself; and one of too few tokens to split.
    let config: BertConfig = serde_json::from_value(serde_json::json!({
        "vocab_size": 60, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 600, "max_position_embeddings": 300,
        "initializer_range": 0.2
    }))
    .unwrap();
    let device = ComputeDevice::cpu().inference();
    device.seed(11);
    let host = HostBert::from_bert(&Bert::random(&config, &device), &config);
    let sequence = |len: usize, salt: usize| -> Vec<u32> {
        (0..len).map(|i| ((i * 13 + salt) % 60) as u32).collect()
    };
    for batch in [
        vec![sequence(250, 1), sequence(37, 2), sequence(5, 3)],
        vec![sequence(300, 4), sequence(290, 5)],
        vec![sequence(3, 6)],
    ] {
        let one = on_threads(1, || host.forward(&batch).unwrap());
        let two = on_threads(2, || host.forward(&batch).unwrap());
        let four = on_threads(4, || host.forward(&batch).unwrap());
        let lengths: Vec<usize> = batch.iter().map(Vec::len).collect();
        assert_same_bits(&format!("sequences of {lengths:?}, 2 threads"), &one, &two);
        assert_same_bits(&format!("sequences of {lengths:?}, 4 threads"), &one, &four);
    }
}

//! Small llama decoders: the KV cache gives the same logits as a full forward, seeded sampling
//! repeats itself, and a student's loss falls over a few training steps, both on the next
//! tokens alone and distilled from a teacher's logits.

mod common;

use apprentice::backend::{ComputeDevice, to_host};
use apprentice::distill::optim::OptimizerSpec;
use apprentice::lm::generate::{Sampling, generate};
use apprentice::lm::llama::{KvCache, LlamaConfig};
use apprentice::lm::objectives::{TokenDivergence, TokenLoss};
use apprentice::lm::student::{LmBatch, StudentShape, init_student, train_step};
use burn::tensor::{Int, Tensor, TensorData};

fn teacher_config() -> LlamaConfig {
    common::lm::tiny_llama(2)
}

fn sequences() -> Vec<Vec<u32>> {
    // Repeating patterns a small model can learn in a few steps; lengths differ (padding).
    (0..6)
        .map(|r| {
            (0..10 + r)
                .map(|i| ((i * (r + 1) + r) % 40) as u32)
                .collect()
        })
        .collect()
}

#[test]
fn the_kv_cache_gives_the_logits_of_a_full_forward() {
    let device = ComputeDevice::cpu().inference();
    let config = teacher_config();
    let model = init_student(&config, 7, &device);
    let ids: Vec<i64> = vec![3, 17, 5, 9, 22, 1, 30, 8];
    let full = to_host(model.forward(Tensor::<2, Int>::from_data(
        TensorData::new(ids.clone(), [1, 8]),
        &device,
    )));
    // A prompt of 3 tokens, a chunk of 2 (masked against the cache), then one at a time.
    let mut cache = KvCache::new();
    let mut cached = Vec::new();
    for range in [0..3, 3..5, 5..6, 6..7, 7..8] {
        let len = range.len();
        let chunk =
            Tensor::<2, Int>::from_data(TensorData::new(ids[range].to_vec(), [1, len]), &device);
        cached.extend(to_host(model.forward_cached(chunk, &mut cache)));
    }
    assert_eq!(cache.len(), 8);
    let worst = full
        .iter()
        .zip(&cached)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-4, "cached logits differ by {worst}");
}

#[test]
fn seeded_sampling_repeats_and_a_tiny_nucleus_is_greedy() {
    let device = ComputeDevice::cpu().inference();
    let config = teacher_config();
    let model = init_student(&config, 3, &device);
    let prompt = [1, 2, 3];
    let sample = |seed| Sampling {
        temperature: 1.5,
        top_p: 0.9,
        seed,
    };
    let run = |s: &Sampling| generate(&model, &config, &prompt, 12, s, None, &device).unwrap();
    assert_eq!(run(&sample(5)), run(&sample(5)));
    assert_ne!(
        run(&sample(5)),
        run(&sample(6)),
        "different seeds, same 12 tokens"
    );
    let greedy = run(&Sampling::greedy());
    let nucleus = run(&Sampling {
        temperature: 1.0,
        top_p: 1e-6,
        seed: 9,
    });
    assert_eq!(greedy, nucleus);
    assert!(
        generate(
            &model,
            &config,
            &[99],
            2,
            &Sampling::greedy(),
            None,
            &device
        )
        .is_err()
    );
    assert!(
        generate(
            &model,
            &config,
            &prompt,
            70,
            &Sampling::greedy(),
            None,
            &device
        )
        .is_err()
    );
}

#[test]
fn a_student_learns_from_tokens_and_from_a_teacher() {
    let device = ComputeDevice::cpu().training();
    let config = teacher_config();
    let shape = StudentShape {
        layers: 1,
        hidden: 16,
        heads: 2,
        kv_heads: 1,
        ffn: 32,
    };
    let student_config = shape.config(&config).unwrap();
    assert!(student_config.non_embedding_parameters() < config.non_embedding_parameters() / 4);
    let batch = LmBatch::new(&sequences(), &device).unwrap();
    let teacher = init_student(&config, 1, &ComputeDevice::cpu().inference());
    let teacher_logits = {
        let inputs =
            Tensor::<2, Int>::from_data(batch.inputs.to_data(), &ComputeDevice::cpu().inference());
        // Sharpened, so that the target is far from the untrained student's near-uniform output.
        Tensor::<3>::from_data((teacher.forward(inputs) * 30.0).to_data(), &device)
    };
    let spec = OptimizerSpec {
        lr: 1e-2,
        ..OptimizerSpec::default()
    };
    for distilled in [false, true] {
        let mut model = init_student(&student_config, 2, &device);
        let mut optimizer = spec.build();
        let loss = TokenLoss {
            divergence: TokenDivergence::ForwardKl,
            temperature: 1.0,
            ce_weight: 0.0,
        };
        let mut values = Vec::new();
        for _ in 0..15 {
            let logits = distilled.then(|| teacher_logits.clone());
            let (next, value) =
                train_step(model, &mut optimizer, 1e-2, &batch, logits, &loss).unwrap();
            model = next;
            values.push(value);
        }
        let (first, last) = (values[0], *values.last().unwrap());
        assert!(
            last < 0.8 * first,
            "distilled={distilled}: loss {first} -> {last}"
        );
    }
    assert!(
        StudentShape {
            layers: 1,
            hidden: 10,
            heads: 3,
            kv_heads: 1,
            ffn: 8
        }
        .config(&config)
        .is_err()
    );
}

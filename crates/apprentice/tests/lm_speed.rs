//! Throughput of the SmolLM2 teacher and of a student a tenth its size (ignored by default:
//! a measurement, not a check). Run with
//! `cargo test --release -p apprentice --test lm_speed -- --ignored --nocapture`.

mod common;

use apprentice::backend::ComputeDevice;
use apprentice::lm::speed::{generation_tokens_per_second, scoring_tokens_per_second};
use apprentice::lm::student::{StudentShape, init_student};
use apprentice::lm::teacher::Teacher;

#[test]
#[ignore = "a measurement of a few minutes"]
fn teacher_and_student_tokens_per_second() {
    let Some(data) = common::shared_data("teacher_and_student_tokens_per_second") else {
        return;
    };
    let device = ComputeDevice::cpu().inference();
    let path = data.join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    let teacher = Teacher::open(&path, &device).unwrap();
    let prompt = teacher
        .tokenizer
        .encode(
            "Once upon a time, there was a little girl who loved to read books about the stars.",
        )
        .unwrap();
    // 32 sequences of 32 tokens: the prompt's ids cycled from different starts.
    let sequences: Vec<Vec<u32>> = (0..32)
        .map(|r| (0..32).map(|i| prompt[(r + i) % prompt.len()]).collect())
        .collect();
    let shape = StudentShape {
        layers: 6,
        hidden: 192,
        heads: 3,
        kv_heads: 1,
        ffn: 512,
    };
    let student_config = shape.config(&teacher.config).unwrap();
    let student = init_student(&student_config, 0, &device);
    for (name, model, config) in [
        ("teacher", &teacher.model, &teacher.config),
        ("student", &student, &student_config),
    ] {
        let generation = generation_tokens_per_second(model, config, &prompt, 64, &device).unwrap();
        let scoring = scoring_tokens_per_second(model, config, &sequences, 32, &device).unwrap();
        println!(
            "{name}: {} non-embedding parameters; generation at batch 1: {generation:.1} tokens/s; \
             scoring at batch 32 × 32 tokens: {scoring:.0} tokens/s",
            config.non_embedding_parameters()
        );
    }
}

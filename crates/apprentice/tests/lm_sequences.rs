//! Where a student's training sequences come from: the `sequences` key of `[[objectives]]`
//! and its settings get one-line errors naming `objectives[i] (name).key`; the teacher's
//! continuations of sequence-level KD are the same for the same seed, kept in the run folder
//! and read back; and an on-policy student with λ = 1 trains on its own continuations at
//! every step (λ = 0: on the corpus, exactly as without on-policy training); batched
//! generation continues each prompt as generation of that prompt alone does.

mod common;

use apprentice::backend::ComputeDevice;
use apprentice::distill::optim::OptimizerSpec;
use apprentice::lm::config::{Continuations, LmExperimentConfig, SequenceSource};
use apprentice::lm::llama::{Llama, LlamaConfig};
use apprentice::lm::logit_cache::TopKLogits;
use apprentice::lm::objectives::{TokenDivergence, TokenLoss};
use apprentice::lm::sequences::{SequenceWriter, prompt_of, teacher_sequences};
use apprentice::lm::student::{LmBatch, StudentShape, init_student};
use apprentice::lm::teacher::batch_ids;
use apprentice::lm::train::{OnPolicy, TrainPlan, train_student};
use burn::tensor::Tensor;

const CONFIG: &str = r#"
name = "tiny"
[lm]
teacher = "teacher.gguf"
max_len = 12
[corpus]
path = "corpus.txt"
[student]
layers = 1
hidden = 16
heads = 2
kv_heads = 1
ffn = 32
[train]
steps = 4
batch_size = 2

[[objectives]]
name = "scratch"
kind = "ce"

[[objectives]]
name = "seqkd"
kind = "forward_kl"
sequences = "teacher"
prompt_tokens = 3

[[objectives]]
name = "gkd"
kind = "jsd"
beta = 0.5
sequences = "on_policy"
lambda = 0.5
prompt_tokens = 3
"#;

fn teacher_config() -> LlamaConfig {
    common::lm::tiny_llama(2)
}

fn corpus() -> Vec<Vec<u32>> {
    (0..6)
        .map(|r| {
            (0..4 + r)
                .map(|i| ((i * (r + 1) + r) % 40) as u32)
                .collect()
        })
        .collect()
}

fn settings(temperature: f64, seed: u64) -> Continuations {
    Continuations {
        prompt_tokens: 3,
        temperature,
        top_p: 1.0,
        seed,
    }
}

#[test]
fn the_sequences_key_and_its_settings_are_checked_with_one_line_naming_the_key() {
    let config = LmExperimentConfig::from_toml(CONFIG, "lm.toml").unwrap();
    let sources: Vec<SequenceSource> = config
        .objectives
        .iter()
        .enumerate()
        .map(|(i, o)| o.sequence_source(i, config.lm.max_len).unwrap())
        .collect();
    assert_eq!(sources[0], SequenceSource::Corpus);
    assert_eq!(sources[1], SequenceSource::Teacher(settings(0.0, 0)));
    assert_eq!(
        sources[2],
        SequenceSource::OnPolicy {
            lambda: 0.5,
            continuations: settings(1.0, 0)
        }
    );
    for (from, to, expected) in [
        (
            "kind = \"ce\"\n",
            "kind = \"ce\"\nprompt_tokens = 2\n",
            "objectives[0] (scratch).prompt_tokens: not a setting of sequences = \"corpus\"",
        ),
        (
            "kind = \"ce\"\n",
            "kind = \"ce\"\nlambda = 0.5\n",
            "objectives[0] (scratch).lambda",
        ),
        (
            "sequences = \"teacher\"\nprompt_tokens = 3",
            "sequences = \"teacher\"",
            "objectives[1] (seqkd).prompt_tokens: required by sequences = \"teacher\"",
        ),
        (
            "sequences = \"teacher\"\nprompt_tokens = 3",
            "sequences = \"teacher\"\nprompt_tokens = 12",
            "objectives[1] (seqkd).prompt_tokens: expected 1 to 11",
        ),
        (
            "sequences = \"teacher\"\nprompt_tokens = 3",
            "sequences = \"teacher\"\nprompt_tokens = 3\nlambda = 0.2",
            "objectives[1] (seqkd).lambda: not a setting of sequences = \"teacher\"",
        ),
        (
            "sequences = \"teacher\"\nprompt_tokens = 3",
            "sequences = \"teacher\"\nprompt_tokens = 3\nsample_temperature = -1.0",
            "objectives[1] (seqkd).sample_temperature",
        ),
        (
            "sequences = \"teacher\"\nprompt_tokens = 3",
            "sequences = \"teacher\"\nprompt_tokens = 3\ntop_p = 0.0",
            "objectives[1] (seqkd).top_p",
        ),
        (
            "lambda = 0.5\n",
            "",
            "objectives[2] (gkd).lambda: required by sequences = \"on_policy\"",
        ),
        (
            "lambda = 0.5\n",
            "lambda = 1.5\n",
            "objectives[2] (gkd).lambda: expected a probability in [0, 1], found 1.5",
        ),
        (
            "lambda = 0.5\n",
            "lambda = 0.5\nsample_seed = 3\n",
            "objectives[2] (gkd).sample_seed",
        ),
        (
            "kind = \"jsd\"\nbeta = 0.5\n",
            "kind = \"ce\"\n",
            "objectives[2] (gkd).sequences: on_policy needs the teacher's distributions",
        ),
        (
            "sequences = \"on_policy\"",
            "sequences = \"student\"",
            "sequences",
        ),
    ] {
        assert!(CONFIG.contains(from), "{from:?} not in the config");
        let text = CONFIG.replacen(from, to, 1);
        let message = LmExperimentConfig::from_toml(&text, "lm.toml")
            .expect_err(to)
            .to_string();
        assert!(!message.contains('\n'), "not one line: {message}");
        assert!(message.starts_with("lm.toml"), "{message}");
        assert!(message.contains(expected), "{to:?}: {message}");
    }
}

#[test]
fn sequence_level_kd_writes_the_same_corpus_for_a_seed_and_reads_it_back() {
    let device = ComputeDevice::cpu().inference();
    let config = teacher_config();
    let teacher = init_student(&config, 1, &device);
    let writer = SequenceWriter {
        model: &teacher,
        config: &config,
        stop: Some(7),
        sha256: "teacher-hash",
    };
    let corpus = corpus();
    let write = |settings: &Continuations, dir: &std::path::Path| {
        teacher_sequences(writer, &corpus, settings, 12, 4, dir, &device, &mut |_| {}).unwrap()
    };
    let sampled = settings(1.0, 3);
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, a_path, a_reused) = write(&sampled, a_dir.path());
    let (b, _, b_reused) = write(&sampled, b_dir.path());
    assert!(!a_reused && !b_reused);
    assert_eq!(a, b, "the same seed gives the same sequences");
    assert!(a_path.is_file() && a_path.starts_with(a_dir.path()));
    let (again, _, reused) = write(&sampled, a_dir.path());
    assert!(reused, "the run folder's sequences are read back");
    assert_eq!(again, a);
    for (sequence, text) in a.iter().zip(&corpus) {
        assert_eq!(&sequence[..3.min(text.len())], prompt_of(text, 3));
        assert!(sequence.len() <= 12);
        // Shorter than max_len only when the text-ending token was generated last.
        assert!(
            sequence.len() == 12 || sequence.last() == Some(&7),
            "{sequence:?}"
        );
    }
    let (other, other_path, _) = write(&settings(1.0, 4), a_dir.path());
    assert_ne!(other, a, "another seed samples other continuations");
    assert_ne!(
        other_path, a_path,
        "settings of their own get a file of their own"
    );
    // Greedy continuations do not depend on the seed.
    let (greedy, _, _) = write(&settings(0.0, 0), a_dir.path());
    let (greedy_again, _, _) = write(&settings(0.0, 9), b_dir.path());
    assert_eq!(greedy, greedy_again);
    assert!(greedy.iter().zip(&corpus).any(|(g, c)| g != c));
}

/// The teacher's top-k distributions (k = vocabulary − 1, so nearly exact) on `sequences`.
fn cache_of(teacher: &Llama, config: &LlamaConfig, sequences: &[Vec<u32>]) -> TopKLogits {
    let device = ComputeDevice::cpu().inference();
    let mut cache = TopKLogits::new(config.vocab_size - 1, config.vocab_size);
    for sequence in sequences {
        let input = vec![sequence[..sequence.len() - 1].to_vec()];
        let logits: Tensor<3> = teacher.forward(batch_ids(&input, config, &device).unwrap());
        let values = apprentice::backend::to_host(logits);
        cache.push_sequence(&values);
    }
    cache
}

#[test]
fn an_on_policy_student_with_lambda_one_trains_on_its_own_continuations() {
    let inference = ComputeDevice::cpu().inference();
    let device = ComputeDevice::cpu();
    let config = teacher_config();
    let teacher = init_student(&config, 1, &inference);
    let corpus = corpus();
    let cache = cache_of(&teacher, &config, &corpus);
    let shape = StudentShape {
        layers: 1,
        hidden: 16,
        heads: 2,
        kv_heads: 1,
        ffn: 32,
    };
    let student_config = shape.config(&config).unwrap();
    let optimizer = OptimizerSpec {
        lr: 1e-2,
        ..OptimizerSpec::default()
    };
    let train: Vec<usize> = (0..corpus.len()).collect();
    let loss = TokenLoss {
        divergence: TokenDivergence::Jsd { beta: 0.5 },
        temperature: 1.0,
        ce_weight: 0.0,
    };
    let run = |lambda: Option<f64>| {
        let plan = TrainPlan {
            sequences: &corpus,
            train: &train,
            steps: 4,
            batch_size: 2,
            optimizer: &optimizer,
            seed: 0,
            eval_every: 0,
            curve: &corpus[..2],
            eval_batch: 4,
            on_policy: lambda.map(|lambda| OnPolicy {
                lambda,
                continuations: settings(1.0, 0),
                max_len: 12,
                stop: None,
                teacher: &teacher,
                teacher_config: &config,
            }),
        };
        let initial = init_student(&student_config, 2, &device.training());
        train_student(
            initial,
            &student_config,
            &plan,
            Some((&cache, &loss)),
            &device,
            &mut |_, _| {},
        )
        .unwrap()
    };
    let corpus_only = run(None);
    let never = run(Some(0.0));
    let always = run(Some(1.0));
    assert_eq!(corpus_only.on_policy_steps, 0);
    assert_eq!(never.on_policy_steps, 0);
    assert_eq!(
        never.curve.perplexity, corpus_only.curve.perplexity,
        "λ = 0 is training on the corpus"
    );
    assert_eq!(always.on_policy_steps, 4, "λ = 1: every step is on-policy");
    // The first point's loss is NaN (no step yet); the rest are the steps' mean losses.
    assert_ne!(
        always.curve.train_loss[1..],
        corpus_only.curve.train_loss[1..]
    );
    // On-policy steps train on full continuations (up to 12 tokens) from 3-token prompts:
    // 9 target tokens per row, 2 rows, 4 steps.
    let tokens = always.tokens_per_s * always.train_time_s;
    assert!((tokens - 72.0).abs() < 1e-6, "{tokens} tokens trained on");
    let half = run(Some(0.5));
    assert!(half.on_policy_steps <= 4);
    let again = run(Some(0.5));
    assert_eq!(again.on_policy_steps, half.on_policy_steps);
    assert_eq!(
        (&again.curve.train_loss[1..], &again.curve.perplexity),
        (&half.curve.train_loss[1..], &half.curve.perplexity),
        "the on-policy draws and samples follow the seed"
    );
}

#[test]
fn a_completion_batch_counts_only_the_tokens_after_the_prompt() {
    let device = ComputeDevice::cpu().inference();
    let sequences = vec![vec![1, 2, 3, 4, 5], vec![6, 7, 8]];
    let batch = LmBatch::completions(&sequences, &[2, 3], &device).unwrap();
    let mask = apprentice::backend::to_host(batch.mask);
    // Row 0 predicts tokens 3, 4, 5 (positions 1..4); row 1's prompt is all of it.
    assert_eq!(mask, vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn the_committed_sequences_config_reads_with_each_source() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs/lm-rotten-tomatoes-sequences.toml");
    let config = LmExperimentConfig::from_file(&path).unwrap();
    let sources: Vec<(String, SequenceSource)> = config
        .objectives
        .iter()
        .enumerate()
        .map(|(i, o)| {
            (
                o.name.clone(),
                o.sequence_source(i, config.lm.max_len).unwrap(),
            )
        })
        .collect();
    let find = |name: &str| sources.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(find("scratch"), SequenceSource::Corpus);
    assert_eq!(
        find("seqkd-ce"),
        SequenceSource::Teacher(Continuations {
            prompt_tokens: 4,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        })
    );
    assert!(matches!(
        find("gkd-on-policy-0.5"),
        SequenceSource::OnPolicy { lambda: 0.5, .. }
    ));
}

#[test]
fn batched_greedy_generation_continues_each_prompt_as_alone() {
    use apprentice::lm::generate::{Sampling, generate, generate_batch};
    use rand::SeedableRng;
    let device = ComputeDevice::cpu().inference();
    let config = teacher_config();
    let model = init_student(&config, 5, &device);
    let prompts = vec![vec![1, 2, 3], vec![9, 8, 7], vec![30, 4, 4]];
    let mut rngs: Vec<rand_chacha::ChaCha8Rng> =
        (0..3).map(rand_chacha::ChaCha8Rng::seed_from_u64).collect();
    let greedy = Sampling::greedy();
    let batched = generate_batch(
        &model, &config, &prompts, 8, &greedy, &mut rngs, None, &device,
    )
    .unwrap();
    for (prompt, row) in prompts.iter().zip(&batched) {
        let alone = generate(&model, &config, prompt, 8, &greedy, None, &device).unwrap();
        assert_eq!(row, &alone);
    }
    // A row stops after the stop token; the others go on.
    let stop = batched[0][2];
    let stopped = generate_batch(
        &model,
        &config,
        &prompts,
        8,
        &greedy,
        &mut rngs,
        Some(stop),
        &device,
    )
    .unwrap();
    let first = batched[0].iter().position(|&t| t == stop).unwrap();
    assert_eq!(stopped[0], batched[0][..=first]);
    assert!(
        generate_batch(
            &model,
            &config,
            &[vec![1], vec![1, 2]],
            2,
            &greedy,
            &mut rngs[..2],
            None,
            &device
        )
        .is_err()
    );
}

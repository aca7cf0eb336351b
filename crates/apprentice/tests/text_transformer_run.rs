//! The transformer parts of a text run, on a small random BERT so that they run in seconds:
//! - fine-tuning by KD reads the teacher's logits row for row: with α = 1 it is exactly
//!   cross-entropy, with α = 0 and a teacher that inverts the labels the student learns the
//!   inversion;
//! - a wrong number of teacher logits is an error, not a panic;
//! - texts past the labels (a transfer set) learn from the teacher alone: the loss leaves them
//!   out of the label term, a teacher teaching on them lifts a student that has few labels,
//!   and fewer labels than texts without a teacher is an error;
//! - the text experiment file's teacher and transformer-student tables: a valid fine-tuning
//!   config parses, and keys that do not fit the teacher's kind are one-line errors naming
//!   the key; the inner-layer entries of the two-stage config name one student each.

use apprentice::backend::ComputeDevice;
use apprentice::distill::loss::{KdWeights, cross_entropy, kd_loss, labelled_mask, soft_target_kl};
use apprentice::text::bert::{Bert, BertConfig};
use apprentice::text::classifier::{BertClassifier, ClassifierPooling};
use apprentice::text::config::TextExperimentConfig;
use apprentice::text::finetune::{
    FinetuneObjective, FinetuneSettings, FinetuneValidation, finetune_with,
};
use apprentice::text::plans::student_plans;

fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 50, "hidden_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 3, "intermediate_size": 40, "max_position_embeddings": 32
    }))
    .unwrap()
}

/// `[CLS] … [SEP]` sequences: class 1 draws its pieces from ids 3..26, class 0 from 26..50.
fn task(count: usize) -> (Vec<Vec<u32>>, Vec<u32>) {
    let mut state = 777u64;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut sequences = Vec::new();
    let mut labels = Vec::new();
    for k in 0..count {
        let positive = k % 3 != 0;
        let base = if positive { 3 } else { 26 };
        let mut s = vec![1u32];
        s.extend((0..3 + next(8) as usize).map(|_| base + next(23) as u32));
        s.push(2);
        sequences.push(s);
        labels.push(positive as u32);
    }
    (sequences, labels)
}

fn classifier(config: &BertConfig) -> BertClassifier {
    let device = ComputeDevice::cpu().training();
    device.seed(3);
    BertClassifier::new(
        Bert::random(config, &device),
        config,
        2,
        ClassifierPooling::Cls,
        &device,
    )
}

fn settings(epochs: usize) -> FinetuneSettings {
    FinetuneSettings {
        epochs,
        batch_size: 16,
        lr: 5e-3,
        max_length: 32,
        seed: 4,
        ..FinetuneSettings::default()
    }
}

/// Logits that put `margin` on the class `pick(label)`.
fn logits_for(labels: &[u32], margin: f32, pick: impl Fn(u32) -> u32) -> Vec<f32> {
    labels
        .iter()
        .flat_map(|&l| {
            if pick(l) == 1 {
                [0.0, margin]
            } else {
                [margin, 0.0]
            }
        })
        .collect()
}

#[test]
fn kd_fine_tuning_reads_the_teacher_row_for_row() {
    let config = tiny_config();
    let (sequences, labels) = task(96);
    let device = ComputeDevice::cpu().training();
    let initial = classifier(&config);
    let inverted = logits_for(&labels, 6.0, |l| 1 - l);
    let run = |objective, epochs| {
        finetune_with(
            initial.clone(),
            &config,
            &sequences,
            &labels,
            objective,
            Some(FinetuneValidation {
                sequences: &sequences,
                labels: &labels,
            }),
            &settings(epochs),
            &device,
            &mut (),
        )
        .unwrap()
    };
    // α = 1: the soft term has weight 0, so the run is cross-entropy's, step for step.
    let labels_only = run(FinetuneObjective::Labels, 2);
    let kd_alpha_one = run(
        FinetuneObjective::Kd {
            teacher_logits: &inverted,
            weights: KdWeights {
                temperature: 2.0,
                alpha: 1.0,
            },
        },
        2,
    );
    assert_eq!(labels_only.step_losses, kd_alpha_one.step_losses);
    assert_eq!(labels_only.validation_accuracy.len(), 2);
    assert_eq!(labels_only.learning_rate.len(), 2);

    // α = 0: only the teacher teaches. One that inverts every label, row for row, makes a
    // student that is wrong on (almost) every training text; a misaligned row would not.
    let taught = run(
        FinetuneObjective::Kd {
            teacher_logits: &inverted,
            weights: KdWeights {
                temperature: 1.0,
                alpha: 0.0,
            },
        },
        10,
    );
    let accuracy = *taught.validation_accuracy.last().unwrap();
    assert!(
        accuracy < 0.1,
        "accuracy {accuracy} on the labels the teacher inverts"
    );
    let by_labels = run(FinetuneObjective::Labels, 10);
    let accuracy = *by_labels.validation_accuracy.last().unwrap();
    assert!(
        accuracy > 0.9,
        "accuracy {accuracy} when trained on the labels"
    );
}

#[test]
fn a_wrong_number_of_teacher_logits_is_an_error() {
    let config = tiny_config();
    let (sequences, labels) = task(20);
    let short = vec![0.0; 2 * 19];
    let error = finetune_with(
        classifier(&config),
        &config,
        &sequences,
        &labels,
        FinetuneObjective::Kd {
            teacher_logits: &short,
            weights: KdWeights {
                temperature: 2.0,
                alpha: 0.5,
            },
        },
        None,
        &settings(1),
        &ComputeDevice::cpu().training(),
        &mut (),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("38 teacher logits for 20 sequences"),
        "{error}"
    );
}

#[test]
fn teacher_and_transformer_student_tables_are_checked() {
    let good = include_str!("../../../configs/rotten-tomatoes-finetune.toml");
    let config = TextExperimentConfig::from_toml(good, "ft.toml").unwrap();
    assert!(
        !config.embedding_student(),
        "no embedding student without the head teacher"
    );
    let recipe = config.teacher.finetune.clone().unwrap();
    assert_eq!((recipe.epochs, recipe.max_length), (2, 64));
    // The frozen-encoder config still reads, with its embedding student.
    let head = include_str!("../../../configs/rotten-tomatoes.toml");
    assert!(
        TextExperimentConfig::from_toml(head, "rt.toml")
            .unwrap()
            .embedding_student()
    );

    let cases = [
        (
            good.replace("kind = \"finetune\"", "kind = \"folder\""),
            "teacher.folder: expected the path",
        ),
        (
            good.replace("kind = \"finetune\"", "kind = \"finetune\"\nhidden = [64]"),
            "teacher: hidden, dropout and [teacher.train]",
        ),
        (
            good.replace("temperature = 4.0", "temperature = 4.0\nembedding = true"),
            "distill.embedding: regressing the teacher's sentence embeddings",
        ),
        (
            good.replace(
                "kinds = [\"shallow\", \"narrow\", \"cnn\"]",
                "kinds = [\"narrow\", \"cnn\"]",
            ),
            "students.shallow: set, but \"shallow\" is not in students.kinds",
        ),
        (
            good.replace("lr = 1e-4\nweight_decay = 0.01\nwarmup_ratio = 0.1\nmax_grad_norm = 1.0\nmax_length = 64\npooling",
                "lr = -1.0\nweight_decay = 0.01\nwarmup_ratio = 0.1\nmax_grad_norm = 1.0\nmax_length = 64\npooling"),
            "teacher.finetune.lr: expected a positive number",
        ),
        (
            good.replace("layers = [0, 2, 4]", "layers = []"),
            "students.shallow.layers: expected at least one layer",
        ),
        (
            good.replace("hidden = 192\nheads = 12", "hidden = 30\nheads = 4"),
            "students.narrow.heads: expected a divisor of hidden 30",
        ),
        (
            good.replace("pooling = \"cls\"", "pooling = \"cls\"\ndropout = 1.5"),
            "teacher.finetune.dropout: expected a probability in [0, 1), found 1.5",
        ),
        (
            good.replace("max_train = 800", "max_train = 0"),
            "data.max_train: expected at least 1",
        ),
        (
            good.replace("alpha = 0.5", "alpha = 0.5\nunlabelled_texts = 0"),
            "distill.unlabelled_texts: expected at least 1",
        ),
        (
            good.replace("max_train = 800", "")
                .replace("alpha = 0.5", "alpha = 0.5\nunlabelled_texts = 100"),
            "distill.unlabelled_texts: the unlabelled texts are the training texts that \
             data.max_train leaves out; set data.max_train",
        ),
        (
            // The narrow student trains for 6 epochs: 6 first epochs leave no KD.
            good.replace(
                "loss = \"attention\"",
                "loss = \"attention\"\nfirst_epochs = 6\nstudents = [\"narrow\"]",
            ),
            "distill.layers[1] (attention).first_epochs: 6 leaves no epoch of logit KD to the \
             narrow student's 6 (students.narrow.train.epochs); expected fewer",
        ),
    ];
    for (text, expected) in cases {
        let error = TextExperimentConfig::from_toml(&text, "ft.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{expected}: {error}");
        assert!(!error.contains('\n'), "{error}");
    }
}

#[test]
fn the_label_term_leaves_out_the_texts_past_the_labels() {
    let device = ComputeDevice::cpu().inference();
    let student = apprentice::backend::matrix(
        vec![0.3, -1.2, 2.0, 0.1, -0.4, 0.9, 1.5, 1.5, -2.0, 0.7],
        5,
        2,
        &device,
    );
    let teacher = apprentice::backend::matrix(
        vec![1.0, 0.0, -0.5, 2.5, 0.2, 0.2, 3.0, -1.0, 0.0, 1.0],
        5,
        2,
        &device,
    );
    // Rows 1 and 3 are past the first 3 texts (indices 3 and 4 of the training texts).
    let batch = [0, 4, 2, 3, 1];
    let labels = [1, 1, 0, 0, 1];
    let weights = KdWeights {
        temperature: 2.0,
        alpha: 0.4,
    };
    let (masked_labels, mask) = labelled_mask(&batch, &labels, 3, &device);
    assert_eq!(masked_labels, [1, 0, 0, 0, 1]);
    let ours = apprentice::backend::scalar(kd_loss(
        student.clone(),
        teacher.clone(),
        apprentice::backend::class_indices(&masked_labels, &device),
        mask,
        weights,
    ));
    // The same loss another way: the soft term over all five rows, cross-entropy over the
    // three labelled rows alone.
    let keep = apprentice::backend::class_indices(&[0, 2, 4], &device);
    let labelled = student.clone().select(0, keep);
    let soft = apprentice::backend::scalar(soft_target_kl(student, teacher, 2.0));
    let hard = apprentice::backend::scalar(cross_entropy(
        labelled,
        apprentice::backend::class_indices(&[1, 0, 1], &device),
        None,
    ));
    let expected = 0.6 * soft + 0.4 * hard;
    assert!((ours - expected).abs() < 1e-6, "{ours} vs {expected}");
    // A batch of labelled texts only needs no mask.
    assert!(labelled_mask(&[0, 2], &labels, 3, &device).1.is_none());
}

#[test]
fn a_teacher_on_unlabelled_texts_lifts_a_student_with_few_labels() {
    let config = tiny_config();
    let (sequences, labels) = task(160);
    let (validation, validation_labels) = (&sequences[96..], &labels[96..]);
    // Two labelled texts of one piece each, one per class: they say almost nothing about the
    // other pieces, which only the unlabelled texts (and the teacher) show.
    let labelled = vec![vec![1u32, 3, 2], vec![1, 26, 2]];
    let labelled_classes = [1u32, 0];
    let mut train = labelled.clone();
    train.extend_from_slice(&sequences[2..96]);
    let mut classes = labelled_classes.to_vec();
    classes.extend_from_slice(&labels[2..96]);
    // A teacher that is right on every training text, with a clear margin.
    let teacher = logits_for(&classes, 4.0, |l| l);
    let weights = KdWeights {
        temperature: 2.0,
        alpha: 0.5,
    };
    let device = ComputeDevice::cpu().training();
    // One initial model for both runs (burn's generator is shared by the tests running
    // beside this one, so two draws would differ from run to run).
    let initial = classifier(&config);
    let run = |texts: &[Vec<u32>], epochs| {
        let outcome = finetune_with(
            initial.clone(),
            &config,
            texts,
            &labelled_classes,
            FinetuneObjective::Kd {
                teacher_logits: &teacher[..2 * texts.len()],
                weights,
            },
            Some(FinetuneValidation {
                sequences: validation,
                labels: validation_labels,
            }),
            &settings(epochs),
            &device,
            &mut (),
        )
        .unwrap();
        *outcome.validation_accuracy.last().unwrap()
    };
    // The 2 labelled texts alone, with as many steps as the run with the unlabelled ones.
    let few = run(&labelled, 48);
    let with_unlabelled = run(&train, 8);
    assert!(
        with_unlabelled > 0.9 && with_unlabelled > few + 0.2,
        "validation accuracy {with_unlabelled} with 94 unlabelled texts, {few} without"
    );

    // Without a teacher every text needs its label.
    let error = finetune_with(
        classifier(&config),
        &config,
        &train,
        &labels[..4],
        FinetuneObjective::Labels,
        None,
        &settings(1),
        &device,
        &mut (),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("96 sequences and 4 labels"), "{error}");
}

#[test]
fn the_layer_stages_config_names_one_student_per_entry_and_architecture() {
    let text = include_str!("../../../configs/rotten-tomatoes-layer-stages.toml");
    let config = TextExperimentConfig::from_toml(text, "stages.toml").unwrap();
    let names: Vec<(String, &str)> = student_plans(&config)
        .into_iter()
        .map(|p| (p.name, p.method))
        .collect();
    let expected = [
        ("shallow", "ce"),
        ("shallow-kd", "kd"),
        ("shallow-hidden-then-kd", "hidden,kd"),
        ("shallow-attention-then-kd", "attention,kd"),
        ("shallow-value-relation-then-kd", "value-relation,kd"),
        ("shallow-cosine-then-kd", "cosine,kd"),
        ("shallow-kd-hidden-w0.1", "kd+hidden"),
        ("shallow-kd-attention-w0.1", "kd+attention"),
        ("shallow-kd-value-relation-w0.1", "kd+value-relation"),
        ("shallow-kd-cosine-w0.1", "kd+cosine"),
        ("narrow", "ce"),
        ("narrow-kd", "kd"),
        ("narrow-hidden-then-kd", "hidden,kd"),
        ("narrow-attention-then-kd", "attention,kd"),
        ("narrow-value-relation-then-kd", "value-relation,kd"),
        ("narrow-kd-hidden-w0.1", "kd+hidden"),
        ("narrow-kd-attention-w0.1", "kd+attention"),
        ("narrow-kd-value-relation-w0.1", "kd+value-relation"),
    ];
    let got: Vec<(&str, &str)> = names.iter().map(|(n, m)| (n.as_str(), *m)).collect();
    assert_eq!(got, expected);
    // Every distilled student is compared with the scratch student of its architecture.
    for (name, _) in &got[2..10] {
        assert_eq!(
            apprentice::text::plans::scratch_baseline(name),
            Some("shallow")
        );
    }
    for (name, _) in &got[11..] {
        assert_eq!(
            apprentice::text::plans::scratch_baseline(name),
            Some("narrow")
        );
    }
}

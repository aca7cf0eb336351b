//! Inner-layer distillation as an objective (`[[distill.layers]]`), on small random BERTs:
//! - a student equal to its teacher has every inner-layer loss at zero, a different one not;
//! - the layer maps and shape checks: each mismatch is a one-line error naming the entry;
//! - training with the hidden-state loss brings the student's hidden states closer to the
//!   teacher's than logit KD alone, and a narrower student learns its projection;
//! - the same seed gives the same steps;
//! - in two stages (`first_epochs`), the first learns from the inner-layer loss alone (its
//!   steps do not read the teacher's logits or the labels), the second from logit KD.
//!
//! The losses' values and gradients are checked against numpy and finite differences in
//! `transformer_losses.rs`; this file checks how a run wires them.

use apprentice::backend::ComputeDevice;
use apprentice::distill::loss::KdWeights;
use apprentice::text::bert::{Bert, BertConfig, BertDropout};
use apprentice::text::classifier::{BertClassifier, ClassifierPooling, batch_tensors};
use apprentice::text::finetune::{
    FinetuneObjective, FinetuneOutcome, FinetuneSettings, finetune_with,
};
use apprentice::text::layer_distill::{
    LayerLossConfig, LayerLossKind, LayerMapSpec, LayerTeacher, NamedMap,
};
use apprentice::text::transformer_students::{narrow_config, shallow_copy};
use burn::module::Module;
use burn::tensor::Device;
use std::sync::{Mutex, MutexGuard};

fn teacher_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 50, "hidden_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 3, "intermediate_size": 40, "max_position_embeddings": 32,
        "initializer_range": 0.3
    }))
    .unwrap()
}

/// burn's generator for a device is shared by the whole process: the tests of this file take
/// turns, so that each draws the same weights whatever runs beside it.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn entry(loss: LayerLossKind) -> LayerLossConfig {
    LayerLossConfig {
        loss,
        weight: 1.0,
        map: None,
        heads: None,
        students: None,
        first_epochs: None,
    }
}

const KINDS: [LayerLossKind; 4] = [
    LayerLossKind::Hidden,
    LayerLossKind::Attention,
    LayerLossKind::ValueRelation,
    LayerLossKind::Cosine,
];

fn sequences() -> Vec<Vec<u32>> {
    (0..12u32)
        .map(|k| {
            let mut s = vec![1];
            s.extend((0..3 + k % 5).map(|i| 3 + (k * 7 + i * 5) % 45));
            s.push(2);
            s
        })
        .collect()
}

fn random_bert(config: &BertConfig, seed: u64, device: &Device) -> Bert {
    device.seed(seed);
    Bert::random(config, device)
}

/// The inner-layer loss of `student` against `teacher` on every sequence at once.
fn measure(teacher: &LayerTeacher, student: &Bert, device: &Device) -> f64 {
    let texts = sequences();
    let batch: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
    let (ids, mask) = batch_tensors(&batch, 0, 32, device);
    let output = student.forward_detailed(ids.clone(), mask.clone(), &BertDropout::default());
    let projection = teacher.projection(device);
    apprentice::backend::scalar(teacher.loss(&output, ids, mask, projection.as_ref())) as f64
}

#[test]
fn a_student_equal_to_its_teacher_has_zero_inner_layer_losses() {
    let _turn = serial();
    let device = ComputeDevice::cpu().training();
    let config = teacher_config();
    let teacher = random_bert(&config, 5, &device);
    let (copy, copy_config) = shallow_copy(&teacher, &config, &[0, 1], &device).unwrap();
    let other = random_bert(&config, 6, &device);
    for kind in KINDS {
        let layers =
            LayerTeacher::new(&entry(kind), 0, &teacher, &config, &copy_config, &device).unwrap();
        let same = measure(&layers, &copy, &device);
        let different = measure(&layers, &other, &device);
        assert!(same.abs() < 1e-5, "{kind:?}: {same} for the teacher itself");
        assert!(different > 1e-3, "{kind:?}: {different} for another model");
    }
}

#[test]
fn shapes_that_do_not_fit_are_one_line_errors_naming_the_entry() {
    let _turn = serial();
    let device = ComputeDevice::cpu().training();
    let config = teacher_config();
    let teacher = random_bert(&config, 5, &device);
    let narrow = narrow_config(&config, 1, 10, 2).unwrap();
    let error = |entry: LayerLossConfig| {
        LayerTeacher::new(&entry, 2, &teacher, &config, &narrow, &device)
            .unwrap_err()
            .to_string()
    };
    let cases = [
        (
            entry(LayerLossKind::Cosine),
            "distill.layers[2] (cosine): the cosine loss compares hidden states of equal width; the student's is 10, the teacher's 24",
        ),
        (
            entry(LayerLossKind::Attention),
            "distill.layers[2] (attention): attention transfer needs the same number of heads; the student has 2, the teacher 3",
        ),
        (
            entry(LayerLossKind::ValueRelation),
            "distill.layers[2] (value-relation).heads: 3 relation heads must divide both widths",
        ),
        (
            LayerLossConfig {
                map: Some(LayerMapSpec::Pairs(vec![(1, 3)])),
                ..entry(LayerLossKind::Hidden)
            },
            "distill.layers[2] (hidden).map: layer map: pair (1, 3) is outside",
        ),
        (
            LayerLossConfig {
                map: Some(LayerMapSpec::Pairs(vec![(0, 0)])),
                ..entry(LayerLossKind::Attention)
            },
            "layer 0 (the embeddings) has no attention",
        ),
    ];
    for (entry, expected) in cases {
        let message = error(entry);
        assert!(message.contains(expected), "{expected}\n{message}");
        assert!(!message.contains('\n'), "{message}");
    }
    // What does fit: a learned projection for the hidden states, relation heads that divide
    // both widths, the uniform map of TinyBERT.
    for entry in [
        entry(LayerLossKind::Hidden),
        LayerLossConfig {
            heads: Some(2),
            ..entry(LayerLossKind::ValueRelation)
        },
        LayerLossConfig {
            map: Some(LayerMapSpec::Named(NamedMap::Uniform)),
            ..entry(LayerLossKind::Cosine)
        },
    ] {
        let narrow_ok = entry.loss != LayerLossKind::Cosine;
        let student = if narrow_ok { &narrow } else { &config };
        let layers = LayerTeacher::new(&entry, 0, &teacher, &config, student, &device).unwrap();
        assert_eq!(
            layers.projection(&device).is_some(),
            entry.loss == LayerLossKind::Hidden
        );
    }
}

fn task() -> (Vec<Vec<u32>>, Vec<u32>) {
    let texts = sequences();
    let labels = texts.iter().map(|s| s[1] % 2).collect();
    (texts, labels)
}

fn settings() -> FinetuneSettings {
    FinetuneSettings {
        epochs: 8,
        batch_size: 4,
        lr: 3e-3,
        max_length: 32,
        seed: 9,
        ..FinetuneSettings::default()
    }
}

/// Fine-tunes a classifier over `student` (shape `config`, head drawn from seed 11) by KD
/// from `teacher_logits`, plus `layers` when given, with `settings`.
fn finetune_student(
    student: &Bert,
    config: &BertConfig,
    layers: Option<&LayerTeacher>,
    teacher_logits: &[f32],
    labels: &[u32],
    settings: &FinetuneSettings,
) -> FinetuneOutcome {
    let device = ComputeDevice::cpu().training();
    let texts = sequences();
    device.seed(11);
    let classifier = BertClassifier::new(
        student.clone().fork(&device),
        config,
        2,
        ClassifierPooling::Cls,
        &device,
    );
    let weights = KdWeights {
        temperature: 2.0,
        alpha: 0.5,
    };
    let objective = match layers {
        Some(layers) => FinetuneObjective::KdLayers {
            teacher_logits,
            weights,
            layers,
        },
        None => FinetuneObjective::Kd {
            teacher_logits,
            weights,
        },
    };
    finetune_with(
        classifier,
        config,
        &texts,
        labels,
        objective,
        None,
        settings,
        &device,
        &mut (),
    )
    .unwrap()
}

/// Logits of a confident teacher that agrees with every label.
fn confident_logits(labels: &[u32]) -> Vec<f32> {
    labels
        .iter()
        .flat_map(|&l| if l == 1 { [0.0, 3.0] } else { [3.0, 0.0] })
        .collect()
}

/// Trains a classifier over `student` (shape `config`) by KD, plus `layers` when given.
fn train(
    student: &Bert,
    config: &BertConfig,
    layers: Option<&LayerTeacher>,
) -> (BertClassifier, Vec<f64>) {
    let (_, labels) = task();
    let logits = confident_logits(&labels);
    let outcome = finetune_student(student, config, layers, &logits, &labels, &settings());
    (outcome.model, outcome.step_losses)
}

#[test]
fn the_hidden_state_loss_pulls_the_student_towards_the_teacher() {
    let _turn = serial();
    let device = ComputeDevice::cpu().training();
    let config = teacher_config();
    let teacher = random_bert(&config, 5, &device);
    let student_config = narrow_config(&config, 1, 24, 3).unwrap();
    let student = random_bert(&student_config, 7, &device);
    let hidden = LayerLossConfig {
        weight: 5.0,
        ..entry(LayerLossKind::Hidden)
    };
    let layers =
        LayerTeacher::new(&hidden, 0, &teacher, &config, &student_config, &device).unwrap();
    let before = measure(&layers, &student, &device);
    let (by_kd, _) = train(&student, &student_config, None);
    let (by_layers, steps) = train(&student, &student_config, Some(&layers));
    let kd_distance = measure(&layers, &by_kd.bert.fork(&device), &device);
    let layer_distance = measure(&layers, &by_layers.bert.fork(&device), &device);
    assert!(
        layer_distance < 0.75 * kd_distance && layer_distance < before,
        "hidden-state loss after KD + hidden {layer_distance}, after KD alone {kd_distance}, \
         before {before}"
    );
    // Deterministic for a seed, dropout masks included.
    let (_, again) = train(&student, &student_config, Some(&layers));
    assert_eq!(steps, again);
}

#[test]
fn a_narrower_student_learns_its_projection_to_the_teachers_width() {
    let _turn = serial();
    let device = ComputeDevice::cpu().training();
    let config = teacher_config();
    let teacher = random_bert(&config, 5, &device);
    let narrow = narrow_config(&config, 1, 12, 3).unwrap();
    let student = random_bert(&narrow, 8, &device);
    for kind in [LayerLossKind::Hidden, LayerLossKind::ValueRelation] {
        let layers = LayerTeacher::new(
            &LayerLossConfig {
                heads: (kind == LayerLossKind::ValueRelation).then_some(4),
                ..entry(kind)
            },
            0,
            &teacher,
            &config,
            &narrow,
            &device,
        )
        .unwrap();
        let (_, steps) = train(&student, &narrow, Some(&layers));
        // Mean loss of the first and of the last epoch (3 steps each).
        let first: f64 = steps[..3].iter().sum::<f64>() / 3.0;
        let last: f64 = steps[steps.len() - 3..].iter().sum::<f64>() / 3.0;
        assert!(
            steps.iter().all(|s| s.is_finite()) && last < first,
            "{kind:?}: mean step loss {first} in the first epoch, {last} in the last"
        );
    }
}

/// Step losses and each epoch's first learning rate of a classifier over `student` trained
/// with `layers` for 4 epochs in the order `0, 1, …`, without dropout, from the given teacher
/// logits and labels.
fn steps_from(
    student: &Bert,
    config: &BertConfig,
    layers: &LayerTeacher,
    teacher_logits: &[f32],
    labels: &[u32],
) -> (Vec<f64>, Vec<f64>) {
    let count = sequences().len();
    let settings = FinetuneSettings {
        epochs: 4,
        dropout: Some(0.0),
        epoch_orders: Some(vec![(0..count).collect(); 4]),
        ..settings()
    };
    let outcome = finetune_student(
        student,
        config,
        Some(layers),
        teacher_logits,
        labels,
        &settings,
    );
    (outcome.step_losses, outcome.learning_rate)
}

#[test]
fn in_two_stages_the_first_learns_from_the_inner_layers_alone_then_from_the_logits() {
    let _turn = serial();
    let device = ComputeDevice::cpu().training();
    let config = teacher_config();
    let teacher = random_bert(&config, 5, &device);
    let student_config = narrow_config(&config, 1, 12, 3).unwrap();
    let student = random_bert(&student_config, 8, &device);
    let (texts, labels) = task();
    let confident = confident_logits(&labels);
    let reversed: Vec<f32> = confident.chunks(2).flat_map(|r| [r[1], r[0]]).collect();
    let flipped: Vec<u32> = labels.iter().map(|l| 1 - l).collect();
    // burn draws a parameter's initial values when it is first read: read both models once
    // here, so that every run below starts from the same weights.
    let warm = LayerTeacher::new(
        &entry(LayerLossKind::Hidden),
        0,
        &teacher,
        &config,
        &student_config,
        &device,
    )
    .unwrap();
    measure(&warm, &student, &device);
    for kind in KINDS.into_iter().filter(|k| *k != LayerLossKind::Cosine) {
        let staged = LayerLossConfig {
            first_epochs: Some(2),
            ..entry(kind)
        };
        let layers =
            LayerTeacher::new(&staged, 0, &teacher, &config, &student_config, &device).unwrap();
        let (steps, rates) = steps_from(&student, &student_config, &layers, &confident, &labels);
        let (other, _) = steps_from(&student, &student_config, &layers, &reversed, &flipped);
        // Each stage is a fine-tuning of its own: the schedule starts again at epoch 2.
        assert_eq!(rates.len(), 4);
        assert_eq!(
            (rates[2], rates[3]),
            (rates[0], rates[1]),
            "{kind:?}: {rates:?}"
        );
        assert!(rates[1] > 0.0, "{kind:?}: {rates:?}");
        // 12 texts in batches of 4: 3 steps per epoch, the first stage is steps 0 to 5.
        assert_eq!(steps.len(), 12);
        assert_eq!(
            steps[..6],
            other[..6],
            "{kind:?}: the first stage read the logits"
        );
        assert!(
            steps[6..].iter().zip(&other[6..]).all(|(a, b)| a != b),
            "{kind:?}: the second stage did not read the logits"
        );
        // The first step's loss is the inner-layer loss of the untrained student on the
        // first batch, nothing added (checked where no projection is drawn for the run).
        if layers.projection(&device).is_none() {
            let batch: Vec<&[u32]> = texts[..4].iter().map(Vec::as_slice).collect();
            let (ids, mask) = batch_tensors(&batch, 0, 32, &device);
            let output =
                student.forward_detailed(ids.clone(), mask.clone(), &BertDropout::default());
            let first = apprentice::backend::scalar(layers.loss(&output, ids, mask, None)) as f64;
            assert!(
                (steps[0] - first).abs() < 1e-6 * first.abs().max(1.0),
                "{kind:?}: first step {} against the inner-layer loss alone {first}",
                steps[0]
            );
        }
        // Summed (no first_epochs), the logits count from the first step.
        let summed =
            LayerTeacher::new(&entry(kind), 0, &teacher, &config, &student_config, &device)
                .unwrap();
        let (a, summed_rates) = steps_from(&student, &student_config, &summed, &confident, &labels);
        let (b, _) = steps_from(&student, &student_config, &summed, &reversed, &flipped);
        assert!(
            summed_rates[3] < summed_rates[1],
            "{kind:?}: {summed_rates:?}"
        );
        assert_ne!(
            a[0], b[0],
            "{kind:?}: summed, the first step did not read the logits"
        );
    }
}

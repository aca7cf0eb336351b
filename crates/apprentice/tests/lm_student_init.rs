//! Students initialised from the teacher (`[student] init`): the PCA embeddings of a synthetic
//! matrix keep its top components at the random embedding's scale; a `teacher-layers` student gives
//! the logits of the teacher cut down to those layers by hand, a `pca-embeddings` student's
//! token embeddings keep the teacher's similarities between tokens with the rest seeded as a
//! random student's, and students that cannot start from the teacher get one line naming the
//! `[student]` key. The SmolLM2 tests skip, saying so, without the shared data folder.

mod common;

use std::sync::OnceLock;

use apprentice::backend::{ComputeDevice, to_host};
use apprentice::distill::optim::OptimizerSpec;
use apprentice::lm::llama::{Llama, LlamaConfig};
use apprentice::lm::objectives::{TokenDivergence, TokenLoss};
use apprentice::lm::student::{LmBatch, StudentShape, init_student, train_step};
use apprentice::lm::student_init::{
    PCA_EMBEDDING_STD, StudentInit, StudentInitializer, default_layers_from, pca_embeddings,
};
use apprentice::lm::teacher::Teacher;
use burn::tensor::{Device, Int, Tensor, TensorData};

fn teacher(test: &str) -> Option<&'static Teacher> {
    static TEACHER: OnceLock<Teacher> = OnceLock::new();
    let data = common::shared_data(test)?;
    Some(TEACHER.get_or_init(|| {
        let path = data.join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
        Teacher::open(&path, &ComputeDevice::cpu().inference()).unwrap()
    }))
}

fn logits(model: &Llama, ids: &[u32], device: &Device) -> Vec<f32> {
    let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    let len = ids.len();
    to_host(model.forward(Tensor::<2, Int>::from_data(
        TensorData::new(ids, [1, len]),
        device,
    )))
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// The teacher with only `layers` kept, built by hand from its own modules.
fn truncated(teacher: &Llama, layers: &[usize]) -> Llama {
    Llama {
        embed: teacher.embed.clone(),
        layers: layers.iter().map(|&i| teacher.layers[i].clone()).collect(),
        norm: teacher.norm.clone(),
        lm_head: None,
        heads: teacher.heads,
        kv_heads: teacher.kv_heads,
        rope_theta: teacher.rope_theta,
    }
}

fn tiny_teacher() -> (Llama, LlamaConfig) {
    let config = common::lm::tiny_llama(5);
    let model = init_student(&config, 11, &ComputeDevice::cpu().inference());
    (model, config)
}

fn same_shape(config: &LlamaConfig, layers: usize) -> StudentShape {
    StudentShape {
        layers,
        hidden: config.hidden,
        heads: config.heads,
        kv_heads: config.kv_heads,
        ffn: config.ffn,
    }
}

/// Pearson correlation of two samples.
fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let vy: f64 = y.iter().map(|b| (b - my) * (b - my)).sum();
    cov / (vx * vy).sqrt()
}

/// Cosine similarity of every pair of the rows `ids` of `matrix` (`rows × width`).
fn pair_cosines(matrix: &[f32], width: usize, ids: &[usize]) -> Vec<f64> {
    let row = |i: usize| &matrix[i * width..(i + 1) * width];
    let norm = |r: &[f32]| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
    let mut out = Vec::new();
    for (n, &i) in ids.iter().enumerate() {
        for &j in &ids[n + 1..] {
            let dot: f64 = row(i)
                .iter()
                .zip(row(j))
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            out.push(dot / (norm(row(i)) * norm(row(j))));
        }
    }
    out
}

/// 200 rows of width 6 around a non-zero mean: a strong direction `u`, a weaker one `w`,
/// and a little noise along a third; returns the rows and the two coefficients per row.
fn synthetic() -> (Vec<f32>, Vec<f64>, Vec<f64>) {
    let s = 1.0 / 2f64.sqrt();
    let u = [s, s, 0.0, 0.0, 0.0, 0.0];
    let w = [0.0, 0.0, s, -s, 0.0, 0.0];
    let noise = [0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let mean = [0.3, -0.2, 0.5, 0.1, 0.0, 0.7];
    let (mut rows, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..200 {
        let x = r as f64;
        let (ar, br, cr) = (
            5.0 * (0.37 * x).sin(),
            2.0 * (1.13 * x + 0.5).cos(),
            0.1 * (2.71 * x).sin(),
        );
        for d in 0..6 {
            rows.push((mean[d] + ar * u[d] + br * w[d] + cr * noise[d]) as f32);
        }
        a.push(ar);
        b.push(br);
    }
    (rows, a, b)
}

#[test]
fn pca_embeddings_keep_the_top_components_at_the_random_scale() {
    let (rows, a, b) = synthetic();
    let projected = pca_embeddings(&rows, 6, 2).unwrap();
    assert_eq!(projected.len(), 200 * 2);
    let column =
        |c: usize| -> Vec<f64> { projected.chunks_exact(2).map(|r| r[c] as f64).collect() };
    // The first coordinate follows the strong direction, the second the weaker one (up to
    // the sign each component is given).
    assert!(correlation(&column(0), &a).abs() > 0.999);
    assert!(correlation(&column(1), &b).abs() > 0.999);
    assert!(correlation(&column(0), &b).abs() < 0.1);
    // Centred, at the random embedding's scale, the variance ratio of the two kept.
    let values: Vec<f64> = projected.iter().map(|&v| v as f64).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let std = (values.iter().map(|v| v * v).sum::<f64>() / values.len() as f64).sqrt();
    assert!(mean.abs() < 1e-6, "mean {mean}");
    assert!((std - PCA_EMBEDDING_STD).abs() < 1e-6, "std {std}");
    let spread = |c: &[f64]| c.iter().map(|v| v * v).sum::<f64>().sqrt();
    let ratio = spread(&column(0)) / spread(&column(1));
    let expected = spread(&a) / spread(&b);
    assert!(
        (ratio / expected - 1.0).abs() < 0.01,
        "{ratio} vs {expected}"
    );
    // Deterministic.
    assert_eq!(pca_embeddings(&rows, 6, 2).unwrap(), projected);
}

#[test]
fn pca_embeddings_refuse_more_components_than_the_teacher_has() {
    let (rows, ..) = synthetic();
    let message = pca_embeddings(&rows, 6, 7).unwrap_err().to_string();
    assert!(message.contains("[student] hidden") && message.contains("found 7"));
    assert!(pca_embeddings(&rows[..7], 6, 2).is_err());
}

#[test]
fn default_layers_are_evenly_spaced_from_first_to_last() {
    assert_eq!(default_layers_from(2, 30), [0, 29]);
    assert_eq!(default_layers_from(4, 30), [0, 10, 19, 29]);
    assert_eq!(default_layers_from(1, 30), [0]);
    assert_eq!(default_layers_from(3, 3), [0, 1, 2]);
}

#[test]
fn a_teacher_layers_student_is_the_teacher_cut_to_those_layers() {
    let (teacher, config) = tiny_teacher();
    let student_config = same_shape(&config, 2).config(&config).unwrap();
    let init = StudentInitializer::new(
        StudentInit::TeacherLayers,
        Some(&[1, 3]),
        &teacher,
        &config,
        &student_config,
    )
    .unwrap();
    let training = ComputeDevice::cpu().training();
    let student = init.student(&teacher, &student_config, 0, &training);
    let ids = [3, 17, 5, 9, 22, 1];
    let inference = ComputeDevice::cpu().inference();
    let expected = logits(&truncated(&teacher, &[1, 3]), &ids, &inference);
    let got = logits(&student, &ids, &training);
    assert!(largest_difference(&got, &expected) < 1e-5);
    // Other layers give other logits, so the comparison can fail.
    let other = logits(&truncated(&teacher, &[1, 2]), &ids, &inference);
    assert!(largest_difference(&other, &expected) > 1e-2);
    // The seed plays no part, and the default layers are the first and the last.
    let again = init.student(&teacher, &student_config, 9, &training);
    assert_eq!(logits(&again, &ids, &training), got);
    let default = StudentInitializer::new(
        StudentInit::TeacherLayers,
        None,
        &teacher,
        &config,
        &student_config,
    )
    .unwrap();
    assert_eq!(default.layers_from(), Some(&[0, 4][..]));
    // The copies train (on the training device) and leave the teacher as it was.
    let batch = LmBatch::new(&[vec![1, 2, 3, 4, 5, 6], vec![6, 5, 4, 3, 2, 1]], &training).unwrap();
    let mut optimizer = OptimizerSpec::default().build();
    let loss = TokenLoss {
        divergence: TokenDivergence::ForwardKl,
        temperature: 1.0,
        ce_weight: 0.0,
    };
    let mut model = student;
    let mut values = Vec::new();
    for _ in 0..10 {
        let (next, value) = train_step(model, &mut optimizer, 1e-2, &batch, None, &loss).unwrap();
        model = next;
        values.push(value);
    }
    assert!(values[9] < 0.8 * values[0], "loss {values:?}");
    let after = logits(&truncated(&teacher, &[1, 3]), &ids, &inference);
    assert_eq!(after, expected);
}

#[test]
fn a_pca_embeddings_student_has_the_projection_and_seeded_layers() {
    let (teacher, config) = tiny_teacher();
    let shape = StudentShape {
        layers: 2,
        hidden: 8,
        heads: 2,
        kv_heads: 1,
        ffn: 16,
    };
    let student_config = shape.config(&config).unwrap();
    let init = StudentInitializer::new(
        StudentInit::PcaEmbeddings,
        None,
        &teacher,
        &config,
        &student_config,
    )
    .unwrap();
    let device = ComputeDevice::cpu().inference();
    let student = init.student(&teacher, &student_config, 4, &device);
    let random = init_student(&student_config, 4, &device);
    let expected = pca_embeddings(&to_host(teacher.embed.weight.val()), 32, 8).unwrap();
    assert_eq!(to_host(student.embed.weight.val()), expected);
    for (a, b) in student.layers.iter().zip(&random.layers) {
        assert_eq!(to_host(a.q.weight.val()), to_host(b.q.weight.val()));
        assert_eq!(to_host(a.down.weight.val()), to_host(b.down.weight.val()));
    }
    assert!(init.describe().unwrap().contains("from 32 to 8"));
    assert!(
        StudentInitializer::random()
            .student(&teacher, &student_config, 4, &device)
            .embed
            .weight
            .val()
            .to_data()
            == random.embed.weight.val().to_data()
    );
}

#[test]
fn students_that_cannot_start_from_the_teacher_get_one_line_naming_the_key() {
    let (teacher, config) = tiny_teacher();
    let refuse = |init: StudentInit, shape: StudentShape, layers: Option<&[usize]>| {
        let student_config = shape.config(&config).unwrap();
        StudentInitializer::new(init, layers, &teacher, &config, &student_config)
            .unwrap_err()
            .to_string()
    };
    let same = same_shape(&config, 2);
    for (shape, expected) in [
        (
            StudentShape { hidden: 16, ..same },
            "[student] hidden: init = \"teacher-layers\" copies the teacher's layers, so expected the teacher's 32, found 16",
        ),
        (
            StudentShape { heads: 8, ..same },
            "[student] heads: init = \"teacher-layers\" copies the teacher's layers, so expected the teacher's 4, found 8",
        ),
        (
            StudentShape {
                kv_heads: 4,
                ..same
            },
            "[student] kv_heads: init = \"teacher-layers\" copies the teacher's layers, so expected the teacher's 2, found 4",
        ),
        (
            StudentShape { ffn: 64, ..same },
            "[student] ffn: init = \"teacher-layers\" copies the teacher's layers, so expected the teacher's 48, found 64",
        ),
    ] {
        assert_eq!(refuse(StudentInit::TeacherLayers, shape, None), expected);
    }
    let message = refuse(StudentInit::TeacherLayers, same, Some(&[0, 5]));
    assert_eq!(
        message,
        "[student] layers_from: the teacher has layers 0 to 4, found 5"
    );
    let message = refuse(StudentInit::TeacherLayers, same, Some(&[0]));
    assert!(
        message.starts_with("[student] layers_from: expected 2"),
        "{message}"
    );
    let wide = StudentShape {
        hidden: 64,
        heads: 4,
        ..same
    };
    let message = refuse(StudentInit::PcaEmbeddings, wide, None);
    assert!(message.starts_with("[student] hidden:"), "{message}");
    assert!(
        message.contains("found 64") && !message.contains('\n'),
        "{message}"
    );
}

#[test]
fn smollm2_cut_to_its_first_and_last_layers_matches_a_teacher_layers_student() {
    let Some(teacher) = teacher("smollm2_cut_to_its_first_and_last_layers") else {
        return;
    };
    let student_config = same_shape(&teacher.config, 2)
        .config(&teacher.config)
        .unwrap();
    let init = StudentInitializer::new(
        StudentInit::TeacherLayers,
        Some(&[0, 29]),
        &teacher.model,
        &teacher.config,
        &student_config,
    )
    .unwrap();
    let training = ComputeDevice::cpu().training();
    let student = init.student(&teacher.model, &student_config, 0, &training);
    let ids = teacher.tokenizer.encode("This movie is").unwrap();
    let inference = ComputeDevice::cpu().inference();
    let expected = logits(&truncated(&teacher.model, &[0, 29]), &ids, &inference);
    let got = logits(&student, &ids, &training);
    let worst = largest_difference(&got, &expected);
    assert!(worst < 1e-4, "logits differ by {worst}");
    let full = logits(&teacher.model, &ids, &inference);
    assert!(largest_difference(&full, &expected) > 1.0);
}

#[test]
fn smollm2_pca_embeddings_keep_the_similarities_between_tokens() {
    let Some(teacher) = teacher("smollm2_pca_embeddings_keep_the_similarities") else {
        return;
    };
    let shape = StudentShape {
        layers: 1,
        hidden: 128,
        heads: 4,
        kv_heads: 2,
        ffn: 256,
    };
    let student_config = shape.config(&teacher.config).unwrap();
    let init = StudentInitializer::new(
        StudentInit::PcaEmbeddings,
        None,
        &teacher.model,
        &teacher.config,
        &student_config,
    )
    .unwrap();
    let device = ComputeDevice::cpu().inference();
    let student = init.student(&teacher.model, &student_config, 0, &device);
    let random = init_student(&student_config, 0, &device);
    // The teacher's rows share a large common part (the mean row's norm is most of a row's),
    // which says nothing about a token and which the centred PCA leaves out: the similarities
    // kept are those of the centred rows.
    let width = teacher.config.hidden;
    let embedding = to_host(teacher.model.embed.weight.val());
    let rows = embedding.len() / width;
    let mut mean = vec![0f64; width];
    for row in embedding.chunks_exact(width) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64 / rows as f64;
        }
    }
    let centred: Vec<f32> = embedding
        .chunks_exact(width)
        .flat_map(|row| row.iter().zip(&mean).map(|(&v, &m)| (v as f64 - m) as f32))
        .collect();
    // 200 tokens spread over the vocabulary: 19 900 pairs.
    let ids: Vec<usize> = (0..200).map(|i| 100 + 241 * i).collect();
    let reference = pair_cosines(&centred, width, &ids);
    let kept = correlation(
        &pair_cosines(&to_host(student.embed.weight.val()), 128, &ids),
        &reference,
    );
    let chance = correlation(
        &pair_cosines(&to_host(random.embed.weight.val()), 128, &ids),
        &reference,
    );
    eprintln!("cosine correlation with the teacher's: PCA {kept:.3}, random {chance:.3}");
    assert!(kept > 0.85, "PCA embeddings: correlation {kept}");
    assert!(
        chance.abs() < 0.1,
        "random embeddings: correlation {chance}"
    );
}

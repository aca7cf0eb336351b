//! The logit methods, DKD and DIST, against the numpy reference
//! (tests/fixtures/make_methods_reference.py, float64) and finite differences of themselves,
//! and for the properties their papers rely on: DKD's decomposition of Hinton's loss and its
//! warm-up, a minimum when the student matches the teacher, finite values for huge logits.

mod common;

use apprentice::backend::{ComputeDevice, class_indices, matrix, scalar, to_host};
use apprentice::distill::loss::soft_target_kl;
use apprentice::distill::methods::{
    DistSettings, DkdSettings, dist_loss, dist_parts, dkd_loss, dkd_parts, dkd_warmup_factor,
};
use burn::tensor::{Tensor, activation};
use common::methods::{
    DistCase, DkdCase, LOSS_TOLERANCE, assert_grad, assert_loss, check_finite_differences, fixture,
    grad_of, training,
};

fn dkd_settings(case: &DkdCase) -> DkdSettings {
    DkdSettings {
        alpha: case.alpha,
        beta: case.beta,
        temperature: case.temperature,
        ..DkdSettings::default()
    }
}

fn dkd_value_and_grad(case: &DkdCase, student: &[f32]) -> (f64, Vec<f32>) {
    let device = training();
    let s = matrix(student.to_vec(), case.batch, case.classes, &device).require_grad();
    let t = matrix(case.teacher.clone(), case.batch, case.classes, &device);
    let y = class_indices(&case.labels, &device);
    let loss = dkd_loss(s.clone(), t, y, &dkd_settings(case)).expect("dkd loss");
    let value = scalar(loss.clone()) as f64;
    (value, grad_of(&s, &loss.backward()))
}

#[test]
fn dkd_matches_the_numpy_reference() {
    let device = training();
    for case in fixture().dkd {
        let (value, grad) = dkd_value_and_grad(&case, &case.student);
        assert_loss(&case.name, value, case.loss);
        assert_grad(&case.name, &grad, &case.grad);
        let parts = dkd_parts(
            matrix(case.student.clone(), case.batch, case.classes, &device),
            matrix(case.teacher.clone(), case.batch, case.classes, &device),
            class_indices(&case.labels, &device),
            case.temperature,
        )
        .expect("dkd parts");
        for (ours, reference) in [(parts.tckd, &case.tckd), (parts.nckd, &case.nckd)] {
            for (i, (&o, &r)) in to_host(ours).iter().zip(reference).enumerate() {
                // Per-sample terms can be tiny next to the batch loss; hold them to its scale.
                assert!(
                    (o as f64 - r).abs() <= LOSS_TOLERANCE * r.abs().max(case.loss.abs()),
                    "{}: sample {i}: {o} vs reference {r}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn dkd_gradient_matches_finite_differences() {
    let fixture = fixture();
    let cases: Vec<&DkdCase> = fixture
        .dkd
        .iter()
        .filter(|c| c.classes <= 10 && c.student.iter().all(|v| v.abs() < 20.0))
        .take(4)
        .collect();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let (_, grad) = dkd_value_and_grad(case, &case.student);
        check_finite_differences(&case.name, &case.student, &grad, |s| {
            dkd_value_and_grad(case, s).0
        });
    }
}

/// T²·KL(p_t ‖ p_s) = TCKD + (1 − p_target^teacher)·NCKD for every sample, with Hinton's term
/// computed by the crate's own KD loss on each row.
#[test]
fn dkd_decomposes_hintons_loss() {
    let device = ComputeDevice::cpu().inference();
    for case in fixture().dkd {
        let student = matrix(case.student.clone(), case.batch, case.classes, &device);
        let teacher = matrix(case.teacher.clone(), case.batch, case.classes, &device);
        let parts = dkd_parts(
            student.clone(),
            teacher.clone(),
            class_indices(&case.labels, &device),
            case.temperature,
        )
        .expect("dkd parts");
        let (tckd, nckd) = (to_host(parts.tckd), to_host(parts.nckd));
        let teacher_probs = to_host(activation::softmax(teacher.clone() / case.temperature, 1));
        for i in 0..case.batch {
            let row = |m: &Tensor<2>| m.clone().slice([i..i + 1, 0..case.classes]);
            let kd = scalar(soft_target_kl(
                row(&student),
                row(&teacher),
                case.temperature,
            )) as f64;
            let p_target = teacher_probs[i * case.classes + case.labels[i] as usize] as f64;
            assert!(
                (p_target - case.teacher_target_probability[i]).abs() < 1e-6,
                "{}: sample {i}: teacher target probability",
                case.name
            );
            let decomposed = tckd[i] as f64 + (1.0 - p_target) * nckd[i] as f64;
            assert!(
                (kd - decomposed).abs() <= 1e-5 * kd.abs().max(1.0),
                "{}: sample {i}: KD {kd} but TCKD + (1 − p_t)·NCKD = {decomposed}",
                case.name
            );
        }
    }
}

#[test]
fn dkd_is_zero_when_the_student_matches_the_teacher_up_to_a_shift() {
    let device = training();
    let teacher = vec![
        0.3, -1.2, 2.5, 0.0, 4.0, -4.0, 1.0, 1.0, 7.5, -2.0, 0.1, 0.2,
    ];
    // Softmax ignores a constant added to a row, and so must DKD.
    let shifted: Vec<f32> = teacher
        .iter()
        .enumerate()
        .map(|(i, v)| v + [5.0, -3.0, 100.0][i / 4])
        .collect();
    let labels = class_indices(&[2, 0, 3], &device);
    for student in [teacher.clone(), shifted] {
        for temperature in [1.0, 4.0, 10.0] {
            let settings = DkdSettings {
                temperature,
                ..DkdSettings::default()
            };
            let loss = dkd_loss(
                matrix(student.clone(), 3, 4, &device),
                matrix(teacher.clone(), 3, 4, &device),
                labels.clone(),
                &settings,
            )
            .expect("dkd loss");
            // The shifted copy rounds differently in z/T; the KL of rounding-level differences
            // grows with T².
            let value = scalar(loss);
            assert!(
                (value.abs() as f64) < 5e-6 * temperature * temperature,
                "T {temperature}: {value}"
            );
        }
    }
}

#[test]
fn dkd_warmup_ramps_linearly_from_the_first_epoch() {
    assert_eq!(dkd_warmup_factor(1, 20), 0.05);
    assert_eq!(dkd_warmup_factor(10, 20), 0.5);
    assert_eq!(dkd_warmup_factor(20, 20), 1.0);
    assert_eq!(dkd_warmup_factor(240, 20), 1.0);
    assert_eq!(dkd_warmup_factor(1, 0), 1.0);
    assert_eq!(DkdSettings::default().warmup_factor(5), 0.25);
}

// ------------------------------------------------------------------------------------ DIST

fn dist_value_and_grad(case: &DistCase, student: &[f32]) -> (f64, Vec<f32>) {
    let device = training();
    let s = matrix(student.to_vec(), case.batch, case.classes, &device).require_grad();
    let t = matrix(case.teacher.clone(), case.batch, case.classes, &device);
    let settings = DistSettings {
        beta: case.beta,
        gamma: case.gamma,
        temperature: case.temperature,
    };
    let loss = dist_loss(s.clone(), t, &settings).expect("dist loss");
    let value = scalar(loss.clone()) as f64;
    (value, grad_of(&s, &loss.backward()))
}

#[test]
fn dist_matches_the_numpy_reference() {
    let device = training();
    for case in fixture().dist {
        let (value, grad) = dist_value_and_grad(&case, &case.student);
        assert_loss(&case.name, value, case.loss);
        assert_grad(&case.name, &grad, &case.grad);
        let parts = dist_parts(
            matrix(case.student.clone(), case.batch, case.classes, &device),
            matrix(case.teacher.clone(), case.batch, case.classes, &device),
            case.temperature,
        )
        .expect("dist parts");
        assert_loss(
            &format!("{} inter", case.name),
            scalar(parts.inter) as f64,
            case.inter,
        );
        assert_loss(
            &format!("{} intra", case.name),
            scalar(parts.intra) as f64,
            case.intra,
        );
    }
}

#[test]
fn dist_gradient_matches_finite_differences() {
    let fixture = fixture();
    let cases: Vec<&DistCase> = fixture
        .dist
        .iter()
        .filter(|c| c.classes <= 10 && c.student.iter().all(|v| v.abs() < 20.0))
        .take(4)
        .collect();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let (_, grad) = dist_value_and_grad(case, &case.student);
        check_finite_differences(&case.name, &case.student, &grad, |s| {
            dist_value_and_grad(case, s).0
        });
    }
}

/// 1 − Pearson(p, p) = ε/(|p − p̄|² + ε), so equal predictions give almost zero as long as every
/// row and column varies.
#[test]
fn dist_is_almost_zero_when_the_student_matches_the_teacher() {
    let device = training();
    let logits = vec![
        0.3, -1.2, 2.5, 0.0, 4.0, -4.0, 1.0, 1.5, 7.5, -2.0, 0.1, 0.2,
    ];
    for temperature in [1.0, 4.0] {
        let settings = DistSettings {
            temperature,
            ..DistSettings::default()
        };
        let loss = dist_loss(
            matrix(logits.clone(), 3, 4, &device),
            matrix(logits.clone(), 3, 4, &device),
            &settings,
        )
        .expect("dist loss");
        assert!(scalar(loss).abs() < 1e-3, "T {temperature}");
    }
}

/// A class whose probability is the same for every sample has no correlation to match: its
/// intra-class term is 1 − 0 = 1 even for a perfect student. This is DIST's definition (a
/// constant column has Pearson correlation 0 by the ε convention), not a defect.
#[test]
fn dist_intra_term_is_one_for_constant_columns() {
    let device = training();
    let same_rows = vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0];
    let parts = dist_parts(
        matrix(same_rows.clone(), 2, 3, &device),
        matrix(same_rows, 2, 3, &device),
        1.0,
    )
    .expect("dist parts");
    assert!(scalar(parts.inter).abs() < 1e-3);
    assert!((scalar(parts.intra) - 1.0).abs() < 1e-6);
}

// ------------------------------------------------------------------------------------ huge logits

#[test]
fn dkd_and_dist_stay_finite_for_huge_logits() {
    let device = training();
    for &magnitude in &[1e4f32, -1e4] {
        let student = vec![
            magnitude, -magnitude, 0.0, 0.5, //
            -magnitude, magnitude, 0.5, 0.0, //
            0.0, 0.0, magnitude, -magnitude,
        ];
        let teacher = vec![
            -magnitude, magnitude, 0.5, 0.0, //
            magnitude, 0.0, -magnitude, 0.5, //
            0.0, magnitude, 0.0, -magnitude,
        ];
        // Labels where the student is confidently wrong, the teacher confidently right, and
        // both certain of a class far from the label.
        let labels = [1u32, 0, 3];
        for temperature in [1.0, 4.0, 20.0] {
            let s = matrix(student.clone(), 3, 4, &device).require_grad();
            let t = matrix(teacher.clone(), 3, 4, &device);
            let dkd = dkd_loss(
                s.clone(),
                t.clone(),
                class_indices(&labels, &device),
                &DkdSettings {
                    temperature,
                    ..DkdSettings::default()
                },
            )
            .expect("dkd loss");
            let dist = dist_loss(
                s.clone(),
                t,
                &DistSettings {
                    temperature,
                    ..DistSettings::default()
                },
            )
            .expect("dist loss");
            for (name, loss) in [("dkd", dkd), ("dist", dist)] {
                let value = scalar(loss.clone());
                let grad = grad_of(&s, &loss.backward());
                assert!(
                    value.is_finite() && grad.iter().all(|g| g.is_finite()),
                    "{name}: magnitude {magnitude}, T {temperature}: loss {value}, grad {grad:?}"
                );
            }
        }
    }
}

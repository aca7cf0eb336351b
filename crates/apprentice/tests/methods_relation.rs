//! The relation methods, RKD, PKT and similarity-preserving KD, against the numpy reference
//! (tests/fixtures/make_methods_reference.py, float64) and finite differences of themselves,
//! and for the property they share: no loss for a rescaled copy of the teacher.

mod common;

use apprentice::backend::{matrix, scalar};
use apprentice::distill::methods::{
    AttentionSettings, PktSettings, RkdSettings, SpSettings, at_loss, flatten_feature, pkt_loss,
    rkd_loss, rkd_parts, sp_loss,
};
use apprentice::models::FeatureTensor;
use common::methods::{
    PktCase, RkdCase, SpCase, assert_grad, assert_loss, check_finite_differences, feature, fixture,
    flat_matrix, grad_of, tensor4, training,
};

fn rkd_value_and_grad(case: &RkdCase, student: &[f32]) -> (f64, Vec<f32>) {
    let device = training();
    let s = matrix(student.to_vec(), case.batch, case.student_dim, &device).require_grad();
    let t = matrix(case.teacher.clone(), case.batch, case.teacher_dim, &device);
    let settings = RkdSettings {
        distance_weight: case.distance_weight,
        angle_weight: case.angle_weight,
    };
    let loss = rkd_loss(s.clone(), t, &settings).expect("rkd loss");
    let value = scalar(loss.clone()) as f64;
    (value, grad_of(&s, &loss.backward()))
}

#[test]
fn rkd_matches_the_numpy_reference_and_finite_differences() {
    let device = training();
    for (index, case) in fixture().rkd.iter().enumerate() {
        let (value, grad) = rkd_value_and_grad(case, &case.student);
        if case.loss == 0.0 {
            // Two samples: both terms vanish identically.
            assert!(value.abs() < 1e-6, "{}: {value}", case.name);
            assert!(
                grad.iter().all(|g| g.abs() < 1e-5),
                "{}: {grad:?}",
                case.name
            );
            continue;
        }
        assert_loss(&case.name, value, case.loss);
        assert_grad(&case.name, &grad, &case.grad);
        let parts = rkd_parts(
            matrix(case.student.clone(), case.batch, case.student_dim, &device),
            matrix(case.teacher.clone(), case.batch, case.teacher_dim, &device),
        )
        .expect("rkd parts");
        assert_loss(
            &format!("{} distance", case.name),
            scalar(parts.distance) as f64,
            case.distance,
        );
        assert_loss(
            &format!("{} angle", case.name),
            scalar(parts.angle) as f64,
            case.angle,
        );
        if index < 2 {
            check_finite_differences(&case.name, &case.student, &grad, |s| {
                rkd_value_and_grad(case, s).0
            });
        }
    }
}

// ------------------------------------------------------------------------------------ PKT

fn pkt_value_and_grad(case: &PktCase, student: &[f32]) -> (f64, Vec<f32>) {
    let device = training();
    let s = matrix(student.to_vec(), case.batch, case.student_dim, &device).require_grad();
    let t = matrix(case.teacher.clone(), case.batch, case.teacher_dim, &device);
    let loss = pkt_loss(
        s.clone(),
        t,
        &PktSettings {
            weight: case.weight,
        },
    )
    .expect("pkt loss");
    let value = scalar(loss.clone()) as f64;
    (value, grad_of(&s, &loss.backward()))
}

#[test]
fn pkt_matches_the_numpy_reference_and_finite_differences() {
    for (index, case) in fixture().pkt.iter().enumerate() {
        let (value, grad) = pkt_value_and_grad(case, &case.student);
        assert_loss(&case.name, value, case.loss);
        assert_grad(&case.name, &grad, &case.grad);
        if index < 2 {
            check_finite_differences(&case.name, &case.student, &grad, |s| {
                pkt_value_and_grad(case, s).0
            });
        }
    }
}

// ------------------------------------------------------------------------------------ SP

fn sp_value_and_grads(
    case: &SpCase,
    override_pair: Option<(usize, &[f32])>,
) -> (f64, Vec<Vec<f32>>) {
    let device = training();
    let mut inputs = Vec::new();
    let mut pairs = Vec::new();
    for (index, pair) in case.pairs.iter().enumerate() {
        let values = match override_pair {
            Some((k, values)) if k == index => values,
            _ => &pair.student[..],
        };
        // Maps go through flatten_feature, as a caller holding network features would do.
        let student = if pair.student_shape.len() == 4 {
            let map = tensor4(values, &pair.student_shape, &device).require_grad();
            inputs.push(Ok(map.clone()));
            flatten_feature(FeatureTensor::Map(map))
        } else {
            let flat = flat_matrix(values, &pair.student_shape, &device).require_grad();
            inputs.push(Err(flat.clone()));
            flat
        };
        let teacher = flatten_feature(feature(&pair.teacher, &pair.teacher_shape, &device));
        pairs.push((student, teacher));
    }
    let loss = sp_loss(
        &pairs,
        &SpSettings {
            weight: case.weight,
        },
    )
    .expect("sp loss");
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    let per_pair = inputs
        .iter()
        .map(|input| match input {
            Ok(map) => grad_of(map, &grads),
            Err(flat) => grad_of(flat, &grads),
        })
        .collect();
    (value, per_pair)
}

#[test]
fn sp_matches_the_numpy_reference_and_finite_differences() {
    for (index, case) in fixture().sp.iter().enumerate() {
        let (value, grads) = sp_value_and_grads(case, None);
        assert_loss(&case.name, value, case.loss);
        for (k, (pair, grad)) in case.pairs.iter().zip(&grads).enumerate() {
            assert_grad(&format!("{} pair {k}", case.name), grad, &pair.grad);
        }
        if index < 2 {
            let pair = &case.pairs[0];
            check_finite_differences(&case.name, &pair.student, &grads[0], |s| {
                sp_value_and_grads(case, Some((0, s))).0
            });
        }
    }
}

// ------------------------------------------------------------------------------------ shared properties

/// The relation-based losses compare the student's geometry with the teacher's, which a
/// uniform rescaling of the student does not change: a student equal to the teacher, or to
/// three times the teacher, has (numerically) zero loss.
#[test]
fn relation_losses_are_zero_for_a_rescaled_copy_of_the_teacher() {
    let device = training();
    let values: Vec<f32> = (0..5 * 6)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
        .collect();
    let maps: Vec<f32> = (0..3 * 2 * 3 * 3)
        .map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0)
        .collect();
    for factor in [1.0f32, 3.0] {
        let scaled: Vec<f32> = values.iter().map(|v| v * factor).collect();
        let scaled_maps: Vec<f32> = maps.iter().map(|v| v * factor).collect();
        let teacher = matrix(values.clone(), 5, 6, &device);
        let student = matrix(scaled, 5, 6, &device);
        let losses = [
            (
                "rkd",
                rkd_loss(student.clone(), teacher.clone(), &RkdSettings::default()),
            ),
            (
                "pkt",
                pkt_loss(student.clone(), teacher.clone(), &PktSettings::default()),
            ),
            ("sp", sp_loss(&[(student, teacher)], &SpSettings::default())),
            (
                "at",
                at_loss(
                    &[(
                        tensor4(&scaled_maps, &[3, 2, 3, 3], &device),
                        tensor4(&maps, &[3, 2, 3, 3], &device),
                    )],
                    &AttentionSettings::default(),
                ),
            ),
        ];
        for (name, loss) in losses {
            let value = scalar(loss.expect(name));
            assert!(
                value.abs() < 1e-4,
                "{name}, student = {factor}·teacher: {value}"
            );
        }
    }
}

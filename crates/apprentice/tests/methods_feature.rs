//! The feature methods, FitNets and attention transfer, against the numpy reference
//! (tests/fixtures/make_methods_reference.py, float64) and finite differences of themselves,
//! and for the errors on features they cannot relate.

mod common;

use apprentice::backend::{matrix, scalar, to_host};
use apprentice::distill::methods::{
    AttentionSettings, FitNetRegressor, FitNetSettings, MethodError, at_loss, fitnet_loss,
};
use apprentice::models::FeatureTensor;
use burn::tensor::{Tensor, TensorData};
use common::methods::{
    AttentionCase, FitNetCase, assert_grad, assert_loss, check_finite_differences, feature,
    fixture, grad_of, tensor4, training,
};

fn fitnet_value_and_grad(case: &FitNetCase, student: &[f32]) -> (f64, Vec<f32>) {
    let device = training();
    let (s_width, t_width) = (case.student_shape[1], case.teacher_shape[1]);
    let regressor = FitNetRegressor::from_parameters(
        matrix(case.regressor_weight.clone(), s_width, t_width, &device).require_grad(),
        Tensor::from_data(
            TensorData::new(case.regressor_bias.clone(), [t_width]),
            &device,
        )
        .require_grad(),
    );
    let (input, student_feature) = match case.student_shape.len() {
        2 => {
            let x =
                matrix(student.to_vec(), case.student_shape[0], s_width, &device).require_grad();
            (Err(x.clone()), FeatureTensor::Flat(x))
        }
        _ => {
            let x = tensor4(student, &case.student_shape, &device).require_grad();
            (Ok(x.clone()), FeatureTensor::Map(x))
        }
    };
    let teacher = feature(&case.teacher, &case.teacher_shape, &device);
    let settings = FitNetSettings {
        weight: case.weight,
    };
    let loss = fitnet_loss(&regressor, student_feature, teacher, &settings).expect("fitnet loss");
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    assert!(
        regressor.layer.weight.val().grad(&grads).is_some(),
        "{}: the regressor learns",
        case.name
    );
    let grad = match input {
        Ok(map) => grad_of(&map, &grads),
        Err(flat) => grad_of(&flat, &grads),
    };
    (value, grad)
}

#[test]
fn fitnet_matches_the_numpy_reference_and_finite_differences() {
    for (index, case) in fixture().fitnet.iter().enumerate() {
        let (value, grad) = fitnet_value_and_grad(case, &case.student);
        assert_loss(&case.name, value, case.loss);
        assert_grad(&case.name, &grad, &case.grad);
        if index < 3 {
            check_finite_differences(&case.name, &case.student, &grad, |s| {
                fitnet_value_and_grad(case, s).0
            });
        }
    }
}

#[test]
fn fitnet_is_zero_for_an_identity_regressor_and_equal_features() {
    let device = training();
    let width = 3;
    let identity = FitNetRegressor::from_parameters(
        Tensor::eye(width, &device),
        Tensor::zeros([width], &device),
    );
    let values: Vec<f32> = (0..2 * width * 4)
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let map = |v: &[f32]| FeatureTensor::Map(tensor4(v, &[2, width, 2, 2], &device));
    let loss = fitnet_loss(
        &identity,
        map(&values),
        map(&values),
        &FitNetSettings::default(),
    )
    .expect("fitnet loss");
    assert!(scalar(loss).abs() < 1e-10);
}

#[test]
fn fitnet_regressors_are_drawn_from_their_seed() {
    let device = training();
    let weights = |seed| to_host(FitNetRegressor::new(6, 4, seed, &device).layer.weight.val());
    assert_eq!(weights(3), weights(3));
    assert_ne!(weights(3), weights(4));
    let bound = 1.0 / 6f32.sqrt();
    assert!(weights(3).iter().all(|w| w.abs() <= bound));
}

#[test]
fn fitnet_rejects_features_a_regressor_cannot_relate() {
    let device = training();
    let flat = FeatureTensor::Flat(Tensor::zeros([2, 4], &device));
    let map = FeatureTensor::Map(Tensor::zeros([2, 4, 3, 3], &device));
    let smaller_map = FeatureTensor::Map(Tensor::zeros([2, 4, 2, 2], &device));
    for (student, teacher) in [(&flat, &map), (&map, &smaller_map)] {
        let error = FitNetRegressor::for_features(student, teacher, 7, &device)
            .expect_err("no regressor relates these");
        assert!(matches!(error, MethodError::Shape { .. }), "{error}");
    }
    let regressor = FitNetRegressor::for_features(&map, &map, 7, &device).expect("same kind");
    assert_eq!((regressor.input_width(), regressor.output_width()), (4, 4));
    let error = fitnet_loss(
        &regressor,
        FeatureTensor::Map(Tensor::zeros([2, 5, 3, 3], &device)),
        map.clone(),
        &FitNetSettings::default(),
    )
    .expect_err("wrong student width");
    assert!(error.to_string().contains("5"), "{error}");
}

// ------------------------------------------------------------------------------------ attention

fn attention_value_and_grads(
    case: &AttentionCase,
    override_stage: Option<(usize, &[f32])>,
) -> (f64, Vec<Vec<f32>>) {
    let device = training();
    let mut inputs = Vec::new();
    let mut stages = Vec::new();
    for (index, stage) in case.stages.iter().enumerate() {
        let values = match override_stage {
            Some((k, values)) if k == index => values,
            _ => &stage.student[..],
        };
        let s = tensor4(values, &stage.student_shape, &device).require_grad();
        let t = tensor4(&stage.teacher, &stage.teacher_shape, &device);
        inputs.push(s.clone());
        stages.push((s, t));
    }
    let settings = AttentionSettings {
        weight: case.weight,
        p: case.p,
    };
    let loss = at_loss(&stages, &settings).expect("attention loss");
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    (value, inputs.iter().map(|s| grad_of(s, &grads)).collect())
}

#[test]
fn attention_transfer_matches_the_numpy_reference_and_finite_differences() {
    for (index, case) in fixture().attention.iter().enumerate() {
        let (value, grads) = attention_value_and_grads(case, None);
        assert_loss(&case.name, value, case.loss);
        for (k, (stage, grad)) in case.stages.iter().zip(&grads).enumerate() {
            assert_grad(&format!("{} stage {k}", case.name), grad, &stage.grad);
        }
        if index < 2 {
            let stage = &case.stages[0];
            check_finite_differences(&case.name, &stage.student, &grads[0], |s| {
                attention_value_and_grads(case, Some((0, s))).0
            });
        }
    }
}

#[test]
fn attention_transfer_rejects_maps_of_different_resolution() {
    let device = training();
    let stages = [(
        Tensor::<4>::ones([2, 3, 4, 4], &device),
        Tensor::<4>::ones([2, 5, 2, 2], &device),
    )];
    let error = at_loss(&stages, &AttentionSettings::default()).expect_err("4×4 vs 2×2");
    assert!(
        matches!(error, MethodError::Shape { .. }) && error.to_string().contains("4×4"),
        "{error}"
    );
    let error = at_loss(&[], &AttentionSettings::default()).expect_err("no stages");
    assert!(matches!(error, MethodError::Shape { .. }), "{error}");
}

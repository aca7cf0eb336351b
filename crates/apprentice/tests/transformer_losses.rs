//! The transformer distillation losses against the numpy reference
//! (`fixtures/transformer-losses/make_fixture.py`, values in `losses.json`) on a padded batch,
//! and their gradients against central finite differences.

use apprentice::backend::ComputeDevice;
use apprentice::text::layer_distill::relation_split;
use apprentice::text::losses::attention::attention_kl;
use apprentice::text::losses::cosine::cosine_hidden;
use apprentice::text::losses::hidden::hidden_mse;
use apprentice::text::losses::value_relation::value_relation_kl;
use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData, activation};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/transformer-losses/losses.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A nested JSON array as flat values and its shape.
fn flat(value: &Value) -> (Vec<f32>, Vec<usize>) {
    match value {
        Value::Array(items) => {
            let mut values = Vec::new();
            let mut inner = Vec::new();
            for item in items {
                let (v, s) = flat(item);
                values.extend(v);
                inner = s;
            }
            let mut shape = vec![items.len()];
            shape.extend(inner);
            (values, shape)
        }
        Value::Number(n) => (vec![n.as_f64().unwrap() as f32], vec![]),
        other => panic!("not a number: {other}"),
    }
}

fn tensor<const D: usize>(value: &Value, device: &Device) -> Tensor<D> {
    let (values, shape) = flat(value);
    let dims: [usize; D] = shape.try_into().unwrap();
    Tensor::from_data(TensorData::new(values, dims), device)
}

fn masked_softmax(scores: Tensor<4>, mask: Tensor<2>) -> Tensor<4> {
    let [batch, _, _, len] = scores.dims();
    let bias: Tensor<4> = ((mask - 1.0) * 1e9).reshape([batch, 1, 1, len]);
    activation::softmax(scores + bias, 3)
}

fn projection(f: &Value, device: &Device) -> Linear {
    Linear {
        weight: Param::from_tensor(tensor::<2>(&f["projection_weight"], device)),
        bias: Some(Param::from_tensor(tensor::<1>(
            &f["projection_bias"],
            device,
        ))),
    }
}

fn value(t: Tensor<1>) -> f64 {
    apprentice::backend::scalar(t) as f64
}

fn assert_close(ours: f64, reference: &Value, name: &str) {
    let reference = reference.as_f64().unwrap();
    assert!(reference > 0.05, "{name}: a non-trivial reference value");
    let error = (ours - reference).abs() / reference;
    assert!(error < 1e-5, "{name}: {ours} against numpy's {reference}");
}

#[test]
fn losses_match_the_numpy_reference() {
    let f = fixture();
    let device = ComputeDevice::cpu().inference();
    let mask = tensor::<2>(&f["mask"], &device);
    let loss = hidden_mse(
        tensor(&f["student_hidden"], &device),
        tensor(&f["teacher_hidden"], &device),
        Some(&projection(&f, &device)),
        mask.clone(),
    );
    assert_close(value(loss), &f["hidden_mse"], "hidden_mse");
    let student = masked_softmax(tensor(&f["student_scores"], &device), mask.clone());
    let loss = attention_kl(
        student,
        tensor(&f["teacher_attention"], &device),
        mask.clone(),
    );
    assert_close(value(loss), &f["attention_kl"], "attention_kl");
    let loss = value_relation_kl(
        tensor(&f["student_values"], &device),
        tensor(&f["teacher_values"], &device),
        mask.clone(),
    );
    assert_close(value(loss), &f["value_relation_kl"], "value_relation_kl");
    // Models of different head counts compare values regrouped into shared relation heads.
    let loss = value_relation_kl(
        relation_split(tensor(&f["student_values"], &device), 1),
        relation_split(tensor(&f["teacher_values"], &device), 1),
        mask.clone(),
    );
    assert_close(
        value(loss),
        &f["value_relation_kl_one_head"],
        "value_relation_kl, one relation head",
    );
    let loss = cosine_hidden(
        tensor(&f["cosine_student"], &device),
        tensor(&f["teacher_hidden"], &device),
        mask,
    );
    assert_close(value(loss), &f["cosine_hidden"], "cosine_hidden");
}

/// Compares the autodiff gradient of `loss` at `x` with central differences, coordinate by
/// coordinate.
fn check_gradient<const D: usize>(name: &str, x: &Value, loss: impl Fn(Tensor<D>) -> Tensor<1>) {
    let training = ComputeDevice::cpu().training();
    let plain = ComputeDevice::cpu().inference();
    let (values, shape) = flat(x);
    let dims: [usize; D] = shape.try_into().unwrap();
    let input: Tensor<D> =
        Tensor::from_data(TensorData::new(values.clone(), dims), &training).require_grad();
    let grads = loss(input.clone()).backward();
    let grad = apprentice::backend::to_host(input.grad(&grads).unwrap());
    let eps = 1e-2f32;
    let mut largest = 0.0f32;
    for i in 0..values.len() {
        let at = |delta: f32| {
            let mut moved = values.clone();
            moved[i] += delta;
            value(loss(Tensor::from_data(
                TensorData::new(moved, dims),
                &plain,
            )))
        };
        let numeric = ((at(eps) - at(-eps)) / (2.0 * eps as f64)) as f32;
        largest = largest.max(numeric.abs());
        let tolerance = 2e-3 + 2e-2 * numeric.abs();
        assert!(
            (grad[i] - numeric).abs() < tolerance,
            "{name}: coordinate {i}: autodiff {} against finite differences {numeric}",
            grad[i]
        );
    }
    assert!(largest > 1e-3, "{name}: the gradient is not trivially zero");
}

#[test]
fn gradients_match_finite_differences() {
    let f = fixture();
    let mask = |device: &Device| tensor::<2>(&f["mask"], device);
    check_gradient::<3>("hidden_mse / student", &f["student_hidden"], |s| {
        let device = s.device();
        hidden_mse(
            s,
            tensor(&f["teacher_hidden"], &device),
            Some(&projection(&f, &device)),
            mask(&device),
        )
    });
    check_gradient::<2>("hidden_mse / projection", &f["projection_weight"], |w| {
        let device = w.device();
        let linear = Linear {
            weight: Param::from_tensor(w),
            bias: Some(Param::from_tensor(tensor::<1>(
                &f["projection_bias"],
                &device,
            ))),
        };
        hidden_mse(
            tensor(&f["student_hidden"], &device),
            tensor(&f["teacher_hidden"], &device),
            Some(&linear),
            mask(&device),
        )
    });
    check_gradient::<4>("attention_kl / scores", &f["student_scores"], |scores| {
        let device = scores.device();
        let student = masked_softmax(scores, mask(&device));
        attention_kl(
            student,
            tensor(&f["teacher_attention"], &device),
            mask(&device),
        )
    });
    check_gradient::<4>("value_relation_kl / values", &f["student_values"], |v| {
        let device = v.device();
        value_relation_kl(v, tensor(&f["teacher_values"], &device), mask(&device))
    });
    check_gradient::<4>(
        "value_relation_kl, one relation head / values",
        &f["student_values"],
        |v| {
            let device = v.device();
            value_relation_kl(
                relation_split(v, 1),
                relation_split(tensor(&f["teacher_values"], &device), 1),
                mask(&device),
            )
        },
    );
    check_gradient::<3>("cosine_hidden / student", &f["cosine_student"], |s| {
        let device = s.device();
        cosine_hidden(s, tensor(&f["teacher_hidden"], &device), mask(&device))
    });
}

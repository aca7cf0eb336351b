//! A language model's tied output projection on every core
//! (`models::kernels::tied_output_projection`) against burn's `linear(x, tableᵀ)`: the logits,
//! the input's gradient and the table's gradient (added to the gradient of a lookup in the same
//! table, as in a decoder with tied embeddings) equal bit for bit, for row counts below and
//! above a block, on 1 and 2 threads, and the logits without autodiff (a teacher scoring); both
//! gradients against central differences; and the shapes it leaves to burn.

mod common;

use apprentice::models::kernels::tied_output_projection;
use burn::tensor::module::linear;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::bits::{assert_same_bits, on_threads};
use common::numeric::{assert_central_differences, host, uniform};

/// Logits, the input's gradient and the table's, through our operation or burn's.
fn projection(dims: [usize; 4], ours: bool) -> Vec<Vec<f32>> {
    let [batch, len, width, vocab] = dims;
    let device = Device::flex().autodiff();
    let x = Tensor::<3>::from_data(
        TensorData::new(uniform(batch * len * width, 1, 1.0), [batch, len, width]),
        &device,
    )
    .require_grad();
    let table = Tensor::<2>::from_data(
        TensorData::new(uniform(vocab * width, 2, 1.0), [vocab, width]),
        &device,
    )
    .require_grad();
    let logits = if ours {
        tied_output_projection(&x, &table).expect("a shape the kernel covers")
    } else {
        linear(x.clone(), table.clone().transpose(), None)
    };
    // The table is also read by a lookup, so that its two gradients are added.
    let ids: Vec<i64> = (0..batch * len)
        .map(|i| ((i * 13) % vocab) as i64)
        .collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, len]), &device);
    let looked_up = table.clone().select(0, ids.reshape([batch * len]));
    let w = Tensor::<3>::from_data(
        TensorData::new(uniform(batch * len * vocab, 3, 1.0), [batch, len, vocab]),
        &device,
    );
    let loss = (logits.clone() * w).sum() + (looked_up * 0.5).sum();
    let grads = loss.backward();
    vec![
        host(logits),
        host(x.grad(&grads).expect("the input's gradient")),
        host(table.grad(&grads).expect("the table's gradient")),
    ]
}

const SHAPES: &[[usize; 4]] = &[
    [4, 24, 128, 3000],
    [2, 9, 80, 700],
    [3, 50, 128, 1000],
    [1, 4, 65, 65],
    [2, 8, 576, 700],
];

#[test]
fn logits_and_gradients_are_burns_bit_for_bit() {
    for &dims in SHAPES {
        let reference = projection(dims, false);
        for threads in [1, 2] {
            let ours = on_threads(threads, || projection(dims, true));
            for (what, (a, b)) in ["logits", "dx", "dE"]
                .iter()
                .zip(ours.iter().zip(&reference))
            {
                assert_same_bits(&format!("{dims:?}, {threads} threads: {what}"), a, b);
            }
        }
    }
}

/// Inference (no autodiff), as a teacher scores: the logits are burn's.
#[test]
fn logits_without_autodiff_are_burns_bit_for_bit() {
    let device = Device::flex();
    for &[batch, len, width, vocab] in SHAPES {
        let x = Tensor::<3>::from_data(
            TensorData::new(uniform(batch * len * width, 7, 1.0), [batch, len, width]),
            &device,
        );
        let table = Tensor::<2>::from_data(
            TensorData::new(uniform(vocab * width, 8, 1.0), [vocab, width]),
            &device,
        );
        let ours = on_threads(2, || tied_output_projection(&x, &table).expect("covered"));
        let burn = linear(x.clone(), table.clone().transpose(), None);
        assert_same_bits(
            &format!("{:?}", [batch, len, width, vocab]),
            &host(ours),
            &host(burn),
        );
    }
}

#[test]
fn small_tensors_are_left_to_burn() {
    let device = Device::flex().autodiff();
    let x = |w| Tensor::<3>::zeros([2, 3, w], &device);
    let table = |v, w| Tensor::<2>::zeros([v, w], &device);
    assert!(
        tied_output_projection(&x(64), &table(100, 64)).is_none(),
        "width 64"
    );
    assert!(
        tied_output_projection(&x(70), &table(64, 70)).is_none(),
        "vocabulary 64"
    );
    assert!(
        tied_output_projection(&x(70), &table(100, 71)).is_none(),
        "widths differ"
    );
    let three = Tensor::<3>::zeros([1, 3, 70], &device);
    assert!(
        tied_output_projection(&three, &table(100, 70)).is_none(),
        "three rows"
    );
    let plain = Tensor::<3>::zeros([2, 3, 70], &Device::flex());
    let plain_table = Tensor::<2>::zeros([100, 60], &Device::flex());
    assert!(
        tied_output_projection(&plain, &plain_table).is_none(),
        "plain, widths differ"
    );
    assert!(tied_output_projection(&x(70), &table(100, 70)).is_some());
}

/// Both gradients of `Σ w ⊙ (x · Eᵀ)` against central differences of the f64 formula.
#[test]
fn the_gradients_match_central_differences() {
    let (rows, width, vocab) = (4, 65, 66);
    let xs = uniform(rows * width, 4, 1.0);
    let es = uniform(vocab * width, 5, 1.0);
    let ws = uniform(rows * vocab, 6, 1.0);
    let device = Device::flex().autodiff();
    let x = Tensor::<3>::from_data(TensorData::new(xs.clone(), [1, rows, width]), &device)
        .require_grad();
    let e =
        Tensor::<2>::from_data(TensorData::new(es.clone(), [vocab, width]), &device).require_grad();
    let w = Tensor::<3>::from_data(TensorData::new(ws.clone(), [1, rows, vocab]), &device);
    let logits = tied_output_projection(&x, &e).expect("covered");
    let grads = (logits * w).sum().backward();
    let f = |x: &[f64], e: &[f64]| -> f64 {
        let mut total = 0.0;
        for r in 0..rows {
            for v in 0..vocab {
                let dot: f64 = (0..width)
                    .map(|i| x[r * width + i] * e[v * width + i])
                    .sum();
                total += f64::from(ws[r * vocab + v]) * dot;
            }
        }
        total
    };
    let wide = |v: &[f32]| -> Vec<f64> { v.iter().map(|&a| f64::from(a)).collect() };
    let (xw, ew) = (wide(&xs), wide(&es));
    assert_central_differences(
        &host(x.grad(&grads).unwrap()),
        &xs,
        |x| f(x, &ew),
        1e-2,
        1e-3,
    );
    assert_central_differences(
        &host(e.grad(&grads).unwrap()),
        &es,
        |e| f(&xw, e),
        1e-2,
        1e-3,
    );
}

//! The word-embedding lookup with its gradient table zeroed on every core
//! (`models::kernels::embedding_lookup`) against burn's `Embedding::forward`: the rows and the
//! table's gradient equal bit for bit, ids repeated many times so that the order in which a
//! word's rows are added matters; the gradient against its definition; ids outside the table
//! left to burn.

mod common;

use apprentice::models::kernels::embedding_lookup;
use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::bits::{assert_same_bits, on_threads};
use common::numeric::{host, uniform};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn values(len: usize, seed: u64, spread: f32) -> Vec<f32> {
    uniform(len, seed, spread)
}

/// A table of `rows × width` random values on `device`.
fn table(rows: usize, width: usize, device: &Device) -> Embedding {
    let mut embedding = EmbeddingConfig::new(rows, width).init(device);
    embedding.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(values(rows * width, 1, 1.0), [rows, width]),
        device,
    ));
    embedding
}

/// Ids `[batch, len]` below `rows`, most of them among a handful of words.
fn ids(batch: usize, len: usize, rows: usize) -> Vec<i64> {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    (0..batch * len)
        .map(|i| {
            if i % 3 == 0 {
                rng.random_range(0..rows as i64)
            } else {
                rng.random_range(0..4)
            }
        })
        .collect()
}

/// The rows looked up and the table's gradient for a weighted sum of them, ours or burn's.
fn run(rows: usize, width: usize, [batch, len]: [usize; 2], ours: bool) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex().autodiff();
    let embedding = table(rows, width, &device);
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(ids(batch, len, rows), [batch, len]),
        &device,
    );
    let out = if ours {
        embedding_lookup(&embedding, ids)
    } else {
        embedding.forward(ids)
    };
    let r = Tensor::<3>::from_data(
        TensorData::new(values(batch * len * width, 3, 2.0), [batch, len, width]),
        &device,
    );
    let grads = (out.clone() * r).sum().backward();
    let grad = embedding
        .weight
        .val()
        .grad(&grads)
        .expect("the table's gradient");
    (host(out), host(grad))
}

#[test]
fn rows_and_table_gradient_are_burns_bit_for_bit() {
    for (rows, width, shape) in [(1000, 384, [32, 64]), (7, 5, [3, 11]), (50, 3, [1, 1])] {
        let ours = run(rows, width, shape, true);
        let burn = run(rows, width, shape, false);
        assert_same_bits(&format!("rows {rows}x{width}"), &ours.0, &burn.0);
        assert_same_bits(&format!("gradient {rows}x{width}"), &ours.1, &burn.1);
    }
    let on = |threads: usize| on_threads(threads, || run(30_000, 64, [16, 64], true));
    let (one, two) = (on(1), on(2));
    assert_same_bits("rows, one thread against two", &one.0, &two.0);
    assert_same_bits("gradient, one thread against two", &one.1, &two.1);
}

#[test]
fn the_gradient_is_the_sum_of_each_words_rows() {
    let (rows, width, batch, len) = (9, 4, 5, 13);
    let (_, gradient) = run(rows, width, [batch, len], true);
    let ids = ids(batch, len, rows);
    let r = values(batch * len * width, 3, 2.0);
    let mut expected = vec![0.0f64; rows * width];
    for (i, &id) in ids.iter().enumerate() {
        for c in 0..width {
            expected[id as usize * width + c] += f64::from(r[i * width + c]);
        }
    }
    for (index, (&g, &e)) in gradient.iter().zip(&expected).enumerate() {
        assert!(
            (f64::from(g) - e).abs() < 1e-5,
            "element {index}: {g} against {e}"
        );
    }
}

#[test]
fn ids_outside_the_table_are_left_to_burn() {
    let device = Device::flex().autodiff();
    let embedding = table(5, 3, &device);
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 5], [1, 2]), &device);
    let ours = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        embedding_lookup(&embedding, ids.clone()).into_data()
    }));
    let burn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        embedding.forward(ids.clone()).into_data()
    }));
    assert_eq!(
        ours.is_err(),
        burn.is_err(),
        "ours and burn's agree on an id past the table"
    );
}

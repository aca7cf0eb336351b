//! MiniLM's value-relation transfer (Wang et al., 2020): per head, the relation
//! `softmax(V Vᵀ / √d)` between the value vectors of the tokens (padded keys masked out), and
//! `KL(VR_T ‖ VR_S)` averaged over heads and real query tokens. The head widths of student and
//! teacher may differ; the number of heads must be the same.

use burn::tensor::{Tensor, activation};

use super::{mean_over_real_queries, row_kl};

/// The value relation `[batch, heads, len, len]` of values `[batch, heads, len, width]`.
pub fn value_relation(values: Tensor<4>, mask: Tensor<2>) -> Tensor<4> {
    let [batch, _, len, width] = values.dims();
    let scores = values.clone().matmul(values.swap_dims(2, 3)) / (width as f64).sqrt();
    let bias: Tensor<4> = ((mask - 1.0) * 1e9).reshape([batch, 1, 1, len]);
    activation::softmax(scores + bias, 3)
}

/// The mean KL divergence between the teacher's and the student's value relations.
pub fn value_relation_kl(student: Tensor<4>, teacher: Tensor<4>, mask: Tensor<2>) -> Tensor<1> {
    let s = value_relation(student, mask.clone());
    let t = value_relation(teacher, mask.clone());
    mean_over_real_queries(row_kl(t, s), mask)
}

//! Batched matrix products (`[…, m, k] × […, k, n]`, the attention's `Q Kᵀ` and `P V`) on every
//! core, with flex's floats.
//!
//! flex runs a batched product as one `gemm` call per matrix of the batch, one after the other
//! on the calling thread, reading strided operands in place. Here the same calls, with the same
//! shapes, strides and `Parallelism::None`, are spread over rayon's pool: each output matrix is
//! still written by one `gemm` call whose arithmetic depends only on its arguments, so every
//! float is flex's, whichever thread computes it.

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape};
use rayon::prelude::*;

/// One operand as `gemm` reads it: the whole storage, where the matrix of each batch index
/// starts, and the row and column strides of that matrix.
struct Operand<'a> {
    data: &'a [f32],
    start: usize,
    /// Element stride of each batch dimension (all non-negative).
    batch_strides: Vec<usize>,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Operand<'a> {
    /// The operand of a float32 tensor with non-negative strides whose every addressed element
    /// lies inside its storage; `None` otherwise.
    fn of(tensor: &'a FlexTensor) -> Option<Self> {
        if tensor.dtype() != DType::F32 {
            return None;
        }
        let layout = tensor.layout();
        let shape = layout.shape();
        let strides = layout
            .strides()
            .iter()
            .map(|&s| usize::try_from(s).ok())
            .collect::<Option<Vec<usize>>>()?;
        let data: &[f32] = tensor.storage();
        let rank = strides.len();
        // The farthest element the view reaches, checked so that `gemm` never reads outside.
        let mut reach = layout.start_offset();
        for (d, &stride) in strides.iter().enumerate() {
            reach = reach.checked_add(shape[d].checked_sub(1)?.checked_mul(stride)?)?;
        }
        if reach >= data.len() {
            return None;
        }
        Some(Self {
            data,
            start: layout.start_offset(),
            batch_strides: strides[..rank - 2].to_vec(),
            row_stride: strides[rank - 2],
            col_stride: strides[rank - 1],
        })
    }

    /// Offset of batch matrix `b` (row-major over the batch dimensions `batch`).
    fn offset(&self, mut b: usize, batch: &[usize]) -> usize {
        let mut offset = self.start;
        for (d, &extent) in batch.iter().enumerate().rev() {
            offset += (b % extent) * self.batch_strides[d];
            b /= extent;
        }
        offset
    }
}

/// `lhs × rhs` for float32 flex tensors of the same rank (at least 3) and the same batch
/// dimensions, the output contiguous `[…, m, n]`, with the products of the batch's matrices
/// spread over rayon's pool. `None` (the caller then uses flex's `matmul`) for other dtypes,
/// ranks, broadcast batches, negative strides or an empty dimension.
pub(super) fn batched_matmul(lhs: &FlexTensor, rhs: &FlexTensor) -> Option<FlexTensor> {
    let (ls, rs) = (lhs.layout().shape(), rhs.layout().shape());
    let rank = ls.num_dims();
    if rank < 3 || rs.num_dims() != rank || ls[..rank - 2] != rs[..rank - 2] {
        return None;
    }
    let (m, k, n) = (ls[rank - 2], ls[rank - 1], rs[rank - 1]);
    let batch: Vec<usize> = ls[..rank - 2].to_vec();
    if rs[rank - 2] != k || m == 0 || k == 0 || n == 0 || batch.contains(&0) {
        return None;
    }
    let (a, b) = (Operand::of(lhs)?, Operand::of(rhs)?);
    let matrices: usize = batch.iter().product();
    let mut out = super::parallel::zeros(matrices * m * n);
    out.par_chunks_mut(m * n)
        .enumerate()
        .for_each(|(index, dst)| {
            let (a_at, b_at) = (a.offset(index, &batch), b.offset(index, &batch));
            // SAFETY: `Operand::of` checked that every element these offsets and strides address
            // lies inside each storage, `dst` holds exactly `m × n` floats written row-major, and
            // it is borrowed mutably, so nothing aliases it.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    dst.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.data.as_ptr().add(a_at),
                    a.col_stride as isize,
                    a.row_stride as isize,
                    b.data.as_ptr().add(b_at),
                    b.col_stride as isize,
                    b.row_stride as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        });
    let mut dims = batch;
    dims.extend([m, n]);
    Some(FlexTensor::from_data(burn::tensor::TensorData::new(
        out,
        Shape::from(dims),
    )))
}

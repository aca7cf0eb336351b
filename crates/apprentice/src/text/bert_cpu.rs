//! BERT inference on the CPU without padding: the encoder of [`super::bert`] with its weights
//! copied to host memory and run by our own kernels.
//!
//! burn's CPU backend runs the encoder one operation at a time on one core, pads every sentence
//! of a batch to the longest, and materialises the `[batch, heads, len, len]` padding mask
//! and score tensors; on sentences of up to 256 word pieces it was about a third of PyTorch's
//! speed. Here:
//!
//! - the sentences of a batch are packed one after the other (no padding at all), so every
//!   dense layer is one `[tokens, in] × [in, out]` product over the real tokens only, run by
//!   `gemm` on every core of rayon's pool (a sentence's worth of rows in one band of output
//!   columns per thread); the query, key and value projections are one product with the
//!   three weight matrices side by side;
//! - attention runs per (sentence, head) on rayon's pool, on that sentence's own length: the
//!   padding mask is implicit; the softmax takes `exp` sixteen or eight floats at a time and
//!   sums eight rows side by side (each still left to right);
//! - biases, residual connections, LayerNorm and GELU are fused into the passes that read each
//!   product;
//! - the whole pass runs on a thread of rayon's pool, so that a caller outside the pool is
//!   not put to sleep and woken for each parallel step.
//!
//! The arithmetic is the reference's (post-norm BERT, exact erf GELU, softmax after subtracting
//! the row maximum), so embeddings match the reference implementation within 1e-5. Padding
//! never changes a real token's result there either (padded keys get a weight of exactly zero),
//! so the packed result equals the padded one.

use rayon::prelude::*;

use super::bert::{Bert, BertConfig};
use super::error::TextError;
use crate::models::kernels::{erf_in_place, exp_in_place, row_sums_in_order};

/// Rows of the feed-forward block computed at a time: bounds the `[rows, intermediate]` buffer
/// (6 MB for BERT-base widths) whatever the batch.
const FFN_ROWS: usize = 1024;

/// One encoder layer's weights, row-major `[in, out]` as burn's `Linear` stores them.
#[derive(Debug, Clone)]
struct HostLayer {
    /// Query, key and value weights side by side: `[hidden, 3 × hidden]`.
    qkv_weight: Vec<f32>,
    qkv_bias: Vec<f32>,
    out_weight: Vec<f32>,
    out_bias: Vec<f32>,
    norm1_gamma: Vec<f32>,
    norm1_beta: Vec<f32>,
    inter_weight: Vec<f32>,
    inter_bias: Vec<f32>,
    output_weight: Vec<f32>,
    output_bias: Vec<f32>,
    norm2_gamma: Vec<f32>,
    norm2_beta: Vec<f32>,
}

/// A BERT encoder's weights in host memory, ready for [`HostBert::forward`].
#[derive(Debug, Clone)]
pub struct HostBert {
    hidden: usize,
    intermediate: usize,
    heads: usize,
    vocab_size: usize,
    max_positions: usize,
    eps: f32,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Segment 0's embedding: single-sentence inputs use only that segment.
    token_type: Vec<f32>,
    norm_gamma: Vec<f32>,
    norm_beta: Vec<f32>,
    layers: Vec<HostLayer>,
}

fn values<const D: usize>(tensor: burn::tensor::Tensor<D>) -> Vec<f32> {
    crate::backend::to_host(tensor)
}

fn linear_parts(linear: &burn::nn::Linear, width: usize) -> (Vec<f32>, Vec<f32>) {
    let weight = values(linear.weight.val());
    let bias = linear
        .bias
        .as_ref()
        .map(|b| values(b.val()))
        .unwrap_or_else(|| vec![0.0; width]);
    (weight, bias)
}

fn norm_parts(norm: &burn::nn::LayerNorm, width: usize) -> (Vec<f32>, Vec<f32>) {
    let gamma = values(norm.gamma.val());
    let beta = norm
        .beta
        .as_ref()
        .map(|b| values(b.val()))
        .unwrap_or_else(|| vec![0.0; width]);
    (gamma, beta)
}

impl HostBert {
    /// Copies the weights of `bert` (of shape `config`) to host memory.
    pub fn from_bert(bert: &Bert, config: &BertConfig) -> Self {
        let h = config.hidden_size;
        let i = config.intermediate_size;
        let layers = bert
            .layers
            .iter()
            .map(|layer| {
                let (q, qb) = linear_parts(&layer.query, h);
                let (k, kb) = linear_parts(&layer.key, h);
                let (v, vb) = linear_parts(&layer.value, h);
                let mut qkv_weight = Vec::with_capacity(3 * h * h);
                for row in 0..h {
                    for part in [&q, &k, &v] {
                        qkv_weight.extend_from_slice(&part[row * h..(row + 1) * h]);
                    }
                }
                let qkv_bias = [qb, kb, vb].concat();
                let (out_weight, out_bias) = linear_parts(&layer.attention_output, h);
                let (norm1_gamma, norm1_beta) = norm_parts(&layer.attention_norm, h);
                let (inter_weight, inter_bias) = linear_parts(&layer.intermediate, i);
                let (output_weight, output_bias) = linear_parts(&layer.output, h);
                let (norm2_gamma, norm2_beta) = norm_parts(&layer.output_norm, h);
                HostLayer {
                    qkv_weight,
                    qkv_bias,
                    out_weight,
                    out_bias,
                    norm1_gamma,
                    norm1_beta,
                    inter_weight,
                    inter_bias,
                    output_weight,
                    output_bias,
                    norm2_gamma,
                    norm2_beta,
                }
            })
            .collect();
        let (norm_gamma, norm_beta) = norm_parts(&bert.embeddings.norm, h);
        let token_type = values(bert.embeddings.token_type.weight.val());
        Self {
            hidden: h,
            intermediate: i,
            heads: config.num_attention_heads,
            vocab_size: config.vocab_size,
            max_positions: config.max_position_embeddings,
            eps: config.layer_norm_eps as f32,
            word: values(bert.embeddings.word.weight.val()),
            position: values(bert.embeddings.position.weight.val()),
            token_type: token_type[..h].to_vec(),
            norm_gamma,
            norm_beta,
            layers,
        }
    }

    /// Width of the token representations.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// The last layer's token representations of `sequences`, packed: the rows of sequence 0,
    /// then those of sequence 1, …, `Σ len × hidden` values in all. Errors when an id is outside
    /// the vocabulary or a sequence is longer than the learned positions.
    pub fn forward<S: AsRef<[u32]>>(&self, sequences: &[S]) -> Result<Vec<f32>, TextError> {
        let mut spans = Vec::with_capacity(sequences.len());
        let mut total = 0;
        for (index, sequence) in sequences.iter().enumerate() {
            let sequence = sequence.as_ref();
            if sequence.len() > self.max_positions {
                return Err(TextError::Invalid(format!(
                    "sequence {index}: {} word pieces, more than the model's {} positions",
                    sequence.len(),
                    self.max_positions
                )));
            }
            if let Some(&id) = sequence.iter().find(|&&id| id as usize >= self.vocab_size) {
                return Err(TextError::Invalid(format!(
                    "sequence {index}: token id {id} outside the vocabulary of {}",
                    self.vocab_size
                )));
            }
            spans.push((total, sequence.len()));
            total += sequence.len();
        }
        let rows: Vec<(u32, usize)> = sequences
            .iter()
            .flat_map(|s| s.as_ref().iter().enumerate().map(|(p, &id)| (id, p)))
            .collect();
        // The whole pass runs on a thread of rayon's pool. Called from outside the pool, each
        // of the pass's parallel steps (eight per layer) would hand its work to the pool and
        // put the calling thread to sleep until it is done, one wake-up per step.
        let x = rayon::scope(|_| self.encode(&rows, &spans));
        Ok(x)
    }

    /// The embeddings and every layer for the packed tokens `rows` (word id, position), the
    /// sequences' `(start, len)` in `spans`.
    fn encode(&self, rows: &[(u32, usize)], spans: &[(usize, usize)]) -> Vec<f32> {
        let h = self.hidden;
        let mut x = vec![0.0f32; rows.len() * h];
        x.par_chunks_mut(h)
            .zip(rows.par_iter())
            .for_each(|(row, &(id, position))| {
                let word = &self.word[id as usize * h..(id as usize + 1) * h];
                let pos = &self.position[position * h..(position + 1) * h];
                for c in 0..h {
                    row[c] = word[c] + pos[c] + self.token_type[c];
                }
                layer_norm_row(row, &self.norm_gamma, &self.norm_beta, self.eps);
            });
        let mut scratch = Scratch::default();
        for layer in &self.layers {
            self.layer_forward(layer, &mut x, spans, &mut scratch);
        }
        x
    }

    fn layer_forward(
        &self,
        layer: &HostLayer,
        x: &mut [f32],
        spans: &[(usize, usize)],
        scratch: &mut Scratch,
    ) {
        let h = self.hidden;
        let tokens = x.len() / h;
        // Query, key and value of every token in one product.
        scratch.qkv.resize(tokens * 3 * h, 0.0);
        matmul(&mut scratch.qkv, x, tokens, h, &layer.qkv_weight, 3 * h);
        add_bias(&mut scratch.qkv, &layer.qkv_bias);
        // Attention per (sentence, head) on that sentence's tokens only.
        scratch.context.resize(tokens * h, 0.0);
        attention(&scratch.qkv, &mut scratch.context, spans, h, self.heads);
        // Output projection, bias, residual and LayerNorm.
        scratch.projected.resize(tokens * h, 0.0);
        matmul(
            &mut scratch.projected,
            &scratch.context,
            tokens,
            h,
            &layer.out_weight,
            h,
        );
        residual_norm(
            x,
            &scratch.projected,
            &layer.out_bias,
            &layer.norm1_gamma,
            &layer.norm1_beta,
            self.eps,
        );
        // Feed-forward block, a bounded number of rows at a time.
        let i = self.intermediate;
        for start in (0..tokens).step_by(FFN_ROWS) {
            let rows = FFN_ROWS.min(tokens - start);
            let block = &mut x[start * h..(start + rows) * h];
            scratch.inner.resize(rows * i, 0.0);
            matmul(&mut scratch.inner, block, rows, h, &layer.inter_weight, i);
            scratch
                .inner
                .par_chunks_mut(i)
                .for_each(|row| gelu_bias(row, &layer.inter_bias));
            scratch.projected.resize(rows * h, 0.0);
            matmul(
                &mut scratch.projected[..rows * h],
                &scratch.inner,
                rows,
                i,
                &layer.output_weight,
                h,
            );
            residual_norm(
                block,
                &scratch.projected[..rows * h],
                &layer.output_bias,
                &layer.norm2_gamma,
                &layer.norm2_beta,
                self.eps,
            );
        }
    }
}

/// Buffers reused from layer to layer.
#[derive(Default)]
struct Scratch {
    qkv: Vec<f32>,
    context: Vec<f32>,
    projected: Vec<f32>,
    inner: Vec<f32>,
}

/// Products with at least [`MIN_SPLIT_ROWS`] and fewer rows than this are split over rayon's
/// pool by bands of output columns; longer ones use `gemm`'s own threads.
const SPLIT_ROWS: usize = 512;

/// Products with fewer rows than this stay one call: a band of them could fall on one of
/// `gemm`'s paths for small products, whose sums run in another order than the whole call's.
const MIN_SPLIT_ROWS: usize = 16;

/// Column bands are whole multiples of this many columns (`gemm`'s tile height on AVX-512) and
/// wider: `gemm` takes its small-product path, with another blocking of the inner dimension,
/// when both sides of a product are at most 64.
const BAND_COLUMNS: usize = 64;

/// `dst = lhs × rhs`, `lhs` row-major `m × k`, `rhs` row-major `k × n`, on every core of
/// rayon's pool (each element's sum runs in the same order whatever the number of threads).
///
/// `gemm` copies ("packs") the weight `rhs` into its own layout on every call, and with its own
/// threads each thread packs all of it. With the rows of one sentence (batch 1) that copy is a
/// tenth of the encoder's time. So products of up to [`SPLIT_ROWS`] rows are split into one
/// band of columns per thread, each a single-threaded `gemm` call that packs its band of the
/// weight only, and no thread waits for another inside a product. `gemm` sums every element
/// over the inner dimension in blocks that depend only on that dimension, so a band's floats
/// are the whole product's.
fn matmul(dst: &mut [f32], lhs: &[f32], m: usize, k: usize, rhs: &[f32], n: usize) {
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n);
    if m == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let bands = if threads > 1 && (MIN_SPLIT_ROWS..SPLIT_ROWS).contains(&m) {
        column_bands(n, threads)
    } else {
        Vec::new()
    };
    if bands.len() > 1 {
        let out = Destination(dst.as_mut_ptr());
        bands.into_par_iter().for_each(|columns| {
            // SAFETY: the assert above holds the shapes; the bands are disjoint, so each task
            // writes elements no other task reads or writes, and `dst` stays borrowed mutably
            // until every task has finished.
            unsafe {
                product(
                    out.get(),
                    (lhs, m, k),
                    (rhs, n),
                    columns,
                    gemm::Parallelism::None,
                )
            }
        });
        return;
    }
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assert above holds the shapes, and `dst` is borrowed mutably.
    unsafe { product(dst.as_mut_ptr(), (lhs, m, k), (rhs, n), 0..n, parallelism) }
}

/// `n` columns cut into at most one band per thread, each a whole multiple of
/// [`BAND_COLUMNS`] and wider than it, but the last, which is kept only if wider than
/// [`BAND_COLUMNS`] (else it joins the band before it).
fn column_bands(n: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    let width = n
        .div_ceil(threads)
        .next_multiple_of(BAND_COLUMNS)
        .max(2 * BAND_COLUMNS);
    let mut bands: Vec<_> = (0..n)
        .step_by(width)
        .map(|start| start..(start + width).min(n))
        .collect();
    if bands.len() > 1 && bands.last().is_some_and(|last| last.len() <= BAND_COLUMNS) {
        let last = bands.pop().expect("two bands");
        bands.last_mut().expect("one band").end = last.end;
    }
    bands
}

/// The address of [`matmul`]'s destination, shared by the tasks that write its column bands.
#[derive(Clone, Copy)]
struct Destination(*mut f32);

// SAFETY: the tasks that share a `Destination` write disjoint elements (see `matmul`).
unsafe impl Send for Destination {}
unsafe impl Sync for Destination {}

impl Destination {
    /// The address (a method, so that closures capture the whole `Send` value).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// One `gemm` call for columns `columns` of [`matmul`]'s row-major shapes: `dst` (`m × n`)
/// `= lhs` (`m × k`) `× rhs` (`k × n`) in those columns only.
///
/// # Safety
/// `dst` must address `m × n` floats that nothing else reads or writes in `columns` during
/// the call; `lhs` must hold `m × k` floats and `rhs` `k × n`; `columns` must lie in `0..n`.
unsafe fn product(
    dst: *mut f32,
    (lhs, m, k): (&[f32], usize, usize),
    (rhs, n): (&[f32], usize),
    columns: std::ops::Range<usize>,
    parallelism: gemm::Parallelism,
) {
    assert!(lhs.len() >= m * k && rhs.len() >= k * n && columns.end <= n);
    // SAFETY: the caller's contract and the assert above keep every address of the row-major
    // shapes, offset by the band's first column, inside the buffers.
    unsafe {
        gemm::gemm(
            m,
            columns.len(),
            k,
            dst.add(columns.start),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr().add(columns.start),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A strided single-threaded product for one attention head:
/// `dst (m × n, row-major) = alpha · lhs (m × k) × rhs (k × n)` with explicit strides.
#[allow(clippy::too_many_arguments)]
fn head_matmul(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    alpha: f32,
) {
    // The largest offset a non-empty strided view addresses.
    let reach = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(dst.len() >= m * n);
    assert!(m == 0 || k == 0 || reach(m, k, lhs_rs, lhs_cs) < lhs.len());
    assert!(k == 0 || n == 0 || reach(k, n, rhs_rs, rhs_cs) < rhs.len());
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the asserts above keep every strided address inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Multi-head self-attention of every sentence on its own tokens: `qkv` holds `[tokens, 3 ×
/// hidden]` (queries, keys, values side by side), `context` receives `[tokens, hidden]`.
fn attention(
    qkv: &[f32],
    context: &mut [f32],
    spans: &[(usize, usize)],
    hidden: usize,
    heads: usize,
) {
    let width = hidden / heads;
    let scale = 1.0 / (width as f32).sqrt();
    let stride = 3 * hidden;
    let tasks: Vec<(usize, usize, usize)> = spans
        .iter()
        .filter(|(_, len)| *len > 0)
        .flat_map(|&(start, len)| (0..heads).map(move |head| (start, len, head)))
        .collect();
    let results: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(start, len, head)| {
            let base = start * stride + head * width;
            let queries = &qkv[base..];
            let keys = &qkv[base + hidden..];
            let values = &qkv[base + 2 * hidden..];
            let mut scores = vec![0.0f32; len * len];
            // scores = scale · Q Kᵀ: Kᵀ is the key rows read column-wise.
            head_matmul(
                &mut scores,
                len,
                len,
                width,
                queries,
                (stride, 1),
                keys,
                (1, stride),
                scale,
            );
            softmax_rows(&mut scores, len);
            let mut out = vec![0.0f32; len * width];
            head_matmul(
                &mut out,
                len,
                width,
                len,
                &scores,
                (len, 1),
                values,
                (stride, 1),
                1.0,
            );
            out
        })
        .collect();
    for (&(start, len, head), out) in tasks.iter().zip(&results) {
        for t in 0..len {
            let dst = (start + t) * hidden + head * width;
            context[dst..dst + width].copy_from_slice(&out[t * width..(t + 1) * width]);
        }
    }
}

/// Softmax of every row of `scores` (rows of `len`), after subtracting each row's maximum:
/// `exp` many floats at a time ([`exp_in_place`], `f32::exp`'s floats) and the rows' sums side
/// by side ([`row_sums_in_order`]), each sum still left to right, so every float is the one a
/// row-by-row loop of `exp`, `+=` and `· (1 / sum)` gives.
fn softmax_rows(scores: &mut [f32], len: usize) {
    for row in scores.chunks_mut(len) {
        let max = row_max(row);
        for v in row.iter_mut() {
            *v -= max;
        }
        exp_in_place(row);
    }
    let mut sums = vec![0.0f32; scores.len() / len];
    row_sums_in_order(scores, len, &mut sums);
    for (row, sum) in scores.chunks_mut(len).zip(sums) {
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// The largest value of a row, NaNs ignored (`-inf` for a row of NaNs), as
/// `fold(-inf, f32::max)` gives it: a running maximum in each of sixteen lanes, then across
/// them (the maximum of a set does not depend on the order it is taken in). `v > lane` is
/// false for a NaN, which keeps the lane, and compiles to one vector `max` per block.
fn row_max(row: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut blocks = row.chunks_exact(LANES);
    for block in &mut blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane = if v > *lane { v } else { *lane };
        }
    }
    lanes
        .into_iter()
        .chain(blocks.remainder().iter().copied())
        .fold(f32::NEG_INFINITY, f32::max)
}

fn add_bias(rows: &mut [f32], bias: &[f32]) {
    rows.par_chunks_mut(bias.len()).for_each(|row| {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    });
}

/// `x = LayerNorm(x + projected + bias)`, row by row.
fn residual_norm(
    x: &mut [f32],
    projected: &[f32],
    bias: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let h = bias.len();
    x.par_chunks_mut(h)
        .zip(projected.par_chunks(h))
        .for_each(|(row, p)| {
            for c in 0..h {
                row[c] += p[c] + bias[c];
            }
            layer_norm_row(row, gamma, beta, eps);
        });
}

/// LayerNorm of one row in place (biased variance, as PyTorch).
fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// `row = gelu(row + bias)` with the exact erf form, as BERT's `gelu`; `erf` runs on blocks of
/// the row ([`erf_in_place`], `libm::erff`'s floats sixteen or eight at a time).
fn gelu_bias(row: &mut [f32], bias: &[f32]) {
    // Blocks as long as one pass of the sixteen-lane `erf`, which sorts its floats by branch.
    const BLOCK: usize = 256;
    let mut erf = [0.0f32; BLOCK];
    for (values, bias) in row.chunks_mut(BLOCK).zip(bias.chunks(BLOCK)) {
        let erf = &mut erf[..values.len()];
        for ((v, b), e) in values.iter_mut().zip(bias).zip(erf.iter_mut()) {
            *v += b;
            *e = *v * std::f32::consts::FRAC_1_SQRT_2;
        }
        erf_in_place(erf);
        for (v, e) in values.iter_mut().zip(erf.iter()) {
            *v = 0.5 * *v * (1.0 + e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BAND_COLUMNS, column_bands, softmax_rows};

    #[test]
    fn column_bands_cover_the_columns_in_wide_bands() {
        // (columns, threads, the bands' (start, end)).
        type Case = (usize, usize, &'static [(usize, usize)]);
        let cases: [Case; 7] = [
            (384, 2, &[(0, 192), (192, 384)]),
            (1536, 2, &[(0, 768), (768, 1536)]),
            (600, 2, &[(0, 320), (320, 600)]),
            (384, 4, &[(0, 128), (128, 256), (256, 384)]),
            // Never bands of 64 columns, however many threads.
            (384, 16, &[(0, 128), (128, 256), (256, 384)]),
            // A last band of 64 columns or fewer joins the one before.
            (130, 2, &[(0, 130)]),
            (96, 2, &[(0, 96)]),
        ];
        for (n, threads, expected) in cases {
            let bands = column_bands(n, threads);
            let ends: Vec<_> = bands.iter().map(|b| (b.start, b.end)).collect();
            assert_eq!(ends, expected, "{n} columns on {threads} threads");
            assert!(bands.len() == 1 || bands.iter().all(|b| b.len() > BAND_COLUMNS));
        }
    }

    /// The softmax as one row at a time, one float at a time: the arithmetic `softmax_rows`
    /// must reproduce bit for bit.
    fn row_by_row(scores: &mut [f32], len: usize) {
        for row in scores.chunks_mut(len) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            let inv = 1.0 / sum;
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }

    #[test]
    fn softmax_rows_give_the_row_by_row_floats() {
        // Lengths around the widths of `exp` (16, 8) and of the side-by-side sums (8 rows), a
        // row of equal values, very negative scores, a -inf and a NaN.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [1, 2, 7, 8, 9, 15, 16, 17, 31, 64, 77, 256] {
            let mut scores: Vec<f32> = (0..len * len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 24) as f32 * 60.0 - 30.0
                })
                .collect();
            scores[..len].fill(0.5);
            if len > 2 {
                scores[len + 1] = f32::NEG_INFINITY;
                scores[2 * len] = -95.0;
            }
            if len > 3 {
                scores[3 * len + 2] = f32::NAN;
            }
            let mut expected = scores.clone();
            row_by_row(&mut expected, len);
            softmax_rows(&mut scores, len);
            // NaNs compare as one value: their payload is not part of the arithmetic.
            let bits = |v: &f32| if v.is_nan() { u32::MAX } else { v.to_bits() };
            let got: Vec<u32> = scores.iter().map(bits).collect();
            let want: Vec<u32> = expected.iter().map(bits).collect();
            assert_eq!(got, want, "rows of {len}");
        }
    }
}

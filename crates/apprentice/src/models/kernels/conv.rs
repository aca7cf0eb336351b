//! Convolution with stride 1, fused bias, ReLU and 2×2 max-pool: forward and backward on plain
//! NCHW float32 buffers.
//!
//! Per sample, the forward pass unfolds the input into a `[in_channels·k·k, out_pixels]` patch
//! matrix (im2col) and multiplies the `[out_channels, in_channels·k·k]` weight matrix by it,
//! which writes the output directly in NCHW order. The bias is written first and the product
//! added to it; ReLU and the pool then run in one pass over the product.
//!
//! The backward pass rebuilds the gradient of the pre-activation output from the output
//! gradient (through the pool's argmax and ReLU's mask), then per sample adds its product with
//! the transposed patch matrix to the weight gradient, and, only when the input needs a
//! gradient, multiplies the transposed weights by it and folds the result back onto the input
//! (col2im). Patch matrices are recomputed rather than kept from the forward pass: unfolding is
//! a cheap copy, keeping them would cost `k²` times the input's memory per layer.

use super::matmul::{MatRef, matmul};
use super::parallel;
use super::pool;

/// The shapes of one convolution block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Convolution output height.
    pub out_height: usize,
    /// Convolution output width.
    pub out_width: usize,
    /// Whether ReLU follows the bias.
    pub relu: bool,
    /// Whether a 2×2 max-pool ends the block (only when the convolution output is at least
    /// 2×2).
    pub pool: bool,
}

impl ConvGeometry {
    /// The geometry of a block on `[batch, channels, height, width]` inputs. The caller checks
    /// that the padded input is at least as large as the kernel.
    pub fn new(
        input: [usize; 4],
        out_channels: usize,
        kernel: usize,
        padding: usize,
        relu: bool,
        pool: bool,
    ) -> Self {
        let [batch, in_channels, height, width] = input;
        let out_height = height + 2 * padding + 1 - kernel;
        let out_width = width + 2 * padding + 1 - kernel;
        Self {
            batch,
            in_channels,
            height,
            width,
            out_channels,
            kernel,
            padding,
            out_height,
            out_width,
            relu,
            pool: pool && out_height >= 2 && out_width >= 2,
        }
    }

    /// Values per input sample.
    pub fn input_len(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    /// Rows of the patch matrix: `in_channels · k · k`.
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    /// Pixels of the convolution output.
    pub fn out_pixels(&self) -> usize {
        self.out_height * self.out_width
    }

    /// Shape of the block's output (after the pool, if any).
    pub fn output_dims(&self) -> [usize; 4] {
        if self.pool {
            let [_, _, h, w] = pool::output_dims([1, 1, self.out_height, self.out_width]);
            [self.batch, self.out_channels, h, w]
        } else {
            [
                self.batch,
                self.out_channels,
                self.out_height,
                self.out_width,
            ]
        }
    }

    /// Values per output sample (after the pool, if any).
    pub fn output_len(&self) -> usize {
        let [_, c, h, w] = self.output_dims();
        c * h * w
    }

    /// For kernel offset `offset` along an axis of input length `size` and output length
    /// `out`, the output positions whose input position `o + offset - padding` lies inside the
    /// input: the others read (or receive) padding.
    fn valid(&self, offset: usize, size: usize, out: usize) -> std::ops::Range<usize> {
        let start = self.padding.saturating_sub(offset).min(out);
        let end = (size + self.padding).saturating_sub(offset).min(out);
        start..end.max(start)
    }
}

/// Unfolds one sample `x` (`[in_channels, height, width]`) into `cols`
/// (`[in_channels·k·k, out_pixels]`, row `(c·k + ky)·k + kx`, the order of the weight's
/// `[out, in, k, k]` layout).
fn im2col(g: &ConvGeometry, x: &[f32], cols: &mut [f32]) {
    let (k, ow, pixels) = (g.kernel, g.out_width, g.out_pixels());
    for c in 0..g.in_channels {
        let plane = &x[c * g.height * g.width..(c + 1) * g.height * g.width];
        for ky in 0..k {
            let rows = g.valid(ky, g.height, g.out_height);
            for kx in 0..k {
                let r = (c * k + ky) * k + kx;
                let dst = &mut cols[r * pixels..(r + 1) * pixels];
                let cols_ok = g.valid(kx, g.width, ow);
                for oy in 0..g.out_height {
                    let line = &mut dst[oy * ow..(oy + 1) * ow];
                    if !rows.contains(&oy) {
                        line.fill(0.0);
                        continue;
                    }
                    line[..cols_ok.start].fill(0.0);
                    line[cols_ok.end..].fill(0.0);
                    if cols_ok.is_empty() {
                        continue;
                    }
                    let iy = oy + ky - g.padding;
                    let ix = cols_ok.start + kx - g.padding;
                    line[cols_ok.clone()]
                        .copy_from_slice(&plane[iy * g.width + ix..][..cols_ok.len()]);
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every patch-matrix entry of `cols` onto the input position
/// it was read from, in `dx` (`[in_channels, height, width]`, accumulated into).
fn col2im(g: &ConvGeometry, cols: &[f32], dx: &mut [f32]) {
    let (k, ow, pixels) = (g.kernel, g.out_width, g.out_pixels());
    for c in 0..g.in_channels {
        let plane = &mut dx[c * g.height * g.width..(c + 1) * g.height * g.width];
        for ky in 0..k {
            let rows = g.valid(ky, g.height, g.out_height);
            for kx in 0..k {
                let r = (c * k + ky) * k + kx;
                let src = &cols[r * pixels..(r + 1) * pixels];
                let cols_ok = g.valid(kx, g.width, ow);
                if cols_ok.is_empty() {
                    continue;
                }
                for oy in rows.clone() {
                    let iy = oy + ky - g.padding;
                    let ix = cols_ok.start + kx - g.padding;
                    let target = &mut plane[iy * g.width + ix..][..cols_ok.len()];
                    let line = &src[oy * ow + cols_ok.start..oy * ow + cols_ok.end];
                    for (t, v) in target.iter_mut().zip(line) {
                        *t += v;
                    }
                }
            }
        }
    }
}

/// Forward pass of the block on the whole batch. Returns the output (`g.output_dims()`) and,
/// when `keep_indices` and the block pools, the argmax of every pool window (0 to 3, row-major
/// within the window) for the backward pass.
pub fn forward(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    keep_indices: bool,
) -> (Vec<f32>, Vec<u8>) {
    let out_len = g.output_len();
    let mut output = vec![0.0f32; g.batch * out_len];
    let index_len = if g.pool && keep_indices { out_len } else { 0 };
    let mut indices = vec![0u8; g.batch * index_len];
    let ranges = parallel::chunks(g.batch);
    let slices: Vec<_> = parallel::split_by_samples(&mut output, out_len, &ranges)
        .into_iter()
        .zip(parallel::split_by_samples(&mut indices, index_len, &ranges))
        .collect();
    let (patch, pixels, cout) = (g.patch_len(), g.out_pixels(), g.out_channels);
    let w = MatRef::row_major(weight, cout, patch);
    parallel::run(&ranges, slices, |_, range, (out_chunk, index_chunk)| {
        let mut cols = vec![0.0f32; patch * pixels];
        // Pre-pool product; without a pool the product is written straight into the output.
        let mut z = vec![0.0f32; if g.pool { cout * pixels } else { 0 }];
        for (i, n) in range.enumerate() {
            im2col(g, &x[n * g.input_len()..(n + 1) * g.input_len()], &mut cols);
            let out = &mut out_chunk[i * out_len..(i + 1) * out_len];
            let dst = if g.pool { &mut z[..] } else { &mut *out };
            for (plane, &b) in dst.chunks_exact_mut(pixels).zip(bias) {
                plane.fill(b);
            }
            matmul(dst, w, MatRef::row_major(&cols, patch, pixels), true);
            if g.pool {
                let index = if index_len > 0 {
                    Some(&mut index_chunk[i * index_len..(i + 1) * index_len])
                } else {
                    None
                };
                pool::forward_sample([cout, g.out_height, g.out_width], &z, out, index, g.relu);
            } else if g.relu {
                for v in out.iter_mut() {
                    *v = relu(*v);
                }
            }
        }
    });
    (output, indices)
}

/// ReLU as burn computes it: values that are not above zero become zero.
#[inline]
fn relu(v: f32) -> f32 {
    if v > 0.0 { v } else { 0.0 }
}

/// Gradients of the block's inputs.
pub struct ConvGrads {
    /// Gradient of the input, when it was asked for.
    pub input: Option<Vec<f32>>,
    /// Gradient of the weight, `[out_channels, in_channels, k, k]`.
    pub weight: Vec<f32>,
    /// Gradient of the bias, `[out_channels]`.
    pub bias: Vec<f32>,
}

/// Backward pass of the block. `output` and `indices` are what [`forward`] returned (indices
/// kept), `grad` the gradient of the output.
pub fn backward(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    output: &[f32],
    indices: &[u8],
    grad: &[f32],
    need_input: bool,
) -> ConvGrads {
    let (patch, pixels, cout, out_len) = (
        g.patch_len(),
        g.out_pixels(),
        g.out_channels,
        g.output_len(),
    );
    let ranges = parallel::chunks(g.batch);
    let mut dx = vec![
        0.0f32;
        if need_input {
            g.batch * g.input_len()
        } else {
            0
        }
    ];
    let dx_len = if need_input { g.input_len() } else { 0 };
    let slices = parallel::split_by_samples(&mut dx, dx_len, &ranges);
    let w = MatRef::row_major(weight, cout, patch);
    let partials = parallel::run(&ranges, slices, |_, range, dx_chunk| {
        let mut cols = vec![0.0f32; patch * pixels];
        let mut dcols = vec![0.0f32; if need_input { patch * pixels } else { 0 }];
        let mut dz = vec![0.0f32; cout * pixels];
        // Accumulated transposed, `[patch, out_channels]`: gemm runs this orientation of the
        // product faster for our shapes (taller output, the long pixel axis as inner dimension).
        let mut dw_t = vec![0.0f32; patch * cout];
        let mut db = vec![0.0f32; cout];
        for (i, n) in range.enumerate() {
            let samples = n * out_len..(n + 1) * out_len;
            pre_activation_grad(
                g,
                &output[samples.clone()],
                if g.pool {
                    &indices[samples.clone()]
                } else {
                    &[]
                },
                &grad[samples],
                &mut dz,
            );
            for (sum, plane) in db.iter_mut().zip(dz.chunks_exact(pixels)) {
                *sum += plane.iter().sum::<f32>();
            }
            im2col(g, &x[n * g.input_len()..(n + 1) * g.input_len()], &mut cols);
            let dz_mat = MatRef::row_major(&dz, cout, pixels);
            matmul(
                &mut dw_t,
                MatRef::row_major(&cols, patch, pixels),
                dz_mat.t(),
                true,
            );
            if need_input {
                matmul(&mut dcols, w.t(), dz_mat, false);
                col2im(g, &dcols, &mut dx_chunk[i * dx_len..(i + 1) * dx_len]);
            }
        }
        (dw_t, db)
    });
    let mut dw_t = vec![0.0f32; patch * cout];
    let mut db = vec![0.0f32; cout];
    for (pw, pb) in partials {
        for (a, b) in dw_t.iter_mut().zip(&pw) {
            *a += b;
        }
        for (a, b) in db.iter_mut().zip(&pb) {
            *a += b;
        }
    }
    let mut dw = vec![0.0f32; cout * patch];
    for (r, row) in dw_t.chunks_exact(cout.max(1)).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dw[c * patch + r] = v;
        }
    }
    ConvGrads {
        input: need_input.then_some(dx),
        weight: dw,
        bias: db,
    }
}

/// Gradient of one sample's pre-activation output (`[out_channels, out_pixels]`, overwritten)
/// from the gradient of its block output: through the pool's argmax, then ReLU's mask (the
/// output is zero where ReLU cut, and the pool's maximum is the ReLU output at its argmax).
fn pre_activation_grad(
    g: &ConvGeometry,
    output: &[f32],
    indices: &[u8],
    grad: &[f32],
    dz: &mut [f32],
) {
    if g.pool {
        dz.fill(0.0);
        pool::scatter_sample(
            [g.out_channels, g.out_height, g.out_width],
            indices,
            grad,
            dz,
            |i| !g.relu || output[i] > 0.0,
        );
    } else if g.relu {
        for ((d, &gr), &y) in dz.iter_mut().zip(grad).zip(output) {
            *d = if y > 0.0 { gr } else { 0.0 };
        }
    } else {
        dz.copy_from_slice(grad);
    }
}

//! 2×2 max-pool with stride 2 on NCHW float32 buffers, with one-byte argmax indices.
//!
//! burn's pool keeps a 64-bit index per output value; the position inside a 2×2 window fits in
//! a byte (0 to 3, row-major), an eighth of the memory traffic. The choice among equal values
//! is burn's: the first maximum in row-major window order wins, and a NaN always wins, so
//! gradients go to the same input as with burn's `max_pool2d`.

use super::parallel;

/// Output shape of the pool on `[batch, channels, height, width]`: odd trailing rows and
/// columns are dropped.
pub fn output_dims([batch, channels, height, width]: [usize; 4]) -> [usize; 4] {
    [batch, channels, height / 2, width / 2]
}

/// Pools one sample `x` (`[channels, height, width]`) into `out` (`[channels, height/2,
/// width/2]`), writing each window's argmax into `indices` when given. With `relu`, the values
/// go through ReLU first (as when the pool follows a ReLU), which saves the convolution a pass
/// over its output.
pub fn forward_sample(
    [channels, height, width]: [usize; 3],
    x: &[f32],
    out: &mut [f32],
    mut indices: Option<&mut [u8]>,
    relu: bool,
) {
    // burn's ReLU: values that are not above zero become zero.
    let activate = |v: f32| if !relu || v > 0.0 { v } else { 0.0 };
    let (ph, pw) = (height / 2, width / 2);
    for c in 0..channels {
        let plane = &x[c * height * width..(c + 1) * height * width];
        for oy in 0..ph {
            let top = &plane[2 * oy * width..][..2 * pw];
            let bottom = &plane[(2 * oy + 1) * width..][..2 * pw];
            let o = (c * ph + oy) * pw;
            for ox in 0..pw {
                let window = [
                    activate(top[2 * ox]),
                    activate(top[2 * ox + 1]),
                    activate(bottom[2 * ox]),
                    activate(bottom[2 * ox + 1]),
                ];
                let (mut best, mut arg) = (window[0], 0u8);
                for (j, &v) in window.iter().enumerate().skip(1) {
                    if v > best || v.is_nan() {
                        best = v;
                        arg = j as u8;
                    }
                }
                out[o + ox] = best;
                if let Some(indices) = indices.as_deref_mut() {
                    indices[o + ox] = arg;
                }
            }
        }
    }
}

/// Adds the pooled gradient `grad` of one sample to `dx` (`[channels, height, width]`) at each
/// window's argmax, for the output positions `i` where `keep(i)` holds.
pub fn scatter_sample(
    [channels, height, width]: [usize; 3],
    indices: &[u8],
    grad: &[f32],
    dx: &mut [f32],
    keep: impl Fn(usize) -> bool,
) {
    let (ph, pw) = (height / 2, width / 2);
    for c in 0..channels {
        for oy in 0..ph {
            for ox in 0..pw {
                let i = (c * ph + oy) * pw + ox;
                if !keep(i) {
                    continue;
                }
                let arg = indices[i] as usize;
                let (y, x) = (2 * oy + arg / 2, 2 * ox + arg % 2);
                dx[(c * height + y) * width + x] += grad[i];
            }
        }
    }
}

/// Pools a whole batch `x` of shape `dims`; returns the output and, when `keep_indices`, the
/// argmax indices.
pub fn forward(dims: [usize; 4], x: &[f32], keep_indices: bool) -> (Vec<f32>, Vec<u8>) {
    let [batch, channels, height, width] = dims;
    let [_, _, ph, pw] = output_dims(dims);
    let (in_len, out_len) = (channels * height * width, channels * ph * pw);
    let index_len = if keep_indices { out_len } else { 0 };
    let mut output = vec![0.0f32; batch * out_len];
    let mut indices = vec![0u8; batch * index_len];
    let ranges = parallel::chunks(batch);
    let slices: Vec<_> = parallel::split_by_samples(&mut output, out_len, &ranges)
        .into_iter()
        .zip(parallel::split_by_samples(&mut indices, index_len, &ranges))
        .collect();
    parallel::run(&ranges, slices, |_, range, (out_chunk, index_chunk)| {
        for (i, n) in range.enumerate() {
            let index = if keep_indices {
                Some(&mut index_chunk[i * index_len..(i + 1) * index_len])
            } else {
                None
            };
            forward_sample(
                [channels, height, width],
                &x[n * in_len..(n + 1) * in_len],
                &mut out_chunk[i * out_len..(i + 1) * out_len],
                index,
                false,
            );
        }
    });
    (output, indices)
}

/// Gradient of the pool's input (shape `dims`) from the gradient of its output.
pub fn backward(dims: [usize; 4], indices: &[u8], grad: &[f32]) -> Vec<f32> {
    let [batch, channels, height, width] = dims;
    let [_, _, ph, pw] = output_dims(dims);
    let (in_len, out_len) = (channels * height * width, channels * ph * pw);
    let mut dx = vec![0.0f32; batch * in_len];
    let ranges = parallel::chunks(batch);
    let slices = parallel::split_by_samples(&mut dx, in_len, &ranges);
    parallel::run(&ranges, slices, |_, range, dx_chunk| {
        for (i, n) in range.enumerate() {
            let samples = n * out_len..(n + 1) * out_len;
            scatter_sample(
                [channels, height, width],
                &indices[samples.clone()],
                &grad[samples],
                &mut dx_chunk[i * in_len..(i + 1) * in_len],
                |_| true,
            );
        }
    });
    dx
}

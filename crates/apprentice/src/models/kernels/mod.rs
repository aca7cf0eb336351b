//! Our own CPU kernels for the convolution block of the CNN models.
//!
//! burn's CPU backend (flex) runs a 2-D convolution as a 3-D one with its own im2col, computes
//! the weight gradient as a convolution whose matrix product has only `k²` rows, converts
//! between NCHW and NHWC twice per convolution and max-pools with a scalar loop that writes
//! 64-bit indices; together that was about 80% of a CNN training step. The kernels here do the
//! same arithmetic as im2col plus one matrix product per sample (`gemm`), with the bias, the ReLU
//! and the 2×2 max-pool fused into the pass that reads the product, and register their own
//! backward step with burn's autodiff.
//!
//! They cover what [`ConvBlock`](super::layers::ConvBlock) needs: float32 tensors on the flex
//! backend (with or without autodiff), stride 1, any kernel size and padding. Anything else (GPU
//! devices, other dtypes, a non-default checkpointing strategy) returns `None`, and the caller
//! keeps burn's own operations.
//!
//! Results never depend on the number of threads: work is split over the batch into a fixed
//! number of chunks ([`parallel::chunks`]), each sample is computed the same way whichever thread
//! runs it, and the per-chunk partial sums of the weight and bias gradients are added in chunk
//! order.

mod autodiff;
mod conv;
mod matmul;
mod parallel;
mod pool;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor, TensorData};

use conv::ConvGeometry;

/// Convolution (stride 1, no dilation) plus bias, then optionally ReLU and a 2×2 max-pool
/// (stride 2, odd trailing rows and columns dropped, as burn's `max_pool2d` does), with our
/// kernels. `input` is `[batch, in_channels, height, width]`, `weight`
/// `[out_channels, in_channels, k, k]`, `bias` `[out_channels]`; `padding` zeros are added on
/// every side. The pool is skipped when the convolution output is narrower than 2 pixels.
///
/// Returns `None` (and the caller should use burn's operations) when the tensors are not float32
/// flex tensors, or when the shapes do not fit.
pub fn conv2d_block(
    input: &Tensor<4>,
    weight: &Tensor<4>,
    bias: &Tensor<1>,
    padding: usize,
    relu: bool,
    pool: bool,
) -> Option<Tensor<4>> {
    let [batch, in_channels, height, width] = input.dims();
    let [out_channels, weight_in, kernel, kernel_w] = weight.dims();
    if weight_in != in_channels
        || kernel_w != kernel
        || bias.dims() != [out_channels]
        || kernel == 0
        || height + 2 * padding < kernel
        || width + 2 * padding < kernel
    {
        return None;
    }
    let geometry = ConvGeometry::new(
        [batch, in_channels, height, width],
        out_channels,
        kernel,
        padding,
        relu,
        pool,
    );
    if let Some(output) = autodiff::conv2d_block(&geometry, input, weight, bias) {
        return Some(output);
    }
    let x = plain_f32(input)?;
    let w = plain_f32(weight)?;
    let b = plain_f32(bias)?;
    let (output, _) = conv::forward(&geometry, &x, &w, &b, false);
    Some(from_vec(output, geometry.output_dims()))
}

/// 2×2 max-pool with stride 2 (odd trailing rows and columns dropped) of a
/// `[batch, channels, height, width]` tensor, with our kernel and one-byte argmax indices.
///
/// Returns `None` when the tensor is not a float32 flex tensor or is narrower than 2 pixels.
pub fn max_pool2x2(input: &Tensor<4>) -> Option<Tensor<4>> {
    let dims = input.dims();
    if dims[2] < 2 || dims[3] < 2 {
        return None;
    }
    if let Some(output) = autodiff::max_pool2x2(dims, input) {
        return Some(output);
    }
    let x = plain_f32(input)?;
    let (output, _) = pool::forward(dims, &x, false);
    Some(from_vec(output, pool::output_dims(dims)))
}

/// The values of a flex float32 tensor without autodiff, in row-major order.
fn plain_f32<const D: usize>(tensor: &Tensor<D>) -> Option<Vec<f32>> {
    let primitive = tensor.clone().try_into_primitive::<Flex>().ok()?;
    f32_values(&primitive).map(|values| values.into_owned())
}

/// Row-major float32 values of a flex tensor: borrowed when it is contiguous, copied otherwise;
/// `None` for any other dtype.
fn f32_values(tensor: &FlexTensor) -> Option<std::borrow::Cow<'_, [f32]>> {
    if tensor.dtype() != DType::F32 {
        return None;
    }
    Some(match tensor.as_slice::<f32>() {
        Some(values) => std::borrow::Cow::Borrowed(values),
        None => std::borrow::Cow::Owned(
            tensor
                .to_contiguous()
                .as_slice::<f32>()
                .expect("a contiguous float32 tensor")
                .to_vec(),
        ),
    })
}

/// A flex tensor owning `values` (no copy).
fn flex_from_vec<const D: usize>(values: Vec<f32>, dims: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, dims))
}

/// A plain (no autodiff) flex tensor owning `values`.
fn from_vec<const D: usize>(values: Vec<f32>, dims: [usize; D]) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(flex_from_vec(values, dims))
}

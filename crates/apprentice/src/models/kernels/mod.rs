//! Our own CPU kernels: the convolution block of the CNN models, the matrix product of linear
//! layers on every core ([`linear_forward`]), and the transformer's GELU on every core
//! ([`gelu`]), its `erf` sixteen or eight floats at a time ([`erf_in_place`]), `exp` likewise
//! ([`exp_in_place`]), row sums several rows at a time ([`row_sums_in_order`]), and its
//! attention's batched products ([`batched_matmul`]), softmax ([`softmax_last`]), LayerNorms
//! ([`layer_norm`]), dropout ([`dropout_with_mask`]) and word-embedding lookup
//! ([`embedding_lookup`]) on every core; and a language model's work over its vocabulary, the
//! forward and reverse KL, the divergences through a mixture and the cross-entropy
//! ([`forward_kl_rows`], [`reverse_kl_rows`], [`mixed_divergence_rows`],
//! [`log_softmax_pick`]) and the output projection tied to its embeddings
//! ([`tied_output_projection`]), on every core.
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
//! number of chunks (`parallel::chunks`), each sample is computed the same way whichever thread
//! runs it, and the per-chunk partial sums of the weight and bias gradients are added in chunk
//! order.

mod autodiff;
mod autodiff_attention;
mod autodiff_embedding;
mod autodiff_norm;
mod autodiff_tied_head;
mod autodiff_token_loss;
mod batched_matmul;
mod conv;
mod embedding;
mod erf;
mod exp;
mod gelu;
mod layer_norm;
mod linear;
mod matmul;
mod mixed_divergence;
mod parallel;
mod pool;
mod row_sums;
mod softmax;
mod tied_head;
mod token_loss;

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{DType, Int, Tensor, TensorData};
use burn_std::{MatmulTransformAction, MatmulTransformAnalysis, MatmulTransformPolicy};

use conv::ConvGeometry;

pub use erf::{erf_in_place, erf_in_place_eight_lanes};
pub use exp::{exp_in_place, exp_in_place_eight_lanes};
pub use mixed_divergence::MixedDivergence;
pub use row_sums::row_sums_in_order;

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

/// A linear layer's forward pass, `x · w + b` over the last dimension of `x`, with the matrix
/// product split over every core (see the `linear` module) when `x` and the weight are float32
/// flex tensors of rank 2 or 3, and burn's own `Linear::forward` otherwise. The values are burn's, bit for bit,
/// in the forward pass and in the gradients; the bias is added by burn, as `Linear` does.
pub fn linear_forward<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let dims = x.dims();
    let d_in = dims[D - 1];
    let rows = dims[..D - 1].iter().product::<usize>();
    let weight = layer.weight.val();
    let d_out = weight.dims()[1];
    // burn sums a weight gradient over the leading dimensions one way for a matrix and for a
    // batch of sequences (see `linear::weight_partials`); other ranks are left to burn.
    if !(D == 2 || D == 3) || rows == 0 || weight.dims()[0] != d_in {
        return layer.forward(x);
    }
    // burn runs a batch of sequences as one product per sequence or, when that tiles badly, as
    // one product over all the rows; the weight gradient is summed accordingly.
    let analysis = MatmulTransformAnalysis::from_shapes(&x.shape(), &weight.shape());
    let batch = match MatmulTransformPolicy::default().action(&analysis) {
        MatmulTransformAction::Keep if D == 3 => dims[0],
        _ => 1,
    };
    let flat: Tensor<2> = x.clone().reshape([rows, d_in]);
    let product = autodiff::linear_product(&flat, &weight, batch).or_else(|| {
        let (xv, wv) = (plain_f32(&flat)?, plain_f32(&weight)?);
        let out = linear::forward(&xv, &wv, batch, [rows, d_in, d_out]);
        Some(from_vec(out, [rows, d_out]))
    });
    let Some(product) = product else {
        return layer.forward(x);
    };
    let mut out_dims = dims;
    out_dims[D - 1] = d_out;
    // The bias is added where burn adds it (to the rows of the one product, or at the input's
    // rank), so that its gradient is summed over the leading dimensions in burn's order.
    let bias = layer.bias.as_ref().map(|bias| bias.val());
    if batch == 1 {
        let product = match bias {
            Some(bias) => product + bias.reshape([1, d_out]),
            None => product,
        };
        return product.reshape(out_dims);
    }
    let product: Tensor<D> = product.reshape(out_dims);
    match bias {
        Some(bias) => {
            let mut bias_dims = [1; D];
            bias_dims[D - 1] = d_out;
            product + bias.reshape(bias_dims)
        }
        None => product,
    }
}

/// BERT's exact GELU, `0.5 · x · (1 + erf(x / √2))`, on every core when `x` is a float32 flex
/// tensor (with or without autodiff), and burn's own `gelu` otherwise. The values and the
/// gradient are burn's, bit for bit (see the `gelu` module).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if let Some(out) = autodiff::gelu_on_autodiff(&x) {
        return out;
    }
    match plain_f32(&x) {
        Some(values) => from_vec(gelu::forward(&values, false).0, x.dims()),
        None => burn::tensor::activation::gelu(x),
    }
}

/// `lhs.matmul(rhs)` for tensors of rank `D ≥ 3` with the same batch dimensions (attention's
/// `Q Kᵀ` and `P V`): the products of the batch's matrices run on every core when the tensors
/// are float32 flex tensors (with or without autodiff), and burn's own `matmul` runs otherwise.
/// The values and the gradients are burn's, bit for bit (see the `batched_matmul` module).
pub fn batched_matmul<const D: usize>(lhs: Tensor<D>, rhs: Tensor<D>) -> Tensor<D> {
    if let Some(out) = autodiff_attention::batched_product(&lhs, &rhs) {
        return out;
    }
    let plain = |t: &Tensor<D>| t.clone().try_into_primitive::<Flex>().ok();
    if let (Some(a), Some(b)) = (plain(&lhs), plain(&rhs))
        && let Some(out) = batched_matmul::batched_matmul(&a, &b)
    {
        return Tensor::from_primitive::<Flex>(out);
    }
    lhs.matmul(rhs)
}

/// The softmax over the last dimension, as `burn::tensor::activation::softmax(x, D - 1)`: on an
/// autodiff-over-flex float32 tensor its rows run on every core (see the `softmax` module),
/// elsewhere burn's own softmax runs. The values and the gradient are burn's, bit for bit.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    match autodiff_attention::softmax_on_autodiff(&x) {
        Some(out) => out,
        None => burn::tensor::activation::softmax(x, D - 1),
    }
}

/// `KL(softmax(teacher / τ) ‖ softmax(student))` at every position of `[batch, len, vocab]`
/// logits, `student` being the student's logits already divided by `τ` (a tracked operation,
/// as burn's own loss divides them) and `teacher` the teacher's, not divided and not tracked:
/// the values, `[batch, len]`, and the student's gradient are those of
/// `Σ exp(log_softmax(teacher / τ)) · (log_softmax(teacher / τ) − log_softmax(student))` over
/// the vocabulary in burn, bit for bit, with every row on every core (see the `token_loss`
/// module). `None` when the tensors are not autodiff-over-flex float32 tensors of one shape;
/// the caller then keeps burn's operations.
pub fn forward_kl_rows(
    student: &Tensor<3>,
    teacher: &Tensor<3>,
    temperature: f64,
) -> Option<Tensor<2>> {
    // flex divides float32 tensors by the scalar rounded to float32.
    let direction = autodiff_token_loss::Direction::Forward;
    autodiff_token_loss::kl_on_autodiff(student, teacher, temperature as f32, direction)
}

/// `KL(softmax(student) ‖ softmax(teacher / τ))` at every position, as [`forward_kl_rows`]
/// takes its tensors: the values and the student's gradient are those of
/// `Σ exp(log_softmax(student)) · (log_softmax(student) − log_softmax(teacher / τ))` over the
/// vocabulary in burn, bit for bit, with every row on every core. `None` as for
/// [`forward_kl_rows`].
pub fn reverse_kl_rows(
    student: &Tensor<3>,
    teacher: &Tensor<3>,
    temperature: f64,
) -> Option<Tensor<2>> {
    let direction = autodiff_token_loss::Direction::Reverse;
    autodiff_token_loss::kl_on_autodiff(student, teacher, temperature as f32, direction)
}

/// `kind` between `softmax(teacher / τ)` and `softmax(student)` at every position, as
/// [`forward_kl_rows`] takes its tensors: the values and the student's gradient are those of
/// `lm::objectives::divergence` (burn's operations, the mixture by a detached log-sum-exp),
/// bit for bit, with every row on every core (see the `mixed_divergence` module). `None` as
/// for [`forward_kl_rows`], and when the mixture's weight is 0 or 1 (a plain KL there).
pub fn mixed_divergence_rows(
    student: &Tensor<3>,
    teacher: &Tensor<3>,
    temperature: f64,
    kind: MixedDivergence,
) -> Option<Tensor<2>> {
    autodiff_token_loss::mixed_on_autodiff(student, teacher, temperature as f32, kind)
}

/// `x · tableᵀ` for `x` `[batch, len, width]` and an embedding table `[vocab, width]` (a
/// language model's output projection tied to its embeddings), as
/// `burn::tensor::module::linear(x, table.transpose(), None)` computes it, the values and both
/// gradients bit for bit, with the products split over every core (see the `tied_head`
/// module), on autodiff-over-flex tensors and on plain flex ones alike. `None` when the tensors
/// are not float32 flex tensors, or the shapes are too small to split safely; the caller then
/// keeps burn's operations.
pub fn tied_output_projection(x: &Tensor<3>, table: &Tensor<2>) -> Option<Tensor<3>> {
    if let Some(out) = autodiff_tied_head::tied_head_on_autodiff(x, table) {
        return Some(out);
    }
    let [batch, len, width] = x.dims();
    let [vocab, table_width] = table.dims();
    if table_width != width || !tied_head::covers([batch * len, width, vocab]) {
        return None;
    }
    // Borrowed, not copied: the table of a pretrained model is hundreds of MB.
    let xp = x.clone().try_into_primitive::<Flex>().ok()?;
    let tp = table.clone().try_into_primitive::<Flex>().ok()?;
    let logits = tied_head::forward(
        &f32_values(&xp)?,
        &f32_values(&tp)?,
        [batch * len, width, vocab],
    );
    Some(from_vec(logits, [batch, len, vocab]))
}

/// `log_softmax(logits, 2)` gathered at `targets` (`[batch, len]`), as burn computes it, the
/// values and the gradient bit for bit, with every row on every core (see the `token_loss`
/// module). `None` when `logits` is not an autodiff-over-flex float32 tensor or a target is
/// outside the vocabulary; the caller then keeps burn's operations.
pub fn log_softmax_pick(logits: &Tensor<3>, targets: &Tensor<2, Int>) -> Option<Tensor<2>> {
    autodiff_token_loss::log_softmax_pick_on_autodiff(logits, targets)
}

/// `norm.forward(x)` (LayerNorm over the last dimension), `epsilon` being the one `norm` was
/// built with (burn keeps it private): on an autodiff-over-flex float32 tensor its rows run on
/// every core (see the `layer_norm` module), elsewhere burn's own LayerNorm runs. The values
/// and the gradients of `γ` and `β` are burn's, bit for bit; so is the input's when `x` feeds
/// nothing but this LayerNorm (a residual sum, as in BERT), since burn may otherwise add the
/// input's gradients in another order.
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    let beta = norm.beta.as_ref().map(|b| b.val());
    let fused = beta.and_then(|beta| {
        autodiff_norm::layer_norm_on_autodiff(&x, &norm.gamma.val(), &beta, epsilon)
    });
    fused.unwrap_or_else(|| norm.forward(x))
}

/// `embedding.forward(ids)`: on an autodiff-over-flex float32 table, the lookup and its
/// gradient run as one operation whose gradient table is zeroed on every core (see the
/// `embedding` module); elsewhere, or with an id outside the table, burn's own lookup runs.
/// The values and the gradient are burn's, bit for bit.
pub fn embedding_lookup(embedding: &Embedding, ids: Tensor<2, Int>) -> Tensor<3> {
    autodiff_embedding::lookup_on_autodiff(&embedding.weight.val(), &ids)
        .unwrap_or_else(|| embedding.forward(ids))
}

/// Inverted dropout with a given mask: `x * mask * (1 / keep)` as burn computes it, `mask`
/// holding one 0 or 1 per element of `x` in row-major order. On an autodiff-over-flex float32
/// tensor both passes run on every core (see the `autodiff_attention` module); elsewhere burn's
/// operations run. The values and the gradient are burn's, bit for bit.
///
/// # Panics
/// When `mask` does not hold one value per element of `x`.
pub fn dropout_with_mask<const D: usize>(x: Tensor<D>, mask: Vec<f32>, keep: f64) -> Tensor<D> {
    let dims = x.dims();
    assert_eq!(
        mask.len(),
        dims.iter().product::<usize>(),
        "dropout: one mask value per element"
    );
    let scale = 1.0 / keep;
    let mask = Arc::new(mask);
    // flex multiplies float32 tensors by the scalar rounded to float32.
    if let Some(out) = autodiff_attention::dropout_on_autodiff(&x, mask.clone(), scale as f32) {
        return out;
    }
    let mask = Arc::try_unwrap(mask).unwrap_or_else(|shared| (*shared).clone());
    let random = Tensor::from_data(TensorData::new(mask, dims), &x.device());
    x * random * scale
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

//! Adam, AdamW and SGD with momentum as one pass over each parameter's values.
//!
//! burn's optimisers update a parameter with about ten tensor operations (scale the moments,
//! square the gradient, add, take the root, divide, ...), each reading and writing whole
//! buffers; on the CPU backend that was 15% of a KD training step (bench/RESULTS.md). The
//! optimisers here do the same arithmetic element by element in one loop over the parameter, its
//! gradient and its moments, in place where the buffers are not shared.
//!
//! They are exact replacements, not approximations: every element goes through the same `f32`
//! operations in the same order as burn's tensor operations (scalars converted to `f32` where
//! burn converts them), so the updated values are identical to the bit, and the per-parameter
//! state has burn's record layout (`AdamState`, `AdamWState`, and `SgdState`'s
//! `momentum.velocity`), so optimiser states saved by either load into the other. Tensors that
//! are not contiguous `f32` tensors of the CPU backend (GPU builds, or any other backend) take
//! burn's own update, decided at run time per parameter. A large parameter is split into chunks
//! updated on rayon's pool; each element's arithmetic is the same whichever chunk holds it.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{
    AdamConfig, AdamState, AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate,
    Optimizer as BurnOptimizer, RecordState, StateSink, StateSource, join_path,
};
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

/// Adam (Kingma & Ba) with L2 weight decay added to the gradient, as burn's `Adam`.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: Option<f32>,
    fused: bool,
    reference: burn::optim::Adam,
}

impl FusedAdam {
    /// Adam with these moment decay rates, `epsilon` and optional L2 penalty.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: Option<f32>) -> Self {
        let reference = AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay.map(WeightDecayConfig::new))
            .build();
        Self {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            fused: true,
            reference,
        }
    }

    /// The same optimiser always taking burn's tensor-operation update (for comparisons).
    pub fn unfused(mut self) -> Self {
        self.fused = false;
        self
    }
}

impl BurnOptimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !self.fused {
            return self.reference.step(lr, tensor, grad, state);
        }
        let moments = state.map(|s| s.momentum);
        match fused_adam_like(&self.adam_rule(lr), tensor, grad, moments) {
            Ok((tensor, momentum)) => (tensor, Some(AdamState::new(momentum))),
            Err(parts) => {
                let (tensor, grad, momentum) = *parts;
                self.reference
                    .step(lr, tensor, grad, momentum.map(AdamState::new))
            }
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        burn::optim::Adam::to_device(state, device)
    }
}

impl FusedAdam {
    fn adam_rule(&self, lr: LearningRate) -> AdamRule {
        AdamRule {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            l2: self.weight_decay,
            lr: lr as f32,
            decoupled: None,
        }
    }
}

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, as burn's `AdamW`.
#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    fused: bool,
    reference: AdamW,
}

impl FusedAdamW {
    /// AdamW with these moment decay rates, `epsilon` and decoupled decay rate.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        let reference = AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
            .build();
        Self {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            fused: true,
            reference,
        }
    }

    /// The same optimiser always taking burn's tensor-operation update (for comparisons).
    pub fn unfused(mut self) -> Self {
        self.fused = false;
        self
    }
}

impl BurnOptimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !self.fused {
            return self.reference.step(lr, tensor, grad, state);
        }
        // burn computes the decay factor in f64 and converts it once, as here.
        let decay_rate = lr * self.weight_decay as f64;
        let rule = AdamRule {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            l2: None,
            lr: lr as f32,
            decoupled: Some((decay_rate != 0.0).then_some((1.0 - decay_rate) as f32)),
        };
        let moments = state.map(|s| s.momentum);
        match fused_adam_like(&rule, tensor, grad, moments) {
            Ok((tensor, momentum)) => (tensor, Some(AdamWState { momentum })),
            Err(parts) => {
                let (tensor, grad, momentum) = *parts;
                self.reference.step(
                    lr,
                    tensor,
                    grad,
                    momentum.map(|momentum| AdamWState { momentum }),
                )
            }
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

/// SGD with optional (Nesterov) momentum and L2 weight decay, as burn's `Sgd`.
#[derive(Clone)]
pub struct FusedSgd {
    momentum: Option<SgdMomentum>,
    weight_decay: Option<f32>,
    fused: bool,
}

#[derive(Clone, Copy)]
struct SgdMomentum {
    momentum: f32,
    dampening: f64,
    nesterov: bool,
}

impl FusedSgd {
    /// SGD with `momentum` (none when `None`; dampening and Nesterov as in burn's
    /// `MomentumConfig`) and an optional L2 penalty.
    pub fn new(momentum: Option<(f64, f64, bool)>, weight_decay: Option<f32>) -> Self {
        Self {
            momentum: momentum.map(|(momentum, dampening, nesterov)| SgdMomentum {
                momentum: momentum as f32,
                dampening,
                nesterov,
            }),
            weight_decay,
            fused: true,
        }
    }

    /// The same optimiser always taking the tensor-operation update (for comparisons).
    pub fn unfused(mut self) -> Self {
        self.fused = false;
        self
    }
}

/// SGD's per-parameter state: the momentum buffer, recorded under the names burn's `SgdState`
/// uses (`momentum.velocity`), so checkpoints of either optimiser load into the other.
#[derive(Clone)]
pub struct SgdVelocity<const D: usize> {
    /// The momentum buffer; `None` without momentum.
    pub velocity: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for SgdVelocity<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(velocity) = &self.velocity {
            out.push_tensor(
                &join_path(prefix, "momentum"),
                "velocity",
                velocity.clone().into_data(),
            );
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let path = join_path(prefix, "momentum");
        let velocity = if src.has_under(&path) {
            Some(Tensor::from_data(
                src.take_tensor(&path, "velocity")?,
                device,
            ))
        } else {
            None
        };
        Some(Self { velocity })
    }
}

impl BurnOptimizer for FusedSgd {
    type State<const D: usize> = SgdVelocity<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let velocity = state.and_then(|s| s.velocity);
        if self.fused {
            match self.fused_step(lr, tensor, grad, velocity) {
                Ok(result) => return result,
                Err(parts) => {
                    let (tensor, grad, velocity) = *parts;
                    return self.tensor_step(lr, tensor, grad, velocity);
                }
            }
        }
        self.tensor_step(lr, tensor, grad, velocity)
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.velocity = state.velocity.map(|v| v.to_device(device));
        state
    }
}

type SgdResult<const D: usize> = (Tensor<D>, Option<SgdVelocity<D>>);
/// The inputs handed back when the fused update does not apply (boxed: tensors are large).
type SgdParts<const D: usize> = Box<(Tensor<D>, Tensor<D>, Option<Tensor<D>>)>;

impl FusedSgd {
    /// burn's `Sgd` update with tensor operations (its momentum buffer is private, so the
    /// operations are repeated here in burn's order).
    fn tensor_step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        mut grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> SgdResult<D> {
        if let Some(penalty) = self.weight_decay {
            grad = tensor.clone().mul_scalar(penalty).add(grad);
        }
        let mut new_velocity = None;
        if let Some(m) = self.momentum {
            let velocity = match velocity {
                Some(velocity) => grad
                    .clone()
                    .mul_scalar(1.0 - m.dampening)
                    .add(velocity.mul_scalar(m.momentum)),
                None => grad.clone(),
            };
            grad = if m.nesterov {
                velocity.clone().mul_scalar(m.momentum).add(grad)
            } else {
                velocity.clone()
            };
            new_velocity = Some(velocity);
        }
        let delta = grad.mul_scalar(lr);
        (
            tensor - delta,
            Some(SgdVelocity {
                velocity: new_velocity,
            }),
        )
    }

    fn fused_step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> Result<SgdResult<D>, SgdParts<D>> {
        let shape = tensor.shape();
        let (mut param, grad) = match (into_flex(tensor), into_flex(grad)) {
            (Ok(p), Ok(g)) if readable(&p) && readable(&g) => (p, g),
            (p, g) => return Err(Box::new((back(p), back(g), velocity))),
        };
        let n = shape.num_elements();
        let mut buffer = match (self.momentum, velocity) {
            (Some(_), Some(v)) => match into_flex(v) {
                Ok(v) if readable(&v) => Some(v),
                Ok(v) => {
                    return Err(Box::new((
                        from_flex(param),
                        from_flex(grad),
                        Some(from_flex(v)),
                    )));
                }
                Err(v) => return Err(Box::new((from_flex(param), from_flex(grad), Some(*v)))),
            },
            _ => None,
        };
        let first = buffer.is_none();
        if self.momentum.is_some() && buffer.is_none() {
            buffer = Some(FlexTensor::from_data(TensorData::new(vec![0f32; n], shape)));
        }
        make_writable(&mut param);
        if let Some(b) = buffer.as_mut() {
            make_writable(b);
        }
        let g = &slice(&grad)[..n];
        let p = &mut param.storage_mut::<f32>()[..n];
        let update = Update::Sgd {
            lr: lr as f32,
            l2: self.weight_decay,
            momentum: self
                .momentum
                .map(|m| ((1.0 - m.dampening) as f32, m.momentum, m.nesterov, first)),
        };
        match buffer.as_mut() {
            Some(buffer) => apply(update, p, g, &mut buffer.storage_mut::<f32>()[..n], &mut []),
            None => apply(update, p, g, &mut [], &mut []),
        }
        let velocity = buffer.map(from_flex);
        Ok((from_flex(param), Some(SgdVelocity { velocity })))
    }
}

/// The element-wise rule shared by Adam and AdamW.
struct AdamRule {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// Adam's L2 penalty, added to the gradient.
    l2: Option<f32>,
    /// Learning rate, as burn converts it.
    lr: f32,
    /// `Some` for AdamW: the factor that decays the parameter before the update (`None` when
    /// the decay rate is zero, where burn leaves the parameter as it is).
    decoupled: Option<Option<f32>>,
}

/// The inputs handed back when the fused update does not apply (boxed: tensors are large).
type AdamParts<const D: usize> = Box<(Tensor<D>, Tensor<D>, Option<AdaptiveMomentumState<D>>)>;

/// One Adam or AdamW step over raw buffers, or the inputs back when they are not contiguous
/// `f32` tensors of the CPU backend (or the state uses AMSGrad, which these rules do not).
fn fused_adam_like<const D: usize>(
    rule: &AdamRule,
    tensor: Tensor<D>,
    grad: Tensor<D>,
    state: Option<AdaptiveMomentumState<D>>,
) -> Result<(Tensor<D>, AdaptiveMomentumState<D>), AdamParts<D>> {
    if state.as_ref().is_some_and(|s| s.max_moment_2.is_some()) {
        return Err(Box::new((tensor, grad, state)));
    }
    let shape = tensor.shape();
    let n = shape.num_elements();
    let (mut param, grad) = match (into_flex(tensor), into_flex(grad)) {
        (Ok(p), Ok(g)) if readable(&p) && readable(&g) => (p, g),
        (p, g) => return Err(Box::new((back(p), back(g), state))),
    };
    let (time, mut m1, mut m2) = match state {
        Some(state) => match (into_flex(state.moment_1), into_flex(state.moment_2)) {
            (Ok(a), Ok(b)) if readable(&a) && readable(&b) => (state.time, Some(a), Some(b)),
            (a, b) => {
                let restored = AdaptiveMomentumState::new(state.time, back(a), back(b));
                return Err(Box::new((
                    from_flex(param),
                    from_flex(grad),
                    Some(restored),
                )));
            }
        },
        None => (0, None, None),
    };
    let first = m1.is_none();
    let time = time + 1;
    let mut m1 = m1
        .take()
        .unwrap_or_else(|| FlexTensor::from_data(TensorData::new(vec![0f32; n], shape.clone())));
    let mut m2 = m2
        .take()
        .unwrap_or_else(|| FlexTensor::from_data(TensorData::new(vec![0f32; n], shape)));
    make_writable(&mut param);
    make_writable(&mut m1);
    make_writable(&mut m2);

    let (b1, b2) = (rule.beta_1, rule.beta_2);
    let t = time as i32;
    let update = match rule.decoupled {
        None => {
            // burn's Adam: m·√(1−β₂ᵗ)/(1−β₁ᵗ) / (√v + ε·√(1−β₂ᵗ)).
            let correction_2 = (1.0 - b2.powi(t)).sqrt();
            Update::Adam {
                moments: Moments::new(b1, b2, first),
                factor: correction_2 / (1.0 - b1.powi(t)),
                eps: rule.epsilon * correction_2,
                lr: rule.lr,
                l2: rule.l2,
            }
        }
        // burn's AdamW: (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε), the parameter decayed first.
        Some(decay) => Update::AdamW {
            moments: Moments::new(b1, b2, first),
            correction_1: 1f32 - b1.powi(t),
            correction_2: 1f32 - b2.powi(t),
            eps: rule.epsilon,
            lr: rule.lr,
            decay,
        },
    };
    apply(
        update,
        &mut param.storage_mut::<f32>()[..n],
        &slice(&grad)[..n],
        &mut m1.storage_mut::<f32>()[..n],
        &mut m2.storage_mut::<f32>()[..n],
    );
    let state = AdaptiveMomentumState::new(time, from_flex(m1), from_flex(m2));
    Ok((from_flex(param), state))
}

/// The CPU backend's tensor inside `tensor`, or `tensor` itself on any other backend.
fn into_flex<const D: usize>(tensor: Tensor<D>) -> Result<FlexTensor, Box<Tensor<D>>> {
    // The conversion consumes the tensor even when it fails; the clone (a reference count)
    // keeps it for that case and is dropped at once otherwise, so the buffer stays unshared.
    let kept = tensor.clone();
    match tensor.try_into_primitive::<Flex>() {
        Ok(primitive) => {
            drop(kept);
            Ok(primitive)
        }
        Err(_) => Err(Box::new(kept)),
    }
}

fn from_flex<const D: usize>(tensor: FlexTensor) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(tensor)
}

fn back<const D: usize>(tensor: Result<FlexTensor, Box<Tensor<D>>>) -> Tensor<D> {
    match tensor {
        Ok(flex) => from_flex(flex),
        Err(other) => *other,
    }
}

/// Whether the fused loops can read this tensor as one `f32` slice.
fn readable(tensor: &FlexTensor) -> bool {
    tensor.as_slice::<f32>().is_some()
}

fn slice(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("checked by `readable` before the update")
}

/// Makes the tensor's buffer its own and laid out from offset 0, copying only when it is shared
/// with another tensor or is a view into a larger buffer.
fn make_writable(tensor: &mut FlexTensor) {
    let in_place =
        tensor.is_unique() && matches!(tensor.layout().contiguous_offsets(), Some((0, _)));
    if !in_place {
        let shape = tensor.layout().shape().clone();
        let values = slice(tensor).to_vec();
        *tensor = FlexTensor::from_data(TensorData::new(values, shape));
    }
}

/// Adam's moment decay rates, with `1 − β` as burn computes them.
#[derive(Clone, Copy)]
struct Moments {
    b1: f32,
    b2: f32,
    f1: f32,
    f2: f32,
    /// No moments yet: they start from this gradient alone.
    first: bool,
}

impl Moments {
    fn new(b1: f32, b2: f32, first: bool) -> Self {
        Self {
            b1,
            b2,
            f1: 1.0 - b1,
            f2: 1.0 - b2,
            first,
        }
    }
}

/// The scalars of one parameter's update, already in `f32` as burn converts them.
#[derive(Clone, Copy)]
enum Update {
    Adam {
        moments: Moments,
        factor: f32,
        eps: f32,
        lr: f32,
        l2: Option<f32>,
    },
    AdamW {
        moments: Moments,
        correction_1: f32,
        correction_2: f32,
        eps: f32,
        lr: f32,
        /// The parameter's decay factor; `None` leaves it as it is.
        decay: Option<f32>,
    },
    Sgd {
        lr: f32,
        l2: Option<f32>,
        /// `1 − dampening`, momentum, Nesterov, and whether this is the first step.
        momentum: Option<(f32, f32, bool, bool)>,
    },
}

/// Elements per task when a parameter is updated on several cores.
const CHUNK: usize = 1 << 15;

/// Applies `update` to parameter `p` with gradient `g` and its state buffers (Adam's two
/// moments, SGD's velocity in `m`; each either of `p`'s length or empty when the update does
/// not use it), chunk by chunk on rayon's pool when `p` is large.
fn apply(update: Update, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let fits = |len: usize| len == 0 || len == p.len();
    if p.len() <= CHUNK || g.len() != p.len() || !fits(m.len()) || !fits(v.len()) {
        apply_chunk(update, p, g, m, v);
        return;
    }
    let count = p.len().div_ceil(CHUNK);
    let (ms, vs) = (split_state(m, count), split_state(v, count));
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(ms.into_par_iter().zip(vs.into_par_iter()))
        .for_each(|((p, g), (m, v))| apply_chunk(update, p, g, m, v));
}

/// A state buffer in `count` chunks of `CHUNK` elements, or `count` empty slices when the
/// update does not use it.
fn split_state(buffer: &mut [f32], count: usize) -> Vec<&mut [f32]> {
    if buffer.is_empty() {
        (0..count).map(|_| <&mut [f32]>::default()).collect()
    } else {
        buffer.chunks_mut(CHUNK).collect()
    }
}

/// Applies `update` to one run of elements with the widest vectors the CPU has. Vector square
/// roots, products and quotients round exactly as scalar ones, so the result does not depend
/// on which loop runs, nor on where a chunk starts.
fn apply_chunk(update: Update, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { apply_avx2(update, p, g, m, v) };
        return;
    }
    apply_any(update, p, g, m, v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn apply_avx2(update: Update, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    apply_any(update, p, g, m, v);
}

/// Chooses the loop; every branch that does not depend on the element is taken here, so that
/// each loop is straight-line code the compiler vectorises.
#[inline(always)]
fn apply_any(update: Update, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    match update {
        Update::Adam {
            moments,
            factor,
            eps,
            lr,
            l2,
        } => {
            let step = |mi: f32, vi: f32, pi: f32| pi - ((mi * factor) / (vi.sqrt() + eps)) * lr;
            match l2 {
                Some(pen) => adam_loop(moments, p, g, m, v, |pi, gi| pi * pen + gi, step),
                None => adam_loop(moments, p, g, m, v, |_, gi| gi, step),
            }
        }
        Update::AdamW {
            moments,
            correction_1,
            correction_2,
            eps,
            lr,
            decay,
        } => {
            let delta =
                move |mi: f32, vi: f32| (mi / correction_1) / ((vi / correction_2).sqrt() + eps);
            match decay {
                Some(factor) => adam_loop(
                    moments,
                    p,
                    g,
                    m,
                    v,
                    |_, gi| gi,
                    |mi, vi, pi| pi * factor - delta(mi, vi) * lr,
                ),
                None => adam_loop(
                    moments,
                    p,
                    g,
                    m,
                    v,
                    |_, gi| gi,
                    |mi, vi, pi| pi - delta(mi, vi) * lr,
                ),
            }
        }
        Update::Sgd { lr, l2, momentum } => match (momentum, l2) {
            (None, Some(pen)) => sgd_loop(p, g, |pi, gi| pi - (pi * pen + gi) * lr),
            (None, None) => sgd_loop(p, g, |pi, gi| pi - gi * lr),
            (Some(settings), Some(pen)) => {
                momentum_loops(settings, p, g, m, |pi, gi| pi * pen + gi, lr)
            }
            (Some(settings), None) => momentum_loops(settings, p, g, m, |_, gi| gi, lr),
        },
    }
}

/// SGD with momentum: `(1 − dampening, momentum, nesterov, first step)`.
#[inline(always)]
fn momentum_loops(
    (keep, mu, nesterov, first): (f32, f32, bool, bool),
    p: &mut [f32],
    g: &[f32],
    velocity: &mut [f32],
    grad: impl Fn(f32, f32) -> f32,
    lr: f32,
) {
    // burn's first step takes the gradient itself as the velocity.
    let start = |gi: f32, _: f32| gi;
    let decay = |gi: f32, vi: f32| gi * keep + vi * mu;
    let ahead = |gi: f32, vi: f32| vi * mu + gi;
    let plain = |_: f32, vi: f32| vi;
    match (first, nesterov) {
        (true, true) => momentum_loop(p, g, velocity, grad, start, ahead, lr),
        (true, false) => momentum_loop(p, g, velocity, grad, start, plain, lr),
        (false, true) => momentum_loop(p, g, velocity, grad, decay, ahead, lr),
        (false, false) => momentum_loop(p, g, velocity, grad, decay, plain, lr),
    }
}

#[inline(always)]
fn adam_loop(
    moments: Moments,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: impl Fn(f32, f32) -> f32,
    step: impl Fn(f32, f32, f32) -> f32,
) {
    let Moments {
        b1,
        b2,
        f1,
        f2,
        first,
    } = moments;
    let elements = p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut());
    if first {
        for (((pi, &gi), mi), vi) in elements {
            let gi = grad(*pi, gi);
            *mi = gi * f1;
            *vi = (gi * gi) * f2;
            *pi = step(*mi, *vi, *pi);
        }
    } else {
        for (((pi, &gi), mi), vi) in elements {
            let gi = grad(*pi, gi);
            *mi = *mi * b1 + gi * f1;
            *vi = *vi * b2 + (gi * gi) * f2;
            *pi = step(*mi, *vi, *pi);
        }
    }
}

#[inline(always)]
fn sgd_loop(p: &mut [f32], g: &[f32], step: impl Fn(f32, f32) -> f32) {
    for (pi, &gi) in p.iter_mut().zip(g) {
        *pi = step(*pi, gi);
    }
}

#[inline(always)]
fn momentum_loop(
    p: &mut [f32],
    g: &[f32],
    velocity: &mut [f32],
    grad: impl Fn(f32, f32) -> f32,
    update_velocity: impl Fn(f32, f32) -> f32,
    step: impl Fn(f32, f32) -> f32,
    lr: f32,
) {
    for ((pi, &gi), vi) in p.iter_mut().zip(g).zip(velocity.iter_mut()) {
        let gi = grad(*pi, gi);
        *vi = update_velocity(gi, *vi);
        *pi -= step(gi, *vi) * lr;
    }
}

//! Optimisers and learning-rate schedules, as configured in experiment files.
//!
//! The update rules are burn's (computed in one pass per parameter on the CPU backend, see
//! [`super::fused`]); the schedule is ours, computed per step from the spec, so a resumed
//! run recomputes the exact learning rate of any step without stored scheduler state.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use serde::{Deserialize, Serialize};

use super::fused::{FusedAdam, FusedAdamW, FusedSgd};

/// Which update rule to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent with (optionally Nesterov) momentum; weight decay is L2.
    Sgd,
    /// Adam; weight decay is added to the gradient (L2), as in PyTorch's Adam.
    #[default]
    Adam,
    /// Adam with decoupled weight decay (Loshchilov & Hutter).
    Adamw,
}

/// How the learning rate changes over training.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiplied by `gamma` every `step_epochs` epochs.
    Step,
    /// Cosine decay from the base rate to `min_lr` over all steps.
    Cosine,
}

/// The optimiser and schedule of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    /// Update rule.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Momentum of SGD.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Nesterov momentum for SGD.
    #[serde(default)]
    pub nesterov: bool,
    /// Weight decay (L2 for SGD and Adam, decoupled for AdamW).
    #[serde(default)]
    pub weight_decay: f64,
    /// Learning-rate schedule.
    #[serde(default)]
    pub schedule: ScheduleKind,
    /// Epochs between decays of the step schedule.
    #[serde(default = "default_step_epochs")]
    pub step_epochs: usize,
    /// Decay factor of the step schedule.
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// Final learning rate of the cosine schedule.
    #[serde(default)]
    pub min_lr: f64,
    /// Epochs of linear warm-up from 0 to the base rate (0 = none).
    #[serde(default)]
    pub warmup_epochs: usize,
}

fn default_lr() -> f64 {
    1e-3
}
fn default_momentum() -> f64 {
    0.9
}
fn default_step_epochs() -> usize {
    30
}
fn default_gamma() -> f64 {
    0.1
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Adam,
            lr: default_lr(),
            momentum: default_momentum(),
            nesterov: false,
            weight_decay: 0.0,
            schedule: ScheduleKind::Constant,
            step_epochs: default_step_epochs(),
            gamma: default_gamma(),
            min_lr: 0.0,
            warmup_epochs: 0,
        }
    }
}

impl OptimizerSpec {
    /// Checks ranges; `key` names the table in error messages.
    pub fn validate(&self, key: &str) -> Result<(), String> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "{key}.lr: expected a positive learning rate, found {}",
                self.lr
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(format!(
                "{key}.momentum: expected a value in [0, 1), found {}",
                self.momentum
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!(
                "{key}.weight_decay: expected a value ≥ 0, found {}",
                self.weight_decay
            ));
        }
        if self.step_epochs == 0 {
            return Err(format!("{key}.step_epochs: expected at least 1"));
        }
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            return Err(format!(
                "{key}.gamma: expected a factor in (0, 1], found {}",
                self.gamma
            ));
        }
        if !(self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return Err(format!(
                "{key}.min_lr: expected a value in [0, lr], found {}",
                self.min_lr
            ));
        }
        Ok(())
    }

    /// The learning rate of global step `step` (0-based) out of `total_steps`, with
    /// `steps_per_epoch` steps in an epoch.
    pub fn learning_rate(&self, step: usize, steps_per_epoch: usize, total_steps: usize) -> f64 {
        let steps_per_epoch = steps_per_epoch.max(1);
        let warmup_steps = self.warmup_epochs * steps_per_epoch;
        if step < warmup_steps {
            return self.lr * (step + 1) as f64 / warmup_steps as f64;
        }
        match self.schedule {
            ScheduleKind::Constant => self.lr,
            ScheduleKind::Step => {
                let epoch = step / steps_per_epoch;
                self.lr * self.gamma.powi((epoch / self.step_epochs) as i32)
            }
            ScheduleKind::Cosine => {
                let span = total_steps.saturating_sub(warmup_steps).max(1);
                let progress = (step - warmup_steps) as f64 / span as f64;
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos());
                self.min_lr + (self.lr - self.min_lr) * cosine
            }
        }
    }

    /// Builds the optimiser. Its updates are one pass over each parameter's values on the CPU
    /// backend ([`super::fused`]) and burn's own elsewhere; the values are the same either way.
    pub fn build(&self) -> Optimizer {
        self.build_with(true)
    }

    /// The optimiser [`OptimizerSpec::build`] makes, but updating with burn's tensor operations
    /// everywhere: the reference the fused updates are checked and timed against.
    pub fn build_unfused(&self) -> Optimizer {
        self.build_with(false)
    }

    fn build_with(&self, fused: bool) -> Optimizer {
        let decay = (self.weight_decay > 0.0).then_some(self.weight_decay as f32);
        // PyTorch's defaults, so that our optimisers match the usual reference numbers.
        let (beta_1, beta_2, epsilon) = (0.9, 0.999, 1e-8);
        let inner = match self.optimizer {
            OptimizerKind::Sgd => {
                // Dampening 0 is PyTorch's default.
                let momentum = (self.momentum > 0.0).then_some((self.momentum, 0.0, self.nesterov));
                let sgd = FusedSgd::new(momentum, decay);
                ModuleOptimizer::from(if fused { sgd } else { sgd.unfused() })
            }
            OptimizerKind::Adam => {
                let adam = FusedAdam::new(beta_1, beta_2, epsilon, decay);
                ModuleOptimizer::from(if fused { adam } else { adam.unfused() })
            }
            OptimizerKind::Adamw => {
                let adamw = FusedAdamW::new(beta_1, beta_2, epsilon, self.weight_decay as f32);
                ModuleOptimizer::from(if fused { adamw } else { adamw.unfused() })
            }
        };
        Optimizer { inner }
    }
}

/// A configured optimiser holding its per-parameter state.
pub struct Optimizer {
    inner: ModuleOptimizer,
}

impl Optimizer {
    /// Applies one update to `module` from the gradients of `loss`.
    pub fn step<M: Module>(&mut self, learning_rate: f64, module: M, grads: GradientsParams) -> M {
        self.inner.step(learning_rate, module, grads)
    }

    /// The per-parameter state (moments, step counts) as bytes, for a mid-training checkpoint.
    pub fn state_bytes(&self) -> Result<Vec<u8>, String> {
        self.inner
            .into_bytes()
            .map(|bytes| bytes.to_vec())
            .map_err(|e| format!("cannot serialise the optimiser state: {e}"))
    }

    /// Restores state written by [`Optimizer::state_bytes`] for the same parameter ids.
    pub fn restore(self, bytes: Vec<u8>) -> Result<Self, String> {
        let inner = self
            .inner
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| format!("cannot restore the optimiser state: {e}"))?;
        Ok(Self { inner })
    }
}

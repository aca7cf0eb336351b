//! Student language models: a small llama decoder that shares the teacher's tokenizer (and so
//! its vocabulary, rotary base and context), seeded initialisation, and one training step on a
//! batch of token sequences, distilled from teacher logits or on the next tokens alone.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::error::LmError;
use super::llama::{Llama, LlamaConfig};
use super::objectives::TokenLoss;
use crate::backend;
use crate::distill::optim::Optimizer;

/// The shape of a student; the rest of its configuration comes from the teacher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentShape {
    /// Decoder layers.
    pub layers: usize,
    /// Width of token representations.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Width of the SwiGLU block.
    pub ffn: usize,
}

impl StudentShape {
    /// The student's full configuration: this shape with the teacher's vocabulary, rotary base,
    /// RMSNorm epsilon and context; embeddings tied.
    pub fn config(&self, teacher: &LlamaConfig) -> Result<LlamaConfig, LmError> {
        let config = LlamaConfig {
            vocab_size: teacher.vocab_size,
            hidden: self.hidden,
            layers: self.layers,
            heads: self.heads,
            kv_heads: self.kv_heads,
            ffn: self.ffn,
            rope_theta: teacher.rope_theta,
            rms_eps: teacher.rms_eps,
            max_len: teacher.max_len,
            tied: true,
        };
        config
            .validate()
            .map_err(|m| LmError::Invalid(format!("student shape: {m}")))?;
        Ok(config)
    }
}

/// A student of `config` whose weights are drawn from `seed` alone: linear layers uniform in
/// `±1/√fan_in` (PyTorch's default), embeddings normal with standard deviation 0.02 (GPT-2's),
/// norms at one.
pub fn init_student(config: &LlamaConfig, seed: u64, device: &Device) -> Llama {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = Llama::new(config, &Initializer::Zeros, device);
    let uniform = |rows: usize, cols: usize, rng: &mut ChaCha8Rng| {
        let bound = 1.0 / (rows as f32).sqrt();
        let values = (0..rows * cols)
            .map(|_| rng.random_range(-bound..=bound))
            .collect();
        Param::from_tensor(backend::matrix(values, rows, cols, device))
    };
    for layer in &mut model.layers {
        for linear in [
            &mut layer.q,
            &mut layer.k,
            &mut layer.v,
            &mut layer.o,
            &mut layer.gate,
            &mut layer.up,
            &mut layer.down,
        ] {
            let [rows, cols] = linear.weight.dims();
            linear.weight = uniform(rows, cols, &mut rng);
        }
    }
    let [vocab, hidden] = model.embed.weight.dims();
    let values = (0..vocab * hidden)
        .map(|_| {
            // Box-Muller: two uniforms give one standard normal.
            let u: f32 = rng.random_range(f32::EPSILON..1.0);
            let v: f32 = rng.random_range(0.0..1.0);
            0.02 * (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
        })
        .collect();
    model.embed.weight = Param::from_tensor(backend::matrix(values, vocab, hidden, device));
    model
}

/// A batch of token sequences for next-token training: inputs are every token but the last,
/// targets every token but the first, right-padded; `mask` is 1 where the target is real.
#[derive(Debug, Clone)]
pub struct LmBatch {
    /// `[rows, len]` input ids.
    pub inputs: Tensor<2, Int>,
    /// `[rows, len]` next-token ids (0 at padding).
    pub targets: Tensor<2, Int>,
    /// `[rows, len]`, 1 at real targets and 0 at padding.
    pub mask: Tensor<2>,
}

impl LmBatch {
    /// The batch of `sequences` (each of at least two tokens) on `device`.
    pub fn new(sequences: &[Vec<u32>], device: &Device) -> Result<Self, LmError> {
        let len = sequences.iter().map(Vec::len).max().unwrap_or(0);
        if len < 2 || sequences.iter().any(|s| s.len() < 2) {
            return Err(LmError::Invalid(
                "every training sequence needs at least two tokens".into(),
            ));
        }
        let rows = sequences.len();
        let width = len - 1;
        let mut inputs = vec![0i64; rows * width];
        let mut targets = vec![0i64; rows * width];
        let mut mask = vec![0f32; rows * width];
        for (r, seq) in sequences.iter().enumerate() {
            for i in 0..seq.len() - 1 {
                inputs[r * width + i] = seq[i] as i64;
                targets[r * width + i] = seq[i + 1] as i64;
                mask[r * width + i] = 1.0;
            }
        }
        let ints = |v: Vec<i64>| Tensor::from_data(TensorData::new(v, [rows, width]), device);
        Ok(Self {
            inputs: ints(inputs),
            targets: ints(targets),
            mask: backend::matrix(mask, rows, width, device),
        })
    }

    /// The batch of `sequences` whose targets count only after each row's prompt: row `r`'s
    /// first `prompts[r]` tokens are read but not predicted (its mask is 0 there), so that a
    /// loss covers the generated continuation alone.
    pub fn completions(
        sequences: &[Vec<u32>],
        prompts: &[usize],
        device: &Device,
    ) -> Result<Self, LmError> {
        let batch = Self::new(sequences, device)?;
        let [rows, width] = batch.mask.dims();
        let mut mask = vec![0f32; rows * width];
        for (r, (seq, &prompt)) in sequences.iter().zip(prompts).enumerate() {
            let start = (prompt.max(1) - 1).min(seq.len() - 1);
            for value in &mut mask[r * width + start..r * width + seq.len() - 1] {
                *value = 1.0;
            }
        }
        Ok(Self {
            mask: backend::matrix(mask, rows, width, device),
            ..batch
        })
    }
}

/// One optimiser step of `model` (on a training device) on `batch`: the distillation loss
/// against `teacher_logits` (`[rows, len, vocab]` for the batch's inputs, on the same device;
/// they receive no gradient), or the next-token cross-entropy alone when there are none.
/// Returns the updated model and the loss before the step.
pub fn train_step(
    model: Llama,
    optimizer: &mut Optimizer,
    learning_rate: f64,
    batch: &LmBatch,
    teacher_logits: Option<Tensor<3>>,
    loss: &TokenLoss,
) -> Result<(Llama, f32), LmError> {
    let logits = model.forward(batch.inputs.clone());
    let value = match teacher_logits {
        Some(teacher) => {
            loss.validate()?;
            loss.forward(
                logits,
                teacher.detach(),
                batch.targets.clone(),
                batch.mask.clone(),
            )
        }
        None => {
            let ce = TokenLoss {
                ce_weight: 1.0,
                ..*loss
            };
            let teacher = logits.clone().detach();
            ce.forward(logits, teacher, batch.targets.clone(), batch.mask.clone())
        }
    };
    let number = backend::scalar(value.clone());
    if !number.is_finite() {
        return Err(LmError::Invalid(format!(
            "the training loss is {number}; lower the learning rate"
        )));
    }
    let grads = GradientsParams::from_grads(value.backward(), &model);
    Ok((optimizer.step(learning_rate, model, grads), number))
}

/// Number of parameters of a module.
pub fn parameter_count(model: &Llama) -> usize {
    model.num_params()
}

//! Held-out measures of language models at every position that has a next token: negative
//! log-likelihood (and so perplexity), next-token top-1 accuracy, expected calibration error
//! of the top-1 probability, and, against a teacher, top-1 agreement and KL(teacher ‖ model).
//!
//! The teacher's logits of a batch are computed once and compared with every model's, so that
//! evaluating several students costs one teacher pass.

use burn::tensor::{Device, Int, Tensor, TensorData, activation};

use super::error::LmError;
use super::llama::{Llama, LlamaConfig};
use super::teacher::batch_ids;
use crate::backend;

/// Bins of the expected calibration error (as the classification runs use).
const ECE_BINS: usize = 15;

/// The measures of one model over a set of sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct LmMetrics {
    /// Positions scored (tokens after the first of each sequence).
    pub tokens: usize,
    /// Mean next-token negative log-likelihood, nats per token.
    pub nll: f64,
    /// Fraction of positions whose most likely token is the next token.
    pub accuracy: f64,
    /// Expected calibration error of the top-1 probability, 15 equal-width bins.
    pub ece: f64,
    /// Fraction of positions whose most likely token is the teacher's (absent without one).
    pub agreement: Option<f64>,
    /// Mean `KL(teacher ‖ model)` per position in nats at temperature 1 (absent without one).
    pub kl_from_teacher: Option<f64>,
}

impl LmMetrics {
    /// `exp(nll)`.
    pub fn perplexity(&self) -> f64 {
        self.nll.exp()
    }
}

/// Sums over positions, turned into [`LmMetrics`] at the end.
#[derive(Debug, Clone, Default)]
struct Totals {
    tokens: usize,
    nll: f64,
    correct: usize,
    agree: usize,
    kl: f64,
    bins: Vec<(usize, f64, f64)>,
}

impl Totals {
    fn new() -> Self {
        Self {
            bins: vec![(0, 0.0, 0.0); ECE_BINS],
            ..Self::default()
        }
    }

    fn finish(&self, with_teacher: bool) -> LmMetrics {
        let n = self.tokens.max(1) as f64;
        let ece = self
            .bins
            .iter()
            .map(|&(count, confidence, correct)| {
                if count == 0 {
                    0.0
                } else {
                    (confidence - correct).abs() / n
                }
            })
            .sum();
        LmMetrics {
            tokens: self.tokens,
            nll: self.nll / n,
            accuracy: self.correct as f64 / n,
            ece,
            agreement: with_teacher.then(|| self.agree as f64 / n),
            kl_from_teacher: with_teacher.then(|| self.kl / n),
        }
    }
}

/// What one model's logits give at every position of a batch, on the host.
struct Positions {
    nll: Vec<f32>,
    top1: Vec<i64>,
    confidence: Vec<f32>,
}

fn positions(logits: Tensor<3>, targets: Tensor<3, Int>) -> (Positions, Tensor<3>) {
    let log_probs = activation::log_softmax(logits, 2);
    let nll = backend::to_host(-log_probs.clone().gather(2, targets));
    let (top, top1) = log_probs.clone().max_dim_with_indices(2);
    let top1 = top1
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .unwrap_or_default();
    let confidence = backend::to_host(top.exp());
    (
        Positions {
            nll,
            top1,
            confidence,
        },
        log_probs,
    )
}

/// The teacher's measures and each model's (with agreement and KL against the teacher) on
/// `sequences` (those of fewer than two tokens are skipped), `batch` sequences per forward.
/// Every model must share the teacher's vocabulary.
pub fn evaluate_against_teacher(
    teacher: (&Llama, &LlamaConfig),
    models: &[(&Llama, &LlamaConfig)],
    sequences: &[Vec<u32>],
    batch: usize,
    device: &Device,
) -> Result<(LmMetrics, Vec<LmMetrics>), LmError> {
    if let Some((_, c)) = models
        .iter()
        .find(|(_, c)| c.vocab_size != teacher.1.vocab_size)
    {
        return Err(LmError::Invalid(format!(
            "a student of vocabulary {} cannot be compared with a teacher of {}",
            c.vocab_size, teacher.1.vocab_size
        )));
    }
    let mut teacher_totals = Totals::new();
    let mut totals = vec![Totals::new(); models.len()];
    for_each_batch(sequences, batch, teacher.1, device, |ids, targets, mask| {
        let (t, log_p) = positions(teacher.0.forward(ids.clone()), targets.clone());
        add(&mut teacher_totals, &t, None, mask);
        for ((model, _), totals) in models.iter().zip(&mut totals) {
            let (s, log_q) = positions(model.forward(ids.clone()), targets.clone());
            let kl = (log_p.clone().exp() * (log_p.clone() - log_q)).sum_dim(2);
            let kl = backend::to_host(kl);
            add(totals, &s, Some((&t.top1, &kl)), mask);
        }
    })?;
    Ok((
        teacher_totals.finish(false),
        totals.iter().map(|t| t.finish(true)).collect(),
    ))
}

/// One model's measures on `sequences` without a teacher (no agreement, no KL).
pub fn evaluate(
    model: &Llama,
    config: &LlamaConfig,
    sequences: &[Vec<u32>],
    batch: usize,
    device: &Device,
) -> Result<LmMetrics, LmError> {
    let mut totals = Totals::new();
    for_each_batch(sequences, batch, config, device, |ids, targets, mask| {
        let (p, _) = positions(model.forward(ids), targets);
        add(&mut totals, &p, None, mask);
    })?;
    Ok(totals.finish(false))
}

/// Adds the real positions (`mask`) of a batch to `totals`.
fn add(
    totals: &mut Totals,
    p: &Positions,
    teacher: Option<(&Vec<i64>, &Vec<f32>)>,
    mask: &[(usize, i64)],
) {
    for &(at, target) in mask {
        totals.tokens += 1;
        totals.nll += p.nll[at] as f64;
        let correct = p.top1[at] == target;
        totals.correct += usize::from(correct);
        let confidence = p.confidence[at] as f64;
        let bin = ((confidence * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        totals.bins[bin].0 += 1;
        totals.bins[bin].1 += confidence;
        totals.bins[bin].2 += f64::from(u8::from(correct));
        if let Some((top1, kl)) = teacher {
            totals.agree += usize::from(top1[at] == p.top1[at]);
            totals.kl += kl[at] as f64;
        }
    }
}

/// Runs `f` on every batch of sequences with at least two tokens: the input ids `[rows,
/// len − 1]`, the next tokens `[rows, len − 1, 1]`, and the real positions as (flat index,
/// next token).
fn for_each_batch(
    sequences: &[Vec<u32>],
    batch: usize,
    config: &LlamaConfig,
    device: &Device,
    mut f: impl FnMut(Tensor<2, Int>, Tensor<3, Int>, &[(usize, i64)]),
) -> Result<(), LmError> {
    let scored: Vec<&Vec<u32>> = sequences.iter().filter(|s| s.len() >= 2).collect();
    for chunk in scored.chunks(batch.max(1)) {
        let inputs: Vec<Vec<u32>> = chunk.iter().map(|s| s[..s.len() - 1].to_vec()).collect();
        let ids = batch_ids(&inputs, config, device)?;
        let [rows, width] = ids.dims();
        let mut targets = vec![0i64; rows * width];
        let mut mask = Vec::new();
        for (r, s) in chunk.iter().enumerate() {
            for i in 1..s.len() {
                let at = r * width + i - 1;
                targets[at] = s[i] as i64;
                mask.push((at, s[i] as i64));
            }
        }
        let targets = Tensor::from_data(TensorData::new(targets, [rows, width, 1]), device);
        f(ids, targets, &mask);
    }
    Ok(())
}

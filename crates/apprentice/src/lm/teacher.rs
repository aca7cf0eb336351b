//! A frozen llama teacher read from a GGUF file: its shape from the metadata, its weights
//! dequantised into a [`Llama`], its tokenizer, and the two things a distillation run asks of
//! it: the logits of a batch of token sequences, and their log-likelihood.

use std::path::Path;

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::{Device, Int, Tensor, TensorData, activation};

use super::error::LmError;
use super::gguf::{GgufError, GgufFile};
use super::llama::{Llama, LlamaConfig, LlamaLayer};
use super::tokenizer::LmTokenizer;
use crate::backend;

/// The decoder's shape from a GGUF file's `llama.*` metadata; another architecture, or rotary
/// scaling, is refused with the key named.
pub fn llama_config(file: &GgufFile) -> Result<LlamaConfig, GgufError> {
    let arch = file.string("general.architecture")?;
    if arch != "llama" {
        return Err(file.key_error(
            "general.architecture",
            format!("expected \"llama\", found {arch:?} (not supported)"),
        ));
    }
    let key = |k: &str| format!("llama.{k}");
    let size = |k: &str| -> Result<usize, GgufError> {
        let value = file.unsigned(&key(k))?;
        usize::try_from(value)
            .ok()
            .filter(|&v| v <= 1 << 24)
            .ok_or_else(|| file.key_error(&key(k), format!("{value} is implausibly large")))
    };
    let heads = size("attention.head_count")?;
    let kv_heads = match file.get(&key("attention.head_count_kv")) {
        Some(_) => size("attention.head_count_kv")?,
        None => heads,
    };
    let embedding = file
        .tensor("token_embd.weight")
        .ok_or_else(|| file.tensor_error("token_embd.weight", "missing"))?;
    let vocab_size = match embedding.shape().as_slice() {
        [vocab, _] => *vocab,
        other => {
            return Err(file.tensor_error(
                "token_embd.weight",
                format!("expected 2 dimensions, found shape {other:?}"),
            ));
        }
    };
    if let Some(kind) = file.get(&key("rope.scaling.type")).and_then(|v| v.as_str())
        && kind != "none"
    {
        return Err(file.key_error(
            &key("rope.scaling.type"),
            format!("rotary scaling {kind:?} is not supported"),
        ));
    }
    let config = LlamaConfig {
        vocab_size,
        hidden: size("embedding_length")?,
        layers: size("block_count")?,
        heads,
        kv_heads,
        ffn: size("feed_forward_length")?,
        rope_theta: match file.get(&key("rope.freq_base")) {
            Some(_) => file.float(&key("rope.freq_base"))?,
            None => 10_000.0,
        },
        rms_eps: file.float(&key("attention.layer_norm_rms_epsilon"))?,
        max_len: size("context_length")?,
        tied: file.tensor("output.weight").is_none(),
    };
    config
        .validate()
        .map_err(|m| file.key_error("llama.*", m))?;
    if let Some(value) = file.get(&key("rope.dimension_count"))
        && value.as_u64() != Some(config.head_dim() as u64)
    {
        return Err(file.key_error(
            &key("rope.dimension_count"),
            format!(
                "expected the head width {} (partial rotary is not supported), found {value:?}",
                config.head_dim()
            ),
        ));
    }
    Ok(config)
}

/// Reads every weight of a llama GGUF file into a decoder on `device`.
pub fn load_llama(file: &GgufFile, device: &Device) -> Result<(Llama, LlamaConfig), GgufError> {
    let config = llama_config(file)?;
    let h = config.hidden;
    let hd = config.head_dim();
    let kv = config.kv_heads * hd;
    let vector = |name: &str| -> Result<RmsNorm, GgufError> {
        let (values, _) = file.dequantize(name, Some(&[h]))?;
        Ok(RmsNorm {
            gamma: Param::from_tensor(backend::vector(values, device)),
            epsilon: config.rms_eps,
        })
    };
    // A GGUF matrix is stored `[out, in]` row-major (PyTorch's layout); burn's Linear wants
    // `[in, out]`. `heads`, when given, undoes llama.cpp's query/key row permutation.
    let matrix = |name: &str, out: usize, inp: usize, heads: Option<usize>| {
        let (mut values, _) = file.dequantize(name, Some(&[out, inp]))?;
        if let Some(heads) = heads {
            values = unpermute_rows(&values, heads, out / heads, inp);
        }
        let transposed = transpose(&values, out, inp);
        Ok::<_, GgufError>(Linear {
            weight: Param::from_tensor(backend::matrix(transposed, inp, out, device)),
            bias: None,
        })
    };
    let mut layers = Vec::with_capacity(config.layers);
    for i in 0..config.layers {
        let n = |part: &str| format!("blk.{i}.{part}.weight");
        layers.push(LlamaLayer {
            attn_norm: vector(&n("attn_norm"))?,
            q: matrix(&n("attn_q"), h, h, Some(config.heads))?,
            k: matrix(&n("attn_k"), kv, h, Some(config.kv_heads))?,
            v: matrix(&n("attn_v"), kv, h, None)?,
            o: matrix(&n("attn_output"), h, h, None)?,
            ffn_norm: vector(&n("ffn_norm"))?,
            gate: matrix(&n("ffn_gate"), config.ffn, h, None)?,
            up: matrix(&n("ffn_up"), config.ffn, h, None)?,
            down: matrix(&n("ffn_down"), h, config.ffn, None)?,
        });
    }
    let (embed, _) = file.dequantize("token_embd.weight", Some(&[config.vocab_size, h]))?;
    let lm_head = if config.tied {
        None
    } else {
        Some(matrix("output.weight", config.vocab_size, h, None)?)
    };
    let model = Llama {
        embed: Embedding {
            weight: Param::from_tensor(backend::matrix(embed, config.vocab_size, h, device)),
        },
        layers,
        norm: vector("output_norm.weight")?,
        lm_head,
        heads: config.heads,
        kv_heads: config.kv_heads,
        rope_theta: config.rope_theta,
    };
    Ok((model, config))
}

/// Undoes llama.cpp's permutation of query/key rows: within each head, its converter stores
/// Hugging Face's row `s · half + j` (`s` ∈ {0, 1}, `j` < half) at row `2j + s`, so that
/// rotary pairs are adjacent.
pub fn unpermute_rows(values: &[f32], heads: usize, head_dim: usize, cols: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let mut out = vec![0.0; values.len()];
    for head in 0..heads {
        for s in 0..2 {
            for j in 0..half {
                let to = (head * head_dim + s * half + j) * cols;
                let from = (head * head_dim + 2 * j + s) * cols;
                out[to..to + cols].copy_from_slice(&values[from..from + cols]);
            }
        }
    }
    out
}

fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// A pretrained decoder and its tokenizer, for inference only.
#[derive(Debug)]
pub struct Teacher {
    /// The decoder.
    pub model: Llama,
    /// Its shape.
    pub config: LlamaConfig,
    /// Its tokenizer.
    pub tokenizer: LmTokenizer,
    device: Device,
}

/// Logits of a right-padded batch, row-major `[rows, len, vocab]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLogits {
    /// The values.
    pub values: Vec<f32>,
    /// Number of sequences.
    pub rows: usize,
    /// Longest sequence (shorter ones are padded at the end; their padded positions hold
    /// logits that mean nothing).
    pub len: usize,
    /// Vocabulary size.
    pub vocab: usize,
}

impl Teacher {
    /// Loads the decoder and the tokenizer of a llama GGUF file onto `device`.
    pub fn open(path: &Path, device: &Device) -> Result<Self, LmError> {
        let file = GgufFile::open(path)?;
        let tokenizer = LmTokenizer::from_gguf(&file)?;
        let (model, config) = load_llama(&file, device)?;
        if tokenizer.vocab_size() != config.vocab_size {
            return Err(LmError::Invalid(format!(
                "{}: the tokenizer has {} tokens but token_embd.weight has {} rows",
                path.display(),
                tokenizer.vocab_size(),
                config.vocab_size
            )));
        }
        Ok(Self {
            model,
            config,
            tokenizer,
            device: device.clone(),
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The ids of a right-padded batch as a tensor `[rows, len]` (padding with id 0).
    pub fn batch_ids(&self, sequences: &[Vec<u32>]) -> Result<Tensor<2, Int>, LmError> {
        batch_ids(sequences, &self.config, &self.device)
    }

    /// The logits of every position of every sequence.
    pub fn logits(&self, sequences: &[Vec<u32>]) -> Result<BatchLogits, LmError> {
        let ids = self.batch_ids(sequences)?;
        let [rows, len] = ids.dims();
        let values = backend::to_host(self.model.forward(ids));
        Ok(BatchLogits {
            values,
            rows,
            len,
            vocab: self.config.vocab_size,
        })
    }

    /// Total negative log-likelihood (nats) of every token after the first of each sequence,
    /// and the number of tokens scored; sequences run `batch` at a time.
    pub fn nll(&self, sequences: &[Vec<u32>], batch: usize) -> Result<(f64, usize), LmError> {
        let mut total = 0.0;
        let mut count = 0;
        for chunk in sequences.chunks(batch.max(1)) {
            let (nll, n) = sequence_nll(&self.model, chunk, &self.config, &self.device)?;
            total += nll;
            count += n;
        }
        Ok((total, count))
    }
}

/// Ids `[rows, len]` of right-padded sequences, after checking each id and length.
pub fn batch_ids(
    sequences: &[Vec<u32>],
    config: &LlamaConfig,
    device: &Device,
) -> Result<Tensor<2, Int>, LmError> {
    let len = sequences.iter().map(Vec::len).max().unwrap_or(0);
    if len == 0 {
        return Err(LmError::Invalid(
            "expected at least one non-empty token sequence".into(),
        ));
    }
    if len > config.max_len {
        return Err(LmError::Invalid(format!(
            "a sequence of {len} tokens is longer than the context of {}",
            config.max_len
        )));
    }
    let mut ids = vec![0i64; sequences.len() * len];
    for (row, seq) in sequences.iter().enumerate() {
        for (i, &id) in seq.iter().enumerate() {
            if id as usize >= config.vocab_size {
                return Err(LmError::Invalid(format!(
                    "token id {id} is outside the vocabulary of {}",
                    config.vocab_size
                )));
            }
            ids[row * len + i] = id as i64;
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(ids, [sequences.len(), len]),
        device,
    ))
}

/// Total next-token negative log-likelihood of one batch under `model`, and the tokens scored.
pub fn sequence_nll(
    model: &Llama,
    sequences: &[Vec<u32>],
    config: &LlamaConfig,
    device: &Device,
) -> Result<(f64, usize), LmError> {
    let scored: Vec<Vec<u32>> = sequences.iter().filter(|s| s.len() >= 2).cloned().collect();
    if scored.is_empty() {
        return Ok((0.0, 0));
    }
    let ids = batch_ids(&scored, config, device)?;
    let [rows, len] = ids.dims();
    let mut targets = vec![0i64; rows * (len - 1)];
    let mut mask = vec![0f32; rows * (len - 1)];
    let mut count = 0;
    for (r, seq) in scored.iter().enumerate() {
        for i in 1..seq.len() {
            targets[r * (len - 1) + i - 1] = seq[i] as i64;
            mask[r * (len - 1) + i - 1] = 1.0;
            count += 1;
        }
    }
    let logits = model.forward(ids).slice([0..rows, 0..len - 1]);
    let log_probs = activation::log_softmax(logits, 2);
    let targets = Tensor::<3, Int>::from_data(TensorData::new(targets, [rows, len - 1, 1]), device);
    let picked: Tensor<2> = log_probs.gather(2, targets).squeeze_dim(2);
    let mask = backend::matrix(mask, rows, len - 1, device);
    let nll = -(backend::to_host((picked * mask).sum())[0] as f64);
    Ok((nll, count))
}

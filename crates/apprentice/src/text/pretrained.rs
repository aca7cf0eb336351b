//! A pretrained sentence encoder read from a Hugging Face model folder: `config.json`,
//! `model.safetensors`, `tokenizer.json`, and sentence-transformers' `modules.json`,
//! `1_Pooling/config.json` and `sentence_bert_config.json` when present.
//!
//! Every tensor is mapped by name, explicitly, from the file's layout to our [`Bert`] modules;
//! the names and shapes are checked against `config.json` before anything is loaded, so a
//! missing or mis-shaped tensor is reported by name with both shapes.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::store::{KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::bert::{Bert, BertConfig};
use super::bert_cpu::HostBert;
use super::error::TextError;
use super::pooling::{Pooling, PoolingMode};
use super::tokenizer::{TextTokenizer, TokenBatch, pad_batch};
use crate::backend::{self, ComputeDevice};

/// The architecture description of a model folder.
pub const CONFIG_FILE: &str = "config.json";
/// The weights of a model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The tokenizer of a model folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// sentence-transformers' pipeline description.
pub const MODULES_FILE: &str = "modules.json";
/// sentence-transformers' maximum sequence length.
pub const SENTENCE_CONFIG_FILE: &str = "sentence_bert_config.json";

/// The only architecture this loader reads.
const SUPPORTED_MODEL_TYPE: &str = "bert";

/// A sentence encoder: tokenizer, BERT and pooling, ready to embed text.
#[derive(Debug)]
pub struct PretrainedEncoder {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// The encoder's shape, from `config.json`.
    pub config: BertConfig,
    /// The encoder.
    pub bert: Bert,
    /// Word pieces, truncated at [`PretrainedEncoder::max_length`].
    pub tokenizer: TextTokenizer,
    /// How token vectors become a sentence vector.
    pub pooling: Pooling,
    /// Longest input in word pieces, special tokens included.
    pub max_length: usize,
    /// Hex SHA-256 of the folder's config, weights and tokenizer and of the pooling and length
    /// settings: two encoders with the same fingerprint give the same embeddings.
    pub fingerprint: String,
    /// Defaults that were assumed because a file was absent, one sentence each.
    pub notes: Vec<String>,
    device: Device,
    /// The same encoder in host memory for the CPU kernels of [`super::bert_cpu`]; `None` on
    /// GPU devices, which keep burn's operations.
    host: Option<HostBert>,
}

/// One entry of `modules.json`.
#[derive(Debug, Deserialize)]
struct ModuleEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

/// `1_Pooling/config.json`.
#[derive(Debug, Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// `sentence_bert_config.json`.
#[derive(Debug, Deserialize)]
struct SentenceConfigFile {
    max_seq_length: Option<usize>,
}

/// One tensor as a safetensors header describes it.
#[derive(Debug, Deserialize)]
pub(crate) struct HeaderEntry {
    pub(crate) dtype: String,
    pub(crate) shape: Vec<usize>,
}

/// Where one tensor of the file goes in our modules, and the shape it must have there.
pub(crate) struct TensorMapping {
    pub(crate) file_name: String,
    pub(crate) module_path: String,
    pub(crate) shape: Vec<usize>,
}

fn read_text(path: &Path, what: &str) -> Result<String, TextError> {
    if !path.is_file() {
        return Err(TextError::model(
            path,
            format!("missing file: a model folder needs {what}"),
        ));
    }
    std::fs::read_to_string(path).map_err(|e| TextError::model(path, format!("cannot read: {e}")))
}

/// Parses JSON into `T`, naming the field at fault and the line.
fn parse_json<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, TextError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        if field.is_empty() || field == "." {
            TextError::model(path, message)
        } else {
            TextError::model(path, format!("{field}: {message}"))
        }
    })
}

/// Reads and checks `config.json`: a BERT encoder this implementation supports.
pub fn read_config(path: &Path) -> Result<BertConfig, TextError> {
    let text = read_text(path, CONFIG_FILE)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| TextError::model(path, format!("not JSON: {e}")))?;
    match value.get("model_type") {
        Some(serde_json::Value::String(kind)) if kind == SUPPORTED_MODEL_TYPE => {}
        Some(serde_json::Value::String(kind)) => {
            return Err(TextError::model(
                path,
                format!(
                    "model_type: unknown architecture {kind:?}; expected \"{SUPPORTED_MODEL_TYPE}\" \
                     (apprentice reads BERT encoders)"
                ),
            ));
        }
        Some(other) => {
            return Err(TextError::model(
                path,
                format!(
                    "model_type: expected the string \"{SUPPORTED_MODEL_TYPE}\", found {other}"
                ),
            ));
        }
        None => {
            return Err(TextError::model(
                path,
                format!("model_type: missing; expected \"{SUPPORTED_MODEL_TYPE}\""),
            ));
        }
    }
    let config: BertConfig = parse_json(&text, path)?;
    config
        .validate()
        .map_err(|message| TextError::model(path, message))?;
    Ok(config)
}

/// The tensors of a safetensors file by name, read from its header alone.
pub(crate) fn read_header(path: &Path) -> Result<HashMap<String, HeaderEntry>, TextError> {
    if !path.is_file() {
        return Err(TextError::model(
            path,
            format!("missing file: a model folder needs {WEIGHTS_FILE}"),
        ));
    }
    let invalid = |message: String| TextError::model(path, message);
    let mut file = std::fs::File::open(path).map_err(|e| invalid(format!("cannot read: {e}")))?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix).map_err(|_| {
        invalid("not a safetensors file: shorter than its 8-byte header size".into())
    })?;
    let header_len = u64::from_le_bytes(prefix);
    if header_len.saturating_add(8) > file_len || header_len > 100 << 20 {
        return Err(invalid(format!(
            "not a safetensors file: the header claims {header_len} bytes in a file of {file_len}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| invalid(format!("cannot read the header: {e}")))?;
    let value: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| invalid(format!("not a safetensors file: bad header ({e})")))?;
    let mut tensors = HashMap::new();
    for (name, entry) in value {
        if name == "__metadata__" {
            continue;
        }
        let entry: HeaderEntry = serde_json::from_value(entry)
            .map_err(|e| invalid(format!("tensor {name:?}: bad header entry ({e})")))?;
        tensors.insert(name, entry);
    }
    Ok(tensors)
}

/// Every tensor of a BERT encoder: its name in Hugging Face's layout (`prefix` is `bert.` in
/// checkpoints of task models, empty for a bare `BertModel`), its path in [`Bert`] and its
/// shape as stored (PyTorch's `[out, in]` for dense weights).
pub(crate) fn tensor_mappings(config: &BertConfig, prefix: &str) -> Vec<TensorMapping> {
    let h = config.hidden_size;
    let i = config.intermediate_size;
    let mut list = Vec::new();
    let mut add = |file: String, module: String, shape: Vec<usize>| {
        list.push(TensorMapping {
            file_name: format!("{prefix}{file}"),
            module_path: module,
            shape,
        })
    };
    add(
        "embeddings.word_embeddings.weight".into(),
        "embeddings.word.weight".into(),
        vec![config.vocab_size, h],
    );
    add(
        "embeddings.position_embeddings.weight".into(),
        "embeddings.position.weight".into(),
        vec![config.max_position_embeddings, h],
    );
    add(
        "embeddings.token_type_embeddings.weight".into(),
        "embeddings.token_type.weight".into(),
        vec![config.type_vocab_size, h],
    );
    add(
        "embeddings.LayerNorm.weight".into(),
        "embeddings.norm.gamma".into(),
        vec![h],
    );
    add(
        "embeddings.LayerNorm.bias".into(),
        "embeddings.norm.beta".into(),
        vec![h],
    );
    for layer in 0..config.num_hidden_layers {
        let file = |name: &str| format!("encoder.layer.{layer}.{name}");
        let module = |name: &str| format!("layers.{layer}.{name}");
        let dense = [
            ("attention.self.query", "query", h, h),
            ("attention.self.key", "key", h, h),
            ("attention.self.value", "value", h, h),
            ("attention.output.dense", "attention_output", h, h),
            ("intermediate.dense", "intermediate", i, h),
            ("output.dense", "output", h, i),
        ];
        for (file_name, module_name, outputs, inputs) in dense {
            add(
                file(&format!("{file_name}.weight")),
                module(&format!("{module_name}.weight")),
                vec![outputs, inputs],
            );
            add(
                file(&format!("{file_name}.bias")),
                module(&format!("{module_name}.bias")),
                vec![outputs],
            );
        }
        for (file_name, module_name) in [
            ("attention.output.LayerNorm", "attention_norm"),
            ("output.LayerNorm", "output_norm"),
        ] {
            add(
                file(&format!("{file_name}.weight")),
                module(&format!("{module_name}.gamma")),
                vec![h],
            );
            add(
                file(&format!("{file_name}.bias")),
                module(&format!("{module_name}.beta")),
                vec![h],
            );
        }
    }
    list
}

/// Checks that the weights file holds every tensor the config implies, in float32 and in the
/// right shape, and returns the name mappings to load with.
pub(crate) fn check_weights(
    path: &Path,
    config: &BertConfig,
) -> Result<Vec<TensorMapping>, TextError> {
    let header = read_header(path)?;
    let prefix = if !header.contains_key("embeddings.word_embeddings.weight")
        && header.contains_key("bert.embeddings.word_embeddings.weight")
    {
        "bert."
    } else {
        ""
    };
    let mappings = tensor_mappings(config, prefix);
    for mapping in &mappings {
        let Some(entry) = header.get(&mapping.file_name) else {
            return Err(TextError::model(
                path,
                format!(
                    "missing tensor {:?} (expected shape {:?} from {CONFIG_FILE})",
                    mapping.file_name, mapping.shape
                ),
            ));
        };
        if entry.shape != mapping.shape {
            return Err(TextError::model(
                path,
                format!(
                    "tensor {:?} has shape {:?}, expected {:?} from {CONFIG_FILE}",
                    mapping.file_name, entry.shape, mapping.shape
                ),
            ));
        }
        if entry.dtype != "F32" {
            return Err(TextError::model(
                path,
                format!(
                    "tensor {:?} is {}, expected F32",
                    mapping.file_name, entry.dtype
                ),
            ));
        }
    }
    Ok(mappings)
}

/// Fills `bert` from the weights file through burn-store, renaming each tensor explicitly and
/// transposing dense weights from PyTorch's `[out, in]`.
pub(crate) fn load_weights(
    mut bert: Bert,
    path: &Path,
    mappings: &[TensorMapping],
) -> Result<Bert, TextError> {
    let patterns = mappings.iter().map(|m| {
        (
            format!("^{}$", m.file_name.replace('.', r"\.")),
            m.module_path.clone(),
        )
    });
    let remapper = KeyRemapper::from_pattern_iter(patterns)
        .map_err(|e| TextError::model(path, format!("cannot map tensor names: {e}")))?;
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .remap(remapper)
        .allow_partial(true)
        .validate(false);
    let result = bert
        .load_from(&mut store)
        .map_err(|e| TextError::model(path, format!("cannot load the weights: {e}")))?;
    if let Some(error) = result.errors.first() {
        return Err(TextError::model(
            path,
            format!("cannot load the weights: {error}"),
        ));
    }
    if let Some((missing, _)) = result.missing.first() {
        return Err(TextError::model(
            path,
            format!("no tensor was found for {missing}"),
        ));
    }
    Ok(bert)
}

/// The pooling stage from `modules.json` and the pooling config it points to; mean pooling
/// with L2 normalisation, with a note, when the folder has no `modules.json`.
fn read_pooling(dir: &Path, notes: &mut Vec<String>) -> Result<Pooling, TextError> {
    let modules_path = dir.join(MODULES_FILE);
    if !modules_path.is_file() {
        notes.push(format!(
            "{}: no {MODULES_FILE}; assuming mean pooling and L2 normalisation, \
             sentence-transformers' pipeline for this kind of model",
            dir.display()
        ));
        return Ok(Pooling::default());
    }
    let text = read_text(&modules_path, MODULES_FILE)?;
    let modules: Vec<ModuleEntry> = parse_json(&text, &modules_path)?;
    let mut pooling = None;
    let mut normalize = false;
    for module in &modules {
        let kind = module.kind.rsplit('.').next().unwrap_or("");
        match kind {
            "Transformer" => {}
            "Pooling" => {
                let path = dir.join(&module.path).join(CONFIG_FILE);
                let text = read_text(&path, "the pooling config")?;
                let file: PoolingFile = parse_json(&text, &path)?;
                let mode = match (
                    file.pooling_mode_mean_tokens,
                    file.pooling_mode_cls_token,
                    file.pooling_mode_max_tokens || file.pooling_mode_mean_sqrt_len_tokens,
                ) {
                    (true, false, false) => PoolingMode::Mean,
                    (false, true, false) => PoolingMode::Cls,
                    _ => {
                        return Err(TextError::model(
                            path,
                            "expected exactly one of pooling_mode_mean_tokens or \
                             pooling_mode_cls_token (other modes are not supported)",
                        ));
                    }
                };
                pooling = Some(mode);
            }
            "Normalize" => normalize = true,
            _ => {
                return Err(TextError::model(
                    &modules_path,
                    format!(
                        "module type {:?} is not supported (expected Transformer, Pooling, Normalize)",
                        module.kind
                    ),
                ));
            }
        }
    }
    let mode = pooling
        .ok_or_else(|| TextError::model(&modules_path, "expected a Pooling module, found none"))?;
    Ok(Pooling { mode, normalize })
}

/// The longest input: `sentence_bert_config.json`'s `max_seq_length`, else the number of
/// learned positions, never more than that.
fn read_max_length(
    dir: &Path,
    config: &BertConfig,
    notes: &mut Vec<String>,
) -> Result<usize, TextError> {
    let path = dir.join(SENTENCE_CONFIG_FILE);
    let limit = config.max_position_embeddings;
    if !path.is_file() {
        notes.push(format!(
            "{}: no {SENTENCE_CONFIG_FILE}; inputs are truncated at {limit} word pieces",
            dir.display()
        ));
        return Ok(limit);
    }
    let text = read_text(&path, SENTENCE_CONFIG_FILE)?;
    let file: SentenceConfigFile = parse_json(&text, &path)?;
    match file.max_seq_length {
        Some(0) => Err(TextError::model(
            path,
            "max_seq_length: expected at least 1",
        )),
        Some(length) => Ok(length.min(limit)),
        None => Ok(limit),
    }
}

/// Hex SHA-256 of the files and settings that decide the embeddings.
fn fingerprint(
    files: &[PathBuf],
    pooling: Pooling,
    max_length: usize,
) -> Result<String, TextError> {
    let mut hasher = Sha256::new();
    for path in files {
        let bytes =
            std::fs::read(path).map_err(|e| TextError::model(path, format!("cannot read: {e}")))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    hasher.update(format!("{pooling:?} {max_length}").as_bytes());
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl PretrainedEncoder {
    /// Reads a model folder. Errors name the file, and the field or tensor, at fault.
    pub fn load(dir: &Path, device: &ComputeDevice) -> Result<Self, TextError> {
        if !dir.is_dir() {
            return Err(TextError::model(
                dir,
                "not a model folder (expected a folder with config.json, model.safetensors \
                 and tokenizer.json)",
            ));
        }
        let mut notes = Vec::new();
        let config_path = dir.join(CONFIG_FILE);
        let config = read_config(&config_path)?;
        let pooling = read_pooling(dir, &mut notes)?;
        let max_length = read_max_length(dir, &config, &mut notes)?;
        let tokenizer_path = dir.join(TOKENIZER_FILE);
        let tokenizer = TextTokenizer::from_file(&tokenizer_path, max_length)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(TextError::model(
                &tokenizer_path,
                format!(
                    "the tokenizer has {} word pieces, more than vocab_size {} in {CONFIG_FILE}",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            ));
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        let mappings = check_weights(&weights_path, &config)?;
        let inference = device.inference();
        let bert = load_weights(Bert::zeros(&config, &inference), &weights_path, &mappings)?;
        let host = (device.kind() == crate::backend::DeviceKind::Cpu)
            .then(|| HostBert::from_bert(&bert, &config));
        let fingerprint = fingerprint(
            &[config_path, weights_path, tokenizer_path],
            pooling,
            max_length,
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            bert,
            tokenizer,
            pooling,
            max_length,
            fingerprint,
            notes,
            device: inference,
            host,
        })
    }

    /// Width of the sentence vectors.
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// Number of encoder parameters.
    pub fn parameter_count(&self) -> usize {
        self.config.parameter_count()
    }

    /// Sentence vectors of one padded batch, `rows × dim`, row-major. On the CPU the padding is
    /// dropped and the real tokens run through [`HostBert`]; elsewhere through burn.
    pub fn embed_batch(&self, batch: &TokenBatch) -> Vec<f32> {
        if self.host.is_some()
            && let Some(sequences) = unpad(batch)
        {
            let sequences: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
            return self.embed_packed(&sequences);
        }
        self.embed_batch_burn(batch)
    }

    /// Sentence vectors of one padded batch through burn's operations (the padded reference
    /// computation, on whatever device the encoder lives), `rows × dim`, row-major.
    pub fn embed_batch_burn(&self, batch: &TokenBatch) -> Vec<f32> {
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(batch.ids.clone(), [batch.rows, batch.len]),
            &self.device,
        );
        let mask = backend::matrix(batch.mask.clone(), batch.rows, batch.len, &self.device);
        let hidden = self.bert.forward(ids, mask.clone());
        backend::to_host(self.pooling.apply(hidden, mask))
    }

    /// Sentence vectors of unpadded sequences (each already cut to the maximum length) through
    /// the host kernels, or through burn after padding when there are none.
    fn embed_packed(&self, sequences: &[&[u32]]) -> Vec<f32> {
        if let Some(host) = &self.host {
            // Ids come from our tokenizer (checked against vocab_size at load) and are cut at
            // max_length (at most the learned positions), so the host forward cannot refuse them.
            if let Ok(hidden) = host.forward(sequences) {
                let lengths: Vec<usize> = sequences.iter().map(|s| s.len()).collect();
                return self.pooling.apply_packed(&hidden, &lengths, self.dim());
            }
        }
        let padded = pad_batch(sequences, self.config.pad_token_id, self.max_length);
        self.embed_batch_burn(&padded)
    }

    /// Sentence vectors of token-id sequences (each with its special tokens), `len × dim`,
    /// row-major, in input order. Sequences are sorted by length and batched, so that a batch
    /// holds sentences of similar lengths (on the CPU nothing is padded at all); `progress`
    /// hears the count done after each batch.
    pub fn embed_ids(
        &self,
        sequences: &[Vec<u32>],
        batch_size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Vec<f32> {
        let dim = self.dim();
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| (sequences[i].len(), i));
        let mut output = vec![0.0; sequences.len() * dim];
        let mut done = 0;
        for chunk in order.chunks(batch_size.max(1)) {
            let batch: Vec<&[u32]> = chunk
                .iter()
                .map(|&i| &sequences[i][..sequences[i].len().min(self.max_length)])
                .collect();
            let vectors = self.embed_packed(&batch);
            for (row, &index) in chunk.iter().enumerate() {
                output[index * dim..(index + 1) * dim]
                    .copy_from_slice(&vectors[row * dim..(row + 1) * dim]);
            }
            done += chunk.len();
            progress(done);
        }
        output
    }

    /// Sentence vectors of texts, `len × dim`, row-major, in input order.
    pub fn embed_texts<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        batch_size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<f32>, TextError> {
        let sequences = self.tokenizer.encode_all(texts)?;
        Ok(self.embed_ids(&sequences, batch_size, progress))
    }
}

/// The real tokens of each row of a padded batch, when every row's mask is a prefix of ones
/// (as [`pad_batch`] makes them); `None` otherwise.
fn unpad(batch: &TokenBatch) -> Option<Vec<Vec<u32>>> {
    let mut sequences = Vec::with_capacity(batch.rows);
    for row in 0..batch.rows {
        let mask = &batch.mask[row * batch.len..(row + 1) * batch.len];
        let ids = &batch.ids[row * batch.len..(row + 1) * batch.len];
        let real = mask.iter().take_while(|&&m| m == 1.0).count();
        if mask[real..].iter().any(|&m| m != 0.0) {
            return None;
        }
        let ids: Option<Vec<u32>> = ids[..real]
            .iter()
            .map(|&id| u32::try_from(id).ok())
            .collect();
        sequences.push(ids?);
    }
    Some(sequences)
}

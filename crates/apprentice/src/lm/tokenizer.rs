//! The tokenizer stored in a GGUF file's metadata, rebuilt as a byte-level BPE with the
//! `tokenizers` crate: `tokenizer.ggml.tokens` (id order), `tokenizer.ggml.merges` (rank
//! order), `tokenizer.ggml.token_type` (control tokens become special tokens, matched whole
//! before BPE), and the bos/eos ids.
//!
//! The pipeline is the one `transformers` builds from the same metadata for a `gpt2`-model
//! tokenizer: no normaliser, GPT-2's byte-level pre-tokeniser with its regex and no prefix
//! space, BPE over the merges, byte-level decoding.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use super::gguf::{GgufError, GgufFile};

/// GGUF's token type of control tokens (`<|im_start|>`, `<|endoftext|>`).
const CONTROL: u64 = 3;
/// GGUF's token type of user-defined tokens, also matched whole.
const USER_DEFINED: u64 = 4;

/// Why text could not be turned into ids or back.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The file's tokenizer metadata is missing or malformed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The tokenizer failed on an input.
    #[error("{}: tokenizer: {message}", path.display())]
    Run {
        /// The model file the tokenizer came from.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// A byte-level BPE tokenizer read from a GGUF file.
pub struct LmTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    vocab_size: usize,
}

impl std::fmt::Debug for LmTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmTokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish()
    }
}

impl LmTokenizer {
    /// Builds the tokenizer from the file's `tokenizer.ggml.*` metadata; a file without one
    /// (or with another kind than byte-level BPE) gets an error naming the key.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, TokenizerError> {
        let model = file.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(file
                .key_error(
                    "tokenizer.ggml.model",
                    format!("expected \"gpt2\" (byte-level BPE), found {model:?}"),
                )
                .into());
        }
        let tokens = file.strings("tokenizer.ggml.tokens")?;
        let merges = file.strings("tokenizer.ggml.merges")?;
        let types: Vec<u64> = match file.get("tokenizer.ggml.token_type") {
            None => vec![1; tokens.len()],
            Some(value) => value
                .as_array()
                .filter(|a| a.len() == tokens.len())
                .and_then(|a| a.iter().map(|v| v.as_u64()).collect::<Option<Vec<_>>>())
                .ok_or_else(|| {
                    file.key_error(
                        "tokenizer.ggml.token_type",
                        format!("expected {} integers, one per token", tokens.len()),
                    )
                })?,
        };
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i as u32))
            .collect();
        if vocab.len() != tokens.len() {
            return Err(file
                .key_error("tokenizer.ggml.tokens", "the same token appears twice")
                .into());
        }
        let merges = merges
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| {
                        file.key_error(
                            "tokenizer.ggml.merges",
                            format!(
                                "item {i}: expected two tokens separated by a space, found {m:?}"
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| file.key_error("tokenizer.ggml.merges", one_line(&*e)))?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(ByteLevel::new(false, false, true)));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let special: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, ty)| matches!(**ty, CONTROL | USER_DEFINED))
            .map(|(t, _)| AddedToken::from(t.to_string(), true))
            .collect();
        inner
            .add_special_tokens(special)
            .map_err(|e| file.key_error("tokenizer.ggml.token_type", one_line(&*e)))?;
        let id = |key: &str| -> Result<Option<u32>, GgufError> {
            match file.get(key) {
                None => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(id) if (id as usize) < tokens.len() => Ok(Some(id as u32)),
                    _ => Err(file.key_error(
                        key,
                        format!("expected a token id below {}, found {v:?}", tokens.len()),
                    )),
                },
            }
        };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        let add_bos = file
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        Ok(Self {
            inner,
            path: file.path().to_path_buf(),
            bos,
            eos,
            add_bos,
            vocab_size: tokens.len(),
        })
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The beginning-of-sequence id, if the file names one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence id, if the file names one; generation stops there.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Whether the file asks for the bos token before every text.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// The ids of `text`, with no special tokens added (special tokens written in the text
    /// are recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| self.error(&*e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids` (special tokens included as written).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner.decode(ids, false).map_err(|e| self.error(&*e))
    }

    /// The token string of one id, as stored in the file.
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The tokenizer as one JSON document (the `tokenizers` pipeline and the bos/eos ids), so
    /// that a student checkpoint carries its tokenizer without the teacher file.
    pub fn to_json(&self) -> Result<String, TokenizerError> {
        let pipeline = self.inner.to_string(false).map_err(|e| self.error(&*e))?;
        let saved = SavedTokenizer {
            pipeline,
            bos: self.bos,
            eos: self.eos,
            add_bos: self.add_bos,
            vocab_size: self.vocab_size,
        };
        serde_json::to_string(&saved).map_err(|e| self.error(&e))
    }

    /// Reads what [`LmTokenizer::to_json`] wrote; `path` names the file in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, TokenizerError> {
        let fail = |message: String| TokenizerError::Run {
            path: path.to_path_buf(),
            message,
        };
        let saved: SavedTokenizer =
            serde_json::from_str(text).map_err(|e| fail(format!("not a saved tokenizer: {e}")))?;
        let inner: Tokenizer = saved.pipeline.parse().map_err(|e: tokenizers::Error| {
            fail(format!("not a saved tokenizer: {}", one_line(&*e)))
        })?;
        if inner.get_vocab_size(true) != saved.vocab_size {
            return Err(fail(format!(
                "expected {} tokens, the pipeline has {}",
                saved.vocab_size,
                inner.get_vocab_size(true)
            )));
        }
        Ok(Self {
            inner,
            path: path.to_path_buf(),
            bos: saved.bos,
            eos: saved.eos,
            add_bos: saved.add_bos,
            vocab_size: saved.vocab_size,
        })
    }

    fn error(&self, e: &(dyn std::error::Error + Send + Sync)) -> TokenizerError {
        TokenizerError::Run {
            path: self.path.clone(),
            message: one_line(e),
        }
    }
}

fn one_line(e: &(dyn std::error::Error + Send + Sync)) -> String {
    e.to_string().replace('\n', " ")
}

/// What [`LmTokenizer::to_json`] writes.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedTokenizer {
    /// The `tokenizers` pipeline as its own JSON.
    pipeline: String,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    vocab_size: usize,
}

//! Word pieces from text: the `tokenizers` crate reading a model folder's `tokenizer.json`,
//! with our own truncation length and no padding (batches are padded by [`pad_batch`]).

use std::path::{Path, PathBuf};

use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use super::error::TextError;

/// A tokenizer that truncates every sequence to the model's limit, special tokens included.
pub struct TextTokenizer {
    inner: Tokenizer,
    max_length: usize,
    path: PathBuf,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("max_length", &self.max_length)
            .finish()
    }
}

impl TextTokenizer {
    /// Reads `tokenizer.json`. The file's own truncation and padding settings are replaced:
    /// sequences are cut at `max_length` pieces, the limit the reference implementation applies,
    /// and never padded here.
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self, TextError> {
        if !path.is_file() {
            return Err(TextError::model(
                path,
                "missing file: a model folder needs tokenizer.json",
            ));
        }
        let mut inner = Tokenizer::from_file(path).map_err(|e| {
            TextError::model(path, format!("not a tokenizer file: {}", one_line(&e)))
        })?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| TextError::model(path, format!("cannot truncate: {}", one_line(&e))))?;
        inner.with_padding(None::<PaddingParams>);
        Ok(Self {
            inner,
            max_length,
            path: path.to_path_buf(),
        })
    }

    /// The longest sequence this tokenizer returns, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token such as `[CLS]`, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The word piece of an id, if any.
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The ids of one text, with the model's special tokens (`[CLS] ... [SEP]` for BERT).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TextError> {
        let encoding = self.inner.encode(text, true).map_err(|e| {
            TextError::model(
                &self.path,
                format!("cannot tokenize {text:?}: {}", one_line(&e)),
            )
        })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The ids of many texts, in order (tokenized in parallel).
    pub fn encode_all<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Vec<u32>>, TextError> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self.inner.encode_batch(inputs, true).map_err(|e| {
            TextError::model(&self.path, format!("cannot tokenize: {}", one_line(&e)))
        })?;
        Ok(encodings.iter().map(|e| e.get_ids().to_vec()).collect())
    }
}

/// Sequences of different lengths as one rectangular batch.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// `rows × len` ids, row-major, padded with the pad id.
    pub ids: Vec<i64>,
    /// `rows × len` flags, 1 for a real token and 0 for padding.
    pub mask: Vec<f32>,
    /// Number of sequences.
    pub rows: usize,
    /// Length of the longest sequence (at least 1, so that tensors are never empty).
    pub len: usize,
}

/// Pads `sequences` to their longest length with `pad_id`; each is first cut to `max_len`.
pub fn pad_batch<S: AsRef<[u32]>>(sequences: &[S], pad_id: u32, max_len: usize) -> TokenBatch {
    let len = sequences
        .iter()
        .map(|s| s.as_ref().len().min(max_len))
        .max()
        .unwrap_or(0)
        .max(1);
    let rows = sequences.len();
    let mut ids = vec![pad_id as i64; rows * len];
    let mut mask = vec![0.0; rows * len];
    for (row, sequence) in sequences.iter().enumerate() {
        for (column, &id) in sequence.as_ref().iter().take(max_len).enumerate() {
            ids[row * len + column] = id as i64;
            mask[row * len + column] = 1.0;
        }
    }
    TokenBatch {
        ids,
        mask,
        rows,
        len,
    }
}

/// An error of the tokenizers crate on one line.
fn one_line(error: &dyn std::fmt::Display) -> String {
    error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_marks_real_tokens_and_cuts_long_sequences() {
        let batch = pad_batch(&[vec![5, 6, 7], vec![8]], 0, 2);
        assert_eq!((batch.rows, batch.len), (2, 2));
        assert_eq!(batch.ids, vec![5, 6, 8, 0]);
        assert_eq!(batch.mask, vec![1.0, 1.0, 1.0, 0.0]);
        let empty = pad_batch::<Vec<u32>>(&[vec![]], 3, 8);
        assert_eq!(
            (empty.len, empty.ids.clone(), empty.mask),
            (1, vec![3], vec![0.0])
        );
    }
}

//! The teacher's outputs cached on disk, since they cost the most in a text run: a
//! safetensors file per set of inputs, named and checked by a SHA-256 key of the model's
//! fingerprint and the inputs, so a rerun reads them back instead of running the encoder, and
//! a stale or damaged file is recomputed rather than trusted.

use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};
use sha2::{Digest, Sha256};

use super::error::TextError;
use crate::fsutil::write_atomic;

const TENSOR_NAME: &str = "rows";
const KEY_METADATA: &str = "apprentice_cache_key";

/// Whether a cached result was read back or computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Read from this file.
    Hit(PathBuf),
    /// Computed and written to this file.
    Stored(PathBuf),
    /// Computed; no cache folder was configured.
    Uncached,
    /// Computed because the file held other or damaged contents (the reason), and rewritten.
    Replaced(PathBuf, String),
}

/// A SHA-256 key over `parts`, each length-prefixed so that no two lists collide.
pub fn cache_key<I, P>(parts: I) -> String
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    let mut hasher = Sha256::new();
    for part in parts {
        let part = part.as_ref();
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cache file of `key` in `dir`.
pub fn cache_path(dir: &Path, label: &str, key: &str) -> PathBuf {
    dir.join(format!("{label}-{}.safetensors", &key[..24.min(key.len())]))
}

/// Reads a cached `rows × dim` matrix; `Err` says why the file cannot be used.
fn read_cached(path: &Path, key: &str, rows: usize, dim: usize) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| e.to_string())?;
    let stored_key = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(KEY_METADATA).cloned());
    if stored_key.as_deref() != Some(key) {
        return Err("its key does not match the model and inputs".to_string());
    }
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
    let view = tensors.tensor(TENSOR_NAME).map_err(|e| e.to_string())?;
    if view.dtype() != Dtype::F32 || view.shape() != [rows, dim] {
        return Err(format!(
            "expected F32 [{rows}, {dim}], found {:?} {:?}",
            view.dtype(),
            view.shape()
        ));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The `rows × dim` matrix of `key`: read from `dir` when a verified copy is there, else
/// computed by `compute` and stored (atomically). `dir` `None` disables the cache.
pub fn cached_rows(
    dir: Option<&Path>,
    label: &str,
    key: &str,
    rows: usize,
    dim: usize,
    compute: impl FnOnce() -> Result<Vec<f32>, TextError>,
) -> Result<(Vec<f32>, CacheOutcome), TextError> {
    let Some(dir) = dir else {
        return Ok((compute()?, CacheOutcome::Uncached));
    };
    let path = cache_path(dir, label, key);
    let mut stale = None;
    if path.is_file() {
        match read_cached(&path, key, rows, dim) {
            Ok(values) => return Ok((values, CacheOutcome::Hit(path))),
            Err(reason) => stale = Some(reason),
        }
    }
    let values = compute()?;
    if values.len() != rows * dim {
        return Err(TextError::Invalid(format!(
            "{label}: computed {} values, expected {rows} × {dim}",
            values.len()
        )));
    }
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, vec![rows, dim], &bytes)
        .map_err(|e| TextError::Invalid(format!("{label}: {e}")))?;
    let metadata = std::collections::HashMap::from([(KEY_METADATA.to_string(), key.to_string())]);
    let file = safetensors::serialize([(TENSOR_NAME, view)], Some(metadata))
        .map_err(|e| TextError::Invalid(format!("{label}: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|source| TextError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write_atomic(&path, &file).map_err(|source| TextError::Io {
        path: path.clone(),
        source,
    })?;
    let outcome = match stale {
        Some(reason) => CacheOutcome::Replaced(path, reason),
        None => CacheOutcome::Stored(path),
    };
    Ok((values, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_call_reads_back_and_a_changed_key_recomputes() {
        let dir = tempfile::tempdir().unwrap();
        let key = cache_key(["model", "texts"]);
        let compute = || Ok(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let (first, outcome) = cached_rows(Some(dir.path()), "t", &key, 2, 3, compute).unwrap();
        assert!(matches!(outcome, CacheOutcome::Stored(_)));
        let (second, outcome) = cached_rows(Some(dir.path()), "t", &key, 2, 3, || {
            panic!("must not recompute")
        })
        .unwrap();
        assert_eq!(first, second);
        assert!(matches!(outcome, CacheOutcome::Hit(_)));

        // A file whose recorded key differs (same file name) is not trusted.
        let path = cache_path(dir.path(), "t", &key);
        let other = format!("{}{}", &key[..24], "0".repeat(key.len() - 24));
        assert_eq!(cache_path(dir.path(), "t", &other), path);
        let (values, outcome) =
            cached_rows(Some(dir.path()), "t", &other, 2, 3, || Ok(vec![0.0; 6])).unwrap();
        assert_eq!(values, vec![0.0; 6]);
        assert!(matches!(outcome, CacheOutcome::Replaced(..)), "{outcome:?}");

        // A damaged file is recomputed.
        std::fs::write(&path, b"garbage").unwrap();
        let (_, outcome) =
            cached_rows(Some(dir.path()), "t", &other, 2, 3, || Ok(vec![0.0; 6])).unwrap();
        assert!(matches!(outcome, CacheOutcome::Replaced(..)), "{outcome:?}");
        assert_ne!(cache_key(["a", "bc"]), cache_key(["ab", "c"]));
    }
}

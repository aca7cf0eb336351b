//! Mid-training checkpoints: everything a killed run needs to continue exactly where it stopped.
//!
//! A state is written as files plus a manifest, `state-<global step>.json`, written last: the
//! manifest's presence marks the state complete, and it records each file's SHA-256 so a torn
//! or corrupted file is detected on resume and an older good state is used instead. Data order,
//! augmentation, dropout and the learning rate are pure functions of the seed and the step, so
//! the state needs no generator state: the step counters suffice.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::write_atomic;

/// Version of the state manifest layout.
pub const STATE_FORMAT_VERSION: u32 = 1;

/// Where and how often a training run saves its state.
#[derive(Debug, Clone)]
pub struct Checkpointing {
    /// Folder of this training run's states.
    pub dir: PathBuf,
    /// Save every this many optimiser steps (0: only at epoch ends).
    pub every_steps: usize,
    /// Keep this many most recent states.
    pub keep_last: usize,
    /// Fingerprint of everything that determines the run (settings, data, seed, teacher): a
    /// state with another fingerprint belongs to another run and is never resumed from.
    pub identity: String,
}

/// Counters and metrics of an interrupted run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// 0-based epoch in progress.
    pub epoch: usize,
    /// Steps of that epoch already taken.
    pub step: usize,
    /// Optimiser steps taken since the start.
    pub global_step: usize,
    /// Sum of the losses of the steps taken in this epoch.
    #[serde(deserialize_with = "crate::nullable::number")]
    pub loss_sum: f64,
    /// Number of losses in that sum (skipped batches excluded).
    pub loss_count: usize,
    /// Steps skipped because of a non-finite loss (`on_nan = "skip-batch"`).
    pub skipped_batches: usize,
    /// Mean training loss of each finished epoch.
    #[serde(deserialize_with = "crate::nullable::numbers")]
    pub train_loss: Vec<f64>,
    /// Validation accuracy after each finished epoch.
    #[serde(deserialize_with = "crate::nullable::numbers")]
    pub validation_accuracy: Vec<f64>,
    /// Learning rate at the start of each started epoch.
    #[serde(deserialize_with = "crate::nullable::numbers")]
    pub learning_rate: Vec<f64>,
    /// Best validation accuracy so far (early stopping); −1 before the first epoch.
    #[serde(deserialize_with = "crate::nullable::number")]
    pub best_accuracy: f64,
    /// Epochs since it last improved.
    pub epochs_without_improvement: usize,
    /// Validation accuracy of the model that would be returned now.
    #[serde(deserialize_with = "crate::nullable::number")]
    pub kept_validation_accuracy: f64,
    /// Early stopping has ended the run.
    pub stopped_early: bool,
    /// Training seconds spent so far, over every session of the run.
    #[serde(deserialize_with = "crate::nullable::number")]
    pub elapsed_s: f64,
    /// Values measured between epochs by a probe (see `TrainHooks::probe`), oldest first.
    #[serde(default)]
    pub probes: Vec<ProbePoint>,
}

/// What a probe measured after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbePoint {
    /// Epochs finished when it was measured (0: the initial weights).
    pub epoch: usize,
    /// The measured values, in the probe's order.
    #[serde(deserialize_with = "crate::nullable::numbers")]
    pub values: Vec<f64>,
}

/// One file of a state, with its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDigest {
    /// File name inside the state folder.
    pub name: String,
    /// Length in bytes.
    pub bytes: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

/// The manifest of one saved state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`STATE_FORMAT_VERSION`].
    pub format_version: u32,
    /// See [`Checkpointing::identity`].
    pub identity: String,
    /// Counters and metrics.
    pub progress: Progress,
    /// The model being trained.
    pub model: FileDigest,
    /// The optimiser's state.
    pub optimizer: FileDigest,
    /// The best model so far, when early stopping keeps one.
    pub best: Option<FileDigest>,
}

/// A state read back and verified.
pub struct Restored {
    /// Its manifest.
    pub manifest: Manifest,
    /// Model weights (safetensors).
    pub model: Vec<u8>,
    /// Optimiser state (burn's record bytes).
    pub optimizer: Vec<u8>,
    /// Best model weights, if kept.
    pub best: Option<Vec<u8>>,
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Checkpointing {
    /// Writes one state: the files first, then the manifest; then drops states beyond
    /// `keep_last`.
    pub fn save(
        &self,
        progress: &Progress,
        model: &[u8],
        optimizer: &[u8],
        best: Option<&[u8]>,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let step = progress.global_step;
        let write = |name: String, bytes: &[u8]| -> std::io::Result<FileDigest> {
            write_atomic(&self.dir.join(&name), bytes)?;
            Ok(FileDigest {
                name,
                bytes: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            })
        };
        let manifest = Manifest {
            format_version: STATE_FORMAT_VERSION,
            identity: self.identity.clone(),
            progress: progress.clone(),
            model: write(format!("model-{step:09}.safetensors"), model)?,
            optimizer: write(format!("optimizer-{step:09}.bin"), optimizer)?,
            best: best
                .map(|bytes| write(format!("best-{step:09}.safetensors"), bytes))
                .transpose()?,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
        write_atomic(&self.dir.join(format!("state-{step:09}.json")), &json)?;
        self.prune()
    }

    /// Manifests on disk, newest first.
    fn manifests(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("state-") && n.ends_with(".json"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found.reverse();
        found
    }

    fn prune(&self) -> std::io::Result<()> {
        for manifest in self.manifests().into_iter().skip(self.keep_last.max(1)) {
            let stem = manifest.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let step = stem.trim_start_matches("state-");
            std::fs::remove_file(&manifest)?;
            for prefix in ["model-", "best-"] {
                let _ = std::fs::remove_file(self.dir.join(format!("{prefix}{step}.safetensors")));
            }
            let _ = std::fs::remove_file(self.dir.join(format!("optimizer-{step}.bin")));
        }
        Ok(())
    }

    /// The newest state that verifies, and a warning for each newer one that did not (naming
    /// the damaged state and the one used instead).
    pub fn load_latest(&self) -> (Option<Restored>, Vec<String>) {
        let mut warnings = Vec::new();
        let mut rejected: Vec<(PathBuf, String)> = Vec::new();
        for manifest in self.manifests() {
            match self.verify(&manifest) {
                Ok(restored) => {
                    for (path, reason) in &rejected {
                        warnings.push(format!(
                            "checkpoint {} is unusable ({reason}); resuming from {} instead",
                            path.display(),
                            manifest.display()
                        ));
                    }
                    return (Some(restored), warnings);
                }
                Err(reason) => rejected.push((manifest, reason)),
            }
        }
        for (path, reason) in &rejected {
            warnings.push(format!(
                "checkpoint {} is unusable ({reason}) and no older one verifies; this model restarts from scratch",
                path.display()
            ));
        }
        (None, warnings)
    }

    fn verify(&self, manifest_path: &Path) -> Result<Restored, String> {
        let text = std::fs::read(manifest_path).map_err(|e| format!("cannot read it: {e}"))?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| format!("damaged manifest: {e}"))?;
        if manifest.format_version != STATE_FORMAT_VERSION {
            return Err(format!(
                "format version {} is not {STATE_FORMAT_VERSION}",
                manifest.format_version
            ));
        }
        if manifest.identity != self.identity {
            return Err("it belongs to a run with other settings, data or teacher".into());
        }
        let read = |digest: &FileDigest| -> Result<Vec<u8>, String> {
            let bytes = std::fs::read(self.dir.join(&digest.name))
                .map_err(|e| format!("cannot read {}: {e}", digest.name))?;
            if bytes.len() as u64 != digest.bytes || sha256_hex(&bytes) != digest.sha256 {
                return Err(format!("{} fails its checksum", digest.name));
            }
            Ok(bytes)
        };
        Ok(Restored {
            model: read(&manifest.model)?,
            optimizer: read(&manifest.optimizer)?,
            best: manifest.best.as_ref().map(read).transpose()?,
            manifest,
        })
    }
}

//! Where and how a run runs: its folder, its data, its device, and whether it keeps
//! checkpoints.

use std::path::PathBuf;

use crate::backend::ComputeDevice;

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run folder (created by the caller); checkpoints and results go there.
    pub run_dir: PathBuf,
    /// Overrides `data.path`.
    pub data_path: Option<PathBuf>,
    /// Compute device.
    pub device: ComputeDevice,
    /// Write a checkpoint of every trained model, and mid-training states that make the run
    /// resumable. Models already finished in `run_dir` (a resumed run) are reused, not retrained.
    pub save_checkpoints: bool,
}

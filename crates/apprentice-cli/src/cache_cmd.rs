//! `apprentice cache-teacher`: runs a trained teacher once over the training inputs of an
//! experiment and writes its logits to a shard of a teacher cache (see
//! [`apprentice::distill::cache`]), so that later runs read them instead of running the teacher.

use std::path::PathBuf;

use apprentice::backend::ComputeDevice;
use apprentice::config::ExperimentConfig;
use apprentice::distill::cache::{parse_shard_spec, short_hash};
use apprentice::experiment::cache_teacher::{self, CacheRequest, CacheTeacherError};

/// Arguments of `apprentice cache-teacher`.
#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    /// The experiment file whose training split the logits are for.
    pub config: PathBuf,
    /// The teacher's checkpoint, e.g. `runs/<run>/seed-0/teacher.safetensors` (default: the
    /// config's `teacher.checkpoint`, else its ONNX teacher `teacher.onnx`).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Data folder or file, overriding `data.path`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The seed whose split to cache (default: the seed recorded in the checkpoint).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write only shard i of N (0-based, e.g. `$SLURM_ARRAY_TASK_ID/8`); default: everything
    /// in one shard.
    #[arg(long)]
    pub shard: Option<String>,
    /// Keep only the K most probable classes of each sample and the remaining probability
    /// mass (for many classes; KD against it is then approximate). Default: every logit.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// The cache folder (created if absent); every shard of one cache goes into the same one.
    /// Each seed has its own split (and its own teacher when the run trains it), so for a run
    /// of several seeds write each seed's cache into `DIR/seed-<S>` (with `--seed S`) and give
    /// `apprentice run --teacher-cache DIR`: it reads `DIR/seed-<S>` when that exists, else
    /// `DIR` itself.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `apprentice cache-teacher`.
pub fn cache_teacher(args: CacheArgs) -> anyhow::Result<()> {
    let config = ExperimentConfig::from_file(&args.config)?;
    let shard = args
        .shard
        .as_deref()
        .map(parse_shard_spec)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--shard: {e}"))?;
    if !config.augment.is_identity() {
        eprintln!(
            "warning: {} augments its training inputs, so `apprentice run` will use the live teacher, not this cache (cached logits are exact only for un-augmented inputs)",
            args.config.display()
        );
    }
    let request = CacheRequest {
        config_path: args.config.clone(),
        teacher: args.teacher,
        data: args.data,
        seed: args.seed,
        shard,
        top_k: args.top_k,
        out: args.out.clone(),
    };
    let written = cache_teacher::cache_teacher(&config, &request, &ComputeDevice::cpu()).map_err(
        |error| {
            // The settings at fault are named by their options.
            match &error {
                CacheTeacherError::NoTeacher { .. } => anyhow::anyhow!("--teacher: {error}"),
                CacheTeacherError::Seed { .. } => anyhow::anyhow!("--seed: {error}"),
                CacheTeacherError::TopK { .. } => anyhow::anyhow!("--top-k: {error}"),
                CacheTeacherError::Shard(_) => anyhow::anyhow!("--shard: {error}"),
                CacheTeacherError::Folder { .. } => anyhow::anyhow!("--out {error}"),
                _ => anyhow::Error::new(error),
            }
        },
    )?;
    println!(
        "{}: samples {}..{} of the {} training samples of seed {}, teacher sha256 {}…, data sha256 {}…",
        written.path.display(),
        written.range.start,
        written.range.end,
        written.train_len,
        written.seed,
        short_hash(&written.teacher_sha256),
        short_hash(&written.data_sha256)
    );
    Ok(())
}

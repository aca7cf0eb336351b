//! `apprentice cache-teacher`: runs a trained teacher once over the training inputs of an
//! experiment and writes its logits to a shard of a teacher cache (see
//! [`apprentice::distill::cache`]), so that later runs read them instead of running the teacher;
//! for a language-model experiment, the GGUF teacher's top-k distributions on a range of the
//! run's sequences (see [`apprentice::lm::logit_shards`]).

use std::path::PathBuf;

use apprentice::backend::ComputeDevice;
use apprentice::distill::cache::{parse_shard_spec, short_hash};
use apprentice::experiment::cache_teacher::{self, CacheRequest, CacheTeacherError};
use apprentice::experiment_file::ExperimentFile;
use apprentice::lm::config::LmExperimentConfig;
use apprentice::lm::teacher_shard::{LmShardRequest, write_teacher_shard};

/// Arguments of `apprentice cache-teacher`.
#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    /// The experiment file whose training split the logits are for.
    pub config: PathBuf,
    /// The teacher's checkpoint, e.g. `runs/<run>/seed-0/teacher.safetensors` (default: the
    /// config's `teacher.checkpoint`, else its ONNX teacher `teacher.onnx`); for a
    /// language-model experiment, its GGUF file (default: `lm.teacher`).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Data folder or file, overriding `data.path` (for a language-model experiment, the
    /// folder its relative teacher and corpus paths are resolved against, as in `run`).
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
    let shard = args
        .shard
        .as_deref()
        .map(parse_shard_spec)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--shard: {e}"))?;
    let config = match ExperimentFile::read(&args.config)? {
        ExperimentFile::Image(config) => *config,
        ExperimentFile::Language(config) => return cache_lm_teacher(*config, args, shard),
        ExperimentFile::Text(_) => anyhow::bail!(
            "{}: a text experiment caches its teacher's embeddings itself (in runs/cache/); there is no teacher cache to write",
            args.config.display()
        ),
        other => anyhow::bail!(
            "{}: a {} experiment has no teacher cache to write",
            args.config.display(),
            other.kind().name()
        ),
    };
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

/// `apprentice cache-teacher` on a language-model experiment: one shard of the teacher's
/// top-k distributions on the run's sequences.
fn cache_lm_teacher(
    mut config: LmExperimentConfig,
    args: CacheArgs,
    shard: Option<(usize, usize)>,
) -> anyhow::Result<()> {
    // Every seed trains on the same sequences, and the run reads exactly `[lm] top_k` tokens
    // per position: options that would write a cache no run reads are refused.
    if args.seed.is_some() {
        anyhow::bail!(
            "--seed: a language-model run's teacher cache holds every sequence, the same for every seed; leave it out"
        );
    }
    if let Some(k) = args.top_k {
        anyhow::bail!(
            "--top-k: a language-model run keeps [lm] top_k = {} tokens per position (set it in {} instead of {k})",
            config.lm.top_k,
            args.config.display()
        );
    }
    config.resolve(args.data.as_deref());
    let device = ComputeDevice::new(config.device).map_err(|e| anyhow::anyhow!("device: {e}"))?;
    let request = LmShardRequest {
        teacher: args.teacher,
        shard,
        out: args.out,
    };
    let written = write_teacher_shard(&config, &request, &device, &mut |line| eprintln!("{line}"))?;
    println!(
        "{}: sequences {}..{} of {} ({} positions, top {}), teacher sha256 {}…, tokens sha256 {}…",
        written.path.display(),
        written.range.start,
        written.range.end,
        written.sequences,
        written.positions,
        written.k,
        short_hash(&written.teacher_sha256),
        short_hash(&written.tokens_sha256)
    );
    Ok(())
}

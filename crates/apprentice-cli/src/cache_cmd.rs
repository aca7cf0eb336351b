//! `apprentice cache-teacher`: runs a trained teacher once over the training inputs of an
//! experiment and writes its logits to a shard of a teacher cache (see
//! [`apprentice::distill::cache`]), so that later runs read them instead of running the teacher.

use std::path::PathBuf;

use anyhow::Context;
use apprentice::backend::ComputeDevice;
use apprentice::config::ExperimentConfig;
use apprentice::data::prepare::{PreparedData, load_raw, prepare};
use apprentice::distill::cache::{
    CacheStorage, ShardRange, data_hash, parse_shard_spec, short_hash, teacher_hash, write_shard,
};
use apprentice::distill::train::predict_logits;
use apprentice::experiment::onnx_teacher_digest;
use apprentice::onnx::OnnxTeacherConfig;

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

/// Whose logits are cached.
enum CachedTeacher {
    /// An apprentice checkpoint.
    Checkpoint(PathBuf),
    /// The experiment's ONNX teacher.
    Onnx(OnnxTeacherConfig),
}

/// The ONNX teacher's logits on the training split of `data`.
fn onnx_train_logits(
    settings: &OnnxTeacherConfig,
    data: &PreparedData,
) -> anyhow::Result<Vec<f32>> {
    Ok(apprentice::experiment::onnx_teacher_logits(
        settings,
        data,
        &data.train,
    )?)
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
    let device = ComputeDevice::cpu();
    let raw = load_raw(&config.data, args.data.as_deref())?;
    // The teacher: the checkpoint given or configured, else the config's ONNX teacher.
    let teacher = match (&args.teacher, &config.teacher.checkpoint) {
        (Some(path), _) | (None, Some(path)) => CachedTeacher::Checkpoint(path.clone()),
        (None, None) => match config.teacher.onnx_config() {
            Some(settings) => CachedTeacher::Onnx(settings),
            None => anyhow::bail!(
                "--teacher: which teacher? pass its checkpoint (e.g. runs/<run>/seed-0/teacher.safetensors); {} sets neither teacher.checkpoint nor teacher.onnx",
                args.config.display()
            ),
        },
    };
    let (seed, data, all_logits, teacher_sha256) = match &teacher {
        CachedTeacher::Checkpoint(path) => {
            let (network, meta) = apprentice::checkpoint::load(path, &device)?;
            let seed = args.seed.unwrap_or(meta.seed);
            let data = prepare(&raw, &config.data, seed)?;
            let train = &data.train;
            if train.shape.len() != meta.input_shape.len() || train.num_classes != meta.num_classes
            {
                anyhow::bail!(
                    "{}: the teacher takes {} features and {} classes, the training split of {} has {} features and {} classes",
                    path.display(),
                    meta.input_shape.len(),
                    meta.num_classes,
                    args.config.display(),
                    train.shape.len(),
                    train.num_classes
                );
            }
            let logits = predict_logits(&network, train, &device);
            (seed, data, logits, teacher_hash(&network)?)
        }
        CachedTeacher::Onnx(settings) => {
            let seed = match (args.seed, config.seeds.as_slice()) {
                (Some(seed), _) => seed,
                (None, &[seed]) => seed,
                (None, _) => anyhow::bail!(
                    "--seed: {} has several seeds, each with its own split; say which to cache",
                    args.config.display()
                ),
            };
            let data = prepare(&raw, &config.data, seed)?;
            let logits = onnx_train_logits(settings, &data)?;
            (seed, data, logits, onnx_teacher_digest(settings)?)
        }
    };
    let train = &data.train;
    let storage = match args.top_k {
        None => CacheStorage::Full,
        Some(k) if k == 0 || k >= train.num_classes => anyhow::bail!(
            "--top-k: expected 1 ≤ K < {} (the class count), found {k}; leave it out to keep every logit",
            train.num_classes
        ),
        Some(k) => CacheStorage::TopK { k },
    };
    let range = match shard {
        Some((index, count)) => ShardRange::of_shard(index, count, train.len())
            .map_err(|e| anyhow::anyhow!("--shard: {e}"))?,
        None => ShardRange {
            start: 0,
            end: train.len(),
        },
    };
    if !config.augment.is_identity() {
        eprintln!(
            "warning: {} augments its training inputs, so `apprentice run` will use the live teacher, not this cache (cached logits are exact only for un-augmented inputs)",
            args.config.display()
        );
    }
    let classes = train.num_classes;
    let logits = &all_logits[range.start * classes..range.end * classes];
    let data_sha256 = data_hash(train);
    std::fs::create_dir_all(&args.out).with_context(|| {
        format!(
            "--out {}: cannot create the cache folder",
            args.out.display()
        )
    })?;
    let path = write_shard(
        &args.out,
        logits,
        range,
        train.num_classes,
        storage,
        &teacher_sha256,
        &data_sha256,
    )?;
    println!(
        "{}: samples {}..{} of the {} training samples of seed {seed}, teacher sha256 {}…, data sha256 {}…",
        path.display(),
        range.start,
        range.end,
        train.len(),
        short_hash(&teacher_sha256),
        short_hash(&data_sha256)
    );
    Ok(())
}

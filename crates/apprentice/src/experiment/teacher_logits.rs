//! The teacher's logits on the training inputs, once per seed: from a teacher cache written by
//! `apprentice cache-teacher` (checked against the seed's teacher and split) or from the
//! teacher itself; none when augmentation means the students must see each augmented view.

use std::path::{Path, PathBuf};

use super::job::SeedContext;
use super::teacher::{SeedTeacher, Split};
use crate::distill::cache::{self as teacher_cache, Mismatch, TeacherCache, short_hash};
use crate::distill::train::TrainObserver;
use crate::error::{Error, Result};
use crate::layout::{RunLayout, seed_folder_name};

/// Why a configured teacher cache is not used under augmentation.
pub(super) const AUGMENTED_CACHE: &str = "augmentation is on, so the teacher must see each augmented view; cached logits are exact only for un-augmented inputs";

/// What one seed took from `teacher_cache`, as recorded in `results.json` under
/// [`TEACHER_CACHE_KEY`](crate::experiment::TEACHER_CACHE_KEY), so that a reader can tell cached from live teacher logits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TeacherCacheUse {
    /// The seed.
    pub seed: u64,
    /// The folder read for this seed (`<teacher_cache>/seed-<S>` when that exists).
    pub folder: PathBuf,
    /// True when the students learned from the cached logits; false when the live teacher
    /// was used instead (see `fallback`).
    pub used: bool,
    /// True when every shard keeps full logits, so KD is exactly as with the live teacher;
    /// false for top-k shards (KD approximate) or when the cache was not used.
    pub exact: bool,
    /// Shard files read.
    pub shards: usize,
    /// Why the live teacher was used instead of the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// The folder of `seed`'s cache: each seed has its own split (and possibly its own teacher),
/// so `<folder>/seed-<S>` is preferred when it exists; a single-seed cache can sit in
/// `folder` itself.
pub(super) fn seed_cache_folder(folder: &Path, seed: u64) -> PathBuf {
    let own = folder.join(seed_folder_name(seed));
    if own.is_dir() {
        own
    } else {
        folder.to_path_buf()
    }
}

/// The teacher's logits on every training sample, from `teacher_cache` when one is set and
/// can be exact, else from the teacher itself; `None` when augmentation means the students
/// must see the teacher's logits on each augmented view instead.
pub(super) fn teacher_logits_on_train(
    context: &SeedContext<'_>,
    teacher: &SeedTeacher,
    observer: &mut dyn TrainObserver,
) -> Result<(Option<Vec<f32>>, Option<TeacherCacheUse>)> {
    let config = context.config;
    let data = context.data;
    let seed = context.seed;
    let augmented = !config.augment.is_identity();
    let Some(root) = &config.teacher_cache else {
        return Ok((
            (!augmented).then(|| teacher.logits(data, Split::Train, context.options)),
            None,
        ));
    };
    let folder = seed_cache_folder(root, seed);
    if augmented {
        // `run_experiment` has warned once for the whole run.
        return Ok((
            None,
            Some(TeacherCacheUse {
                seed,
                folder,
                used: false,
                exact: false,
                shards: 0,
                fallback: Some(AUGMENTED_CACHE.to_string()),
            }),
        ));
    }
    let train = &data.train;
    let teacher_sha256 = match teacher {
        SeedTeacher::Network(network) => teacher_cache::teacher_hash(network)
            .map_err(|e| Error::Invalid(format!("teacher_cache: {e}")))?,
        SeedTeacher::Frozen(frozen) => frozen.digest.clone(),
    };
    let data_sha256 = teacher_cache::data_hash(train);
    let cache = TeacherCache::open(
        &folder,
        &teacher_sha256,
        &data_sha256,
        train.len(),
        train.num_classes,
    )
    .map_err(|error| Error::Invalid(cache_refusal(context, &folder, error)))?;
    if !cache.is_exact() {
        observer.warn(&format!(
            "teacher_cache {}: top-k shards keep only each sample's most probable classes, so KD for seed {seed} is approximate; rewrite the cache without --top-k for exact KD",
            folder.display()
        ));
    }
    let record = TeacherCacheUse {
        seed,
        folder,
        used: true,
        exact: cache.is_exact(),
        shards: cache.shards().len(),
        fallback: None,
    };
    Ok((Some(cache.into_logits()), Some(record)))
}

/// One line saying why `folder` cannot serve `context`'s seed and, for a cache of another
/// teacher or split, the command that rebuilds it.
fn cache_refusal(
    context: &SeedContext<'_>,
    folder: &Path,
    error: teacher_cache::CacheError,
) -> String {
    let seed = context.seed;
    let teacher_cache::CacheError::Mismatch {
        path,
        what,
        found,
        expected,
    } = &error
    else {
        return format!("teacher_cache (seed {seed}): {error}");
    };
    let teacher_checkpoint = match &context.config.teacher.checkpoint {
        // An ONNX teacher is the config's own; cache-teacher reads it from there.
        _ if context.config.teacher.onnx.is_some() => String::new(),
        Some(path) => path.display().to_string(),
        None if context.options.save_checkpoints => {
            context.files.checkpoint("teacher").display().to_string()
        }
        None => RunLayout::new("RUN")
            .seed(seed)
            .checkpoint("teacher")
            .display()
            .to_string(),
    };
    // Several seeds reading one folder can never all match: point at the seed's own folder.
    let shared = context.config.seeds.len() > 1 && !folder.ends_with(seed_folder_name(seed));
    let (out, note) = if shared {
        (
            folder.join(seed_folder_name(seed)),
            " (each seed has its own split and teacher, so each needs its own seed-<S> folder)",
        )
    } else {
        (folder.to_path_buf(), "")
    };
    let whose = match what {
        Mismatch::Teacher => format!("seed {seed}'s teacher has"),
        Mismatch::Data => format!("seed {seed}'s training split has"),
    };
    let teacher_arg = if teacher_checkpoint.is_empty() {
        String::new()
    } else {
        format!(" --teacher {teacher_checkpoint}")
    };
    format!(
        "teacher_cache: {}: written for another {what} (the shard's sha256 is {}…, {whose} {}…); rebuild it with `apprentice cache-teacher CONFIG{teacher_arg} --seed {seed} --out {}`{note}",
        path.display(),
        short_hash(found),
        short_hash(expected),
        out.display()
    )
}

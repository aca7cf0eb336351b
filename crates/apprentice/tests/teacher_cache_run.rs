//! `teacher_cache = "DIR"` in a run: a student distilled from a cache written for its teacher
//! learns exactly what it learns from the live teacher; a cache of another teacher or split is
//! refused; with augmentation the run falls back to the live teacher.

use std::path::{Path, PathBuf};

use apprentice::backend::ComputeDevice;
use apprentice::config::ExperimentConfig;
use apprentice::data::prepare::{load_raw, prepare};
use apprentice::distill::cache::{
    CacheStorage, ShardRange, data_hash, short_hash, teacher_hash, write_shard,
};
use apprentice::distill::train::{Silent, predict_logits};
use apprentice::experiment::{RunOptions, run_experiment};
use apprentice::experiment::{TEACHER_CACHE_KEY, TeacherCacheUse};
use apprentice::models::{ModelSpec, Network};
use apprentice::report::results::Results;

/// The teacher's experiment: a small MLP on the embedded digits, a few epochs.
const TEACHER: &str = r#"
name = "cache-teacher"
seeds = [0]

[data]
source = "digits"
normalization = "feature"

[teacher.model]
kind = "mlp"
hidden = [48]

[teacher.train]
epochs = 3
batch_size = 64

[teacher.optimizer]
optimizer = "adam"
lr = 0.003

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 1
"#;

/// KD from a saved teacher (`{checkpoint}`), with scarce labels so that the students learn
/// from the teacher's logits on every input and on the labelled subset only, and with the
/// supervision complexity of the teacher's training logits tracked.
const STUDENTS: &str = r#"
name = "cache-students"
seeds = [{seeds}]
{cache}
[data]
source = "digits"
normalization = "feature"
label_fractions = [1.0, 0.1]

{augment}

[teacher]
checkpoint = {checkpoint}

[student.model]
kind = "mlp"
hidden = [12]

[student.train]
epochs = 3
batch_size = 64

[student.optimizer]
optimizer = "adam"
lr = 0.01

[distill]
methods = ["kd", "dist"]
temperature = 4.0
alpha = 0.5
transfer = ["all", "labelled"]

[complexity]
every_epochs = 3
subset = 40
"#;

fn students(checkpoint: &Path, cache: Option<&Path>, augment: bool, seeds: &str) -> String {
    STUDENTS
        .replace("{seeds}", seeds)
        .replace(
            "{cache}",
            &cache.map_or(String::new(), |dir| {
                format!("teacher_cache = {:?}\n", dir.display().to_string())
            }),
        )
        .replace(
            "{augment}",
            if augment {
                "[augment]\nmax_shift = 1\n"
            } else {
                ""
            },
        )
        .replace(
            "{checkpoint}",
            &format!("{:?}", checkpoint.display().to_string()),
        )
}

fn options(run_dir: &Path, save_checkpoints: bool) -> RunOptions {
    RunOptions {
        run_dir: run_dir.to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints,
    }
}

/// Trains the teacher once and returns its checkpoint (kept in `folder`).
fn train_teacher(folder: &Path) -> PathBuf {
    let config = ExperimentConfig::from_toml(TEACHER, "teacher.toml").unwrap();
    let run_dir = folder.join("teacher-run");
    std::fs::create_dir_all(&run_dir).unwrap();
    run_experiment(&config, &options(&run_dir, true), &mut Silent::default()).unwrap();
    run_dir.join("seed-0/teacher.safetensors")
}

/// Writes `network`'s logits on seed `seed`'s training split into `dir` as `shards` shards,
/// each computed on its own rows as `apprentice cache-teacher --shard i/N` does; returns the
/// teacher hash recorded.
fn write_cache(
    dir: &Path,
    network: &Network,
    seed: u64,
    shards: usize,
    storage: CacheStorage,
) -> String {
    let config = ExperimentConfig::from_toml(TEACHER, "teacher.toml").unwrap();
    let raw = load_raw(&config.data, None).unwrap();
    let data = prepare(&raw, &config.data, seed).unwrap();
    let train = &data.train;
    let teacher_sha256 = teacher_hash(network).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for index in 0..shards {
        let range = ShardRange::of_shard(index, shards, train.len()).unwrap();
        let indices: Vec<usize> = (range.start..range.end).collect();
        let rows = train.subset(&indices, "rows");
        let logits = predict_logits(network, &rows, &ComputeDevice::cpu());
        write_shard(
            dir,
            &logits,
            range,
            train.num_classes,
            storage,
            &teacher_sha256,
            &data_hash(train),
        )
        .unwrap();
    }
    teacher_sha256
}

struct Outcome {
    results: Results,
    json: serde_json::Value,
    warnings: Vec<String>,
}

fn run(text: &str, folder: &Path, label: &str) -> Result<Outcome, String> {
    let config = ExperimentConfig::from_toml(text, "students.toml").unwrap();
    let run_dir = folder.join(label);
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut observer = Silent::default();
    let results = run_experiment(&config, &options(&run_dir, false), &mut observer)
        .map_err(|e| e.to_string())?;
    let json =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap())
            .unwrap();
    Ok(Outcome {
        results,
        json,
        warnings: observer.warnings,
    })
}

/// Every model's per-epoch training losses, validation accuracies, test accuracy and tracked
/// complexity, as bits, so that equality means bit-for-bit.
fn fingerprint(outcome: &Outcome) -> Vec<(String, Vec<u64>)> {
    outcome
        .results
        .models
        .iter()
        .zip(outcome.json["models"].as_array().unwrap())
        .map(|(model, json)| {
            let mut bits: Vec<u64> = Vec::new();
            for curve in &model.curves {
                bits.extend(curve.train_loss.iter().map(|v| v.to_bits()));
                bits.extend(curve.validation_accuracy.iter().map(|v| v.to_bits()));
            }
            bits.extend(model.test.accuracy.per_seed.iter().map(|v| v.to_bits()));
            bits.extend(model.test.nll.per_seed.iter().map(|v| v.to_bits()));
            for curve in json["curves"].as_array().unwrap() {
                if let Some(values) = curve["supervision_complexity"].as_array() {
                    bits.extend(values.iter().filter_map(|v| v.as_f64()).map(f64::to_bits));
                }
            }
            (model.name.clone(), bits)
        })
        .collect()
}

fn cache_uses(outcome: &Outcome) -> Vec<TeacherCacheUse> {
    match outcome.json.get(TEACHER_CACHE_KEY) {
        Some(value) => serde_json::from_value(value.clone()).unwrap(),
        None => Vec::new(),
    }
}

#[test]
fn a_cached_teacher_teaches_exactly_like_the_live_one_and_others_are_refused() {
    let folder = tempfile::tempdir().unwrap();
    let folder = folder.path();
    let checkpoint = train_teacher(folder);
    let device = ComputeDevice::cpu();
    let (teacher, _) = apprentice::checkpoint::load(&checkpoint, &device).unwrap();
    let cache = folder.join("cache");
    let teacher_sha256 = write_cache(&cache, &teacher, 0, 2, CacheStorage::Full);

    let live = run(&students(&checkpoint, None, false, "0"), folder, "live").unwrap();
    let cached = run(
        &students(&checkpoint, Some(&cache), false, "0"),
        folder,
        "cached",
    )
    .unwrap();
    let live_bits = fingerprint(&live);
    assert_eq!(
        live_bits
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        [
            "teacher",
            "scratch",
            "kd",
            "dist",
            "scratch@10%",
            "kd-all@10%",
            "kd-labelled@10%",
            "dist-all@10%",
            "dist-labelled@10%"
        ]
    );
    assert!(
        live.json["models"][2]["curves"][0]["supervision_complexity"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x.is_f64())),
        "the probe measured the teacher's targets"
    );
    assert_eq!(fingerprint(&cached), live_bits);
    assert!(cached.warnings.is_empty(), "{:?}", cached.warnings);
    assert!(cache_uses(&live).is_empty());
    assert_eq!(
        cache_uses(&cached),
        [TeacherCacheUse {
            seed: 0,
            folder: cache.clone(),
            used: true,
            exact: true,
            shards: 2,
            fallback: None,
        }]
    );

    // A cache in the seed's own folder is preferred to one at the top.
    let stranger = Network::new(
        &toml::from_str::<ModelSpec>("kind = \"mlp\"\nhidden = [48]").unwrap(),
        teacher_spec_shape(&checkpoint),
        10,
        12345,
        &device.inference(),
    )
    .unwrap();
    let nested = folder.join("nested");
    let stranger_sha256 = write_cache(&nested, &stranger, 0, 1, CacheStorage::Full);
    write_cache(&nested.join("seed-0"), &teacher, 0, 1, CacheStorage::Full);
    let from_seed_folder = run(
        &students(&checkpoint, Some(&nested), false, "0"),
        folder,
        "nested",
    )
    .unwrap();
    assert_eq!(fingerprint(&from_seed_folder), live_bits);
    assert_eq!(
        cache_uses(&from_seed_folder)[0].folder,
        nested.join("seed-0")
    );

    // A cache of another teacher is refused, naming the shard and both teacher hashes.
    let other = folder.join("other");
    write_cache(&other, &stranger, 0, 1, CacheStorage::Full);
    let message = run(
        &students(&checkpoint, Some(&other), false, "0"),
        folder,
        "other",
    )
    .err()
    .expect("a cache of another teacher must be refused");
    assert!(!message.contains('\n'), "one line: {message}");
    for needed in [
        "another teacher",
        other.to_str().unwrap(),
        "teacher-logits-",
        short_hash(&teacher_sha256),
        short_hash(&stranger_sha256),
        "apprentice cache-teacher",
    ] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from: {message}"
        );
    }

    // Seed 1 has another split: seed 0's cache at the top of the folder is refused for it.
    let message = run(
        &students(&checkpoint, Some(&cache), false, "1"),
        folder,
        "seed-1",
    )
    .err()
    .expect("seed 0's cache must be refused for seed 1");
    assert!(!message.contains('\n'), "one line: {message}");
    for needed in [
        "data set or split",
        "seed 1",
        "--seed 1",
        "apprentice cache-teacher",
    ] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from: {message}"
        );
    }

    // With augmentation the cache would be inexact: the live teacher teaches every seed, with
    // one warning for the run.
    let augmented_live = run(
        &students(&checkpoint, None, true, "0, 1"),
        folder,
        "aug-live",
    )
    .unwrap();
    let augmented_cached = run(
        &students(&checkpoint, Some(&cache), true, "0, 1"),
        folder,
        "aug-cached",
    )
    .unwrap();
    assert_eq!(fingerprint(&augmented_cached), fingerprint(&augmented_live));
    assert_ne!(
        fingerprint(&augmented_live),
        live_bits,
        "augmentation is on"
    );
    assert_eq!(
        augmented_cached.warnings.len(),
        1,
        "{:?}",
        augmented_cached.warnings
    );
    assert!(
        augmented_cached.warnings[0].contains("augment")
            && augmented_cached.warnings[0].contains("live teacher"),
        "{}",
        augmented_cached.warnings[0]
    );
    let fallbacks = cache_uses(&augmented_cached);
    assert_eq!(fallbacks.len(), 2, "{fallbacks:?}");
    for (seed, fallback) in fallbacks.iter().enumerate() {
        assert_eq!(fallback.seed, seed as u64);
        assert!(
            !fallback.used && fallback.fallback.is_some(),
            "{fallback:?}"
        );
    }

    // A top-k cache is used, with a warning that KD is then approximate.
    let top_k = folder.join("top-k");
    write_cache(&top_k, &teacher, 0, 1, CacheStorage::TopK { k: 3 });
    let approximate = run(
        &students(&checkpoint, Some(&top_k), false, "0"),
        folder,
        "top-k",
    )
    .unwrap();
    assert_eq!(approximate.warnings.len(), 1, "{:?}", approximate.warnings);
    assert!(
        approximate.warnings[0].contains("approximate"),
        "{}",
        approximate.warnings[0]
    );
    let used = &cache_uses(&approximate)[0];
    assert!(used.used && !used.exact, "{used:?}");
    assert_ne!(fingerprint(&approximate), live_bits);
}

/// The input shape the checkpoint's teacher takes.
fn teacher_spec_shape(checkpoint: &Path) -> apprentice::data::SampleShape {
    let (_, meta) = apprentice::checkpoint::load(checkpoint, &ComputeDevice::cpu()).unwrap();
    meta.input_shape
}

#[test]
fn teacher_cache_is_an_optional_top_level_key() {
    let text = students(
        Path::new("t.safetensors"),
        Some(Path::new("cache")),
        false,
        "0",
    );
    let config = ExperimentConfig::from_toml(&text, "students.toml").unwrap();
    assert_eq!(config.teacher_cache, Some(PathBuf::from("cache")));
    // Kept when a run writes its config.toml, so that a resumed run reads the same cache.
    let saved = toml::to_string(&config).unwrap();
    let again = ExperimentConfig::from_toml(&saved, "config.toml").unwrap();
    assert_eq!(again.teacher_cache, config.teacher_cache);
    let without = students(Path::new("t.safetensors"), None, false, "0");
    let config = ExperimentConfig::from_toml(&without, "students.toml").unwrap();
    assert_eq!(config.teacher_cache, None);
    assert!(!toml::to_string(&config).unwrap().contains("teacher_cache"));
    let empty = students(Path::new("t.safetensors"), Some(Path::new("")), false, "0");
    let error = ExperimentConfig::from_toml(&empty, "students.toml").unwrap_err();
    assert!(error.to_string().contains("teacher_cache"), "{error}");
}

#[test]
fn a_missing_cache_folder_fails_before_any_training() {
    let folder = tempfile::tempdir().unwrap();
    let missing = folder.path().join("no-cache");
    let text = students(Path::new("t.safetensors"), Some(&missing), false, "0");
    let started = std::time::Instant::now();
    let message = run(&text, folder.path(), "missing")
        .err()
        .expect("a missing cache folder must be refused");
    assert!(
        message.contains("teacher_cache") && message.contains(missing.to_str().unwrap()),
        "{message}"
    );
    assert!(message.contains("apprentice cache-teacher"), "{message}");
    // Refused before the teacher checkpoint (which does not exist either) is even opened.
    assert!(!message.contains("t.safetensors"), "{message}");
    assert!(started.elapsed().as_secs() < 5);
}

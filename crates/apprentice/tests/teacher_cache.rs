//! The on-disk teacher cache: shards written separately and opened together, full and top-k
//! storage, the hashes that tie a cache to its teacher and data, every refusal, and training
//! from a cache against training from the live teacher.

use std::path::{Path, PathBuf};

use apprentice::backend::ComputeDevice;
use apprentice::config::TrainConfig;
use apprentice::data::augment::Augmentation;
use apprentice::data::{Dataset, SampleShape};
use apprentice::distill::cache::{
    CACHE_FORMAT_VERSION, CacheError, CacheStorage, ShardRange, TeacherCache, data_hash,
    parse_shard_spec, reconstruct_top_k, shard_file_name, teacher_hash, write_shard,
};
use apprentice::distill::loss::KdWeights;
use apprentice::distill::optim::OptimizerSpec;
use apprentice::distill::train::{
    OnNan, Silent, Supervision, TeacherSignal, TrainSettings, TrainingSet, predict_logits, train,
};
use apprentice::models::{ModelSpec, Network};

const TEACHER: &str = "teacher-sha";
const DATA: &str = "data-sha";

/// Deterministic logits with a wide range, `rows × classes`.
fn logits(rows: usize, classes: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..rows * classes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 16.0
        })
        .collect()
}

fn write_all(dir: &Path, values: &[f32], classes: usize, shards: usize) -> Vec<PathBuf> {
    let samples = values.len() / classes;
    (0..shards)
        .map(|index| {
            let range = ShardRange::of_shard(index, shards, samples).unwrap();
            write_shard(
                dir,
                &values[range.start * classes..range.end * classes],
                range,
                classes,
                CacheStorage::Full,
                TEACHER,
                DATA,
            )
            .unwrap()
        })
        .collect()
}

fn open(dir: &Path, samples: usize, classes: usize) -> Result<TeacherCache, CacheError> {
    TeacherCache::open(dir, TEACHER, DATA, samples, classes)
}

fn refusal(dir: &Path, samples: usize, classes: usize) -> String {
    let error = open(dir, samples, classes).expect_err("the cache must be refused");
    let message = error.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

#[test]
fn a_full_cache_round_trips_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let values = logits(37, 10, 1);
    let paths = write_all(dir.path(), &values, 10, 1);
    assert_eq!(
        paths[0].file_name().unwrap().to_str().unwrap(),
        shard_file_name(ShardRange { start: 0, end: 37 })
    );
    let cache = open(dir.path(), 37, 10).unwrap();
    assert_eq!(cache.logits(), values.as_slice());
    assert!(cache.is_exact());
    assert_eq!(cache.classes(), 10);
    assert_eq!(cache.shards(), paths.as_slice());
}

#[test]
fn shards_written_separately_open_as_one_cache() {
    let samples = 103;
    let values = logits(samples, 7, 2);
    // Each "machine" writes its own shard into its own folder, as a job array would; the
    // shards are then gathered into one folder.
    let gathered = tempfile::tempdir().unwrap();
    let mut ranges = Vec::new();
    for index in 0..4 {
        let (parsed_index, count) = parse_shard_spec(&format!("{index}/4")).unwrap();
        let range = ShardRange::of_shard(parsed_index, count, samples).unwrap();
        ranges.push(range);
        let machine = tempfile::tempdir().unwrap();
        let path = write_shard(
            machine.path(),
            &values[range.start * 7..range.end * 7],
            range,
            7,
            CacheStorage::Full,
            TEACHER,
            DATA,
        )
        .unwrap();
        std::fs::copy(&path, gathered.path().join(path.file_name().unwrap())).unwrap();
    }
    // Balanced, contiguous and covering.
    assert_eq!(ranges[0].start, 0);
    assert_eq!(ranges[3].end, samples);
    for pair in ranges.windows(2) {
        assert_eq!(pair[0].end, pair[1].start);
    }
    let sizes: Vec<usize> = ranges.iter().map(ShardRange::len).collect();
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
        "{sizes:?}"
    );
    let cache = open(gathered.path(), samples, 7).unwrap();
    assert_eq!(cache.logits(), values.as_slice());
    assert_eq!(cache.shards().len(), 4);
}

#[test]
fn shard_specs_are_checked() {
    assert_eq!(parse_shard_spec("2/5").unwrap(), (2, 5));
    for bad in ["5/5", "1/0", "a/3", "3", "-1/4", ""] {
        let message = parse_shard_spec(bad).unwrap_err();
        assert!(message.contains("i/N"), "{bad}: {message}");
    }
    assert!(ShardRange::of_shard(0, 11, 10).is_err());
    assert!(ShardRange::of_shard(3, 3, 10).is_err());
}

fn softmax(row: &[f64], temperature: f64) -> Vec<f64> {
    let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = row
        .iter()
        .map(|v| ((v - max) / temperature).exp())
        .collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[test]
fn top_k_keeps_the_kept_probabilities_and_spreads_the_rest_evenly() {
    let classes = 12;
    let k = 3;
    let rows = 9;
    let mut values = logits(rows, classes, 3);
    // A tie at the top and a sample whose tail mass is far below f32's smallest normal.
    values[classes] = 5.0;
    values[classes + 1] = 5.0;
    for (column, value) in values[2 * classes..3 * classes].iter_mut().enumerate() {
        *value = if column == 4 { 200.0 } else { -200.0 };
    }
    let dir = tempfile::tempdir().unwrap();
    write_shard(
        dir.path(),
        &values,
        ShardRange {
            start: 0,
            end: rows,
        },
        classes,
        CacheStorage::TopK { k },
        TEACHER,
        DATA,
    )
    .unwrap();
    let cache = open(dir.path(), rows, classes).unwrap();
    assert!(!cache.is_exact());
    for (row, (original, rebuilt)) in values
        .chunks(classes)
        .zip(cache.logits().chunks(classes))
        .enumerate()
    {
        assert!(
            rebuilt.iter().all(|v| v.is_finite()),
            "row {row}: {rebuilt:?}"
        );
        let original: Vec<f64> = original.iter().map(|&v| v as f64).collect();
        let rebuilt: Vec<f64> = rebuilt.iter().map(|&v| v as f64).collect();
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&a, &b| original[b].total_cmp(&original[a]).then(a.cmp(&b)));
        let (kept, others) = order.split_at(k);
        let p = softmax(&original, 1.0);
        let q = softmax(&rebuilt, 1.0);
        for &c in kept {
            assert!(
                (p[c] - q[c]).abs() <= 1e-6,
                "row {row} class {c}: {} vs {}",
                p[c],
                q[c]
            );
        }
        let rest: f64 = others.iter().map(|&c| p[c]).sum();
        for &c in others {
            let even = rest / others.len() as f64;
            assert!(
                (q[c] - even).abs() <= 1e-6 * even.max(1e-30) + 1e-12,
                "row {row} class {c}: {} vs {even}",
                q[c]
            );
        }
        // At the distillation temperature the kept classes keep their exact ratios.
        for pair in kept.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let original_gap = original[a] - original[b];
            let rebuilt_gap = rebuilt[a] - rebuilt[b];
            assert!(
                (original_gap - rebuilt_gap).abs() <= 1e-4,
                "row {row}: {original_gap} vs {rebuilt_gap}"
            );
        }
    }
    // The tie is kept in index order.
    assert_eq!(
        reconstruct_top_k(&[1, 0], &[-0.5, -1.0], -2.0, 4),
        vec![
            -1.0,
            -0.5,
            (-2.0f64 - 2f64.ln()) as f32,
            (-2.0f64 - 2f64.ln()) as f32
        ]
    );
    for bad in [0, classes] {
        let error = write_shard(
            dir.path(),
            &values,
            ShardRange {
                start: 0,
                end: rows,
            },
            classes,
            CacheStorage::TopK { k: bad },
            TEACHER,
            DATA,
        )
        .unwrap_err();
        assert!(error.to_string().contains("top-k"), "{error}");
    }
}

#[test]
fn a_truncated_shard_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_all(dir.path(), &logits(50, 10, 4), 10, 2);
    let bytes = std::fs::read(&paths[1]).unwrap();
    for cut in [bytes.len() - 1, bytes.len() / 2, 20, 4, 0] {
        std::fs::write(&paths[1], &bytes[..cut]).unwrap();
        let message = refusal(dir.path(), 50, 10);
        assert!(message.contains("truncated"), "cut at {cut}: {message}");
        assert!(
            message.contains(paths[1].file_name().unwrap().to_str().unwrap()),
            "{message}"
        );
    }
}

#[test]
fn a_damaged_shard_fails_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_all(dir.path(), &logits(50, 10, 5), 10, 2);
    let mut bytes = std::fs::read(&paths[0]).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x10;
    std::fs::write(&paths[0], &bytes).unwrap();
    let message = refusal(dir.path(), 50, 10);
    assert!(message.contains("checksum"), "{message}");
    assert!(
        message.contains(paths[0].file_name().unwrap().to_str().unwrap()),
        "{message}"
    );
}

#[test]
fn a_cache_of_another_teacher_or_data_set_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_all(dir.path(), &logits(20, 10, 6), 10, 1);
    let name = paths[0].file_name().unwrap().to_str().unwrap().to_string();
    let message = TeacherCache::open(dir.path(), "other-teacher", DATA, 20, 10)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("another teacher") && message.contains(&name),
        "{message}"
    );
    let message = TeacherCache::open(dir.path(), TEACHER, "other-data", 20, 10)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("another data set") && message.contains(&name),
        "{message}"
    );
    let message = refusal(dir.path(), 20, 11);
    assert!(
        message.contains("11 classes") || message.contains("expected 11"),
        "{message}"
    );
    let message = refusal(dir.path(), 19, 10);
    assert!(message.contains("19"), "{message}");
}

#[test]
fn gaps_overlaps_and_empty_folders_are_refused() {
    let values = logits(60, 10, 7);
    let dir = tempfile::tempdir().unwrap();
    let paths = write_all(dir.path(), &values, 10, 3);
    std::fs::remove_file(&paths[1]).unwrap();
    let message = refusal(dir.path(), 60, 10);
    assert!(
        message.contains("20..40") && message.contains("no shard"),
        "{message}"
    );

    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &values, 10, 3);
    // A stale shard from an earlier split into two.
    write_shard(
        dir.path(),
        &values[..300],
        ShardRange { start: 0, end: 30 },
        10,
        CacheStorage::Full,
        TEACHER,
        DATA,
    )
    .unwrap();
    let message = refusal(dir.path(), 60, 10);
    assert!(message.contains("overlaps"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let message = refusal(dir.path(), 60, 10);
    assert!(message.contains("no teacher cache shards"), "{message}");
    let message = refusal(&dir.path().join("absent"), 60, 10);
    assert!(message.contains("cannot read"), "{message}");

    // Shards covering only the start of the data.
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &values[..400], 10, 2);
    let message = refusal(dir.path(), 60, 10);
    assert!(message.contains("0..40 of 60"), "{message}");
}

#[test]
fn a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_all(dir.path(), &logits(10, 4, 8), 4, 1);
    let bytes = std::fs::read(&paths[0]).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let old = format!("\\\"format_version\\\":{CACHE_FORMAT_VERSION}");
    assert!(text.contains(&old), "the header is JSON in the file");
    // Same length, so that only the version differs.
    let new = format!("\\\"format_version\\\":{}", CACHE_FORMAT_VERSION + 1);
    assert_eq!(old.len(), new.len());
    let position = bytes
        .windows(old.len())
        .position(|w| w == old.as_bytes())
        .unwrap();
    let mut patched = bytes.clone();
    patched[position..position + new.len()].copy_from_slice(new.as_bytes());
    std::fs::write(&paths[0], &patched).unwrap();
    let message = refusal(dir.path(), 10, 4);
    assert!(message.contains("newer"), "{message}");
}

#[test]
fn non_finite_or_misshapen_logits_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut values = logits(5, 4, 9);
    let range = ShardRange { start: 10, end: 15 };
    assert!(
        write_shard(
            dir.path(),
            &values[..19],
            range,
            4,
            CacheStorage::Full,
            TEACHER,
            DATA
        )
        .is_err()
    );
    values[6] = f32::NAN;
    let error = write_shard(
        dir.path(),
        &values,
        range,
        4,
        CacheStorage::Full,
        TEACHER,
        DATA,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("sample 11"), "{error}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

fn mlp(hidden: usize) -> ModelSpec {
    toml::from_str(&format!("kind = \"mlp\"\nhidden = [{hidden}]")).unwrap()
}

/// 96 samples of 4×4 images in 3 classes: a bright row per class plus noise.
fn toy_data() -> Dataset {
    let mut state = 99u64;
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for i in 0..96 {
        let class = i % 3;
        for y in 0..4 {
            for _ in 0..4 {
                features.push(if y == class { 1.0 } else { 0.0 } + 0.4 * noise());
            }
        }
        labels.push(class as u32);
    }
    Dataset {
        name: "toy".into(),
        features,
        labels,
        shape: SampleShape::image(1, 4, 4),
        num_classes: 3,
    }
}

#[test]
fn hashes_identify_the_teacher_and_the_data() {
    let device = ComputeDevice::cpu();
    let shape = SampleShape::image(1, 4, 4);
    let build = |seed| Network::new(&mlp(8), shape, 3, seed, &device.inference()).unwrap();
    assert_eq!(
        teacher_hash(&build(1)).unwrap(),
        teacher_hash(&build(1)).unwrap()
    );
    assert_ne!(
        teacher_hash(&build(1)).unwrap(),
        teacher_hash(&build(2)).unwrap()
    );
    let data = toy_data();
    let hash = data_hash(&data);
    assert_eq!(hash.len(), 64);
    assert_eq!(hash, data_hash(&data.clone()));
    let mut feature = data.clone();
    feature.features[17] += 1e-6;
    let mut label = data.clone();
    label.labels[5] = (label.labels[5] + 1) % 3;
    let mut shape_only = data.clone();
    shape_only.shape = SampleShape::image(1, 2, 8);
    for other in [feature, label, shape_only] {
        assert_ne!(data_hash(&other), hash);
    }
}

/// Distilling from the cache trains exactly like distilling from the live teacher when the
/// inputs are not augmented: the same loss, epoch after epoch.
#[test]
fn a_cached_teacher_trains_like_the_live_teacher() {
    let device = ComputeDevice::cpu();
    let data = toy_data();
    let shape = data.shape;
    let teacher = Network::new(&mlp(16), shape, 3, 5, &device.inference()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let all = predict_logits(&teacher, &data, &device);
    for index in 0..3 {
        let range = ShardRange::of_shard(index, 3, data.len()).unwrap();
        write_shard(
            dir.path(),
            &all[range.start * 3..range.end * 3],
            range,
            3,
            CacheStorage::Full,
            &teacher_hash(&teacher).unwrap(),
            &data_hash(&data),
        )
        .unwrap();
    }
    let cache = TeacherCache::open(
        dir.path(),
        &teacher_hash(&teacher).unwrap(),
        &data_hash(&data),
        data.len(),
        3,
    )
    .unwrap();
    let train_config = TrainConfig {
        epochs: 3,
        batch_size: 16,
        early_stopping_patience: None,
    };
    let optimizer = OptimizerSpec::default();
    let settings = TrainSettings {
        train: &train_config,
        optimizer: &optimizer,
        augmentation: Augmentation::default(),
        fill: &[],
        seed: 3,
        on_nan: OnNan::Stop,
        checkpointing: None,
    };
    let set = TrainingSet {
        data: &data,
        labelled: None,
        samples_per_epoch: data.len(),
        validation: &data,
    };
    let run = |teacher: TeacherSignal<'_>| {
        let student = Network::new(&mlp(6), shape, 3, 11, &device.training()).unwrap();
        train(
            "student",
            student,
            &set,
            &Supervision::Distill {
                teacher,
                objective: std::sync::Arc::new(KdWeights {
                    temperature: 4.0,
                    alpha: 0.5,
                }),
            },
            &settings,
            &device,
            &mut Silent::default(),
        )
        .unwrap()
    };
    let cached = run(TeacherSignal::Cached(cache.logits()));
    let live = run(TeacherSignal::Live(&teacher));
    assert_eq!(cached.train_loss, live.train_loss);
    assert_eq!(cached.validation_accuracy, live.validation_accuracy);
    // The teacher term is really there: training on labels alone gives other losses.
    let labels_only = train(
        "scratch",
        Network::new(&mlp(6), shape, 3, 11, &device.training()).unwrap(),
        &set,
        &Supervision::Labels,
        &settings,
        &device,
        &mut Silent::default(),
    )
    .unwrap();
    assert_ne!(labels_only.train_loss, cached.train_loss);
}

/// `apprentice cache-teacher` hashes a teacher loaded from its checkpoint, a run hashes the
/// teacher it trained: both must agree, batch-norm statistics included.
#[test]
fn a_checkpointed_teacher_hashes_like_the_trained_one() {
    use apprentice::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CheckpointMeta};
    use apprentice::config::{DataConfig, DataSource};
    use apprentice::data::csv::LabelColumn;
    use apprentice::data::normalize::{Normalization, Normalizer};
    use burn::module::Module;

    let device = ComputeDevice::cpu();
    let data = toy_data();
    let spec: ModelSpec =
        toml::from_str("kind = \"cnn\"\nchannels = [3]\nbatch_norm = true\nhidden = [5]").unwrap();
    let trained = Network::new(&spec, data.shape, 3, 21, &device.training()).unwrap();
    // A training-mode pass moves the batch-norm running statistics off their initial values.
    let inputs =
        apprentice::backend::matrix(data.features[..8 * 16].to_vec(), 8, 16, &device.training());
    let _ = trained.forward(inputs, None);
    let trained = trained.valid();
    let meta = CheckpointMeta {
        format_version: CHECKPOINT_FORMAT_VERSION,
        spec: spec.clone(),
        input_shape: data.shape,
        num_classes: 3,
        normalizer: Normalizer {
            mode: Normalization::Channel,
            mean: vec![0.0; 16],
            std: vec![1.0; 16],
        },
        name: "teacher".into(),
        seed: 0,
        data: "toy".into(),
        data_config: DataConfig {
            source: DataSource::Digits,
            path: None,
            validation_fraction: 0.1,
            test_fraction: 0.2,
            normalization: Normalization::Channel,
            label_fractions: vec![1.0],
            label_column: LabelColumn::Last,
            has_header: false,
            image_shape: None,
            image_folder: None,
        },
        class_names: Vec::new(),
    };
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("teacher.safetensors");
    checkpoint::save(&path, &trained, &meta).unwrap();
    let (loaded, _) = checkpoint::load(&path, &device).unwrap();
    assert_eq!(
        teacher_hash(&trained).unwrap(),
        teacher_hash(&loaded).unwrap()
    );
    let fresh = Network::new(&spec, data.shape, 3, 21, &device.inference()).unwrap();
    assert_ne!(
        teacher_hash(&fresh).unwrap(),
        teacher_hash(&trained).unwrap(),
        "the running statistics are part of the teacher"
    );
}

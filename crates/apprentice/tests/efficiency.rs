//! Efficiency: analytic FLOPs against hand counts, exact heap counting, and measurements of
//! real checkpoints from a tiny run, including the run-level measurement the report shows.

use std::time::Duration;

use apprentice::backend::ComputeDevice;
use apprentice::config::ExperimentConfig;
use apprentice::data::SampleShape;
use apprentice::distill::train::Silent;
use apprentice::eval::efficiency::{
    BenchSettings, CountingAllocator, Efficiency, count_flops, heap_counter_installed, heap_in_use,
    heap_peak, measure, measure_checkpoint, reset_heap_peak,
};
use apprentice::experiment::{RunOptions, run_experiment};
use apprentice::models::{CnnSpec, MlpSpec, ModelSpec, Network};
use apprentice::report::measure::find_checkpoint;
use apprentice::report::{MeasureOptions, measure_run};

// The test binary counts its heap like the `apprentice` binary does.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The heap counter sees every thread of the process: tests that read it run one at a time so
/// that one test's allocations do not show up in another's measurement.
static HEAP_COUNTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn network(spec: &ModelSpec, shape: SampleShape) -> Network {
    Network::new(spec, shape, 10, 0, &ComputeDevice::cpu().inference()).unwrap()
}

fn mlp(hidden: Vec<usize>) -> ModelSpec {
    ModelSpec::Mlp(MlpSpec {
        hidden,
        activation: Default::default(),
        dropout: 0.0,
    })
}

/// Short timings: the tests check what is measured, not how precisely.
fn fast() -> BenchSettings {
    BenchSettings {
        warmup: Duration::from_millis(5),
        latency_budget: Duration::from_millis(30),
        throughput_budget: Duration::from_millis(30),
        min_runs: 5,
        max_runs: 10_000,
        throughput_batch: 256,
    }
}

#[test]
fn flops_match_hand_counts() {
    // 64-256-256-10: 2·(64·256 + 256·256 + 256·10) multiply-add FLOPs, 256 + 256 + 10 bias
    // adds, and one activation per hidden unit.
    let flops = count_flops(&network(&mlp(vec![256, 256]), SampleShape::image(1, 8, 8)));
    assert_eq!(flops.multiply_adds, 84_480);
    assert_eq!(flops.by_layer_type["dense"], 2 * 84_480 + 522);
    assert_eq!(flops.by_layer_type["activation"], 512);
    assert_eq!(flops.total, 169_994);
    assert_eq!(flops.by_layer_type.len(), 2);

    // A linear classifier has no activation at all.
    let linear = count_flops(&network(&mlp(vec![]), SampleShape::flat(20)));
    assert_eq!(linear.total, 2 * 200 + 10);
    assert!(!linear.by_layer_type.contains_key("activation"));

    // Conv 3×3 1→4 on 8×8, BN, ReLU, pool → 4×4; conv 4→8, BN, ReLU, pool → 2×2;
    // dense 32→16, ReLU; dense 16→10.
    let cnn = ModelSpec::Cnn(CnnSpec {
        channels: vec![4, 8],
        kernel_size: 3,
        batch_norm: true,
        pool: true,
        hidden: vec![16],
        activation: Default::default(),
        dropout: 0.0,
    });
    let flops = count_flops(&network(&cnn, SampleShape::image(1, 8, 8)));
    let conv_macs = 9 * 4 * 64 + 9 * 4 * 8 * 16;
    assert_eq!(flops.multiply_adds, conv_macs + 32 * 16 + 16 * 10);
    assert_eq!(flops.by_layer_type["conv"], 2 * conv_macs + 4 * 64 + 8 * 16);
    assert_eq!(flops.by_layer_type["batch_norm"], 2 * (4 * 64 + 8 * 16));
    assert_eq!(flops.by_layer_type["activation"], 4 * 64 + 8 * 16 + 16);
    assert_eq!(flops.by_layer_type["max_pool"], 3 * (4 * 16 + 8 * 4));
    assert_eq!(
        flops.by_layer_type["dense"],
        2 * (32 * 16 + 16 * 10) + 16 + 10
    );
    assert_eq!(flops.total, 17_034);
}

#[test]
fn the_heap_counter_is_exact() {
    let _serial = HEAP_COUNTER.lock().unwrap_or_else(|e| e.into_inner());
    assert!(heap_counter_installed());
    reset_heap_peak();
    let block = std::hint::black_box(vec![1u8; 1 << 20]);
    // Other tests run on other threads, so only bounds are certain: the live block is in
    // the count and in the peak.
    assert!(heap_in_use() >= 1 << 20);
    assert!(heap_peak() >= 1 << 20);
    drop(block);
}

#[test]
fn a_network_is_measured_with_every_quantity_or_a_reason() {
    let _serial = HEAP_COUNTER.lock().unwrap_or_else(|e| e.into_inner());
    let device = ComputeDevice::cpu();
    let teacher = network(&mlp(vec![256, 256]), SampleShape::image(1, 8, 8));
    let student = network(&mlp(vec![32]), SampleShape::image(1, 8, 8));
    let settings = fast();
    let t = measure(&teacher, "teacher", "mlp 64-256-256-10", &device, &settings).unwrap();
    let s = measure(&student, "kd", "mlp 64-32-10", &device, &settings).unwrap();
    for m in [&t, &s] {
        assert!(m.latency.runs >= settings.min_runs && m.throughput.runs >= settings.min_runs);
        assert!(m.latency.p50_ms > 0.0 && m.latency.p50_ms <= m.latency.p95_ms);
        assert!(m.throughput.examples_per_s > 0.0 && m.throughput.batch_size == 256);
        let memory = m
            .memory
            .as_ref()
            .expect("the counting allocator is installed");
        assert!(memory.inference_peak_batch_bytes > memory.inference_peak_batch1_bytes);
        // Energy is measured or says why not; never both, never neither.
        assert_ne!(m.energy.is_some(), m.energy_unavailable.is_some());
        if let Some(reason) = &m.energy_unavailable {
            assert!(!reason.is_empty() && !reason.contains('\n'));
        }
        if cfg!(unix) {
            let cpu = m.cpu.as_ref().expect("getrusage answers on Unix");
            assert!(cpu.seconds_per_example_batch >= 0.0);
        }
        assert_eq!(m.environment.device, "cpu");
        assert!(m.environment.threads >= 1);
    }
    // The teacher's hidden activations alone are 256 × 256 floats at batch 256.
    let memory = t.memory.as_ref().unwrap();
    assert!(memory.inference_peak_batch_bytes >= 256 * 256 * 4);
    assert_eq!(t.params, 85_002);
    let ratio = s.ratios_to(&t);
    assert!((ratio.params - 2_410.0 / 85_002.0).abs() < 1e-12);
    assert!((ratio.flops - 4_810.0 / 169_994.0).abs() < 1e-12);
    assert!(ratio.throughput > 0.0 && ratio.latency_p50 > 0.0);

    // Saved measurements read back, whatever non-finite values they hold.
    let mut odd = s.clone();
    odd.latency.p95_ms = f64::NAN;
    let text = serde_json::to_string(&odd).unwrap();
    let back: Efficiency = serde_json::from_str(&text).unwrap();
    assert!(back.latency.p95_ms.is_nan());
    assert_eq!(back.flops, s.flops);

    let bad = BenchSettings {
        throughput_batch: 0,
        ..fast()
    };
    let error = measure(&student, "kd", "mlp", &device, &bad).unwrap_err();
    assert!(error.to_string().contains("batch size"));
}

const TINY: &str = r#"
name = "tiny"
seeds = [3]

[data]
source = "digits"
label_fractions = [1.0, 0.2]

[teacher.model]
kind = "mlp"
hidden = [64]

[teacher.train]
epochs = 2

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 1

[distill]
transfer = ["all"]
"#;

#[test]
fn a_run_is_measured_from_its_checkpoints() {
    let _serial = HEAP_COUNTER.lock().unwrap_or_else(|e| e.into_inner());
    let config = ExperimentConfig::from_toml(TINY, "tiny.toml").unwrap();
    let folder = tempfile::tempdir().unwrap();
    let options = RunOptions {
        run_dir: folder.path().to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: true,
    };
    let results = run_experiment(&config, &options, &mut Silent::default()).unwrap();
    let seed_dir = folder.path().join("seed-3");
    let teacher_file = find_checkpoint(&seed_dir, "teacher").unwrap();
    let student_file = find_checkpoint(&seed_dir, "kd-all@20%").unwrap();
    assert!(student_file.ends_with("kd-all-at-20pct.safetensors"));
    assert!(find_checkpoint(&seed_dir, "no-such-model").is_none());

    let device = ComputeDevice::cpu();
    let teacher = measure_checkpoint(&teacher_file, &device, &fast()).unwrap();
    assert_eq!(teacher.name, "teacher");
    assert_eq!(
        teacher.file_bytes,
        Some(std::fs::metadata(&teacher_file).unwrap().len())
    );
    let memory = teacher.memory.as_ref().unwrap();
    // 64·64 + 64 + 64·10 + 10 weights of 4 bytes at least.
    assert!(memory.model_bytes.unwrap() >= 4 * (64 * 64 + 64 + 64 * 10 + 10));

    let measure_options = MeasureOptions {
        device: device.clone(),
        data_path: None,
        bench: fast(),
        bench_name: "test".to_string(),
    };
    let mut progress = Vec::new();
    let measured = measure_run(folder.path(), &results, &measure_options, &mut |name| {
        progress.push(name.to_string())
    });
    assert!(measured.notes.is_empty(), "{:?}", measured.notes);
    let names: Vec<&str> = results.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(progress, names);
    let efficiency = measured.efficiency.unwrap();
    assert_eq!(efficiency.seed, 3);
    assert_eq!(efficiency.models.len(), names.len());
    for model in &efficiency.models {
        let is_teacher = model.measured.name == "teacher";
        assert_eq!(model.ratio_to_teacher.is_none(), is_teacher);
    }
    let agreement = measured.teacher_agreement.unwrap();
    assert_eq!(agreement.samples, results.data.test);
    assert_eq!(agreement.models.len(), names.len() - 1);
    for model in &agreement.models {
        let total: u64 = model.matrix.iter().flatten().sum();
        assert_eq!(total as usize, agreement.samples);
        let reported = results
            .models
            .iter()
            .find(|m| m.name == model.name)
            .unwrap()
            .test
            .agreement
            .as_ref()
            .unwrap()
            .mean;
        // The same checkpoints and test split as the run: the same agreement.
        assert!((model.agreement - reported).abs() < 1e-9, "{}", model.name);
    }

    // Without checkpoints there is nothing to measure, which is a note.
    let empty = tempfile::tempdir().unwrap();
    let measured = measure_run(empty.path(), &results, &measure_options, &mut |_| {});
    assert!(measured.efficiency.is_none() && measured.teacher_agreement.is_none());
    assert!(
        measured.notes[0].contains("no checkpoints"),
        "{:?}",
        measured.notes
    );
}

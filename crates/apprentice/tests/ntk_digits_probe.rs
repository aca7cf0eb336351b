//! A by-hand measurement on the digits student (not a unit test): run with `--ignored`.

use std::time::Instant;

use apprentice::backend::ComputeDevice;
use apprentice::checkpoint;
use apprentice::complexity::{
    FactoredKernel, KernelKind, SolverOptions, Targets, empirical_ntk, empirical_ntk_brute_force,
};
use apprentice::config::ExperimentConfig;
use apprentice::data::batch::mix_seed;
use apprentice::distill::train::{Silent, predict_logits};
use apprentice::experiment::data::{load_raw, prepare};
use apprentice::experiment::run::{RunOptions, run_experiment};
use apprentice::models::Network;

#[test]
#[ignore]
fn digits_probe() {
    let student_epochs: usize = std::env::var("PROBE_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let text = std::fs::read_to_string("../../configs/quickstart.toml").unwrap();
    let text = text
        .replace("seeds = [0, 1, 2]", "seeds = [0]")
        .replace("label_fractions = [1.0, 0.05]", "label_fractions = [1.0]")
        .replace("transfer = [\"all\", \"labelled\"]", "transfer = [\"all\"]")
        .replace(
            "[student.train]\nepochs = 60",
            &format!("[student.train]\nepochs = {student_epochs}"),
        );
    let config = ExperimentConfig::from_toml(&text, "probe").unwrap();
    let run_dir = std::path::PathBuf::from(format!("/tmp/ntkprobe/run-{student_epochs}"));
    std::fs::create_dir_all(&run_dir).unwrap();
    let device = ComputeDevice::cpu();
    let options = RunOptions {
        run_dir: run_dir.clone(),
        data_path: None,
        device: device.clone(),
        save_checkpoints: true,
    };
    let started = Instant::now();
    run_experiment(&config, &options, &mut Silent::default()).unwrap();
    println!("experiment: {:.1} s", started.elapsed().as_secs_f64());
    let raw = load_raw(&config.data, None).unwrap();
    let data = prepare(&raw, &config.data, 0).unwrap();
    let n = 1000.min(data.train.len());
    let train = data.train.subset(&(0..n).collect::<Vec<_>>(), "probe");
    let inputs = &train.features;
    let seed_dir = run_dir.join("seed-0");
    for entry in std::fs::read_dir(&seed_dir).unwrap() {
        println!("  {}", entry.unwrap().path().display());
    }
    let (teacher, _) = checkpoint::load(&seed_dir.join("teacher.safetensors"), &device).unwrap();
    let (student, _) = checkpoint::load(&seed_dir.join("scratch.safetensors"), &device).unwrap();
    let init = Network::new(
        &config.student.model,
        train.shape,
        10,
        mix_seed(0, 0x57d0_0001),
        &device.inference(),
    )
    .unwrap();
    let teacher_logits = predict_logits(&teacher, &train, &device);
    let teacher_accuracy = (0..n)
        .filter(|&i| {
            let row = &teacher_logits[i * 10..(i + 1) * 10];
            let best = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            best as u32 == train.labels[i]
        })
        .count() as f64
        / n as f64;
    println!(
        "n = {n}, student params = {}, teacher train accuracy on these = {teacher_accuracy:.3}",
        student.parameter_count()
    );

    // Timing on the trained student.
    let started = Instant::now();
    let kernel = empirical_ntk(&student, inputs, KernelKind::Trace).unwrap();
    println!(
        "fast trace kernel n={n}: {:.3} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let block = empirical_ntk(&student, &inputs[..200 * 64], KernelKind::Block).unwrap();
    println!(
        "fast block kernel n=200 (2000x2000): {:.3} s",
        started.elapsed().as_secs_f64()
    );
    let _ = block;
    for m in [100usize, 200] {
        let started = Instant::now();
        let slow =
            empirical_ntk_brute_force(&student, &inputs[..m * 64], KernelKind::Trace, &device)
                .unwrap();
        let t = started.elapsed().as_secs_f64();
        let fast = empirical_ntk(&student, &inputs[..m * 64], KernelKind::Trace).unwrap();
        println!(
            "brute force trace n={m}: {t:.3} s, relative difference to fast {:.2e}",
            fast.relative_difference(&slow).unwrap()
        );
    }
    if std::env::var("PROBE_FULL_BRUTE").is_ok() {
        let started = Instant::now();
        let slow = empirical_ntk_brute_force(&student, inputs, KernelKind::Trace, &device).unwrap();
        println!(
            "brute force trace n={n}: {:.3} s, rel diff {:.2e}",
            started.elapsed().as_secs_f64(),
            kernel.relative_difference(&slow).unwrap()
        );
    }

    if std::env::var("PROBE_GRAM").is_ok() {
        let x: Vec<f64> = (0..1000 * 12960).map(|i| ((i * 7919) % 1000) as f64 / 1000.0).collect();
        let started = Instant::now();
        let g = apprentice::complexity::linalg::gram(&x, 1000, 12960);
        println!("gram 1000x12960: {:.3} s ({})", started.elapsed().as_secs_f64(), g[5]);
    }
    if std::env::var("PROBE_CNN").is_ok() {
        let spec = apprentice::models::ModelSpec::Cnn(apprentice::models::CnnSpec {
            channels: vec![8, 16],
            kernel_size: 3,
            batch_norm: true,
            pool: true,
            hidden: vec![32],
            activation: Default::default(),
            dropout: 0.0,
        });
        let cnn = Network::new(&spec, train.shape, 10, 1, &device.inference()).unwrap();
        let host = apprentice::complexity::HostNetwork::from_network(&cnn).unwrap();
        println!(
            "cnn params {} (conv {})",
            cnn.parameter_count(),
            host.conv_parameter_count()
        );
        let started = Instant::now();
        let fast = empirical_ntk(&cnn, inputs, KernelKind::Trace).unwrap();
        println!(
            "cnn fast trace n={n}: {:.3} s",
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        let m = if std::env::var("PROBE_CNN_FULL").is_ok() { n } else { 100 };
        let slow = empirical_ntk_brute_force(&cnn, &inputs[..m * 64], KernelKind::Trace, &device)
            .unwrap();
        println!(
            "cnn brute force trace n={m}: {:.3} s",
            started.elapsed().as_secs_f64()
        );
        let fast100 = empirical_ntk(&cnn, &inputs[..m * 64], KernelKind::Trace).unwrap();
        println!(
            "cnn rel diff n=100: {:.2e}",
            fast100.relative_difference(&slow).unwrap()
        );
        let _ = fast;
    }
    let mut targets = vec![
        (
            "labels".to_string(),
            Targets::one_hot(&train.labels, 10).unwrap(),
        ),
        (
            "random labels".to_string(),
            Targets::random_labels(n, 10, 7).unwrap(),
        ),
    ];
    for t in [1.0, 2.0, 4.0, 8.0] {
        targets.push((
            format!("teacher T={t}"),
            Targets::softened(&teacher_logits, 10, t).unwrap(),
        ));
    }
    // The same targets centred on 1/C and rescaled to the centred labels' norm, to separate
    // the shape of the targets from their size.
    let norm = |y: &Targets| {
        y.values()
            .iter()
            .map(|v| (v - 0.1) * (v - 0.1))
            .sum::<f64>()
            .sqrt()
    };
    let reference = norm(&targets[0].1);
    let mut extra = Vec::new();
    for (name, y) in &targets {
        let scale = reference / norm(y);
        let values = y.values().iter().map(|v| (v - 0.1) * scale).collect();
        extra.push((
            format!("{name} (c+n)"),
            Targets::new(values, n, 10).unwrap(),
        ));
    }
    targets.extend(extra);
    for (name, network) in [
        ("student at init", &init),
        (&*format!("student after {student_epochs} epochs"), &student),
    ] {
        let started = Instant::now();
        let kernel = empirical_ntk(network, inputs, KernelKind::Trace).unwrap();
        let kernel_time = started.elapsed().as_secs_f64();
        for rho in [1e-6, 1e-4, 1e-2] {
            let started = Instant::now();
            let factored = FactoredKernel::new(
                &kernel,
                &SolverOptions {
                    relative_ridge: rho,
                    ..SolverOptions::default()
                },
            )
            .unwrap();
            let (cond, method) = factored.condition_number();
            println!(
                "{name}: kernel {kernel_time:.2} s, factor+eig {:.2} s, ρ={rho:e}, λ={:.3e}, cond={cond:.3e} ({method:?}), eig range {:?}, trace {:.4e}",
                started.elapsed().as_secs_f64(),
                factored.ridge(),
                factored.eigenvalue_range(),
                factored.kernel_trace()
            );
            for (target, y) in &targets {
                let c = factored.measure(y).unwrap();
                println!(
                    "    {target:>14}: complexity {:.4e}  adjusted {:.4}",
                    c.complexity, c.adjusted
                );
            }
        }
    }
}

//! The trace kernel against the full block kernel on the quickstart's digits student: the
//! supervision complexity of labels, random labels and the KD targets of every candidate
//! temperature with each kernel, and the temperature `temperature = "auto"` would pick with each
//! (the rule of `apprentice::experiment::tune`: least adjusted complexity per unit of margin).
//! Prints JSON; docs/results/trace-vs-block.md shows and commits its output.
//!
//! ```sh
//! cargo run --release -p apprentice --example trace_vs_block -- [CONFIG] [SEED] > out.json
//! ```

use apprentice::backend::ComputeDevice;
use apprentice::complexity::study::{
    NamedTargets, random_label_seed, stratified_subset, subset_seed,
};
use apprentice::complexity::{FactoredKernel, KernelKind, SolverOptions, empirical_ntk};
use apprentice::config::ExperimentConfig;
use apprentice::data::prepare::{load_raw, prepare};
use apprentice::distill::train::{Silent, predict_logits};
use apprentice::experiment::seed_teacher;
use apprentice::experiment::tune::{SUBSET, choose_temperature};
use apprentice::experiment::{RunOptions, student_init_seed};
use apprentice::models::Network;
use serde_json::json;

/// Mean over rows of the true class's target minus the largest other target (as the rule).
fn margin(values: &[f64], labels: &[u32], classes: usize) -> f64 {
    let total: f64 = values
        .chunks(classes)
        .zip(labels)
        .map(|(row, &label)| {
            let other = row
                .iter()
                .enumerate()
                .filter(|&(c, _)| c != label as usize)
                .fold(f64::NEG_INFINITY, |m, (_, &v)| m.max(v));
            row[label as usize] - other
        })
        .sum();
    total / labels.len() as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let config_path = args
        .get(1)
        .map_or("configs/quickstart.toml", String::as_str);
    let seed: u64 = args.get(2).map_or(Ok(0), |s| s.parse())?;
    let config = ExperimentConfig::from_toml(&std::fs::read_to_string(config_path)?, config_path)?;
    let device = ComputeDevice::cpu();
    let data = prepare(&load_raw(&config.data, None)?, &config.data, seed)?;
    let folder = tempfile::tempdir()?;
    let options = RunOptions {
        run_dir: folder.path().to_path_buf(),
        data_path: None,
        device: device.clone(),
        save_checkpoints: false,
    };
    let teacher = seed_teacher(&config, &options, &data, seed, &mut Silent::default())?;
    let auto = choose_temperature(&config, &data, &teacher, seed, &device)?;

    // The same inputs, teacher logits and student as the rule measures.
    let split = &data.validation;
    let classes = split.num_classes;
    let size = SUBSET.min(split.len());
    let subset = stratified_subset(&split.labels, classes, size, subset_seed(seed))?;
    let measured = split.subset(&subset, "auto-temperature inputs");
    let logits = predict_logits(&teacher, &measured, &device);
    let student = Network::new(
        &config.student.model,
        split.shape,
        classes,
        student_init_seed(seed),
        &device.inference(),
    )?;
    let labels = &measured.labels;
    let mut kernels = Vec::new();
    for kind in [KernelKind::Trace, KernelKind::Block] {
        let started = std::time::Instant::now();
        let kernel = empirical_ntk(&student, &measured.features, kind)?;
        let options = SolverOptions {
            exact_condition_limit: 0,
            ..SolverOptions::default()
        };
        let factored = FactoredKernel::new(&kernel, &options)?;
        let mut targets = vec![
            NamedTargets::labels(labels, classes)?,
            NamedTargets::random_labels(labels.len(), classes, random_label_seed(seed))?,
        ];
        for &t in &config.distill.auto_temperatures {
            targets.push(NamedTargets::kd_mixture(
                labels,
                &logits,
                classes,
                config.distill.alpha,
                t,
            )?);
        }
        let mut rows = Vec::new();
        let mut best: Option<(f64, f64)> = None;
        for named in &targets {
            let c = factored.measure(&named.targets)?;
            let m = margin(named.targets.values(), labels, classes);
            rows.push(json!({
                "targets": named.name,
                "complexity": c.complexity,
                "adjusted": c.adjusted,
                "margin": m,
                "score": c.adjusted / m,
            }));
            if named.name.starts_with("kd") {
                let t = config.distill.auto_temperatures[rows.len() - 3];
                let score = c.adjusted / m;
                if best.is_none_or(|(s, _)| score < s) {
                    best = Some((score, t));
                }
            }
        }
        kernels.push(json!({
            "kind": format!("{kind:?}").to_lowercase(),
            "dim": kernel.dim(),
            "trace": factored.kernel_trace(),
            "ridge": factored.ridge(),
            "condition_number_cholesky_bound": factored.condition_number().0,
            "seconds": started.elapsed().as_secs_f64(),
            "targets": rows,
            "chosen_temperature": best.map(|(_, t)| t),
        }));
    }
    let report = json!({
        "config": config_path,
        "seed": seed,
        "inputs": size,
        "split": split.name,
        "student": config.student.model.describe(split.shape.len(), classes),
        "alpha": config.distill.alpha,
        "auto_temperatures": config.distill.auto_temperatures,
        "auto_choice": auto.chosen,
        "auto_scores": auto.candidates.iter().map(|c| c.score).collect::<Vec<_>>(),
        "kernels": kernels,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

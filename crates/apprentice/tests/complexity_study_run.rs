//! The study as a library call (`experiment::complexity_study::run_study`): on the quickstart
//! it measures the config's student at the weights a run of the seed starts from, on the
//! seed's stratified subset normalised as the run normalises it, writes a report that reads
//! back as returned, and reports a subset larger than the split as a typed error.

use apprentice::backend::ComputeDevice;
use apprentice::complexity::study::report::StudyReport;
use apprentice::complexity::study::{
    NamedTargets, measure_with_kernel, stratified_subset, subset_seed,
};
use apprentice::complexity::{KernelKind, SolverOptions, empirical_ntk};
use apprentice::config::ExperimentConfig;
use apprentice::data::prepare::{load_raw, prepare};
use apprentice::distill::train::Silent;
use apprentice::experiment::complexity_study::{
    StudyError, StudyRequest, TargetList, TargetSpec, run_study,
};
use apprentice::experiment::student_init_seed;
use apprentice::models::Network;

const QUICKSTART: &str = include_str!("../../../configs/quickstart.toml");

fn quickstart() -> ExperimentConfig {
    ExperimentConfig::from_toml(QUICKSTART, "configs/quickstart.toml").unwrap()
}

fn request<'a>(
    config: &'a ExperimentConfig,
    targets: &'a [TargetSpec],
    subset: usize,
    out: &'a std::path::Path,
) -> StudyRequest<'a> {
    StudyRequest {
        config,
        seed: 1,
        subset,
        targets,
        teacher: None,
        run: None,
        student: None,
        kernel: KernelKind::Trace,
        ridge: SolverOptions::default().relative_ridge,
        out,
        dump_kernel: None,
    }
}

#[test]
fn the_study_measures_the_runs_initial_student_on_the_seeds_subset() {
    let config = quickstart();
    let folder = tempfile::tempdir().unwrap();
    let targets: TargetList = "labels,random,uniform".parse().unwrap();
    let device = ComputeDevice::cpu();
    let mut notes = Vec::new();
    let outcome = run_study(
        &request(&config, &targets.0, 60, folder.path()),
        &device,
        &mut Silent::default(),
        &mut |note| notes.push(note.to_string()),
    )
    .unwrap();
    assert!(notes.is_empty(), "no teacher is needed: {notes:?}");
    let report = &outcome.report;
    assert!(report.teacher.is_none());
    assert_eq!(report.targets.len(), 3);
    let written = std::fs::read_to_string(&outcome.json).unwrap();
    assert_eq!(
        &StudyReport::from_json(&written, "complexity.json").unwrap(),
        report
    );
    assert!(std::fs::metadata(&outcome.png).unwrap().len() > 0);

    // The same measure from the pieces: seed 1's split as a run prepares it, its subset, the
    // student at the run's initial weights, the labels' complexity with its kernel.
    let raw = load_raw(&config.data, None).unwrap();
    let data = prepare(&raw, &config.data, 1).unwrap();
    let indices = stratified_subset(&data.train.labels, 10, 60, subset_seed(1)).unwrap();
    assert_eq!(report.data.subset_indices, indices);
    let subset = data.train.subset(&indices, "subset");
    let student = Network::new(
        &config.student.model,
        subset.shape,
        10,
        student_init_seed(1),
        &device.inference(),
    )
    .unwrap();
    let kernel = empirical_ntk(&student, &subset.features, KernelKind::Trace).unwrap();
    let labels = NamedTargets::labels(&subset.labels, 10).unwrap();
    let expected = measure_with_kernel(&kernel, &[labels], &SolverOptions::default()).unwrap();
    assert_eq!(report.targets[0].measured, expected[0]);
    assert!(report.targets[1].measured.complexity != expected[0].complexity);
}

#[test]
fn a_subset_larger_than_the_split_is_a_typed_error() {
    let config = quickstart();
    let folder = tempfile::tempdir().unwrap();
    let targets = [TargetSpec::Labels];
    let error = run_study(
        &request(&config, &targets, 5000, folder.path()),
        &ComputeDevice::cpu(),
        &mut Silent::default(),
        &mut |_| {},
    )
    .err()
    .expect("5000 inputs from the digits' training split");
    assert!(
        matches!(
            error,
            StudyError::Subset {
                requested: 5000,
                ..
            }
        ),
        "{error}"
    );
    assert!(!folder.path().join("complexity.json").exists());
}

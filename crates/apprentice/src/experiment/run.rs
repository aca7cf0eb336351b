//! One experiment: per seed, a teacher, the student from scratch and the same student trained
//! by every configured method, for every configured label fraction; then metrics aggregated
//! over seeds and written to `results.json`.

use super::job::SeedContext;
pub use super::options::RunOptions;
use super::probe::{ProbeSet, complexity_sections};
use super::seeds::{fraction_suffix, label_subset_seed, student_init_seed, student_order_seed};
use super::students::{FractionRun, StudentCommon};
use super::teacher::{ExtraTeachers, SeedTeacher, Split, teacher_for_seed};
use super::teacher_logits::{AUGMENTED_CACHE, TeacherCacheUse, teacher_logits_on_train};
use super::tune::{TemperatureChoice, choose_temperature_with};
use crate::complexity::study;
use crate::config::{ExperimentConfig, TemperatureSetting, Transfer};
use crate::data::prepare::{DataReport, PreparedData, RawData, load_raw_with_report, prepare};
use crate::data::split::stratified_subset_indices;
use crate::distill::method::SchemeError;
use crate::distill::record::{Role, Row, StudentRecord};
use crate::distill::train::{Supervision, TrainObserver, TrainingSet, predict_logits};
use crate::error::{Error, Result};
use crate::layout::RunLayout;
use crate::report::results::{DataSummary, Results, SURPASSED_TEACHER_KEY};
use crate::task::{ResultsFile, SeedTable, Task, envelope, model_result, now_unix_s, run_task};

/// Key of the temperatures `"auto"` chose, per seed, in `results.json`.
pub const TEMPERATURE_CHOICE_KEY: &str = "temperature_choice";
/// Key of what each seed took from `teacher_cache`, in `results.json` (absent without one).
pub const TEACHER_CACHE_KEY: &str = "teacher_cache";
/// Key of the class names (label order) in `results.json`, when the data names its classes.
pub const CLASS_NAMES_KEY: &str = "class_names";
/// Key of the files left out as unreadable images in `results.json` (absent when none were).
pub const SKIPPED_FILES_KEY: &str = "skipped_files";

/// Runs the whole experiment and writes `results.json` into the run folder.
pub fn run_experiment(
    config: &ExperimentConfig,
    options: &RunOptions,
    observer: &mut dyn TrainObserver,
) -> Result<Results> {
    let task = ImageTask::open(config, options, observer)?;
    Ok(run_task(task, observer)?.results)
}

/// Image classification as a [`Task`]: per seed, the data prepared for the seed, its teacher,
/// the student from scratch and every configured method at every label fraction.
pub struct ImageTask<'a> {
    config: &'a ExperimentConfig,
    options: &'a RunOptions,
    raw: RawData,
    report: DataReport,
    data: Option<DataSummary>,
    choices: Vec<TemperatureChoice>,
    cache_uses: Vec<TeacherCacheUse>,
}

impl<'a> ImageTask<'a> {
    /// Reads the data and checks the teacher cache, before any training.
    pub fn open(
        config: &'a ExperimentConfig,
        options: &'a RunOptions,
        observer: &mut dyn TrainObserver,
    ) -> Result<Self> {
        if let Some(folder) = &config.teacher_cache {
            if !config.augment.is_identity() {
                observer.warn(&format!(
                    "teacher_cache {}: not used: {AUGMENTED_CACHE}; the live teacher teaches instead",
                    folder.display()
                ));
            } else if !folder.is_dir() {
                // Fails before any training rather than after the first teacher.
                return Err(Error::Invalid(format!(
                    "teacher_cache: {}: no such folder; write the cache with `apprentice cache-teacher`",
                    folder.display()
                )));
            }
        }
        let (raw, report) = load_raw_with_report(&config.data, options.data_path.as_deref())?;
        if !report.skipped.is_empty() {
            observer.warn(&format!(
                "data: skipped {} unreadable file(s), the first {}: {}",
                report.skipped.len(),
                report.skipped[0].path.display(),
                report.skipped[0].reason
            ));
        }
        Ok(Self {
            config,
            options,
            raw,
            report,
            data: None,
            choices: Vec::new(),
            cache_uses: Vec::new(),
        })
    }
}

impl Task for ImageTask<'_> {
    type Record = StudentRecord;
    type Output = ResultsFile;
    type Error = Error;

    fn seeds(&self) -> Vec<u64> {
        self.config.seeds.clone()
    }

    fn run_seed(&mut self, seed: u64, observer: &mut dyn TrainObserver) -> Result<Vec<Row>> {
        let mut data = prepare(&self.raw, &self.config.data, seed)?;
        data.class_names = self.report.class_names.clone();
        self.data.get_or_insert_with(|| DataSummary {
            name: self.raw.name(),
            num_classes: data.train.num_classes,
            train: data.train.len(),
            validation: data.validation.len(),
            test: data.test.len(),
            sample_shape: [
                data.train.shape.channels,
                data.train.shape.height,
                data.train.shape.width,
            ],
        });
        let (rows, choice, cache_use) = run_seed(self.config, self.options, &data, seed, observer)?;
        self.choices.extend(choice);
        self.cache_uses.extend(cache_use);
        Ok(rows)
    }

    /// Summarises every model and writes `results.json` with the run's sections.
    fn finish(self, table: SeedTable<StudentRecord>) -> Result<ResultsFile> {
        let config =
            serde_json::to_value(self.config).map_err(|e| Error::Invalid(e.to_string()))?;
        let results = envelope(
            &self.config.name,
            &self.config.seeds,
            self.data.expect("at least one seed ran"),
            table.models().iter().map(model_result).collect(),
            config,
            now_unix_s(),
        );
        let surpassed = results.surpassed_teacher();
        let mut file = ResultsFile::new(results);
        file.curve_sections = complexity_sections(table.models());
        if !self.report.class_names.is_empty() {
            file.insert(CLASS_NAMES_KEY, &self.report.class_names)?;
        }
        if !self.report.skipped.is_empty() {
            let skipped: Vec<_> = self
                .report
                .skipped
                .iter()
                .map(|file| serde_json::json!({"path": file.path, "reason": file.reason}))
                .collect();
            file.insert(SKIPPED_FILES_KEY, &skipped)?;
        }
        if !self.choices.is_empty() {
            file.insert(TEMPERATURE_CHOICE_KEY, &self.choices)?;
        }
        if !self.cache_uses.is_empty() {
            file.insert(TEACHER_CACHE_KEY, &self.cache_uses)?;
        }
        if !surpassed.is_empty() {
            file.insert(SURPASSED_TEACHER_KEY, &surpassed)?;
        }
        file.write(&RunLayout::new(&self.options.run_dir).results())?;
        Ok(file)
    }
}

/// What one seed produced: every model's record in table order, the temperature `"auto"`
/// chose for it, and what it took from `teacher_cache`.
type SeedOutcome = (Vec<Row>, Option<TemperatureChoice>, Option<TeacherCacheUse>);

fn run_seed(
    config: &ExperimentConfig,
    options: &RunOptions,
    data: &PreparedData,
    seed: u64,
    observer: &mut dyn TrainObserver,
) -> Result<SeedOutcome> {
    let device = &options.device;
    let classes = data.train.num_classes;
    let context = SeedContext::new(config, options, data, seed)?;
    let mut out = Vec::new();
    let snapshots = config.distill.teacher_snapshots_every();
    let (teacher, teacher_record) = teacher_for_seed(&context, snapshots, observer)?;
    let teacher_digest = teacher.digest()?;
    let teacher_test_logits = teacher.logits(data, Split::Test, options);
    out.push(("teacher".to_string(), teacher_record));

    // The temperature is a number before any method is built: for `"auto"`, the one chosen
    // for this seed.
    let (temperature, choice) =
        match config.distill.temperature {
            TemperatureSetting::Fixed(value) => (value, None),
            TemperatureSetting::Auto => {
                let choice =
                    choose_temperature_with(config, data, seed, device, &|measured, rows| {
                        match &teacher {
                            SeedTeacher::Network(network) => {
                                predict_logits(network, measured, device)
                            }
                            SeedTeacher::Frozen(_) => {
                                let split = if data.validation.is_empty() {
                                    Split::Train
                                } else {
                                    Split::Validation
                                };
                                let all = teacher.logits(data, split, options);
                                rows.iter()
                                    .flat_map(|&row| &all[row * classes..(row + 1) * classes])
                                    .copied()
                                    .collect()
                            }
                        }
                    })?;
                (choice.chosen, Some(choice))
            }
        };
    // The students' checkpoint fingerprints record the temperature they were trained with.
    let resolved;
    let config = match &choice {
        Some(_) => {
            let mut chosen = config.clone();
            chosen.distill.temperature = TemperatureSetting::Fixed(temperature);
            resolved = chosen;
            &resolved
        }
        None => config,
    };
    let context = SeedContext { config, ..context };
    let methods = config.distill.build_all(temperature);

    // Cached teacher logits are exact only when the student sees un-augmented inputs.
    let (teacher_train_logits, cache_use) = teacher_logits_on_train(&context, &teacher, observer)?;
    let probe = match &teacher_train_logits {
        Some(logits) => ProbeSet::new(config, data, seed, logits, temperature)?,
        None => {
            let logits = teacher.logits(data, Split::Train, options);
            ProbeSet::new(config, data, seed, &logits, temperature)?
        }
    };
    let teacher_target = format!("teacher T={}", study::format_number(temperature));
    let mut extra_teachers = ExtraTeachers::default();
    let mut student_rows = Vec::new();

    for &fraction in &config.data.label_fractions {
        let suffix = fraction_suffix(fraction);
        let subset: Vec<usize> = if fraction < 1.0 {
            stratified_subset_indices(
                &data.train.labels,
                classes,
                fraction,
                label_subset_seed(seed),
            )
        } else {
            (0..data.train.len()).collect()
        };
        let labelled_data = if fraction < 1.0 {
            data.train
                .subset(&subset, format!("{}/labelled{suffix}", data.train.name))
        } else {
            data.train.clone()
        };
        let mut mask = vec![false; data.train.len()];
        for &index in &subset {
            mask[index] = true;
        }
        let common = StudentCommon {
            model_config: &config.student,
            label_fraction: fraction,
            init_seed: student_init_seed(seed),
            order_seed: student_order_seed(seed),
            teacher_digest: &teacher_digest,
            teacher_test_logits: &teacher_test_logits,
            probe: probe.as_ref(),
            teacher_target: teacher_target.clone(),
        };
        // Every student run draws as many samples per epoch as a pass over all training inputs,
        // so scratch and distilled students get the same number of steps.
        let name = format!("scratch{suffix}");
        let (scratch, record) = context.run(
            common.job(
                name.clone(),
                Role::Scratch,
                "ce",
                None,
                TrainingSet {
                    data: &labelled_data,
                    labelled: None,
                    samples_per_epoch: data.train.len(),
                    validation: &data.validation,
                },
                Supervision::Labels,
            ),
            observer,
        )?;
        student_rows.push((name, record));

        let transfers: Vec<Transfer> = if fraction < 1.0 {
            config.distill.transfer.clone()
        } else {
            vec![Transfer::All]
        };
        for method in &methods {
            for &transfer in &transfers {
                let mut students = FractionRun {
                    context: &context,
                    common: &common,
                    teacher: &teacher,
                    teacher_train_logits: teacher_train_logits.as_deref(),
                    fraction,
                    transfer,
                    subset: &subset,
                    mask: &mask,
                    labelled_data: &labelled_data,
                    scratch: &scratch,
                    extra_teachers: &mut extra_teachers,
                    observer: &mut *observer,
                };
                let rows = method.run(&mut students).map_err(runner_error)?;
                student_rows.extend(rows);
            }
        }
    }
    // Extra teachers are listed with the teacher, before the students.
    out.extend(extra_teachers.records);
    out.extend(student_rows);
    Ok((out, choice, cache_use))
}

/// The runner's own error back from inside a method, or the method's.
fn runner_error(error: SchemeError) -> Error {
    match error {
        SchemeError::Runner(inner) => match inner.downcast::<Error>() {
            Ok(error) => *error,
            Err(other) => Error::Invalid(other.to_string()),
        },
        method => Error::Invalid(method.to_string()),
    }
}

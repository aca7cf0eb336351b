//! Continual learning by distillation: Learning without Forgetting (Li & Hoiem, 2016).
//!
//! The data arrives in stages (new classes, or the same classes with shifted inputs). The student
//! has an output for every class of every stage from the start. Stage 1 trains with
//! cross-entropy; each later stage starts from the previous stage's model and trains on the new
//! data, in one of these variants:
//! - `finetune`: cross-entropy on the new labels only, the forgetting baseline;
//! - `lwf`: plus λ·T²·KL between the previous model's softened outputs on the old classes and the
//!   current model's, on the new inputs ([`crate::distill::loss::lwf_loss`]);
//! - `finetune+replay-R`, `lwf+replay-R`: the same, with a seeded stratified buffer of R training
//!   samples per class of each earlier stage trained alongside;
//! - `joint`: every earlier stage's training data replayed in full, the reference.
//!
//! Per seed, every variant shares the stage-1 model (trained once), its initial weights and each
//! stage's data order seed, so the variants differ only in what they train on.

pub mod config;
pub mod results;
pub mod stages;

use std::path::PathBuf;

pub use config::{ContinualConfig, LwfConfig, StageConfig};
pub use results::{CONTINUAL_SCHEMA_VERSION, ContinualResults, continual_table};

use self::results::{StageRecord, StageSummary, VariantResult, summarise_stage};
use self::stages::{StageData, accuracy_among, concatenate, replay_indices, stage_data};
use crate::backend::ComputeDevice;
use crate::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CheckpointMeta};
use crate::data::Dataset;
use crate::data::augment::Augmentation;
use crate::data::batch::mix_seed;
use crate::data::prepare::{PreparedData, RawData, load_raw, prepare};
use crate::distill::loss::LwfSettings;
use crate::distill::train::{
    Supervision, TeacherSignal, TrainObserver, TrainOutcome, TrainSettings, TrainingSet,
    predict_logits, train,
};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::layout::{RunLayout, SeedLayout, file_stem};
use crate::models::Network;
use crate::report::results::DataSummary;
use crate::task::{SeedTable, Task, now_unix_s, run_task};

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct ContinualOptions {
    /// The run folder (created by the caller); `continual.json` and checkpoints go there.
    pub run_dir: PathBuf,
    /// Overrides `data.path`.
    pub data_path: Option<PathBuf>,
    /// Compute device.
    pub device: ComputeDevice,
    /// Save every stage's model as `seed-N/stage-K-<variant>.safetensors`.
    pub save_checkpoints: bool,
}

/// One way of learning the stages after the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Name in tables and files.
    pub name: String,
    /// With the LwF distillation term.
    pub distillation: bool,
    /// Samples replayed per class of each earlier stage.
    pub replay_per_class: usize,
    /// Replay every earlier training sample instead.
    pub joint: bool,
}

/// The variants a config asks for: `finetune` and `lwf` for each replay size, then `joint`.
pub fn variants(config: &ContinualConfig) -> Vec<Variant> {
    let mut out = Vec::new();
    for &replay in &config.lwf.replay {
        for distillation in [false, true] {
            let base = if distillation { "lwf" } else { "finetune" };
            out.push(Variant {
                name: if replay == 0 {
                    base.to_string()
                } else {
                    format!("{base}+replay-{replay}")
                },
                distillation,
                replay_per_class: replay,
                joint: false,
            });
        }
    }
    if config.joint {
        out.push(Variant {
            name: "joint".into(),
            distillation: false,
            replay_per_class: 0,
            joint: true,
        });
    }
    out
}

/// The seed of the student's initial weights in the continual run of `seed`.
pub fn continual_init_seed(seed: u64) -> u64 {
    mix_seed(seed, 0xc047_0001)
}

/// The seed of the data order and dropout of stage `stage` (0-based) in the run of `seed`,
/// shared by every variant.
pub fn continual_order_seed(seed: u64, stage: usize) -> u64 {
    mix_seed(mix_seed(seed, 0xc047_0002), stage as u64)
}

/// The seed of the replay buffers in the run of `seed`, shared by every replay variant.
pub fn continual_replay_seed(seed: u64) -> u64 {
    mix_seed(seed, 0xc047_0003)
}

/// Runs every seed, variant and stage, and writes `continual.json` into the run folder.
pub fn run_continual(
    config: &ContinualConfig,
    options: &ContinualOptions,
    observer: &mut dyn TrainObserver,
) -> Result<ContinualResults> {
    let task = ContinualTask {
        config,
        options,
        raw: load_raw(&config.data, options.data_path.as_deref())?,
        variants: variants(config),
        first: None,
    };
    run_task(task, observer)
}

/// Continual learning as a [`Task`]: per seed, stage 1 trained once, then every variant's
/// later stages; a model of the table is a variant, its record the history of its stages.
pub struct ContinualTask<'a> {
    config: &'a ContinualConfig,
    options: &'a ContinualOptions,
    raw: RawData,
    variants: Vec<Variant>,
    /// The data, stages, architecture and parameters of the first seed, for the summary.
    first: Option<(DataSummary, Vec<StageSummary>, String, usize)>,
}

impl Task for ContinualTask<'_> {
    type Record = Vec<StageRecord>;
    type Output = ContinualResults;
    type Error = Error;

    fn seeds(&self) -> Vec<u64> {
        self.config.seeds.clone()
    }

    fn run_seed(
        &mut self,
        seed: u64,
        observer: &mut dyn TrainObserver,
    ) -> Result<Vec<(String, Vec<StageRecord>)>> {
        let (config, options) = (self.config, self.options);
        let data = prepare(&self.raw, &config.data, seed)?;
        let stages = stage_data(&data, &config.stages).map_err(Error::Invalid)?;
        let context = SeedRun {
            config,
            options,
            data: &data,
            stages: &stages,
            seed,
            fill: data.normalizer.normalized_zero(),
            seed_dir: RunLayout::new(&options.run_dir).seed(seed),
        };
        if options.save_checkpoints {
            std::fs::create_dir_all(context.seed_dir.dir()).map_err(|source| Error::Io {
                path: context.seed_dir.dir().to_path_buf(),
                source,
            })?;
        }
        let (first_model, first_record) = context.first_stage(observer)?;
        let mut rows = Vec::with_capacity(self.variants.len());
        for variant in &self.variants {
            let history = context.later_stages(variant, &first_model, &first_record, observer)?;
            rows.push((variant.name.clone(), history));
        }
        let raw = &self.raw;
        self.first.get_or_insert_with(|| {
            let summary = DataSummary {
                name: raw.name(),
                num_classes: data.train.num_classes,
                train: data.train.len(),
                validation: data.validation.len(),
                test: data.test.len(),
                sample_shape: [
                    data.train.shape.channels,
                    data.train.shape.height,
                    data.train.shape.width,
                ],
            };
            let stage_summaries = config
                .stages
                .iter()
                .zip(&stages)
                .enumerate()
                .map(|(index, (stage, part))| StageSummary {
                    stage: index + 1,
                    classes: stage.classes.clone(),
                    permute_features: stage.permute_features,
                    train: part.train.len(),
                    validation: part.validation.len(),
                    test: part.test.len(),
                })
                .collect();
            let architecture = config
                .student
                .model
                .describe(data.train.shape.len(), data.train.num_classes);
            (
                summary,
                stage_summaries,
                architecture,
                first_model.parameter_count(),
            )
        });
        Ok(rows)
    }

    /// Summarises every variant's stages over the seeds and writes `continual.json`.
    fn finish(self, table: SeedTable<Vec<StageRecord>>) -> Result<ContinualResults> {
        let config = self.config;
        let (data, stage_summaries, architecture, params) =
            self.first.expect("at least one seed ran");
        let variant_results = self
            .variants
            .iter()
            .zip(table.models())
            .map(|(variant, model)| {
                let slices: Vec<&[StageRecord]> = model.records().map(Vec::as_slice).collect();
                VariantResult {
                    name: variant.name.clone(),
                    distillation: variant.distillation,
                    replay_per_class: variant.replay_per_class,
                    joint: variant.joint,
                    stages: (1..=config.stages.len())
                        .map(|stage| summarise_stage(&slices, stage))
                        .collect(),
                }
            })
            .collect();
        let results = ContinualResults {
            schema_version: CONTINUAL_SCHEMA_VERSION,
            experiment: config.name.clone(),
            created_unix_s: now_unix_s(),
            apprentice_version: env!("CARGO_PKG_VERSION").to_string(),
            seeds: config.seeds.clone(),
            data,
            architecture,
            params,
            stages: stage_summaries,
            variants: variant_results,
            config: serde_json::to_value(config).map_err(|e| Error::Invalid(e.to_string()))?,
        };
        let path = RunLayout::new(&self.options.run_dir).continual_results();
        write_atomic(&path, results.to_json_pretty().as_bytes())
            .map_err(|source| Error::Io { path, source })?;
        Ok(results)
    }
}

/// What one seed's stages share.
struct SeedRun<'a> {
    config: &'a ContinualConfig,
    options: &'a ContinualOptions,
    data: &'a PreparedData,
    stages: &'a [StageData],
    seed: u64,
    fill: Vec<f32>,
    seed_dir: SeedLayout,
}

impl SeedRun<'_> {
    /// Trains stage 1 from the seed's initial weights and scores it.
    fn first_stage(&self, observer: &mut dyn TrainObserver) -> Result<(Network, StageRecord)> {
        let network = self.fresh_network(continual_init_seed(self.seed))?;
        let stage = &self.stages[0];
        let (model, record) = self.train_stage(
            0,
            "stage 1",
            network,
            &stage.train,
            &Supervision::Labels,
            observer,
        )?;
        self.save(&model, "stage-1")?;
        Ok((model, record))
    }

    /// Trains stages 2, 3, ... of one variant, each from the previous stage's model; the history
    /// starts with the shared stage-1 record.
    fn later_stages(
        &self,
        variant: &Variant,
        first_model: &Network,
        first_record: &StageRecord,
        observer: &mut dyn TrainObserver,
    ) -> Result<Vec<StageRecord>> {
        let mut history = vec![first_record.clone()];
        let mut previous = first_model.clone();
        for index in 1..self.stages.len() {
            let train_data = self.training_data(variant, index);
            let old_classes = self.classes_before(index);
            let previous_logits = variant
                .distillation
                .then(|| predict_logits(&previous, &train_data, &self.options.device));
            let supervision = match &previous_logits {
                Some(logits) => Supervision::Distill {
                    teacher: TeacherSignal::Cached(logits),
                    objective: std::sync::Arc::new(LwfSettings {
                        temperature: self.config.lwf.temperature,
                        weight: self.config.lwf.weight,
                        old_classes,
                    }),
                },
                None => Supervision::Labels,
            };
            let network = self.continue_from(&previous)?;
            let title = format!("stage {} · {}", index + 1, variant.name);
            let (model, record) =
                self.train_stage(index, &title, network, &train_data, &supervision, observer)?;
            self.save(
                &model,
                &format!("stage-{}-{}", index + 1, file_stem(&variant.name)),
            )?;
            history.push(record);
            previous = model;
        }
        Ok(history)
    }

    /// The new stage's training samples followed by the variant's replayed ones.
    fn training_data(&self, variant: &Variant, index: usize) -> Dataset {
        let new = &self.stages[index].train;
        if !variant.joint && variant.replay_per_class == 0 {
            return new.clone();
        }
        let replayed: Vec<Dataset> = self.stages[..index]
            .iter()
            .enumerate()
            .map(|(earlier, stage)| {
                if variant.joint {
                    stage.train.clone()
                } else {
                    let indices = replay_indices(
                        &stage.train,
                        variant.replay_per_class,
                        continual_replay_seed(self.seed),
                        earlier,
                    );
                    stage.train.subset(&indices, "replay")
                }
            })
            .collect();
        let mut parts = vec![new];
        parts.extend(replayed.iter());
        concatenate(&parts, format!("{}+replay", new.name))
    }

    /// The classes of the stages before `index`, sorted and without repeats.
    fn classes_before(&self, index: usize) -> Vec<usize> {
        let mut classes: Vec<usize> = self.config.stages[..index]
            .iter()
            .flat_map(|s| s.classes.iter().copied())
            .collect();
        classes.sort_unstable();
        classes.dedup();
        classes
    }

    fn fresh_network(&self, init_seed: u64) -> Result<Network> {
        Network::new(
            &self.config.student.model,
            self.data.train.shape,
            self.data.train.num_classes,
            init_seed,
            &self.options.device.training(),
        )
        .map_err(|message| Error::Invalid(format!("student.model: {message}")))
    }

    /// A trainable copy of an inference-mode model.
    fn continue_from(&self, model: &Network) -> Result<Network> {
        let weights = checkpoint::weights_to_bytes(model).map_err(Error::Invalid)?;
        checkpoint::load_weights(self.fresh_network(0)?, weights).map_err(Error::Invalid)
    }

    /// Trains on stage `index`'s data set `train_data` and scores the result on every group so
    /// far.
    fn train_stage(
        &self,
        index: usize,
        title: &str,
        network: Network,
        train_data: &Dataset,
        supervision: &Supervision<'_>,
        observer: &mut dyn TrainObserver,
    ) -> Result<(Network, StageRecord)> {
        let set = TrainingSet {
            data: train_data,
            labelled: None,
            samples_per_epoch: train_data.len(),
            validation: &self.stages[index].validation,
        };
        let settings = TrainSettings {
            train: &self.config.student.train,
            optimizer: &self.config.student.optimizer,
            augmentation: Augmentation::default(),
            fill: &self.fill,
            seed: continual_order_seed(self.seed, index),
            on_nan: self.config.on_nan,
            checkpointing: None,
        };
        let outcome = train(
            &format!("seed {} · {title}", self.seed),
            network,
            &set,
            supervision,
            &settings,
            &self.options.device,
            observer,
        )?;
        let record = self.score(&outcome, index, train_data.len());
        Ok((outcome.model, record))
    }

    /// Test accuracies of the trained model after stage `index` on the groups of stages 0 to
    /// `index`.
    fn score(&self, outcome: &TrainOutcome, index: usize, train_samples: usize) -> StageRecord {
        let model = &outcome.model;
        let classes = self.data.train.num_classes;
        let seen = self.classes_before(index + 1);
        let mut groups = Vec::new();
        let mut groups_task_aware = Vec::new();
        let mut group_sizes = Vec::new();
        for (stage, config) in self.stages[..=index].iter().zip(&self.config.stages) {
            let logits = predict_logits(model, &stage.test, &self.options.device);
            let mut own = config.classes.clone();
            own.sort_unstable();
            groups.push(accuracy_among(&logits, classes, &stage.test.labels, &seen));
            groups_task_aware.push(accuracy_among(&logits, classes, &stage.test.labels, &own));
            group_sizes.push(stage.test.len());
        }
        StageRecord {
            train_samples,
            groups,
            group_sizes,
            groups_task_aware,
            validation_accuracy: outcome.final_validation_accuracy,
            wall_time_s: outcome.wall_time_s,
        }
    }

    fn save(&self, model: &Network, name: &str) -> Result<()> {
        if !self.options.save_checkpoints {
            return Ok(());
        }
        let meta = CheckpointMeta {
            format_version: CHECKPOINT_FORMAT_VERSION,
            spec: self.config.student.model.clone(),
            input_shape: self.data.train.shape,
            num_classes: self.data.train.num_classes,
            normalizer: self.data.normalizer.clone(),
            name: name.to_string(),
            seed: self.seed,
            data: self.data.train.name.clone(),
            data_config: self.config.data.clone(),
            class_names: Vec::new(),
        };
        checkpoint::save(&self.seed_dir.checkpoint(name), model, &meta)?;
        Ok(())
    }
}

//! The teacher of one seed of a text run: a head trained on the frozen encoder's sentence
//! embeddings, the encoder fine-tuned on the task (saved as a Hugging Face folder), or a
//! `BertForSequenceClassification` folder fine-tuned elsewhere; read back from the run
//! folder when an earlier attempt of the run finished it.

use super::error::TextError;
use super::finetune::FinetuneObjective;
use super::seed_context::{RecordParts, RunContext, SeedSplit};
use super::transformer_config::TeacherKind;
use super::transformer_run::{
    TrainingHistory, TransformerData, TransformerModel, teacher_to_finetune, train_transformer,
};
use crate::data::SampleShape;
use crate::data::augment::Augmentation;
use crate::distill::record::{Curve, Role, StudentRecord};
use crate::distill::train::{
    OnNan, Supervision, TrainObserver, TrainSettings, TrainingSet, predict_logits, train,
};
use crate::eval::metrics::evaluate;
use crate::models::{Activation, MlpSpec, ModelSpec, Network};

/// The teacher's name in the results and the run folder.
pub const TEACHER: &str = "teacher";

/// The model that teaches.
pub enum TeacherModel {
    /// An MLP head on the frozen encoder's sentence embeddings.
    Head(Network),
    /// A BERT classifier.
    Transformer(Box<TransformerModel>),
}

/// A seed's teacher, its logits on the training and test texts, and its record.
pub struct SeedTeacher {
    /// The model.
    pub model: TeacherModel,
    /// `train × classes` logits, in the order of the seed's training texts.
    pub train_logits: Vec<f32>,
    /// `unlabelled × classes` logits, in the order of the seed's unlabelled texts (empty
    /// without them).
    pub unlabelled_logits: Vec<f32>,
    /// `test × classes` logits.
    pub test_logits: Vec<f32>,
    /// Its record.
    pub record: StudentRecord,
}

/// The head's architecture.
pub fn head_spec(context: &RunContext<'_>) -> ModelSpec {
    ModelSpec::Mlp(MlpSpec {
        hidden: context.config.teacher.hidden.clone(),
        activation: Activation::Relu,
        dropout: context.config.teacher.dropout,
    })
}

/// The encoder folder's name, for architectures (`all-MiniLM-L6-v2`).
pub fn model_name(context: &RunContext<'_>) -> String {
    context
        .encoder
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "encoder".to_string())
}

/// Trains (or reads back) the teacher of `split`. `folder` is the loaded teacher of
/// `teacher.kind = "folder"`.
pub fn seed_teacher(
    context: &RunContext<'_>,
    split: &SeedSplit,
    folder: Option<&TransformerModel>,
    observer: &mut dyn TrainObserver,
    note: &mut dyn FnMut(&str),
) -> Result<SeedTeacher, TextError> {
    let seed = split.seed;
    let store = context.store;
    let earlier = store.record(seed, TEACHER, note);
    match context.config.teacher.kind {
        TeacherKind::Head => head_teacher(context, split, earlier, observer),
        TeacherKind::Finetune => {
            let inference = context.device.inference();
            let (model, record, history) = match earlier {
                Some(record) => {
                    note(&format!(
                        "{TEACHER} (seed {seed}): finished earlier, read from the run folder"
                    ));
                    let (model, config) = store.load_classifier(seed, TEACHER, &inference)?;
                    let max_length = finetune_recipe(context).max_length;
                    let max_length = max_length.min(config.max_position_embeddings);
                    (
                        TransformerModel {
                            model,
                            config,
                            max_length,
                        },
                        Some(record),
                        None,
                    )
                }
                None => {
                    let (model, history) = finetune_teacher(context, split, note)?;
                    (model, None, Some(history))
                }
            };
            finish_transformer(context, split, model, record, history, note)
        }
        TeacherKind::Folder => {
            let model = folder.ok_or_else(|| {
                TextError::Invalid("teacher.kind = \"folder\": the folder was not loaded".into())
            })?;
            let model = TransformerModel {
                model: model.model.clone(),
                config: model.config.clone(),
                max_length: model.max_length,
            };
            // A copy in the run folder, so that the run's `eval` and `bench-model` find its
            // teacher as they find a fine-tuned one, and the run outlives the original folder.
            if earlier.is_none() {
                store.save_classifier(
                    seed,
                    TEACHER,
                    &model.model,
                    &model.config,
                    &context.data.classes,
                    &context.encoder.dir,
                )?;
            }
            finish_transformer(context, split, model, earlier, None, note)
        }
    }
}

fn finetune_recipe(context: &RunContext<'_>) -> super::transformer_config::FinetuneConfig {
    context.config.teacher.finetune.clone().unwrap_or_default()
}

/// The fine-tuned teacher, before its logits and record; saved into the run folder.
fn finetune_teacher(
    context: &RunContext<'_>,
    split: &SeedSplit,
    note: &mut dyn FnMut(&str),
) -> Result<(TransformerModel, TrainingHistory), TextError> {
    let seed = split.seed;
    let recipe = finetune_recipe(context);
    let untrained = teacher_to_finetune(
        context.encoder,
        &recipe,
        context.classes,
        seed,
        context.device,
    );
    let (train, validation) = (
        context.sequences_of(&split.train),
        context.sequences_of(&split.validation),
    );
    let (train_labels, validation_labels) = (
        context.labels_of(&split.train),
        context.labels_of(&split.validation),
    );
    note(&format!(
        "{TEACHER} (seed {seed}): fine-tuning the encoder on {} texts, {} epochs",
        train.len(),
        recipe.epochs
    ));
    let (model, history) = train_transformer(
        &format!("{TEACHER} (seed {seed})"),
        untrained,
        &TransformerData {
            train: &train,
            train_labels: &train_labels,
            validation: &validation,
            validation_labels: &validation_labels,
        },
        FinetuneObjective::Labels,
        seed,
        context.device,
        note,
    )?;
    context.store.save_classifier(
        seed,
        TEACHER,
        &model.model,
        &model.config,
        &context.data.classes,
        &context.encoder.dir,
    )?;
    // The students learn from the teacher as saved, so that a resumed run, which reads it
    // back, teaches them exactly the same logits.
    let model = if context.store.is_active() {
        let (reloaded, config) =
            context
                .store
                .load_classifier(seed, TEACHER, &context.device.inference())?;
        TransformerModel {
            model: reloaded,
            config,
            max_length: model.max_length,
        }
    } else {
        model
    };
    Ok((model, history))
}

/// Logits of a transformer teacher, and its record (the earlier one when it finished in an
/// earlier attempt, else a new one, written to the run folder).
fn finish_transformer(
    context: &RunContext<'_>,
    split: &SeedSplit,
    model: TransformerModel,
    earlier: Option<StudentRecord>,
    history: Option<TrainingHistory>,
    note: &mut dyn FnMut(&str),
) -> Result<SeedTeacher, TextError> {
    let seed = split.seed;
    let inference = context.device.inference();
    note(&format!(
        "{TEACHER} (seed {seed}): logits of the training and test texts"
    ));
    let train_logits = model.logits(&context.sequences_of(&split.train), &inference);
    let unlabelled_logits = model.logits(&context.sequences_of(&split.unlabelled), &inference);
    let test_logits = model.logits(&context.sequences_of(&split.test), &inference);
    let record = match earlier {
        Some(record) => record,
        None => {
            let labels = context.labels_of(&split.test);
            let metrics = evaluate(&test_logits, context.classes, &labels, None);
            let validation = context.sequences_of(&split.validation);
            let validation_accuracy = crate::eval::metrics::accuracy(
                &model.logits(&validation, &inference),
                context.classes,
                &context.labels_of(&split.validation),
            );
            let kind = context.config.teacher.kind;
            let origin = match kind {
                TeacherKind::Folder => "loaded".to_string(),
                _ => format!("fine-tuned from {}", model_name(context)),
            };
            let history = history.unwrap_or(TrainingHistory {
                epoch_losses: Vec::new(),
                validation_accuracy: Vec::new(),
                learning_rate: Vec::new(),
                seconds: 0.0,
            });
            let record = RecordParts {
                role: Role::Teacher,
                method: if kind == TeacherKind::Folder {
                    "loaded"
                } else {
                    "ce"
                }
                .to_string(),
                architecture: format!("{} ({origin})", model.describe()),
                params: model.parameter_count(),
                metrics,
                validation_accuracy,
                wall_time_s: history.seconds,
                curve: Curve {
                    seed,
                    train_loss: history.epoch_losses,
                    validation_accuracy: history.validation_accuracy,
                    learning_rate: history.learning_rate,
                },
            }
            .into_record();
            context.store.save_record(seed, TEACHER, &record)?;
            record
        }
    };
    Ok(SeedTeacher {
        model: TeacherModel::Transformer(Box::new(model)),
        train_logits,
        unlabelled_logits,
        test_logits,
        record,
    })
}

/// The head on the frozen encoder's embeddings.
fn head_teacher(
    context: &RunContext<'_>,
    split: &SeedSplit,
    earlier: Option<StudentRecord>,
    observer: &mut dyn TrainObserver,
) -> Result<SeedTeacher, TextError> {
    let seed = split.seed;
    let (config, device, dim) = (context.config, context.device, context.dim());
    let train_set = context.embedding_set("train", &split.train);
    let validation_set = context.embedding_set("validation", &split.validation);
    let test_set = context.embedding_set("test", &split.test);
    let spec = head_spec(context);
    let shape = SampleShape::flat(dim);
    let train_config = config.teacher.train.as_ref().ok_or_else(|| {
        TextError::Invalid("teacher.train: expected the head's training settings".into())
    })?;
    let (head, record) = match earlier {
        Some(record) => {
            let fresh = Network::new(&spec, shape, context.classes, seed, &device.inference())
                .map_err(TextError::Invalid)?;
            (context.store.load_module(seed, TEACHER, fresh)?, record)
        }
        None => {
            let head = Network::new(&spec, shape, context.classes, seed, &device.training())
                .map_err(TextError::Invalid)?;
            let outcome = train(
                &format!("teacher head (seed {seed})"),
                head,
                &TrainingSet {
                    data: &train_set,
                    labelled: None,
                    samples_per_epoch: train_set.len(),
                    validation: &validation_set,
                },
                &Supervision::Labels,
                &TrainSettings {
                    train: train_config,
                    optimizer: &config.teacher.optimizer,
                    augmentation: Augmentation::default(),
                    fill: &[],
                    seed,
                    on_nan: OnNan::Stop,
                    checkpointing: None,
                },
                device,
                observer,
            )?;
            let head = outcome.model;
            let test_logits = predict_logits(&head, &test_set, device);
            let metrics = evaluate(&test_logits, context.classes, &test_set.labels, None);
            let record = RecordParts {
                role: Role::Teacher,
                method: "ce".to_string(),
                architecture: format!(
                    "{} (bert {}×{dim}, frozen) + {}",
                    model_name(context),
                    context.encoder.config.num_hidden_layers,
                    spec.describe(dim, context.classes)
                ),
                params: context.encoder.parameter_count() + head.parameter_count(),
                metrics,
                validation_accuracy: outcome.final_validation_accuracy,
                wall_time_s: outcome.wall_time_s,
                curve: Curve {
                    seed,
                    train_loss: outcome.train_loss.clone(),
                    validation_accuracy: outcome.validation_accuracy.clone(),
                    learning_rate: outcome.learning_rate.clone(),
                },
            }
            .into_record();
            context.store.save_module(seed, TEACHER, &head)?;
            context.store.save_record(seed, TEACHER, &record)?;
            // As saved, so that a resumed run, which reads it back, computes the same logits.
            let head = if context.store.is_active() {
                let fresh = Network::new(&spec, shape, context.classes, seed, &device.inference())
                    .map_err(TextError::Invalid)?;
                context.store.load_module(seed, TEACHER, fresh)?
            } else {
                head
            };
            (head, record)
        }
    };
    let train_logits = predict_logits(&head, &train_set, device);
    let unlabelled_logits = if split.unlabelled.is_empty() {
        Vec::new()
    } else {
        predict_logits(
            &head,
            &context.embedding_set("unlabelled", &split.unlabelled),
            device,
        )
    };
    let test_logits = predict_logits(&head, &test_set, device);
    Ok(SeedTeacher {
        model: TeacherModel::Head(head),
        train_logits,
        unlabelled_logits,
        test_logits,
        record,
    })
}

//! One student of one seed of a text run: a bag, CNN or static student, or a transformer
//! (shallow or narrow), trained on labels, by KD from the seed's teacher, or by regressing the
//! teacher's embeddings; saved with its record, or read back when an earlier attempt of the
//! run finished it.

use super::config::StudentKind;
use super::error::TextError;
use super::finetune::FinetuneObjective;
use super::layer_distill::LayerTeacher;
use super::plans::{Objective, StudentPlan};
use super::seed_context::{RecordParts, RunContext, SeedSplit};
use super::students::TextStudent;
use super::teacher_stage::{SeedTeacher, TeacherModel};
use super::train::{
    StudentObjective, StudentSettings, StudentSplits, TokenSet, student_logits, train_student,
};
use super::transformer_run::{
    StudentSource, TransformerData, TransformerModel, train_transformer, transformer_student,
};
use crate::distill::loss::KdWeights;
use crate::distill::record::{Curve, StudentRecord};
use crate::distill::train::TrainObserver;
use crate::eval::metrics::evaluate;
use crate::models::Network;

/// A trained student.
pub enum TrainedStudent {
    /// A bag, CNN or static student.
    Small(Box<TextStudent>),
    /// A BERT student.
    Transformer(Box<TransformerModel>),
}

/// The shared settings of the small students for `seed`.
pub fn small_settings<'a>(context: &RunContext<'a>, seed: u64) -> StudentSettings<'a> {
    StudentSettings {
        train: &context.config.students.train,
        optimizer: &context.config.students.optimizer,
        seed,
        max_tokens: context.config.students.max_tokens,
        pad_id: context.encoder.config.pad_token_id,
        num_classes: context.classes,
    }
}

/// The teacher's head, which an embedding student's outputs go through.
pub fn teacher_head(teacher: &SeedTeacher) -> Option<&Network> {
    match &teacher.model {
        TeacherModel::Head(head) => Some(head),
        TeacherModel::Transformer(_) => None,
    }
}

/// Trains (or reads back) the student `plan` of `split`.
pub fn seed_student(
    context: &RunContext<'_>,
    split: &SeedSplit,
    plan: &StudentPlan,
    teacher: &SeedTeacher,
    static_vectors: Option<&[f32]>,
    observer: &mut dyn TrainObserver,
    note: &mut dyn FnMut(&str),
) -> Result<(TrainedStudent, StudentRecord), TextError> {
    let earlier = context.store.record(split.seed, &plan.name, note);
    if earlier.is_some() {
        note(&format!(
            "{} (seed {}): finished earlier, read from the run folder",
            plan.name, split.seed
        ));
    }
    if plan.is_transformer() {
        transformer(context, split, plan, teacher, earlier, note)
    } else {
        small(
            context,
            split,
            plan,
            teacher,
            static_vectors,
            earlier,
            observer,
        )
    }
}

fn kd_weights(context: &RunContext<'_>) -> KdWeights {
    KdWeights {
        temperature: context.config.distill.temperature,
        alpha: context.config.distill.alpha,
    }
}

fn small(
    context: &RunContext<'_>,
    split: &SeedSplit,
    plan: &StudentPlan,
    teacher: &SeedTeacher,
    static_vectors: Option<&[f32]>,
    earlier: Option<StudentRecord>,
    observer: &mut dyn TrainObserver,
) -> Result<(TrainedStudent, StudentRecord), TextError> {
    let seed = split.seed;
    let device = context.device;
    let head = teacher_head(teacher);
    let outputs = if plan.objective == Objective::Embedding {
        context.dim()
    } else {
        context.classes
    };
    let token_vectors = if plan.from_teacher_tokens {
        static_vectors
    } else {
        None
    };
    let build = |device| {
        TextStudent::new(
            plan.architecture,
            &context.config.students,
            context.encoder.config.vocab_size,
            outputs,
            token_vectors,
            seed,
            device,
        )
    };
    if let Some(record) = earlier {
        let model = context
            .store
            .load_module(seed, &plan.name, build(&device.inference()))?;
        return Ok((TrainedStudent::Small(Box::new(model)), record));
    }
    let refs = |indices: &[usize]| -> Vec<&[u32]> {
        indices
            .iter()
            .map(|&i| context.sequences[i].as_slice())
            .collect()
    };
    // The labelled texts first: training reads the texts past the labels as unlabelled.
    let unlabelled = unlabelled_texts(plan, split);
    let mut train_sequences = refs(&split.train);
    train_sequences.extend(refs(unlabelled));
    let train_labels = context.labels_of(&split.train);
    let (validation_sequences, validation_labels) = (
        refs(&split.validation),
        context.labels_of(&split.validation),
    );
    let (test_sequences, test_labels) = (refs(&split.test), context.labels_of(&split.test));
    let splits = StudentSplits {
        train: TokenSet {
            sequences: &train_sequences,
            labels: &train_labels,
        },
        validation: TokenSet {
            sequences: &validation_sequences,
            labels: &validation_labels,
        },
    };
    let embedding_targets;
    let teacher_logits = with_unlabelled(teacher, unlabelled);
    let objective = match plan.objective {
        Objective::Labels => StudentObjective::Labels,
        Objective::Kd => StudentObjective::Kd {
            teacher_logits: &teacher_logits,
            weights: kd_weights(context),
        },
        Objective::Embedding => {
            let head = head.ok_or_else(|| {
                TextError::Invalid(format!(
                    "{}: an embedding student needs the frozen-encoder teacher's head",
                    plan.name
                ))
            })?;
            let texts: Vec<usize> = split.train.iter().chain(unlabelled).copied().collect();
            embedding_targets = context.embedding_set("train", &texts).features;
            StudentObjective::Embedding {
                targets: &embedding_targets,
                head,
            }
        }
        Objective::KdLayers { .. } => {
            return Err(TextError::Invalid(format!(
                "{}: inner-layer losses train transformer students only",
                plan.name
            )));
        }
    };
    let mut settings = small_settings(context, seed);
    let equal_steps;
    if let Some(epochs) = scratch_epochs(plan, split, settings.train.epochs) {
        equal_steps = crate::config::TrainConfig {
            epochs,
            ..settings.train.clone()
        };
        settings.train = &equal_steps;
    }
    let outcome = train_student(
        &format!("{} (seed {seed})", plan.name),
        build(&device.training()),
        &splits,
        &objective,
        &settings,
        device,
        observer,
    )?;
    let head_for_predictions = head.filter(|_| plan.objective == Objective::Embedding);
    let logits = student_logits(
        &outcome.model,
        head_for_predictions,
        &test_sequences,
        &settings,
        &device.inference(),
    );
    let metrics = evaluate(
        &logits,
        context.classes,
        &test_labels,
        Some(&teacher.test_logits),
    );
    let mut architecture = outcome.model.describe();
    let mut params = outcome.model.parameter_count();
    if plan.from_teacher_tokens {
        architecture.push_str(" (token vectors: teacher + PCA)");
    }
    if let Some(head) = head_for_predictions {
        architecture.push_str(" + the teacher's head");
        params += head.parameter_count();
    }
    let record = RecordParts {
        role: plan.role,
        method: plan.method.to_string(),
        architecture,
        params,
        metrics,
        validation_accuracy: outcome.best_validation_accuracy,
        wall_time_s: outcome.wall_time_s,
        curve: Curve {
            seed,
            train_loss: outcome.train_loss,
            validation_accuracy: outcome.validation_accuracy,
            learning_rate: outcome.learning_rate,
        },
    }
    .into_record();
    context
        .store
        .save_module(seed, &plan.name, &outcome.model)?;
    context.store.save_record(seed, &plan.name, &record)?;
    Ok((TrainedStudent::Small(Box::new(outcome.model)), record))
}

fn transformer(
    context: &RunContext<'_>,
    split: &SeedSplit,
    plan: &StudentPlan,
    teacher: &SeedTeacher,
    earlier: Option<StudentRecord>,
    note: &mut dyn FnMut(&str),
) -> Result<(TrainedStudent, StudentRecord), TextError> {
    let seed = split.seed;
    let device = context.device;
    let students = &context.config.students;
    let recipe_length = match plan.architecture {
        StudentKind::Shallow => students.shallow.as_ref().map(|s| s.train.max_length),
        _ => students.narrow.as_ref().map(|n| n.train.max_length),
    }
    .unwrap_or_else(|| super::transformer_config::FinetuneConfig::default().max_length);
    if let Some(record) = earlier {
        let (model, config) =
            context
                .store
                .load_classifier(seed, &plan.name, &device.inference())?;
        let max_length = recipe_length.min(config.max_position_embeddings);
        let model = TransformerModel {
            model,
            config,
            max_length,
        };
        return Ok((TrainedStudent::Transformer(Box::new(model)), record));
    }
    let source = match &teacher.model {
        TeacherModel::Transformer(model) => StudentSource {
            bert: &model.model.bert,
            config: &model.config,
            head: Some(&model.model),
        },
        TeacherModel::Head(_) => StudentSource {
            bert: &context.encoder.bert,
            config: &context.encoder.config,
            head: None,
        },
    };
    let mut untrained = transformer_student(
        plan.architecture,
        students,
        &source,
        context.classes,
        seed,
        device,
    )?;
    let unlabelled = unlabelled_texts(plan, split);
    if let Some(epochs) = scratch_epochs(plan, split, untrained.recipe.epochs) {
        untrained.recipe.epochs = epochs;
    }
    // The labelled texts first: `finetune_with` reads the texts past the labels as unlabelled.
    let mut train = context.sequences_of(&split.train);
    train.extend(context.sequences_of(unlabelled));
    let validation = context.sequences_of(&split.validation);
    let teacher_logits = with_unlabelled(teacher, unlabelled);
    let (train_labels, validation_labels) = (
        context.labels_of(&split.train),
        context.labels_of(&split.validation),
    );
    let layer_teacher = match plan.objective {
        Objective::KdLayers { index } => Some(LayerTeacher::new(
            &context.config.distill.layers[index],
            index,
            source.bert,
            source.config,
            &untrained.config,
            &device.training(),
        )?),
        _ => None,
    };
    let objective = match (plan.objective, &layer_teacher) {
        (Objective::Kd, _) => FinetuneObjective::Kd {
            teacher_logits: &teacher_logits,
            weights: kd_weights(context),
        },
        (Objective::KdLayers { .. }, Some(layers)) => FinetuneObjective::KdLayers {
            teacher_logits: &teacher_logits,
            weights: kd_weights(context),
            layers,
        },
        _ => FinetuneObjective::Labels,
    };
    let what = format!("{} (seed {seed})", plan.name);
    note(&format!(
        "{what}: training on {} texts{}",
        split.train.len(),
        if unlabelled.is_empty() {
            String::new()
        } else {
            format!(" and {} without labels", unlabelled.len())
        }
    ));
    let (model, history) = train_transformer(
        &what,
        untrained,
        &TransformerData {
            train: &train,
            train_labels: &train_labels,
            validation: &validation,
            validation_labels: &validation_labels,
        },
        objective,
        seed,
        device,
        note,
    )?;
    let inference = device.inference();
    let logits = model.logits(&context.sequences_of(&split.test), &inference);
    let metrics = evaluate(
        &logits,
        context.classes,
        &context.labels_of(&split.test),
        Some(&teacher.test_logits),
    );
    let origin = match (plan.architecture, source.head.is_some()) {
        (StudentKind::Shallow, true) => " (layers and head from the teacher)",
        (StudentKind::Shallow, false) => " (layers from the encoder)",
        _ => " (random init)",
    };
    let record = RecordParts {
        role: plan.role,
        method: plan.method.to_string(),
        architecture: format!("{}{origin}", model.describe()),
        params: model.parameter_count(),
        metrics,
        validation_accuracy: history.validation_accuracy.last().copied().unwrap_or(0.0),
        wall_time_s: history.seconds,
        curve: Curve {
            seed,
            train_loss: history.epoch_losses,
            validation_accuracy: history.validation_accuracy,
            learning_rate: history.learning_rate,
        },
    }
    .into_record();
    context.store.save_classifier(
        seed,
        &plan.name,
        &model.model,
        &model.config,
        &context.data.classes,
        &context.encoder.dir,
    )?;
    context.store.save_record(seed, &plan.name, &record)?;
    Ok((TrainedStudent::Transformer(Box::new(model)), record))
}

/// The teacher's logits on the seed's training texts, followed by those on `unlabelled` (the
/// seed's unlabelled texts, or none), in the order the student's training texts are laid out.
fn with_unlabelled(teacher: &SeedTeacher, unlabelled: &[usize]) -> Vec<f32> {
    let mut logits = teacher.train_logits.clone();
    if !unlabelled.is_empty() {
        logits.extend_from_slice(&teacher.unlabelled_logits);
    }
    logits
}

/// The seed's unlabelled texts for a student that learns from the teacher; none for one that
/// learns from labels alone.
fn unlabelled_texts<'s>(plan: &StudentPlan, split: &'s SeedSplit) -> &'s [usize] {
    if plan.objective == Objective::Labels {
        &[]
    } else {
        &split.unlabelled
    }
}

/// For a student from scratch in a run with unlabelled texts, the epochs that give it, on its
/// labelled texts alone, at least as many optimiser steps as a distilled student of `epochs`
/// over the labelled and unlabelled texts, so that the baseline is not short of training;
/// `None` for every other student.
fn scratch_epochs(plan: &StudentPlan, split: &SeedSplit, epochs: usize) -> Option<usize> {
    if plan.objective != Objective::Labels || split.unlabelled.is_empty() {
        return None;
    }
    let labelled = split.train.len().max(1);
    Some((epochs * (labelled + split.unlabelled.len())).div_ceil(labelled))
}

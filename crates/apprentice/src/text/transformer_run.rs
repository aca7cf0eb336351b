//! The transformer models of a text run: the teacher fine-tuned from the pretrained encoder
//! (or read from a `BertForSequenceClassification` folder), and the shallow (DistilBERT) and
//! narrow students, trained on labels or by KD with the fine-tuning recipe.

use burn::module::Module;
use burn::tensor::Device;

use super::bert::{Bert, BertConfig};
use super::classifier::{BertClassifier, ClassifierPooling};
use super::classifier_folder::read_pooler;
use super::config::{StudentKind, StudentsConfig};
use super::error::TextError;
use super::finetune::{
    FinetuneObjective, FinetuneObserver, FinetuneOutcome, FinetuneValidation, finetune_with,
};
use super::pretrained::PretrainedEncoder;
use super::transformer_config::{FinetuneConfig, ShallowConfig};
use super::transformer_students::{every_other_layer, narrow_config, narrow_student, shallow_copy};
use crate::backend::ComputeDevice;

/// A BERT classifier with its shape and the length it reads texts at.
#[derive(Debug)]
pub struct TransformerModel {
    /// The model, on the inference device.
    pub model: BertClassifier,
    /// Its encoder's shape.
    pub config: BertConfig,
    /// Word pieces read per text at most.
    pub max_length: usize,
}

impl TransformerModel {
    /// Logits of `sequences` (`len × classes`, in input order), batched by length.
    pub fn logits(&self, sequences: &[Vec<u32>], device: &Device) -> Vec<f32> {
        self.model.logits(
            sequences,
            self.config.pad_token_id,
            self.max_length,
            64,
            device,
        )
    }

    /// Parameters of the encoder and of the head it uses (the pooler only with `[CLS]`
    /// pooling).
    pub fn parameter_count(&self) -> usize {
        let h = self.config.hidden_size;
        let pooler = if self.model.mean_pooling {
            0
        } else {
            h * h + h
        };
        self.config.parameter_count() + pooler + (h + 1) * self.model.labels()
    }

    /// `bert 6×384 (12 heads), cls head, 64 pieces`.
    pub fn describe(&self) -> String {
        let pooling = match self.model.pooling() {
            ClassifierPooling::Cls => "cls",
            ClassifierPooling::Mean => "mean-pooled",
        };
        format!(
            "bert {}×{} ({} heads), {pooling} head, {} pieces",
            self.config.num_hidden_layers,
            self.config.hidden_size,
            self.config.num_attention_heads,
            self.max_length
        )
    }
}

/// The texts a transformer trains on and is checked on after each epoch.
pub struct TransformerData<'a> {
    /// Training id sequences.
    pub train: &'a [Vec<u32>],
    /// Their classes.
    pub train_labels: &'a [u32],
    /// Validation id sequences.
    pub validation: &'a [Vec<u32>],
    /// Their classes.
    pub validation_labels: &'a [u32],
}

/// Tells `note` the loss of each epoch.
struct EpochNotes<'a> {
    what: String,
    note: &'a mut dyn FnMut(&str),
}

impl FinetuneObserver for EpochNotes<'_> {
    fn epoch(&mut self, epoch: usize, train_loss: f64) {
        (self.note)(&format!(
            "{}: epoch {epoch}, training loss {train_loss:.4}",
            self.what
        ));
    }
}

/// A classifier ready to train: the model on the training device, its shape, and its recipe.
pub struct Untrained {
    /// The model, on the training device.
    pub model: BertClassifier,
    /// Its shape.
    pub config: BertConfig,
    /// How it trains.
    pub recipe: FinetuneConfig,
}

/// Seeds burn's generator of `device` for model `stream` of `seed`, so that a model's random
/// weights do not depend on what was drawn before it (a resumed run skips models).
fn seed_device(device: &Device, seed: u64, stream: u64) {
    device.seed(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ stream);
}

/// The pretrained encoder with a classification head for `classes` classes, on the training
/// device: the encoder's own pooler when its folder has one (as `transformers` starts), a
/// new classification layer drawn from `seed`.
pub fn teacher_to_finetune(
    encoder: &PretrainedEncoder,
    recipe: &FinetuneConfig,
    classes: usize,
    seed: u64,
    device: &ComputeDevice,
) -> Untrained {
    let training = device.training();
    seed_device(&training, seed, 0x7ea0);
    // `valid().train()` makes every weight trainable whatever device the encoder was read on.
    let bert = encoder.bert.valid().train().fork(&training);
    let mut model = BertClassifier::new(bert, &encoder.config, classes, recipe.pooling, &training);
    if let Some(pooler) = read_pooler(&encoder.dir, &encoder.config, &training) {
        model.pooler = pooler;
    }
    Untrained {
        model,
        config: encoder.config.clone(),
        recipe: recipe.clone(),
    }
}

/// Where a transformer student's layers come from: the teacher's encoder, and its head when
/// the teacher is a classifier.
pub struct StudentSource<'a> {
    /// The teacher's encoder (the fine-tuned one, or the pretrained one under a head).
    pub bert: &'a Bert,
    /// Its shape.
    pub config: &'a BertConfig,
    /// The teacher's pooler and classification layer, copied into a shallow student.
    pub head: Option<&'a BertClassifier>,
}

/// A transformer student of `kind` (`shallow` or `narrow`) for `classes` classes, on the
/// training device, its random weights drawn from `seed`.
pub fn transformer_student(
    kind: StudentKind,
    students: &StudentsConfig,
    source: &StudentSource<'_>,
    classes: usize,
    seed: u64,
    device: &ComputeDevice,
) -> Result<Untrained, TextError> {
    let training = device.training();
    match kind {
        StudentKind::Shallow => {
            let shallow = students.shallow.clone().unwrap_or(ShallowConfig {
                layers: None,
                train: FinetuneConfig::default(),
            });
            let layers = shallow
                .layers
                .clone()
                .unwrap_or_else(|| every_other_layer(source.config.num_hidden_layers));
            let (bert, config) = shallow_copy(source.bert, source.config, &layers, &training)
                .map_err(|e| TextError::Invalid(format!("students.shallow.layers: {e}")))?;
            let trainable = |m: BertClassifier| m.valid().train().fork(&training);
            seed_device(&training, seed, 0x5a11);
            let model = match source.head {
                Some(head) => trainable(BertClassifier {
                    bert,
                    pooler: head.pooler.clone(),
                    classifier: head.classifier.clone(),
                    mean_pooling: head.mean_pooling,
                }),
                None => trainable(BertClassifier::new(
                    bert,
                    &config,
                    classes,
                    shallow.train.pooling,
                    &training,
                )),
            };
            Ok(Untrained {
                model,
                config,
                recipe: shallow.train,
            })
        }
        StudentKind::Narrow => {
            let narrow = students.narrow.clone().unwrap_or_default();
            let config = narrow_config(source.config, narrow.layers, narrow.hidden, narrow.heads)?;
            seed_device(&training, seed, 0x7a77);
            let bert = narrow_student(&config, &training);
            let model =
                BertClassifier::new(bert, &config, classes, narrow.train.pooling, &training);
            Ok(Untrained {
                model,
                config,
                recipe: narrow.train,
            })
        }
        other => Err(TextError::Invalid(format!(
            "{} is not a transformer student",
            other.name()
        ))),
    }
}

/// Trains `untrained` on `data` with `objective` and its recipe; `what` names it in the
/// notes.
pub fn train_transformer(
    what: &str,
    untrained: Untrained,
    data: &TransformerData<'_>,
    objective: FinetuneObjective<'_>,
    seed: u64,
    device: &ComputeDevice,
    note: &mut dyn FnMut(&str),
) -> Result<(TransformerModel, TrainingHistory), TextError> {
    let Untrained {
        model,
        config,
        recipe,
    } = untrained;
    let settings = recipe.settings(seed);
    let mut observer = EpochNotes {
        what: what.to_string(),
        note,
    };
    let outcome = finetune_with(
        model,
        &config,
        data.train,
        data.train_labels,
        objective,
        Some(FinetuneValidation {
            sequences: data.validation,
            labels: data.validation_labels,
        }),
        &settings,
        &device.training(),
        &mut observer,
    )?;
    let FinetuneOutcome {
        model,
        epoch_losses,
        validation_accuracy,
        learning_rate,
        seconds,
        ..
    } = outcome;
    let max_length = recipe.max_length.min(config.max_position_embeddings);
    Ok((
        TransformerModel {
            model,
            config,
            max_length,
        },
        TrainingHistory {
            epoch_losses,
            validation_accuracy,
            learning_rate,
            seconds,
        },
    ))
}

/// What training a transformer recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingHistory {
    /// Mean training loss of each epoch.
    pub epoch_losses: Vec<f64>,
    /// Validation accuracy after each epoch.
    pub validation_accuracy: Vec<f64>,
    /// Learning rate of each epoch's first step.
    pub learning_rate: Vec<f64>,
    /// Wall-clock seconds of training.
    pub seconds: f64,
}

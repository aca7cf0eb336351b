//! A model of a finished text run, ready to predict: the small students and the
//! frozen-encoder teacher's head, read back through [`super::saved_model`], with the run's
//! encoder (its tokenizer reads the texts; its sentence embeddings feed the head), and the
//! run's texts with the seed's split (`seed-N/split.json`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::classifier_folder::load_classifier;
use super::config::{StudentKind, TextExperimentConfig};
use super::data::{TextData, load_text_data};
use super::error::TextError;
use super::plans::student_plans;
use super::pretrained::PretrainedEncoder;
use super::saved_model::{
    load_small_student, load_teacher_head, needs_teacher_head, run_config, sibling_teacher_head,
};
use super::students::TextStudent;
use super::teacher_stage::TEACHER;
use super::train::{StudentSettings, student_logits};
use super::transformer_config::{FinetuneConfig, TeacherKind};
use super::transformer_run::TransformerModel;
use crate::backend::{self, ComputeDevice};
use crate::data::{Dataset, SampleShape};
use crate::distill::train::predict_logits;
use crate::layout;
use crate::models::{Activation, MlpSpec, ModelSpec, Network};

/// What predicts: a small student (through the teacher's head for an embedding student), or
/// the teacher's head on the encoder's sentence embeddings.
pub enum TextPredictor {
    /// A bag, CNN or static student.
    Student {
        /// The student.
        student: Box<TextStudent>,
        /// The teacher's head its outputs go through (an embedding student), else `None`.
        head: Option<Network>,
        /// Width of the student's own outputs.
        outputs: usize,
    },
    /// The frozen-encoder teacher: the encoder's sentence embeddings, then this head.
    Head(Network),
    /// A BERT classifier: the fine-tuned teacher or a shallow or narrow student, read from
    /// its Hugging Face folder (`<model>.hf/`).
    Transformer {
        /// The classifier and the length it reads texts at.
        model: Box<TransformerModel>,
        /// Its classes (the folder's `id2label`).
        classes: usize,
    },
}

/// A model of a text run with what it needs to read texts.
pub struct TextRunModel {
    /// Its name in the run (`cnn-kd`, `teacher`).
    pub name: String,
    /// Its architecture, as the run's record describes it.
    pub architecture: String,
    /// Its parameters, as the run's record counts them (the teacher's include its encoder).
    pub params: usize,
    /// The run's experiment.
    pub config: TextExperimentConfig,
    /// The run's encoder (tokenizer, pad id, sentence embeddings).
    pub encoder: PretrainedEncoder,
    /// The model.
    pub predictor: TextPredictor,
    /// Where it runs.
    pub device: ComputeDevice,
}

/// The folder `text.model` and `data.path` are relative to: `data_root` when given (the
/// command's `--data`), else the one the run recorded.
fn root<'a>(config: &'a TextExperimentConfig, data_root: Option<&'a Path>) -> Option<&'a Path> {
    data_root.or(config.data_root.as_deref())
}

fn resolve(root: Option<&Path>, path: &Path) -> PathBuf {
    match root {
        Some(root) => root.join(path),
        None => path.to_path_buf(),
    }
}

/// Loads the model of a text run saved at `path` (`<run>/seed-N/<model>.safetensors`, or
/// `<run>/seed-N/<model>.hf/` for a transformer) and the run's encoder (from `data_root`, else
/// the folder the run recorded).
pub fn load_run_model(path: &Path, data_root: Option<&Path>) -> Result<TextRunModel, TextError> {
    let device = ComputeDevice::cpu();
    let inference = device.inference();
    let config = run_config(path)?;
    let encoder = PretrainedEncoder::load(
        &resolve(root(&config, data_root), &config.text.model),
        &device,
    )?;
    let dim = encoder.dim();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let (name, architecture, params, predictor) = if path.is_dir() {
        transformer(path, stem, &config, &encoder, &inference)?
    } else if stem == layout::file_stem(TEACHER) {
        if config.teacher.kind != TeacherKind::Head {
            return Err(TextError::model(
                path,
                "not the head of a frozen-encoder teacher (the run's teacher is a transformer)",
            ));
        }
        let head = load_teacher_head(path, &config, dim, &inference)?;
        let encoder_name = encoder
            .dir
            .file_name()
            .map_or_else(|| "encoder".into(), |n| n.to_string_lossy().into_owned());
        let spec = ModelSpec::Mlp(MlpSpec {
            hidden: config.teacher.hidden.clone(),
            activation: Activation::Relu,
            dropout: config.teacher.dropout,
        });
        let architecture = format!(
            "{encoder_name} (bert {}×{dim}, frozen) + {}",
            encoder.config.num_hidden_layers,
            spec.describe(dim, head.num_classes)
        );
        let params = encoder.parameter_count() + head.parameter_count();
        (
            TEACHER.to_string(),
            architecture,
            params,
            TextPredictor::Head(head),
        )
    } else {
        let saved = load_small_student(path, &inference)?;
        let head = if needs_teacher_head(&saved.plan) {
            Some(sibling_teacher_head(
                path,
                &config,
                saved.outputs,
                &inference,
            )?)
        } else {
            None
        };
        let mut architecture = saved.student.describe();
        let mut params = saved.student.parameter_count();
        if saved.plan.from_teacher_tokens {
            architecture.push_str(" (token vectors: teacher + PCA)");
        }
        if let Some(head) = &head {
            architecture.push_str(" + the teacher's head");
            params += head.parameter_count();
        }
        let predictor = TextPredictor::Student {
            student: Box::new(saved.student),
            head,
            outputs: saved.outputs,
        };
        (saved.plan.name.to_string(), architecture, params, predictor)
    };
    Ok(TextRunModel {
        name,
        architecture,
        params,
        config,
        encoder,
        predictor,
        device,
    })
}

/// A transformer of the run read from its folder, with the length the run read texts at and
/// its architecture as the run's record words it.
fn transformer(
    path: &Path,
    stem: &str,
    config: &TextExperimentConfig,
    encoder: &PretrainedEncoder,
    device: &burn::tensor::Device,
) -> Result<(String, String, usize, TextPredictor), TextError> {
    let loaded = load_classifier(path, device)?;
    let classes = loaded.labels.len();
    let positions = loaded.config.max_position_embeddings;
    let transformer_teacher = config.teacher.kind != TeacherKind::Head;
    let (name, max_length, origin) = if stem == layout::file_stem(TEACHER) {
        let encoder_name = encoder
            .dir
            .file_name()
            .map_or_else(|| "encoder".into(), |n| n.to_string_lossy().into_owned());
        match config.teacher.kind {
            TeacherKind::Finetune => {
                let recipe = config.teacher.finetune.clone().unwrap_or_default();
                (
                    TEACHER.to_string(),
                    recipe.max_length,
                    format!("fine-tuned from {encoder_name}"),
                )
            }
            // The run's copy of a teacher read from a folder, read at the encoder's length as
            // the run read it.
            TeacherKind::Folder => (
                TEACHER.to_string(),
                encoder.max_length,
                "loaded".to_string(),
            ),
            TeacherKind::Head => {
                return Err(TextError::model(
                    path,
                    "not a transformer teacher (the run's teacher.kind is \"head\")",
                ));
            }
        }
    } else {
        let plans = student_plans(config);
        let plan = plans
            .iter()
            .find(|p| p.is_transformer() && layout::file_stem(&p.name) == stem)
            .ok_or_else(|| {
                TextError::model(
                    path,
                    "not a transformer student of the run (its name is none of the run's)",
                )
            })?;
        let students = &config.students;
        let recipe = match plan.architecture {
            StudentKind::Shallow => students.shallow.as_ref().map(|s| s.train.max_length),
            _ => students.narrow.as_ref().map(|n| n.train.max_length),
        }
        .unwrap_or_else(|| FinetuneConfig::default().max_length);
        let origin = match (plan.architecture, transformer_teacher) {
            (StudentKind::Shallow, true) => "layers and head from the teacher",
            (StudentKind::Shallow, false) => "layers from the encoder",
            _ => "random init",
        };
        (plan.name.to_string(), recipe, origin.to_string())
    };
    let model = TransformerModel {
        model: loaded.model,
        config: loaded.config,
        max_length: max_length.min(positions),
    };
    let architecture = format!("{} ({origin})", model.describe());
    let params = model.parameter_count();
    Ok((
        name,
        architecture,
        params,
        TextPredictor::Transformer {
            model: Box::new(model),
            classes,
        },
    ))
}

impl TextRunModel {
    /// Width of the logits.
    pub fn num_classes(&self) -> usize {
        match &self.predictor {
            TextPredictor::Student {
                head: Some(head), ..
            }
            | TextPredictor::Head(head) => head.num_classes,
            TextPredictor::Transformer { classes, .. } => *classes,
            TextPredictor::Student {
                head: None,
                outputs,
                ..
            } => *outputs,
        }
    }

    /// Logits of word-piece sequences (special tokens included), `len × classes`, computed
    /// as the run computes them for its test split.
    pub fn logits(&self, sequences: &[Vec<u32>]) -> Vec<f32> {
        let inference = self.device.inference();
        match &self.predictor {
            TextPredictor::Student { student, head, .. } => {
                let config = &self.config.students;
                let settings = StudentSettings {
                    train: &config.train,
                    optimizer: &config.optimizer,
                    seed: 0,
                    max_tokens: config.max_tokens,
                    pad_id: self.encoder.config.pad_token_id,
                    num_classes: self.num_classes(),
                };
                let refs: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
                student_logits(student, head.as_ref(), &refs, &settings, &inference)
            }
            TextPredictor::Head(head) => {
                let dim = self.encoder.dim();
                let batch = self.config.text.encode_batch_size;
                let embeddings = self.encoder.embed_ids(sequences, batch, &mut |_| {});
                let set = Dataset {
                    name: String::new(),
                    features: embeddings,
                    labels: vec![0; sequences.len()],
                    shape: SampleShape::flat(dim),
                    num_classes: head.num_classes,
                };
                predict_logits(head, &set, &self.device)
            }
            TextPredictor::Transformer { model, .. } => model.logits(sequences, &inference),
        }
    }

    /// Logits of texts, the tokenizer included (what a deployed model runs).
    pub fn text_logits<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<f32>, TextError> {
        let sequences = self.encoder.tokenizer.encode_all(texts)?;
        Ok(match &self.predictor {
            // Straight from the tokens to the head, as the run times the teacher.
            TextPredictor::Head(head) => {
                let inference = self.device.inference();
                let vectors = self
                    .encoder
                    .embed_ids(&sequences, sequences.len(), &mut |_| {});
                let inputs =
                    backend::matrix(vectors, sequences.len(), self.encoder.dim(), &inference);
                backend::to_host(head.logits(inputs))
            }
            TextPredictor::Student { .. } | TextPredictor::Transformer { .. } => {
                self.logits(&sequences)
            }
        })
    }
}

/// A seed's `split.json`: the row indices of its training, validation and test texts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SavedSplit {
    /// The seed.
    pub seed: u64,
    /// Rows of the data the run read.
    pub rows: usize,
    /// Training texts.
    pub train: Vec<usize>,
    /// Validation texts.
    pub validation: Vec<usize>,
    /// Test texts.
    pub test: Vec<usize>,
}

/// The split of the seed whose folder holds `model` (`seed-N/split.json`); an error names
/// the file when it is missing or unreadable.
pub fn read_split(model: &Path) -> Result<SavedSplit, TextError> {
    let split_path = model.with_file_name("split.json");
    let text = std::fs::read_to_string(&split_path).map_err(|e| {
        TextError::model(
            &split_path,
            format!(
                "the seed's split cannot be read ({e}); a text run writes it beside its models"
            ),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        TextError::model(
            &split_path,
            format!("expected the seed's split (seed, rows, train, validation, test): {e}"),
        )
    })
}

/// The texts of the run of `config` (from `data_root`, else the folder the run recorded) and
/// the split of the seed whose folder holds `model`; an error names `split.json` when it is
/// missing, unreadable, or does not fit the texts read.
pub fn load_run_texts(
    model: &Path,
    config: &TextExperimentConfig,
    data_root: Option<&Path>,
) -> Result<(TextData, SavedSplit), TextError> {
    let split = read_split(model)?;
    let split_path = model.with_file_name("split.json");
    let data = load_text_data(
        &resolve(root(config, data_root), &config.data.path),
        config.data.format,
        &config.data.options(),
    )?;
    let largest = split
        .train
        .iter()
        .chain(&split.validation)
        .chain(&split.test)
        .max();
    if split.rows != data.len() || largest.is_some_and(|&i| i >= data.len()) {
        return Err(TextError::model(
            &split_path,
            format!(
                "the run read {} texts, the data {} has {}",
                split.rows,
                data.name,
                data.len()
            ),
        ));
    }
    Ok((data, split))
}

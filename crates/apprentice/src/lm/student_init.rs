//! How a run's students start (the `init` key of the `[student]` table): seeded random
//! weights, or weights taken from the teacher — its token embeddings reduced to the student's
//! width by PCA, or a subset of its layers copied whole when the student has its width.
//!
//! A run resolves the choice once against its teacher ([`StudentInitializer::new`]: shapes
//! checked, the PCA fitted) and then makes every student from it, scratch and distilled alike,
//! so that the baseline starts where the distilled students start.

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::error::LmError;
use super::llama::{Llama, LlamaConfig, LlamaLayer};
use super::student::init_student;
use crate::backend;
use crate::text::pca::Pca;

/// The `init` key of the `[student]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StudentInit {
    /// Every weight drawn from the seed ([`init_student`]).
    #[default]
    Random,
    /// The tied token embedding from the teacher's, reduced by PCA ([`pca_embeddings`]);
    /// the layers drawn from the seed.
    PcaEmbeddings,
    /// The teacher's token embedding, the layers `layers_from` and the final norm, copied; the
    /// student must have the teacher's width, heads and FFN width. Its output projection is
    /// the copied embedding (students are tied), also for a teacher with its own.
    TeacherLayers,
}

impl StudentInit {
    /// The name as written in the experiment file.
    pub fn name(self) -> &'static str {
        match self {
            StudentInit::Random => "random",
            StudentInit::PcaEmbeddings => "pca-embeddings",
            StudentInit::TeacherLayers => "teacher-layers",
        }
    }
}

/// Standard deviation of the coordinates of the PCA embedding matrix as a whole.
///
/// The same as the random embedding of [`init_student`] (GPT-2's 0.02), rather than the
/// teacher's own scale: the embedding is also the student's output projection, so its scale
/// sets the initial logits, and under Adam the updates have a size of about the learning rate
/// whatever the weights' scale, so a matrix of another scale would need another learning rate.
/// Only the directions come from the teacher; the relative variance of the components is kept
/// (not whitened), so that the cosine similarities between tokens are the teacher's.
pub const PCA_EMBEDDING_STD: f64 = 0.02;

/// The teacher's embedding matrix `embedding` (`rows × teacher_hidden`, row-major) centred and
/// projected onto its top `hidden` principal components, scaled so that its coordinates have
/// standard deviation [`PCA_EMBEDDING_STD`]: `rows × hidden`, row-major, strongest component
/// first. Deterministic (see [`Pca`]).
pub fn pca_embeddings(
    embedding: &[f32],
    teacher_hidden: usize,
    hidden: usize,
) -> Result<Vec<f32>, LmError> {
    if hidden == 0 || hidden > teacher_hidden {
        return Err(LmError::Invalid(format!(
            "[student] hidden: init = \"pca-embeddings\" keeps 1 to {teacher_hidden} principal \
             components of the teacher's embeddings (its width), found {hidden}"
        )));
    }
    if teacher_hidden == 0
        || embedding.is_empty()
        || !embedding.len().is_multiple_of(teacher_hidden)
    {
        return Err(LmError::Invalid(format!(
            "the teacher's embedding matrix of {} values is not rows of {teacher_hidden}",
            embedding.len()
        )));
    }
    let pca = Pca::fit(embedding, teacher_hidden, hidden);
    let mut projected = pca.project(embedding);
    let mean_square =
        projected.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / projected.len() as f64;
    // The projection is centred, so its mean square is its variance.
    if mean_square > 0.0 {
        let scale = (PCA_EMBEDDING_STD / mean_square.sqrt()) as f32;
        projected.iter_mut().for_each(|v| *v *= scale);
    }
    Ok(projected)
}

/// Teacher layers `0..teacher_layers` evenly spaced from the first to the last, one per
/// student layer (the first alone for one layer): `[0, 29]` for 2 of 30.
pub fn default_layers_from(student_layers: usize, teacher_layers: usize) -> Vec<usize> {
    if student_layers <= 1 {
        return vec![0; student_layers];
    }
    let last = teacher_layers.saturating_sub(1);
    let gaps = student_layers - 1;
    (0..student_layers)
        .map(|i| (i * last + gaps / 2) / gaps)
        .collect()
}

/// A run's choice of initial weights, resolved against its teacher.
#[derive(Debug, Clone)]
pub struct StudentInitializer {
    plan: Plan,
}

#[derive(Debug, Clone)]
enum Plan {
    Random,
    /// The PCA embedding matrix, `vocab × to`, and the teacher's width `from`.
    Embeddings {
        values: Vec<f32>,
        from: usize,
        to: usize,
    },
    /// The teacher layers copied, in the student's order.
    Layers(Vec<usize>),
}

impl StudentInitializer {
    /// Checks `init` (with `layers_from`, the teacher layers of `teacher-layers`, evenly
    /// spaced when `None`) against the teacher and the student's configuration, and fits what
    /// every student will share. Errors are one line naming the `[student]` key.
    pub fn new(
        init: StudentInit,
        layers_from: Option<&[usize]>,
        teacher: &Llama,
        teacher_config: &LlamaConfig,
        student: &LlamaConfig,
    ) -> Result<Self, LmError> {
        let plan = match init {
            StudentInit::Random => Plan::Random,
            StudentInit::PcaEmbeddings => {
                let embedding = backend::to_host(teacher.embed.weight.val());
                Plan::Embeddings {
                    values: pca_embeddings(&embedding, teacher_config.hidden, student.hidden)?,
                    from: teacher_config.hidden,
                    to: student.hidden,
                }
            }
            StudentInit::TeacherLayers => {
                check_same_width(teacher_config, student)?;
                let layers = match layers_from {
                    Some(layers) => layers.to_vec(),
                    None => default_layers_from(student.layers, teacher_config.layers),
                };
                if layers.len() != student.layers {
                    return Err(LmError::Invalid(format!(
                        "[student] layers_from: expected {} teacher layers (one per student \
                         layer), found {}",
                        student.layers,
                        layers.len()
                    )));
                }
                if let Some(&missing) = layers.iter().find(|&&l| l >= teacher_config.layers) {
                    return Err(LmError::Invalid(format!(
                        "[student] layers_from: the teacher has layers 0 to {}, found {missing}",
                        teacher_config.layers.saturating_sub(1)
                    )));
                }
                Plan::Layers(layers)
            }
        };
        Ok(Self { plan })
    }

    /// Every weight from the seed, as [`init_student`] (no teacher needed).
    pub fn random() -> Self {
        Self { plan: Plan::Random }
    }

    /// The teacher layers a `teacher-layers` student copies, in its order.
    pub fn layers_from(&self) -> Option<&[usize]> {
        match &self.plan {
            Plan::Layers(layers) => Some(layers),
            _ => None,
        }
    }

    /// The initial weights of a student of `config` (the configuration this initialiser was
    /// made for) on `device`, from `teacher` (the model it was made with) and `seed`. A
    /// `teacher-layers` student uses no random number: every seed starts from the same weights.
    pub fn student(
        &self,
        teacher: &Llama,
        config: &LlamaConfig,
        seed: u64,
        device: &Device,
    ) -> Llama {
        match &self.plan {
            Plan::Random => init_student(config, seed, device),
            Plan::Embeddings { values, .. } => {
                let mut model = init_student(config, seed, device);
                model.embed.weight = Param::from_tensor(backend::matrix(
                    values.clone(),
                    config.vocab_size,
                    config.hidden,
                    device,
                ));
                model
            }
            Plan::Layers(layers) => Llama {
                embed: Embedding {
                    weight: copy(&teacher.embed.weight, device),
                },
                layers: layers
                    .iter()
                    .map(|&i| copy_layer(&teacher.layers[i], device))
                    .collect(),
                norm: copy_norm(&teacher.norm, device),
                lm_head: None,
                heads: config.heads,
                kv_heads: config.kv_heads,
                rope_theta: config.rope_theta,
            },
        }
    }

    /// The initialisation in words, for results and checkpoints; `None` for random weights.
    pub fn describe(&self) -> Option<String> {
        match &self.plan {
            Plan::Random => None,
            Plan::Embeddings { from, to, .. } => Some(format!(
                "the teacher's token embeddings reduced from {from} to {to} dimensions by PCA"
            )),
            Plan::Layers(layers) => {
                let list: Vec<String> = layers.iter().map(ToString::to_string).collect();
                Some(format!(
                    "the teacher's embeddings, final norm and layers {}",
                    list.join(", ")
                ))
            }
        }
    }
}

/// `[student] KEY: …` when the student's width, heads or FFN width differ from the teacher's.
fn check_same_width(teacher: &LlamaConfig, student: &LlamaConfig) -> Result<(), LmError> {
    for (key, student_value, teacher_value) in [
        ("hidden", student.hidden, teacher.hidden),
        ("heads", student.heads, teacher.heads),
        ("kv_heads", student.kv_heads, teacher.kv_heads),
        ("ffn", student.ffn, teacher.ffn),
    ] {
        if student_value != teacher_value {
            return Err(LmError::Invalid(format!(
                "[student] {key}: init = \"teacher-layers\" copies the teacher's layers, so \
                 expected the teacher's {teacher_value}, found {student_value}"
            )));
        }
    }
    Ok(())
}

/// `param` on `device`, as a fresh parameter (trainable there, sharing nothing with the
/// teacher's).
fn copy<const D: usize>(param: &Param<Tensor<D>>, device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(param.val().into_data(), device))
}

fn copy_linear(linear: &Linear, device: &Device) -> Linear {
    Linear {
        weight: copy(&linear.weight, device),
        bias: linear.bias.as_ref().map(|b| copy(b, device)),
    }
}

fn copy_norm(norm: &RmsNorm, device: &Device) -> RmsNorm {
    RmsNorm {
        gamma: copy(&norm.gamma, device),
        epsilon: norm.epsilon,
    }
}

fn copy_layer(layer: &LlamaLayer, device: &Device) -> LlamaLayer {
    LlamaLayer {
        attn_norm: copy_norm(&layer.attn_norm, device),
        q: copy_linear(&layer.q, device),
        k: copy_linear(&layer.k, device),
        v: copy_linear(&layer.v, device),
        o: copy_linear(&layer.o, device),
        ffn_norm: copy_norm(&layer.ffn_norm, device),
        gate: copy_linear(&layer.gate, device),
        up: copy_linear(&layer.up, device),
        down: copy_linear(&layer.down, device),
    }
}

//! What a distilled student learns from: the teacher's logits, or its intermediate features.
//!
//! Logit methods (KD, DKD, DIST, LwF, ...) are [`super::loss::LogitLoss`]es. Feature methods (FitNets,
//! attention transfer, RKD, PKT, SP) compare student features with teacher features; which
//! features are compared is decided once, before training, from one example forward pass of
//! each network ([`FeatureObjective::resolve`]), and the teacher's side of every pair is reduced
//! to a *view* ([`ResolvedFeatures::teacher_views`]): the feature itself, or its attention map
//! for attention transfer. Views depend only on the frozen teacher and the input, so a training
//! run without augmentation computes them once for the whole training set
//! ([`TeacherViews::compute`]) instead of running the teacher at every step.
//!
//! Every feature objective adds its weighted term to the student's cross-entropy, as the
//! reference implementations of these methods do.

use std::sync::Arc;

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use super::loss::cross_entropy;
use super::method_error::MethodError;
use super::methods::regressor::FitNetRegressor;
use crate::backend::{self, ComputeDevice};
use crate::data::Dataset;
use crate::models::Network;
use crate::models::network::{Feature, FeatureTensor};

/// The features a feature method compares (`[distill.features]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturePairing {
    /// A student feature name (`hidden1`, `block2`, ...); default: its last feature.
    #[serde(default)]
    pub student: Option<String>,
    /// A teacher feature name; default: its last feature. Attention transfer uses the names
    /// only when both are given; otherwise it pairs every student convolution stage with the
    /// last teacher stage of the same resolution.
    #[serde(default)]
    pub teacher: Option<String>,
}

/// A feature as a `[batch, values]` matrix: flat features unchanged, maps flattened per sample
/// in channel, row, column order (the input the relation-based methods take).
pub fn flatten_feature(feature: FeatureTensor) -> Tensor<2> {
    match feature {
        FeatureTensor::Flat(values) => values,
        FeatureTensor::Map(map) => {
            let [batch, channels, height, width] = map.dims();
            map.reshape([batch, channels * height * width])
        }
    }
}

/// A distillation loss on intermediate features: what a feature method's student minimises
/// besides its cross-entropy. Each feature method implements it in its own module.
pub trait FeatureLoss: std::fmt::Debug + Send + Sync {
    /// The method's short name, as in experiment files.
    fn name(&self) -> &'static str;

    /// The (student, teacher) feature indices compared, from example features and the features
    /// the experiment file names (if any). By default one pair: the named features, or each
    /// network's last.
    fn pairs(
        &self,
        student: &[Feature],
        teacher: &[Feature],
        named_student: Option<usize>,
        named_teacher: Option<usize>,
    ) -> Result<Vec<(usize, usize)>, String> {
        default_pair(self.name(), student, teacher, named_student, named_teacher).map(|p| vec![p])
    }

    /// The teacher's side of a pair, from its feature (no gradient flows); by default the
    /// feature itself.
    fn teacher_view(&self, feature: FeatureTensor) -> FeatureTensor {
        match feature {
            FeatureTensor::Map(map) => FeatureTensor::Map(map.detach()),
            FeatureTensor::Flat(values) => FeatureTensor::Flat(values.detach()),
        }
    }

    /// Whether each pair needs a learned regressor trained with the student (FitNets).
    fn uses_regressors(&self) -> bool {
        false
    }

    /// The weighted term of one batch: the student's features of every pair against the
    /// teacher's views, with the regressors when [`FeatureLoss::uses_regressors`].
    fn term(
        &self,
        students: Vec<FeatureTensor>,
        views: Vec<FeatureTensor>,
        regressors: &[FitNetRegressor],
    ) -> Result<Tensor<1>, MethodError>;
}

/// The one pair most feature methods compare: the named features, or each network's last.
pub fn default_pair(
    method: &str,
    student: &[Feature],
    teacher: &[Feature],
    named_student: Option<usize>,
    named_teacher: Option<usize>,
) -> Result<(usize, usize), String> {
    let last = |features: &[Feature], who: &str| {
        features.len().checked_sub(1).ok_or_else(|| {
            format!(
                "{method}: the {who} has no intermediate features (a network without hidden layers)"
            )
        })
    };
    let s = match named_student {
        Some(s) => s,
        None => last(student, "student")?,
    };
    let t = match named_teacher {
        Some(t) => t,
        None => last(teacher, "teacher")?,
    };
    Ok((s, t))
}

/// A feature method with the names of the features it compares (`None`: the default pairing).
#[derive(Debug, Clone)]
pub struct FeatureObjective {
    /// The method.
    pub method: Arc<dyn FeatureLoss>,
    /// The student feature (`hidden1`, `block2`, ...); by default its last feature, the
    /// penultimate layer's activation.
    pub student_feature: Option<String>,
    /// The teacher feature; by default its last one.
    pub teacher_feature: Option<String>,
}

/// A feature objective with its pairs fixed: indices into the student's and the teacher's
/// [`crate::models::ForwardOutput::features`].
#[derive(Debug, Clone)]
pub struct ResolvedFeatures {
    /// The method.
    pub method: Arc<dyn FeatureLoss>,
    /// (student feature index, teacher feature index), one per compared pair.
    pub pairs: Vec<(usize, usize)>,
    /// Names of the pairs, for messages and results (`hidden1→hidden1`).
    pub description: String,
}

impl FeatureObjective {
    /// Chooses the compared features from one example forward pass of each network, or says
    /// why these networks cannot be compared by this method.
    ///
    /// Attention transfer pairs, by default, every student convolution stage with the last
    /// teacher stage of the same resolution. The other methods compare one pair: the named
    /// features, or each network's last feature.
    pub fn resolve(
        &self,
        student: &[Feature],
        teacher: &[Feature],
    ) -> Result<ResolvedFeatures, String> {
        let method = self.method.name();
        let find = |features: &[Feature], name: &Option<String>, who: &str| match name {
            Some(name) => features
                .iter()
                .position(|f| &f.name == name)
                .ok_or_else(|| {
                    format!(
                        "{method}: the {who} has no feature {name:?}; it has {}",
                        names(features)
                    )
                })
                .map(Some),
            None => Ok(None),
        };
        let named_student = find(student, &self.student_feature, "student")?;
        let named_teacher = find(teacher, &self.teacher_feature, "teacher")?;
        let pairs = self
            .method
            .pairs(student, teacher, named_student, named_teacher)?;
        let description = pairs
            .iter()
            .map(|&(s, t)| format!("{}→{}", student[s].name, teacher[t].name))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(ResolvedFeatures {
            method: self.method.clone(),
            pairs,
            description,
        })
    }
}

/// The names of features, for messages.
pub fn names(features: &[Feature]) -> String {
    if features.is_empty() {
        return "none".to_string();
    }
    features
        .iter()
        .map(|f| f.name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The names and shapes of features, for messages.
pub fn describe_shapes(features: &[Feature]) -> String {
    features
        .iter()
        .map(|f| match &f.value {
            FeatureTensor::Map(map) => {
                let [_, c, h, w] = map.dims();
                format!("{} {c}×{h}×{w}", f.name)
            }
            FeatureTensor::Flat(values) => format!("{} {}", f.name, values.dims()[1]),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The shape of one view, per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewShape {
    /// `[width]`.
    Flat(usize),
    /// `[channels, height, width]`.
    Map(usize, usize, usize),
}

impl ViewShape {
    fn len(&self) -> usize {
        match *self {
            ViewShape::Flat(width) => width,
            ViewShape::Map(c, h, w) => c * h * w,
        }
    }

    fn of(view: &FeatureTensor) -> Self {
        match view {
            FeatureTensor::Flat(values) => ViewShape::Flat(values.dims()[1]),
            FeatureTensor::Map(map) => {
                let [_, c, h, w] = map.dims();
                ViewShape::Map(c, h, w)
            }
        }
    }
}

impl ResolvedFeatures {
    /// The teacher's side of every pair, from the teacher's features (no gradient flows).
    pub fn teacher_views(&self, teacher: &[Feature]) -> Vec<FeatureTensor> {
        self.pairs
            .iter()
            .map(|&(_, t)| self.method.teacher_view(teacher[t].value.clone()))
            .collect()
    }

    /// The (student width, teacher width) of each FitNets regressor this objective needs
    /// (channels for maps), from example features; empty for the other methods.
    pub fn regressor_widths(
        &self,
        student: &[Feature],
        teacher: &[Feature],
    ) -> Vec<(usize, usize)> {
        if !self.method.uses_regressors() {
            return Vec::new();
        }
        let width = |f: &Feature| match &f.value {
            FeatureTensor::Flat(values) => values.dims()[1],
            FeatureTensor::Map(map) => map.dims()[1],
        };
        self.pairs
            .iter()
            .map(|&(s, t)| (width(&student[s]), width(&teacher[t])))
            .collect()
    }

    /// The weighted distillation term of one batch: student features against the teacher's
    /// views (from [`ResolvedFeatures::teacher_views`] or a [`TeacherViews`] cache).
    pub fn term(
        &self,
        student: &[Feature],
        views: Vec<FeatureTensor>,
        regressors: &[FitNetRegressor],
    ) -> Result<Tensor<1>, MethodError> {
        let students = self
            .pairs
            .iter()
            .map(|&(s, _)| student[s].value.clone())
            .collect();
        self.method.term(students, views, regressors)
    }

    /// Cross-entropy on the labelled samples plus [`ResolvedFeatures::term`]; a relation term
    /// that needs more samples than the batch holds (a final batch of one) is left out of that
    /// batch.
    pub fn loss(
        &self,
        logits: Tensor<2>,
        student: &[Feature],
        views: Vec<FeatureTensor>,
        regressors: &[FitNetRegressor],
        labels: Tensor<1, Int>,
        mask: Option<Tensor<1>>,
    ) -> Result<Tensor<1>, MethodError> {
        let hard = cross_entropy(logits, labels, mask);
        match self.term(student, views, regressors) {
            Ok(term) => Ok(hard + term),
            Err(MethodError::BatchTooSmall { .. }) => Ok(hard),
            Err(error) => Err(error),
        }
    }
}

/// The first pair's student feature and teacher view, each as a `[batch, values]` matrix (the
/// input of the methods that compare one pair).
pub fn first_pair(
    students: Vec<FeatureTensor>,
    views: Vec<FeatureTensor>,
) -> (Tensor<2>, Tensor<2>) {
    let student = students
        .into_iter()
        .next()
        .expect("resolved objectives have one pair");
    let view = views.into_iter().next().expect("one view per pair");
    (flatten_feature(student), flatten_feature(view))
}

/// The teacher's views of every training sample, computed once (exact when training inputs
/// are not augmented), row `i` for sample `i`.
#[derive(Debug, Clone)]
pub struct TeacherViews {
    shapes: Vec<ViewShape>,
    row: usize,
    values: Vec<f32>,
}

impl TeacherViews {
    /// Runs the teacher (inference mode) over `data` in chunks and keeps the views `features`
    /// asks for.
    pub fn compute(
        teacher: &Network,
        data: &Dataset,
        features: &ResolvedFeatures,
        device: &ComputeDevice,
    ) -> Self {
        const CHUNK: usize = 512;
        let width = data.shape.len();
        let inference = device.inference();
        let chunks = (0..data.len()).step_by(CHUNK).map(|start| {
            let end = (start + CHUNK).min(data.len());
            let inputs = backend::matrix(
                data.features[start * width..end * width].to_vec(),
                end - start,
                width,
                &inference,
            );
            teacher.forward(inputs, None).features
        });
        Self::from_feature_chunks(chunks, features)
    }

    /// The views `features` asks for, from the teacher's features on consecutive chunks of the
    /// samples (each chunk's features in the order the objective was resolved against): for a
    /// teacher whose features were computed elsewhere, such as an ONNX graph's.
    pub fn from_feature_chunks(
        chunks: impl IntoIterator<Item = Vec<Feature>>,
        features: &ResolvedFeatures,
    ) -> Self {
        let mut shapes = Vec::new();
        let mut values = Vec::new();
        for chunk in chunks {
            let views = features.teacher_views(&chunk);
            let Some(rows) = views.first().map(|view| match view {
                FeatureTensor::Flat(t) => t.dims()[0],
                FeatureTensor::Map(t) => t.dims()[0],
            }) else {
                continue;
            };
            if shapes.is_empty() {
                shapes = views.iter().map(ViewShape::of).collect();
            }
            let host: Vec<Vec<f32>> = views
                .into_iter()
                .map(|view| backend::to_host(flatten_feature(view)))
                .collect();
            for r in 0..rows {
                for (shape, block) in shapes.iter().zip(&host) {
                    let len = shape.len();
                    values.extend_from_slice(&block[r * len..(r + 1) * len]);
                }
            }
        }
        let row = shapes.iter().map(ViewShape::len).sum();
        Self {
            shapes,
            row,
            values,
        }
    }

    /// Number of samples covered.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.row).unwrap_or(0)
    }

    /// True when no sample is covered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.values.len() * std::mem::size_of::<f32>()
    }

    /// The views of the samples `indices`, as tensors on `device`.
    pub fn batch(&self, indices: &[usize], device: &burn::tensor::Device) -> Vec<FeatureTensor> {
        let mut offset = 0;
        let mut out = Vec::with_capacity(self.shapes.len());
        for shape in &self.shapes {
            let len = shape.len();
            let mut block = Vec::with_capacity(indices.len() * len);
            for &i in indices {
                let start = i * self.row + offset;
                block.extend_from_slice(&self.values[start..start + len]);
            }
            let flat = backend::matrix(block, indices.len(), len, device);
            out.push(match *shape {
                ViewShape::Flat(_) => FeatureTensor::Flat(flat),
                ViewShape::Map(c, h, w) => {
                    FeatureTensor::Map(flat.reshape([indices.len(), c, h, w]))
                }
            });
            offset += len;
        }
        out
    }

    /// The views of a subset of samples, re-indexed from 0 (for a training set that is a subset
    /// of the samples the views were computed on).
    pub fn subset(&self, indices: &[usize]) -> Self {
        let mut values = Vec::with_capacity(indices.len() * self.row);
        for &i in indices {
            values.extend_from_slice(&self.values[i * self.row..(i + 1) * self.row]);
        }
        Self {
            shapes: self.shapes.clone(),
            row: self.row,
            values,
        }
    }
}

//! Settings of an ONNX teacher: which file, which input, and how raw samples become that input.
//!
//! Plain serde structs, so that an experiment file can embed them (`[teacher] onnx = ...` with a
//! `[teacher.input]` table) and a program can fill them in directly.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the graph's image input orders its axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[N, C, H, W]`: PyTorch's order, and apprentice's own sample order.
    #[default]
    Nchw,
    /// `[N, H, W, C]`: TensorFlow's order; samples are transposed on the way in.
    Nhwc,
}

/// The graph's input and the preprocessing it expects:
/// `input = (raw · scale − mean[c]) / std[c]`, channel by channel.
///
/// apprentice's raw image features are already pixels / 255 (in [0, 1]), so a model trained on
/// `ToTensor()` inputs keeps `scale = 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxInput {
    /// Name of the graph input that receives the samples.
    #[serde(default = "default_input_name")]
    pub name: String,
    /// One sample's shape without the batch axis, in apprentice's order: `[channels, height,
    /// width]` for images, `[features]` for flat vectors. The batch axis is always dynamic.
    pub shape: Vec<usize>,
    /// Axis order of the graph's image input.
    #[serde(default)]
    pub layout: Layout,
    /// Factor applied to the raw values first.
    #[serde(default = "one")]
    pub scale: f32,
    /// Mean subtracted after scaling: one value, or one per channel.
    #[serde(default = "zero_list")]
    pub mean: Vec<f32>,
    /// Standard deviation divided by last: one value, or one per channel.
    #[serde(default = "one_list")]
    pub std: Vec<f32>,
}

/// Everything needed to load an ONNX model as a frozen teacher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxTeacherConfig {
    /// The `.onnx` file.
    pub path: PathBuf,
    /// Its input and preprocessing.
    pub input: OnnxInput,
    /// The graph value holding the logits `[N, classes]`; default: the graph's first output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// A graph value (any output or intermediate value) returned as the teacher's feature, for
    /// feature-based distillation methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// Samples per call of the runtime.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

impl OnnxTeacherConfig {
    /// Settings for `path` with `input`, the default logits output, no feature and the default
    /// batch size.
    pub fn new(path: impl Into<PathBuf>, input: OnnxInput) -> Self {
        Self {
            path: path.into(),
            input,
            output: None,
            feature: None,
            batch_size: default_batch_size(),
        }
    }
}

impl OnnxInput {
    /// An input named `name` of one sample shaped `shape`, NCHW, without preprocessing.
    pub fn new(name: impl Into<String>, shape: Vec<usize>) -> Self {
        Self {
            name: name.into(),
            shape,
            layout: Layout::Nchw,
            scale: 1.0,
            mean: zero_list(),
            std: one_list(),
        }
    }

    /// Number of channels: the first axis of an image shape, 1 for a flat vector.
    pub fn channels(&self) -> usize {
        if self.shape.len() == 3 {
            self.shape[0]
        } else {
            1
        }
    }

    /// Values in one sample.
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }
}

fn default_input_name() -> String {
    "images".into()
}

fn one() -> f32 {
    1.0
}

fn zero_list() -> Vec<f32> {
    vec![0.0]
}

fn one_list() -> Vec<f32> {
    vec![1.0]
}

fn default_batch_size() -> usize {
    256
}

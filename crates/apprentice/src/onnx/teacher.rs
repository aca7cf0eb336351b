//! A frozen teacher read from an ONNX file (a model trained elsewhere, e.g. exported from
//! PyTorch with `torch.onnx.export`), run by tract, a pure-Rust ONNX runtime.
//!
//! The file is checked before tract sees it, so that the usual mistakes (a file that is not
//! ONNX, a wrong input name, a wrong input shape, a wrong output name) give one line naming the
//! file and what it does hold, instead of a runtime's stack of causes.

use std::path::Path;
use std::sync::Arc;

use prost::Message;
use rayon::prelude::*;
use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::dimension;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

use super::config::{Layout, OnnxTeacherConfig};
use super::error::{OnnxError, one_line};

/// ONNX's element type code for float32 (`TensorProto.DataType.FLOAT`).
const ONNX_FLOAT: i32 = 1;

/// What one pass of the teacher returns for a batch of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct TeacherOutput {
    /// `[samples, classes]` logits, row after row.
    pub logits: Vec<f32>,
    /// The named feature value, when the settings ask for one.
    pub feature: Option<FeatureOutput>,
}

/// An intermediate value of the teacher's graph, for feature-based distillation.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureOutput {
    /// The shape of one sample's feature (without the batch axis), e.g. `[96, 7, 7]`.
    pub shape: Vec<usize>,
    /// `samples × shape.product()` values, sample after sample.
    pub values: Vec<f32>,
}

/// An ONNX model loaded as a frozen teacher: raw samples in, logits (and optionally a feature)
/// out, in batches. Cheap to share between threads.
#[derive(Debug, Clone)]
pub struct OnnxTeacher {
    config: OnnxTeacherConfig,
    plan: Arc<TypedRunnableModel>,
    num_classes: usize,
    /// Values held in the graph's weights (its initializers).
    parameters: usize,
    /// Per channel: `input = raw · multiplier[c] − offset[c]`, the settings' preprocessing
    /// reordered so that one multiply-add per value does it.
    channel_affine: Vec<(f32, f32, f32)>,
}

impl OnnxTeacher {
    /// Reads and checks the file, then builds tract's optimised plan for a dynamic batch size.
    pub fn load(config: &OnnxTeacherConfig) -> Result<Self, OnnxError> {
        let path = config.path.as_path();
        check_settings(config)?;
        let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let proto = decode_model(path, &bytes)?;
        let graph = proto.graph.as_ref().expect("decode_model checks the graph");
        check_input(path, graph, config)?;
        let logits_name = match &config.output {
            Some(name) => name.clone(),
            None => graph
                .output
                .first()
                .map(|o| o.name.clone())
                .ok_or_else(|| OnnxError::NotOnnx {
                    path: path.to_path_buf(),
                    reason: "its graph has no output".into(),
                })?,
        };
        check_value_name(path, graph, &logits_name, "logits")?;
        if let Some(feature) = &config.feature {
            check_value_name(path, graph, feature, "feature")?;
        }
        let parameters = graph
            .initializer
            .iter()
            .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>())
            .sum();
        let plan = build_plan(path, &proto, config, &logits_name)?;
        let runtime = |message: String| OnnxError::Runtime {
            path: path.to_path_buf(),
            message,
        };
        let logits_fact = plan
            .model()
            .output_fact(0)
            .map_err(|e| runtime(one_line(e)))?;
        let dims = logits_fact.shape.as_concrete().map(|d| d.to_vec());
        let num_classes = match logits_fact.shape.rank() {
            2 => logits_fact.shape[1].to_usize().ok(),
            _ => None,
        };
        let Some(num_classes) = num_classes.filter(|&k| k > 0) else {
            return Err(OnnxError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "output {logits_name:?} has shape {:?} ({dims:?}); expected logits [N, classes]",
                    logits_fact.shape
                ),
            });
        };
        let channels = config.input.channels();
        let pick = |values: &[f32], c: usize| {
            if values.len() == 1 {
                values[0]
            } else {
                values[c]
            }
        };
        let channel_affine = (0..channels)
            .map(|c| {
                (
                    config.input.scale,
                    pick(&config.input.mean, c),
                    pick(&config.input.std, c),
                )
            })
            .collect();
        Ok(Self {
            config: config.clone(),
            plan,
            num_classes,
            parameters,
            channel_affine,
        })
    }

    /// The settings it was loaded with.
    pub fn config(&self) -> &OnnxTeacherConfig {
        &self.config
    }

    /// Number of classes (the width of the logits).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Values held in the graph's weights (its initializers; batch-norm statistics included
    /// when the exporter did not fold them into the convolutions).
    pub fn parameter_count(&self) -> usize {
        self.parameters
    }

    /// Logits `[samples, classes]` of raw samples laid out one after another in apprentice's
    /// order (channel-major images, as in [`crate::data::Dataset::features`]).
    pub fn logits(&self, samples: &[f32]) -> Result<Vec<f32>, OnnxError> {
        Ok(self.forward(samples)?.logits)
    }

    /// Logits and, when the settings name one, the feature value of raw samples. Batches of
    /// [`OnnxTeacherConfig::batch_size`] run in parallel on rayon's pool; the result is in
    /// sample order whatever the batch size.
    pub fn forward(&self, samples: &[f32]) -> Result<TeacherOutput, OnnxError> {
        let sample_len = self.config.input.sample_len();
        if !samples.len().is_multiple_of(sample_len) {
            return Err(self.invalid(format!(
                "got {} input values, not a whole number of samples of {sample_len} ({:?})",
                samples.len(),
                self.config.input.shape
            )));
        }
        let chunk = self.config.batch_size * sample_len;
        let parts: Vec<TeacherOutput> = samples
            .par_chunks(chunk)
            .map(|batch| self.run_batch(batch))
            .collect::<Result<_, _>>()?;
        let mut logits = Vec::with_capacity(samples.len() / sample_len * self.num_classes);
        let mut feature: Option<FeatureOutput> = None;
        for part in parts {
            logits.extend_from_slice(&part.logits);
            if let Some(part_feature) = part.feature {
                match &mut feature {
                    Some(all) => all.values.extend_from_slice(&part_feature.values),
                    None => feature = Some(part_feature),
                }
            }
        }
        Ok(TeacherOutput { logits, feature })
    }

    /// Runs one batch through the plan.
    fn run_batch(&self, batch: &[f32]) -> Result<TeacherOutput, OnnxError> {
        let input = &self.config.input;
        let count = batch.len() / input.sample_len();
        let values = self.preprocess(batch);
        let mut dims = vec![count];
        match (input.layout, input.shape.as_slice()) {
            (Layout::Nhwc, &[c, h, w]) => dims.extend([h, w, c]),
            (_, shape) => dims.extend_from_slice(shape),
        }
        let tensor = Tensor::from_shape(&dims, &values).map_err(|e| self.runtime(e))?;
        let outputs = self
            .plan
            .run(tvec![tensor.into_tvalue()])
            .map_err(|e| self.runtime(e))?;
        let logits = self.to_f32(&outputs[0])?;
        if logits.len() != count * self.num_classes {
            return Err(self.invalid(format!(
                "the logits of {count} samples hold {} values; expected {count} × {}",
                logits.len(),
                self.num_classes
            )));
        }
        let feature = match outputs.get(1) {
            Some(value) => Some(FeatureOutput {
                shape: value.shape().iter().skip(1).copied().collect(),
                values: self.to_f32(value)?,
            }),
            None => None,
        };
        Ok(TeacherOutput { logits, feature })
    }

    /// Applies the preprocessing and, for NHWC graphs, moves channels last.
    fn preprocess(&self, batch: &[f32]) -> Vec<f32> {
        let input = &self.config.input;
        let sample_len = input.sample_len();
        let channels = input.channels();
        let plane = sample_len / channels;
        let mut out = vec![0.0f32; batch.len()];
        for (sample, target) in batch
            .chunks_exact(sample_len)
            .zip(out.chunks_exact_mut(sample_len))
        {
            for (c, &(scale, mean, std)) in self.channel_affine.iter().enumerate() {
                let source = &sample[c * plane..(c + 1) * plane];
                for (p, &raw) in source.iter().enumerate() {
                    // Same operations in the same order as the usual `(x * s - m) / d`, so
                    // that the values match a PyTorch pipeline bit for bit.
                    let value = (raw * scale - mean) / std;
                    let index = match input.layout {
                        Layout::Nchw => c * plane + p,
                        Layout::Nhwc => p * channels + c,
                    };
                    target[index] = value;
                }
            }
        }
        out
    }

    fn to_f32(&self, value: &TValue) -> Result<Vec<f32>, OnnxError> {
        let cast = value.cast_to::<f32>().map_err(|e| self.runtime(e))?;
        let values = cast
            .to_plain_array_view::<f32>()
            .map_err(|e| self.runtime(e))?;
        Ok(values.iter().copied().collect())
    }

    fn invalid(&self, message: String) -> OnnxError {
        OnnxError::Invalid {
            path: self.config.path.clone(),
            message,
        }
    }

    fn runtime(&self, error: impl std::fmt::Display) -> OnnxError {
        OnnxError::Runtime {
            path: self.config.path.clone(),
            message: one_line(error),
        }
    }
}

/// Checks the settings that do not need the file.
fn check_settings(config: &OnnxTeacherConfig) -> Result<(), OnnxError> {
    let invalid = |message: String| OnnxError::Invalid {
        path: config.path.clone(),
        message,
    };
    let input = &config.input;
    if !matches!(input.shape.len(), 1 | 3) || input.shape.contains(&0) {
        return Err(invalid(format!(
            "input shape {:?}: expected [channels, height, width] or [features], each at least 1",
            input.shape
        )));
    }
    let channels = input.channels();
    for (key, values) in [("mean", &input.mean), ("std", &input.std)] {
        if values.len() != 1 && values.len() != channels {
            return Err(invalid(format!(
                "input {key}: expected 1 or {channels} values (one per channel), found {}",
                values.len()
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(invalid(format!("input {key}: expected finite numbers")));
        }
    }
    if input.std.contains(&0.0) || !input.scale.is_finite() {
        return Err(invalid(
            "input std must be non-zero and scale finite".into(),
        ));
    }
    if config.batch_size == 0 {
        return Err(invalid("batch_size must be at least 1".into()));
    }
    Ok(())
}

/// Decodes the protobuf and checks that it holds a graph.
fn decode_model(path: &Path, bytes: &[u8]) -> Result<pb::ModelProto, OnnxError> {
    let not_onnx = |reason: String| OnnxError::NotOnnx {
        path: path.to_path_buf(),
        reason,
    };
    let proto = pb::ModelProto::decode(bytes)
        .map_err(|e| not_onnx(format!("not a protobuf ModelProto: {}", one_line(e))))?;
    // Protobuf skips unknown fields, so some non-ONNX files decode; none of them has a graph
    // with nodes and an IR version.
    match &proto.graph {
        Some(graph) if !graph.node.is_empty() && proto.ir_version > 0 => Ok(proto),
        _ => Err(not_onnx("no graph of operators in it".into())),
    }
}

/// The graph's real inputs: declared inputs that are not weights (old exporters list the
/// initializers among the inputs too).
fn graph_inputs(graph: &pb::GraphProto) -> Vec<&pb::ValueInfoProto> {
    let weights: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    graph
        .input
        .iter()
        .filter(|i| !weights.contains(i.name.as_str()))
        .collect()
}

/// Checks the input's name, type and declared shape against the settings.
fn check_input(
    path: &Path,
    graph: &pb::GraphProto,
    config: &OnnxTeacherConfig,
) -> Result<(), OnnxError> {
    let inputs = graph_inputs(graph);
    let name = &config.input.name;
    let Some(input) = inputs.iter().find(|i| &i.name == name) else {
        return Err(OnnxError::MissingInput {
            path: path.to_path_buf(),
            name: name.clone(),
            available: inputs.iter().map(|i| i.name.clone()).collect(),
        });
    };
    if inputs.len() > 1 {
        return Err(OnnxError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "the graph has {} inputs ({}); a teacher takes exactly one",
                inputs.len(),
                inputs
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let Some(pb::type_proto::Value::TensorType(tensor)) =
        input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Ok(());
    };
    if tensor.elem_type != ONNX_FLOAT {
        return Err(OnnxError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "input {name:?} has element type {} (ONNX code); expected float32 (1)",
                tensor.elem_type
            ),
        });
    }
    let Some(shape) = &tensor.shape else {
        return Ok(());
    };
    let mut expected: Vec<usize> = config.input.shape.clone();
    if let (Layout::Nhwc, &[c, h, w]) = (config.input.layout, expected.as_slice()) {
        expected = vec![h, w, c];
    }
    let declared: Vec<Option<i64>> = shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(dimension::Value::DimValue(v)) => Some(v),
            _ => None,
        })
        .collect();
    let fits = declared.len() == expected.len() + 1
        && declared[1..]
            .iter()
            .zip(&expected)
            .all(|(d, &e)| d.is_none_or(|d| d == e as i64));
    if fits {
        return Ok(());
    }
    let declared_text: Vec<String> = shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(dimension::Value::DimValue(v)) => v.to_string(),
            Some(dimension::Value::DimParam(p)) => p.clone(),
            None => "?".into(),
        })
        .collect();
    let expected_text: Vec<String> = std::iter::once("N".to_string())
        .chain(expected.iter().map(|d| d.to_string()))
        .collect();
    Err(OnnxError::InputShape {
        path: path.to_path_buf(),
        name: name.clone(),
        declared: format!("[{}]", declared_text.join(", ")),
        expected: format!("[{}]", expected_text.join(", ")),
    })
}

/// Checks that `name` is a value of the graph: an output, or any node's output.
fn check_value_name(
    path: &Path,
    graph: &pb::GraphProto,
    name: &str,
    role: &'static str,
) -> Result<(), OnnxError> {
    let known = graph.output.iter().any(|o| o.name == name)
        || graph
            .node
            .iter()
            .any(|n| n.output.iter().any(|o| o == name));
    if known {
        return Ok(());
    }
    Err(OnnxError::MissingOutput {
        path: path.to_path_buf(),
        name: name.to_owned(),
        role,
        available: graph.output.iter().map(|o| o.name.clone()).collect(),
    })
}

/// Parses the graph with tract, fixes the input to `[N, ...]` with a symbolic batch size,
/// selects the logits (and feature) outputs and optimises.
fn build_plan(
    path: &Path,
    proto: &pb::ModelProto,
    config: &OnnxTeacherConfig,
    logits_name: &str,
) -> Result<Arc<TypedRunnableModel>, OnnxError> {
    let runtime = |error: TractError| OnnxError::Runtime {
        path: path.to_path_buf(),
        message: one_line(error),
    };
    // Weights stored beside the model (external data) are found relative to its folder.
    let folder = path.parent().and_then(|p| p.to_str());
    let parsed = tract_onnx::onnx().parse(proto, folder).map_err(runtime)?;
    let mut model = parsed.model;
    let batch = model.sym("N");
    let mut dims: Vec<TDim> = vec![batch.into()];
    let input = &config.input;
    match (input.layout, input.shape.as_slice()) {
        (Layout::Nhwc, &[c, h, w]) => dims.extend([h, w, c].map(TDim::from)),
        (_, shape) => dims.extend(shape.iter().map(|&d| TDim::from(d))),
    }
    model
        .set_input_fact(0, f32::fact(dims).into())
        .map_err(runtime)?;
    let mut outlets = Vec::new();
    for name in std::iter::once(logits_name).chain(config.feature.as_deref()) {
        let outlet =
            parsed
                .outlets_by_name
                .get(name)
                .copied()
                .ok_or_else(|| OnnxError::MissingOutput {
                    path: path.to_path_buf(),
                    name: name.to_owned(),
                    role: if name == logits_name {
                        "logits"
                    } else {
                        "feature"
                    },
                    available: Vec::new(),
                })?;
        outlets.push(outlet);
    }
    model.select_output_outlets(&outlets).map_err(runtime)?;
    model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(runtime)
}

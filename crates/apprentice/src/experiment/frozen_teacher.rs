//! A teacher trained outside apprentice and frozen (`[teacher] onnx = ...`): everything the
//! students need from it is computed once per seed — its logits on every split and, when
//! `teacher.feature` names a graph value, that value on the training inputs.

use crate::distill::state::sha256_hex;
use crate::error::{Error, Result};
use crate::models::network::{Feature, FeatureTensor};
use crate::onnx::OnnxTeacherConfig;

/// An ONNX teacher's outputs on one seed's splits.
pub(super) struct FrozenTeacher {
    /// SHA-256 of the model file and of the settings it runs with: the teacher's identity in
    /// checkpoint fingerprints and teacher caches.
    pub(super) digest: String,
    /// Logits on the training split, row `i` for sample `i`.
    pub(super) train: Vec<f32>,
    /// Logits on the validation split.
    pub(super) validation: Vec<f32>,
    /// Logits on the test split.
    pub(super) test: Vec<f32>,
    /// `teacher.feature` on the training split: one sample's shape and every sample's values.
    pub(super) feature: Option<(Vec<usize>, Vec<f32>)>,
}

/// The identity of an ONNX teacher: the file's bytes and the settings that shape its inputs
/// and outputs (another preprocessing gives other logits, hence another teacher).
pub fn onnx_teacher_digest(settings: &OnnxTeacherConfig) -> Result<String> {
    let bytes = std::fs::read(&settings.path).map_err(|source| Error::Io {
        path: settings.path.clone(),
        source,
    })?;
    let described = serde_json::to_string(&(&settings.input, &settings.output, &settings.feature))
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let mut hashed = sha256_hex(&bytes).into_bytes();
    hashed.extend_from_slice(described.as_bytes());
    Ok(sha256_hex(&hashed))
}

impl FrozenTeacher {
    /// `teacher.feature` of the training samples `rows` as the feature named `name`, on
    /// `device`: an image-shaped value `[C, H, W]` as a map, any other as a flat vector.
    pub(super) fn feature_rows(
        &self,
        name: &str,
        rows: std::ops::Range<usize>,
        device: &burn::tensor::Device,
    ) -> Option<Feature> {
        let (shape, values) = self.feature.as_ref()?;
        let len: usize = shape.iter().product();
        let count = rows.len();
        let block = values[rows.start * len..rows.end * len].to_vec();
        let flat = crate::backend::matrix(block, count, len, device);
        let value = match shape.as_slice() {
            &[c, h, w] => FeatureTensor::Map(flat.reshape([count, c, h, w])),
            _ => FeatureTensor::Flat(flat),
        };
        Some(Feature {
            name: name.to_string(),
            value,
        })
    }
}

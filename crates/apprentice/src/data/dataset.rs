//! The in-memory labelled data set every other part of apprentice works on.

/// The shape of one sample: channels × height × width. Flat feature vectors (CSV rows) are
/// `1 × 1 × d`, so that image-only operations (augmentation, convolutions) can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SampleShape {
    /// Number of channels (1 for grey images and flat vectors).
    pub channels: usize,
    /// Image height in pixels (1 for flat vectors).
    pub height: usize,
    /// Image width in pixels, or the feature count of a flat vector.
    pub width: usize,
}

impl SampleShape {
    /// A grey or colour image.
    pub fn image(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// A flat vector of `len` features.
    pub fn flat(len: usize) -> Self {
        Self {
            channels: 1,
            height: 1,
            width: len,
        }
    }

    /// Number of values in one sample.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True when the sample holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the sample is a two-dimensional image (height and width above one).
    pub fn is_image(&self) -> bool {
        self.height > 1 && self.width > 1
    }
}

/// Labelled samples held in memory as `f32` features, row-major, one row per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Short name used in logs and results (e.g. `digits`, `fashion-mnist/train`).
    pub name: String,
    /// `len() * shape.len()` feature values, sample after sample.
    pub features: Vec<f32>,
    /// One class index per sample, each below `num_classes`.
    pub labels: Vec<u32>,
    /// Shape of one sample.
    pub shape: SampleShape,
    /// Number of classes of the task (labels run from 0 to `num_classes - 1`).
    pub num_classes: usize,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the data set has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Feature values of sample `index`.
    pub fn sample(&self, index: usize) -> &[f32] {
        let width = self.shape.len();
        &self.features[index * width..(index + 1) * width]
    }

    /// A new data set holding the samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize], name: impl Into<String>) -> Dataset {
        let width = self.shape.len();
        let mut features = Vec::with_capacity(indices.len() * width);
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices {
            features.extend_from_slice(self.sample(index));
            labels.push(self.labels[index]);
        }
        Dataset {
            name: name.into(),
            features,
            labels,
            shape: self.shape,
            num_classes: self.num_classes,
        }
    }

    /// Checks the invariants the other data functions rely on: `features` holds exactly
    /// `len() * shape.len()` values and every label is below `num_classes`.
    pub fn validate(&self) -> Result<(), super::DataError> {
        let expected = self.len().checked_mul(self.shape.len());
        if expected != Some(self.features.len()) {
            return Err(super::DataError::Invalid(format!(
                "data set {}: expected {} samples of {} values, found {} values",
                self.name,
                self.len(),
                self.shape.len(),
                self.features.len()
            )));
        }
        if let Some(&label) = self
            .labels
            .iter()
            .find(|&&l| l as usize >= self.num_classes)
        {
            return Err(super::DataError::Invalid(format!(
                "data set {}: expected labels below {} classes, found label {label}",
                self.name, self.num_classes
            )));
        }
        Ok(())
    }

    /// Number of samples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &label in &self.labels {
            counts[label as usize] += 1;
        }
        counts
    }
}

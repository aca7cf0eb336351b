//! Feature standardisation with statistics fitted on the training split only.

use super::{Dataset, SampleShape};

/// Standard deviations below this are treated as 1, so constant pixels (image borders that
/// are always 0) stay finite instead of being divided by zero.
const MIN_STD: f64 = 1e-6;

/// Which statistics a [`Normalizer`] fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Normalization {
    /// Leave features unchanged.
    None,
    /// One mean and standard deviation per channel, over all its pixels (the usual choice
    /// for images, as it keeps spatial structure intact). A flat vector has one channel, so
    /// all its features share one mean and deviation.
    #[default]
    Channel,
    /// One mean and standard deviation per feature value (the usual choice for tabular data).
    Feature,
}

/// Per-feature affine standardisation, `(x - mean) / std`.
///
/// `mean` and `std` always hold one entry per feature whatever the mode (channel statistics
/// are repeated over the channel's pixels), so applying is a single loop.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalizer {
    /// The statistics that were fitted.
    pub mode: Normalization,
    /// Mean of each feature.
    pub mean: Vec<f32>,
    /// Standard deviation of each feature (never below 1e-6).
    pub std: Vec<f32>,
}

impl Normalizer {
    /// Fits the statistics of `mode` on `train`, accumulating in `f64`. An empty training set
    /// gives the identity.
    pub fn fit(train: &Dataset, mode: Normalization) -> Normalizer {
        let width = train.shape.len();
        let identity = Normalizer {
            mode,
            mean: vec![0.0; width],
            std: vec![1.0; width],
        };
        if width == 0 || train.features.len() < width {
            return identity;
        }
        // Pixels of a channel are contiguous within a sample, so both modes reduce to groups
        // of `group_size` consecutive features sharing one statistic.
        let group_size = match mode {
            Normalization::None => return identity,
            Normalization::Channel => train.shape.height * train.shape.width,
            Normalization::Feature => 1,
        }
        .max(1);
        let groups = width.div_ceil(group_size);
        let samples = train.features.chunks_exact(width);
        let count = (samples.len() * group_size) as f64;

        // Two passes: the second sums squared deviations, which stays accurate for data with
        // a large mean and a small spread, unlike sums of squares.
        let mut sums = vec![0.0f64; groups];
        for sample in samples.clone() {
            for (sum, group) in sums.iter_mut().zip(sample.chunks(group_size)) {
                *sum += group.iter().map(|&v| f64::from(v)).sum::<f64>();
            }
        }
        let means: Vec<f64> = sums.iter().map(|s| s / count).collect();
        let mut squares = vec![0.0f64; groups];
        for sample in samples {
            for ((square, group), &mean) in squares
                .iter_mut()
                .zip(sample.chunks(group_size))
                .zip(&means)
            {
                *square += group
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>();
            }
        }
        let stds: Vec<f64> = squares
            .iter()
            .map(|s| {
                let std = (s / count).sqrt();
                if std < MIN_STD { 1.0 } else { std }
            })
            .collect();
        Normalizer {
            mode,
            mean: (0..width).map(|i| means[i / group_size] as f32).collect(),
            std: (0..width).map(|i| stds[i / group_size] as f32).collect(),
        }
    }

    /// True when this normaliser was fitted on samples of `shape`.
    pub fn fits_shape(&self, shape: SampleShape) -> bool {
        self.mean.len() == shape.len() && self.std.len() == shape.len()
    }

    /// Standardises every sample of `data` in place. `data` must have the shape the
    /// normaliser was fitted on (see [`Normalizer::fits_shape`]).
    pub fn apply(&self, data: &mut Dataset) {
        self.apply_to(&mut data.features);
    }

    /// Standardises `features`, any number of whole samples laid out one after another.
    /// Values past the last whole sample are left unchanged.
    pub fn apply_to(&self, features: &mut [f32]) {
        let width = self.mean.len().min(self.std.len());
        if width == 0 || self.mode == Normalization::None {
            return;
        }
        for sample in features.chunks_exact_mut(width) {
            for ((value, &mean), &std) in sample.iter_mut().zip(&self.mean).zip(&self.std) {
                *value = (*value - mean) / std;
            }
        }
    }

    /// Undoes [`Normalizer::apply_to`]: `value · std + mean`, the raw features back up to float
    /// rounding (a relative 1e-7), for a model that expects raw inputs (an ONNX teacher) while
    /// the students see standardised ones.
    pub fn restore_to(&self, features: &mut [f32]) {
        let width = self.mean.len().min(self.std.len());
        if width == 0 || self.mode == Normalization::None {
            return;
        }
        for sample in features.chunks_exact_mut(width) {
            for ((value, &mean), &std) in sample.iter_mut().zip(&self.mean).zip(&self.std) {
                *value = *value * std + mean;
            }
        }
    }

    /// The standardised value of a raw 0 for each feature: what padding looks like after
    /// normalisation, used to fill pixels that augmentation shifts in.
    pub fn normalized_zero(&self) -> Vec<f32> {
        self.mean
            .iter()
            .zip(&self.std)
            .map(|(&mean, &std)| -mean / std)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two-channel 3×3 images whose channels have different scales.
    fn images() -> Dataset {
        let samples = 50;
        let mut features = Vec::new();
        for s in 0..samples {
            for p in 0..9 {
                features.push(((s * 7 + p * 3) % 11) as f32 / 10.0);
            }
            for p in 0..9 {
                features.push(100.0 + ((s * 5 + p) % 13) as f32 * 4.0);
            }
        }
        Dataset {
            name: "img".into(),
            features,
            labels: vec![0; samples],
            shape: SampleShape::image(2, 3, 3),
            num_classes: 1,
        }
    }

    fn mean_std(values: impl Iterator<Item = f32> + Clone) -> (f64, f64) {
        let n = values.clone().count() as f64;
        let mean = values.clone().map(f64::from).sum::<f64>() / n;
        let var = values.map(|v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn channel_statistics_standardise_each_channel() {
        let mut data = images();
        let normalizer = Normalizer::fit(&data, Normalization::Channel);
        assert_eq!(normalizer.mean.len(), 18);
        assert_eq!(normalizer.mean[0], normalizer.mean[8]);
        assert_ne!(normalizer.mean[0], normalizer.mean[9]);
        normalizer.apply(&mut data);
        for channel in 0..2 {
            let values = data
                .features
                .chunks_exact(18)
                .flat_map(move |s| s[channel * 9..(channel + 1) * 9].iter().copied());
            let (mean, std) = mean_std(values);
            assert!(mean.abs() < 1e-4, "channel {channel} mean {mean}");
            assert!((std - 1.0).abs() < 1e-4, "channel {channel} std {std}");
        }
    }

    #[test]
    fn feature_statistics_standardise_each_feature() {
        let mut data = images();
        let normalizer = Normalizer::fit(&data, Normalization::Feature);
        normalizer.apply(&mut data);
        for feature in 0..18 {
            let values = data.features.chunks_exact(18).map(move |s| s[feature]);
            let (mean, std) = mean_std(values);
            assert!(mean.abs() < 1e-4);
            assert!((std - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn none_leaves_data_unchanged() {
        let mut data = images();
        let before = data.clone();
        let normalizer = Normalizer::fit(&data, Normalization::None);
        normalizer.apply(&mut data);
        assert_eq!(data, before);
        assert!(normalizer.normalized_zero().iter().all(|&z| z == 0.0));
    }

    #[test]
    fn constant_features_stay_finite() {
        let mut data = Dataset {
            name: "c".into(),
            features: vec![3.0, 1.0, 3.0, 2.0, 3.0, 3.0],
            labels: vec![0, 0, 0],
            shape: SampleShape::flat(2),
            num_classes: 1,
        };
        let normalizer = Normalizer::fit(&data, Normalization::Feature);
        assert_eq!(normalizer.std[0], 1.0);
        normalizer.apply(&mut data);
        assert!(data.features.iter().all(|v| v.is_finite()));
        assert_eq!(data.features[0], 0.0);
        assert_eq!(normalizer.normalized_zero()[0], -3.0);
    }

    #[test]
    fn empty_training_set_gives_identity() {
        let data = Dataset {
            name: "e".into(),
            features: vec![],
            labels: vec![],
            shape: SampleShape::flat(4),
            num_classes: 1,
        };
        let normalizer = Normalizer::fit(&data, Normalization::Channel);
        assert_eq!(normalizer.mean, vec![0.0; 4]);
        assert_eq!(normalizer.std, vec![1.0; 4]);
    }

    #[test]
    fn modes_use_kebab_case() {
        let json = serde_json::to_string(&Normalization::Feature).unwrap();
        assert_eq!(json, "\"feature\"");
        let mode: Normalization = serde_json::from_str("\"none\"").unwrap();
        assert_eq!(mode, Normalization::None);
    }
}

//! The data of each stage, the replay buffer and the accuracies a continual run reports.

use super::config::StageConfig;
use crate::data::Dataset;
use crate::data::batch::{epoch_order, mix_seed};
use crate::data::prepare::PreparedData;

/// Separates the permutation generators of `permute_features` from other uses of its seed.
const PERMUTATION_STREAM: u64 = 0x7065_726d_5f66_6561; // "perm_fea"

/// Separates the replay-buffer draws from other generators of the run seed.
const REPLAY_STREAM: u64 = 0x7265_706c_6179_5f62; // "replay_b"

/// One stage's samples from each split, shifted as configured.
#[derive(Debug, Clone)]
pub struct StageData {
    /// Training samples.
    pub train: Dataset,
    /// Validation samples (the curves of this stage's training).
    pub validation: Dataset,
    /// Test samples: this stage's class group in the reported accuracies.
    pub test: Dataset,
}

/// The fixed permutation of `width` features that `permute_features = seed` applies: entry `i`
/// is the original feature placed at position `i`.
pub fn feature_permutation(width: usize, seed: u64) -> Vec<usize> {
    epoch_order(width, mix_seed(seed, PERMUTATION_STREAM), 0)
}

/// The samples of `data` whose class is in `classes`, in their original order, with features
/// reordered by `permutation` when given.
pub fn select(
    data: &Dataset,
    classes: &[usize],
    permutation: Option<&[usize]>,
    name: String,
) -> Dataset {
    let indices: Vec<usize> = (0..data.len())
        .filter(|&i| classes.contains(&(data.labels[i] as usize)))
        .collect();
    let mut part = data.subset(&indices, name);
    if let Some(permutation) = permutation {
        let width = part.shape.len();
        let mut row = vec![0.0; width];
        for sample in part.features.chunks_exact_mut(width) {
            for (slot, &source) in row.iter_mut().zip(permutation) {
                *slot = sample[source];
            }
            sample.copy_from_slice(&row);
        }
    }
    part
}

/// Every stage's samples from the prepared splits. Fails when a stage names a class the data
/// does not have, or has no training or test sample.
pub fn stage_data(data: &PreparedData, stages: &[StageConfig]) -> Result<Vec<StageData>, String> {
    let classes = data.train.num_classes;
    let width = data.train.shape.len();
    stages
        .iter()
        .enumerate()
        .map(|(index, stage)| {
            if let Some(&class) = stage.classes.iter().find(|&&c| c >= classes) {
                return Err(format!(
                    "stages[{index}].classes: class {class} is not in the data, which has classes 0 to {}",
                    classes - 1
                ));
            }
            let permutation = stage.permute_features.map(|s| feature_permutation(width, s));
            let part = |split: &Dataset, what: &str| {
                select(
                    split,
                    &stage.classes,
                    permutation.as_deref(),
                    format!("{}/stage-{}-{what}", data.train.name, index + 1),
                )
            };
            let stage_data = StageData {
                train: part(&data.train, "train"),
                validation: part(&data.validation, "validation"),
                test: part(&data.test, "test"),
            };
            if stage_data.train.is_empty() || stage_data.test.is_empty() {
                return Err(format!(
                    "stages[{index}].classes: no training or test samples of classes {:?}",
                    stage.classes
                ));
            }
            Ok(stage_data)
        })
        .collect()
}

/// Indices into `train` of the replay buffer of one earlier stage: `per_class` samples of each
/// class (all of a class that has fewer), drawn by the generator of `(seed, stage, class)` and
/// sorted. A larger buffer contains every smaller one of the same seed.
pub fn replay_indices(train: &Dataset, per_class: usize, seed: u64, stage: usize) -> Vec<usize> {
    let mut by_class = vec![Vec::new(); train.num_classes];
    for (index, &label) in train.labels.iter().enumerate() {
        by_class[label as usize].push(index);
    }
    let stage_seed = mix_seed(mix_seed(seed, REPLAY_STREAM), stage as u64);
    let mut chosen: Vec<usize> = by_class
        .iter()
        .enumerate()
        .filter(|(_, indices)| !indices.is_empty())
        .flat_map(|(class, indices)| {
            epoch_order(indices.len(), stage_seed, class as u64)
                .into_iter()
                .take(per_class)
                .map(|position| indices[position])
        })
        .collect();
    chosen.sort_unstable();
    chosen
}

/// The samples of `parts` one after the other, as one data set named `name`.
pub fn concatenate(parts: &[&Dataset], name: String) -> Dataset {
    let first = parts[0];
    let mut joined = Dataset {
        name,
        features: Vec::new(),
        labels: Vec::new(),
        shape: first.shape,
        num_classes: first.num_classes,
    };
    for part in parts {
        joined.features.extend_from_slice(&part.features);
        joined.labels.extend_from_slice(&part.labels);
    }
    joined
}

/// Accuracy of `logits` (row-major, `num_classes` columns) when the prediction is the argmax over
/// the `allowed` classes only (ties to the lowest index). NaN when there are no samples.
///
/// Class-incremental accuracy allows every class seen so far; task-aware accuracy allows only
/// the classes of the sample's own stage.
pub fn accuracy_among(
    logits: &[f32],
    num_classes: usize,
    labels: &[u32],
    allowed: &[usize],
) -> f64 {
    if labels.is_empty() {
        return f64::NAN;
    }
    let correct = logits
        .chunks_exact(num_classes)
        .zip(labels)
        .filter(|(row, label)| {
            let mut best: Option<usize> = None;
            for &class in allowed {
                if best.is_none_or(|b| row[class] > row[b] || (row[class] == row[b] && class < b)) {
                    best = Some(class);
                }
            }
            best == Some(**label as usize)
        })
        .count();
    correct as f64 / labels.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SampleShape;

    fn toy(labels: Vec<u32>, num_classes: usize) -> Dataset {
        Dataset {
            name: "toy".into(),
            features: (0..labels.len() * 3).map(|v| v as f32).collect(),
            labels,
            shape: SampleShape::flat(3),
            num_classes,
        }
    }

    #[test]
    fn permutations_are_fixed_and_complete() {
        let a = feature_permutation(50, 7);
        assert_eq!(a, feature_permutation(50, 7));
        assert_ne!(a, feature_permutation(50, 8));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn selection_keeps_the_classes_and_permutes_each_row() {
        let data = toy(vec![0, 1, 2, 1], 3);
        let part = select(&data, &[1], Some(&[2, 0, 1]), "p".into());
        assert_eq!(part.labels, [1, 1]);
        assert_eq!(part.features, [5.0, 3.0, 4.0, 11.0, 9.0, 10.0]);
    }

    #[test]
    fn replay_buffers_are_stratified_seeded_and_nested() {
        let labels: Vec<u32> = (0..60).map(|i| (i % 3) as u32).collect();
        let data = toy(labels, 4);
        let small = replay_indices(&data, 4, 1, 0);
        let large = replay_indices(&data, 9, 1, 0);
        assert_eq!(small.len(), 12);
        for class in 0..3 {
            assert_eq!(
                small
                    .iter()
                    .filter(|&&i| data.labels[i] == class as u32)
                    .count(),
                4
            );
        }
        assert!(small.iter().all(|i| large.contains(i)));
        assert_eq!(small, replay_indices(&data, 4, 1, 0));
        assert_ne!(small, replay_indices(&data, 4, 2, 0));
        assert_eq!(replay_indices(&data, 100, 1, 0).len(), 60);
    }

    #[test]
    fn accuracy_among_ignores_classes_not_allowed() {
        // Row 0 predicts class 2 overall, class 0 among {0, 1}; row 1 ties 0 and 1.
        let logits = [1.0, 0.5, 3.0, 2.0, 2.0, 0.0];
        assert_eq!(accuracy_among(&logits, 3, &[0, 0], &[0, 1]), 1.0);
        assert_eq!(accuracy_among(&logits, 3, &[0, 0], &[0, 1, 2]), 0.5);
        assert!(accuracy_among(&[], 3, &[], &[0]).is_nan());
    }
}

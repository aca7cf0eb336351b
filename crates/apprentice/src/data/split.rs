//! Stratified, seeded splits.
//!
//! Each class is shuffled on its own with a generator derived from `(seed, class)`, so every
//! split keeps the class proportions to within one sample per class and the result does not
//! depend on how other classes are laid out. Output splits list their samples in ascending
//! original order, which keeps results stable and independent of hashing.

use rand::seq::SliceRandom;

use super::batch::{mix_seed, rng_for};
use super::{DataError, Dataset};

/// Separates the split generators from other generators derived from the same seed.
const SPLIT_STREAM: u64 = 0x7370_6c69_745f_7374; // "split_st"
const SUBSET_STREAM: u64 = 0x7375_6273_6574_5f73; // "subset_s"

/// A data set divided into training, validation and test parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    /// Samples to train on.
    pub train: Dataset,
    /// Samples for model selection and early stopping.
    pub validation: Dataset,
    /// Samples held back for the final measurement.
    pub test: Dataset,
}

/// Indices of each class in ascending order; labels must already be checked.
fn indices_by_class(labels: &[u32], num_classes: usize) -> Vec<Vec<usize>> {
    let mut by_class = vec![Vec::new(); num_classes];
    for (index, &label) in labels.iter().enumerate() {
        if let Some(class) = by_class.get_mut(label as usize) {
            class.push(index);
        }
    }
    by_class
}

/// `indices` shuffled by the generator of `(seed, stream, class)`.
fn shuffled(mut indices: Vec<usize>, seed: u64, stream: u64, class: usize) -> Vec<usize> {
    let mut rng = rng_for(mix_seed(mix_seed(seed, stream), class as u64));
    indices.shuffle(&mut rng);
    indices
}

/// Number of samples a fraction of `count` rounds to, never more than `count`.
fn share(fraction: f64, count: usize) -> usize {
    ((fraction * count as f64).round() as usize).min(count)
}

fn check_fraction(what: &str, fraction: f64) -> Result<(), DataError> {
    if (0.0..1.0).contains(&fraction) {
        Ok(())
    } else {
        Err(DataError::Invalid(format!(
            "expected a {what} fraction in [0, 1), found {fraction}"
        )))
    }
}

/// Splits `data` into parts of `part_fractions` of each class plus the rest (first returned);
/// each part holds sorted original indices.
fn split_indices(
    data: &Dataset,
    part_fractions: &[f64],
    seed: u64,
) -> Result<Vec<Vec<usize>>, DataError> {
    data.validate()?;
    let mut parts = vec![Vec::new(); part_fractions.len() + 1];
    for (class, indices) in indices_by_class(&data.labels, data.num_classes)
        .into_iter()
        .enumerate()
    {
        let count = indices.len();
        let mut rest = shuffled(indices, seed, SPLIT_STREAM, class).into_iter();
        for (part, &fraction) in parts[1..].iter_mut().zip(part_fractions) {
            part.extend(rest.by_ref().take(share(fraction, count)));
        }
        parts[0].extend(rest);
    }
    for part in &mut parts {
        part.sort_unstable();
    }
    Ok(parts)
}

fn empty_split_error(data: &Dataset, split: &str, fraction: f64) -> DataError {
    DataError::Invalid(format!(
        "data set {}: a {split} fraction of {fraction} of {} samples gives an empty {split} split; \
         expected a larger fraction or more data",
        data.name,
        data.len()
    ))
}

/// Splits `data` into train, validation and test parts, stratified by class.
///
/// Per class, `round(fraction × class size)` samples go to test and to validation and the rest
/// to train. Fractions must lie in `[0, 1)` and sum to less than 1; a part may be empty only
/// when its fraction is 0. Parts are named `<name>/train`, `<name>/validation`, `<name>/test`.
pub fn stratified_split(
    data: &Dataset,
    validation_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<Splits, DataError> {
    check_fraction("validation", validation_fraction)?;
    check_fraction("test", test_fraction)?;
    if validation_fraction + test_fraction >= 1.0 {
        return Err(DataError::Invalid(format!(
            "expected validation and test fractions summing to less than 1, found \
             {validation_fraction} + {test_fraction}"
        )));
    }
    let parts = split_indices(data, &[test_fraction, validation_fraction], seed)?;
    let [train, test, validation] = [&parts[0], &parts[1], &parts[2]];
    if train.is_empty() {
        return Err(empty_split_error(
            data,
            "train",
            1.0 - validation_fraction - test_fraction,
        ));
    }
    if validation.is_empty() && validation_fraction > 0.0 {
        return Err(empty_split_error(data, "validation", validation_fraction));
    }
    if test.is_empty() && test_fraction > 0.0 {
        return Err(empty_split_error(data, "test", test_fraction));
    }
    Ok(Splits {
        train: data.subset(train, format!("{}/train", data.name)),
        validation: data.subset(validation, format!("{}/validation", data.name)),
        test: data.subset(test, format!("{}/test", data.name)),
    })
}

/// Holds out a stratified `fraction` of `data`, returning `(rest, held_out)`: the way to carve
/// a validation set out of an official training set.
///
/// A name ending in `/train` keeps it for the rest and gets `/validation` in its place for the
/// held-out part (`fashion-mnist/train` → `fashion-mnist/validation`); any other name gets
/// `/train` and `/validation` appended.
pub fn stratified_holdout(
    data: &Dataset,
    fraction: f64,
    seed: u64,
) -> Result<(Dataset, Dataset), DataError> {
    check_fraction("held-out", fraction)?;
    let parts = split_indices(data, &[fraction], seed)?;
    let (rest, held_out) = (&parts[0], &parts[1]);
    if rest.is_empty() {
        return Err(empty_split_error(data, "train", 1.0 - fraction));
    }
    if held_out.is_empty() && fraction > 0.0 {
        return Err(empty_split_error(data, "held-out", fraction));
    }
    let (rest_name, held_name) = match data.name.strip_suffix("/train") {
        Some(base) => (data.name.clone(), format!("{base}/validation")),
        None => (
            format!("{}/train", data.name),
            format!("{}/validation", data.name),
        ),
    };
    Ok((
        data.subset(rest, rest_name),
        data.subset(held_out, held_name),
    ))
}

/// Indices of a stratified labelled subset for scarce-label training: `round(fraction ×
/// class size)` samples of each class, but at least one of every class that has samples,
/// sorted ascending. `fraction` is clamped to `[0, 1]` (NaN counts as 0); labels at or above
/// `num_classes` are not valid classes and are never chosen.
pub fn stratified_subset_indices(
    labels: &[u32],
    num_classes: usize,
    fraction: f64,
    seed: u64,
) -> Vec<usize> {
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    // Bounded by the labels actually present, so a huge `num_classes` allocates nothing.
    let present = labels
        .iter()
        .max()
        .map_or(0, |&m| (m as usize + 1).min(num_classes));
    let mut chosen: Vec<usize> = indices_by_class(labels, present)
        .into_iter()
        .enumerate()
        .filter(|(_, indices)| !indices.is_empty())
        .flat_map(|(class, indices)| {
            let take = share(fraction, indices.len()).max(1);
            let mut picked = shuffled(indices, seed, SUBSET_STREAM, class);
            picked.truncate(take);
            picked
        })
        .collect();
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SampleShape;
    use proptest::prelude::*;

    /// A data set whose single feature is the sample's own index, so splits can be traced.
    fn data_with(labels: Vec<u32>, num_classes: usize) -> Dataset {
        Dataset {
            name: "toy".into(),
            features: (0..labels.len()).map(|i| i as f32).collect(),
            labels,
            shape: SampleShape::flat(1),
            num_classes,
        }
    }

    fn original_indices(part: &Dataset) -> Vec<usize> {
        part.features.iter().map(|&v| v as usize).collect()
    }

    fn labels_strategy() -> impl Strategy<Value = (Vec<u32>, usize)> {
        (1usize..6).prop_flat_map(|classes| {
            (
                proptest::collection::vec(0..classes as u32, 20..300),
                Just(classes),
            )
        })
    }

    proptest! {
        #[test]
        fn split_partitions_and_keeps_proportions(
            (labels, classes) in labels_strategy(),
            validation in 0.0f64..0.4,
            test in 0.0f64..0.4,
            seed: u64,
        ) {
            let data = data_with(labels, classes);
            let splits = match stratified_split(&data, validation, test, seed) {
                Ok(splits) => splits,
                Err(err) => {
                    // Only a small positive fraction that rounds to nothing in every class
                    // may fail.
                    let counts = data.class_counts();
                    let all_round_to_zero = |f: f64| {
                        f > 0.0 && counts.iter().all(|&c| (f * c as f64).round() == 0.0)
                    };
                    prop_assert!(all_round_to_zero(validation) || all_round_to_zero(test), "{err}");
                    return Ok(());
                }
            };
            let mut all: Vec<usize> = [&splits.train, &splits.validation, &splits.test]
                .iter()
                .flat_map(|part| original_indices(part))
                .collect();
            let total = all.len();
            all.sort_unstable();
            all.dedup();
            prop_assert_eq!(all.len(), total, "splits overlap");
            prop_assert_eq!(all, (0..data.len()).collect::<Vec<_>>());
            let counts = data.class_counts();
            for (part, fraction) in [(&splits.validation, validation), (&splits.test, test)] {
                let indices = original_indices(part);
                prop_assert!(indices.windows(2).all(|w| w[0] < w[1]));
                for (class, &got) in part.class_counts().iter().enumerate() {
                    let want = fraction * counts[class] as f64;
                    prop_assert!((got as f64 - want).abs() <= 1.0, "class {class}: {got} vs {want}");
                }
            }
            prop_assert!(original_indices(&splits.train).windows(2).all(|w| w[0] < w[1]));
        }

        #[test]
        fn holdout_partitions(
            (labels, classes) in labels_strategy(),
            fraction in 0.0f64..0.9,
            seed: u64,
        ) {
            let data = data_with(labels, classes);
            if let Ok((rest, held)) = stratified_holdout(&data, fraction, seed) {
                let mut all = original_indices(&rest);
                all.extend(original_indices(&held));
                all.sort_unstable();
                prop_assert_eq!(all, (0..data.len()).collect::<Vec<_>>());
            }
        }

        #[test]
        fn subset_has_every_class(
            (labels, classes) in labels_strategy(),
            fraction in 0.0f64..1.0,
            seed: u64,
        ) {
            let subset = stratified_subset_indices(&labels, classes, fraction, seed);
            prop_assert!(subset.windows(2).all(|w| w[0] < w[1]));
            let data = data_with(labels.clone(), classes);
            let counts = data.class_counts();
            let picked = data.subset(&subset, "s").class_counts();
            for class in 0..classes {
                if counts[class] > 0 {
                    prop_assert!(picked[class] >= 1);
                    let want = (fraction * counts[class] as f64).round().max(1.0) as usize;
                    prop_assert_eq!(picked[class], want);
                }
            }
        }
    }

    #[test]
    fn split_is_deterministic_by_seed() {
        let labels: Vec<u32> = (0..600).map(|i| (i % 3) as u32).collect();
        let data = data_with(labels, 3);
        let a = stratified_split(&data, 0.2, 0.1, 9).unwrap();
        let b = stratified_split(&data, 0.2, 0.1, 9).unwrap();
        let c = stratified_split(&data, 0.2, 0.1, 10).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.test, c.test);
        assert_eq!(a.train.name, "toy/train");
        assert_eq!(a.validation.name, "toy/validation");
        assert_eq!(a.test.name, "toy/test");
        assert_eq!(a.test.class_counts(), vec![20, 20, 20]);
        assert_eq!(a.validation.class_counts(), vec![40, 40, 40]);
        assert_eq!(
            stratified_subset_indices(&data.labels, 3, 0.1, 1),
            stratified_subset_indices(&data.labels, 3, 0.1, 1)
        );
        assert_ne!(
            stratified_subset_indices(&data.labels, 3, 0.1, 1),
            stratified_subset_indices(&data.labels, 3, 0.1, 2)
        );
    }

    #[test]
    fn bad_fractions_are_errors() {
        let data = data_with(vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1], 2);
        for (v, t) in [
            (-0.1, 0.1),
            (1.0, 0.0),
            (0.5, 0.5),
            (f64::NAN, 0.1),
            (0.2, 0.9),
        ] {
            let err = stratified_split(&data, v, t, 0).unwrap_err().to_string();
            assert!(err.starts_with("expected"), "{err}");
        }
        assert!(stratified_holdout(&data, 1.0, 0).is_err());
    }

    #[test]
    fn empty_split_is_an_error() {
        let data = data_with(vec![0, 1, 0, 1], 2);
        let err = stratified_split(&data, 0.1, 0.0, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty validation split"), "{err}");
        let splits = stratified_split(&data, 0.0, 0.0, 0).unwrap();
        assert_eq!(splits.train.len(), 4);
        assert!(splits.validation.is_empty() && splits.test.is_empty());
        assert!(stratified_split(&data_with(vec![], 1), 0.0, 0.0, 0).is_err());
    }

    #[test]
    fn bad_labels_are_errors_not_panics() {
        let data = data_with(vec![0, 5], 2);
        assert!(stratified_split(&data, 0.0, 0.0, 0).is_err());
        assert_eq!(stratified_subset_indices(&[0, 5, 1], 2, 1.0, 0), vec![0, 2]);
        assert_eq!(
            stratified_subset_indices(&[0, 0, 1], 2, f64::NAN, 0).len(),
            2
        );
    }

    #[test]
    fn holdout_names_follow_the_official_split() {
        let mut data = data_with((0..40).map(|i| (i % 2) as u32).collect(), 2);
        data.name = "fashion-mnist/train".into();
        let (rest, held) = stratified_holdout(&data, 0.25, 3).unwrap();
        assert_eq!(rest.name, "fashion-mnist/train");
        assert_eq!(held.name, "fashion-mnist/validation");
        assert_eq!(held.class_counts(), vec![5, 5]);
        assert_eq!(rest.len(), 30);
    }
}

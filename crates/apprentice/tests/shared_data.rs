//! Readers on the real data sets (skipped, with a note, when the shared data folder is absent).

mod common;

use apprentice::data::csv::{CsvOptions, load_csv};
use apprentice::data::digits::load_digits;
use apprentice::data::idx::load_mnist_dir;

#[test]
fn fashion_mnist_loads_with_its_official_split() {
    let Some(root) = common::shared_data("fashion_mnist_loads_with_its_official_split") else {
        return;
    };
    let (train, test) = load_mnist_dir(&root.join("fashion-mnist")).expect("Fashion-MNIST loads");
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.num_classes, 10);
    assert_eq!(train.shape.len(), 784);
    assert!(train.class_counts().iter().all(|&c| c == 6_000));
    assert!(test.class_counts().iter().all(|&c| c == 1_000));
    assert!(train.features.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn the_embedded_digits_equal_the_shared_copy() {
    let Some(root) = common::shared_data("the_embedded_digits_equal_the_shared_copy") else {
        return;
    };
    let shared = load_csv(
        &root.join("digits-8x8/digits.csv.gz"),
        &CsvOptions::default(),
    )
    .expect("digits CSV loads");
    let embedded = load_digits().unwrap();
    assert_eq!(shared.labels, embedded.labels);
    // The embedded set is scaled to [0, 1] (grey levels / 16); the CSV reader keeps raw values.
    for (raw, scaled) in shared.features.iter().zip(&embedded.features) {
        assert!((raw / 16.0 - scaled).abs() < 1e-6);
    }
}

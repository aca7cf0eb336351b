//! Images from folders: Fashion-MNIST written as PNG files reads back as the IDX tensors;
//! resizing, cropping, colour, splits; and bad folders give one-line errors naming the file.

mod common;

use std::path::Path;

use apprentice::data::idx::load_idx_pair;
use apprentice::data::image_folder::{ColorMode, ImageFolderConfig, OnBadImage, load_image_folder};
use image::{GrayImage, Rgb, RgbImage};

/// Folder-safe Fashion-MNIST class names in label order; sorted, they are in another order,
/// so the test sees that labels follow the sorted names.
const FASHION_CLASSES: [&str; 10] = [
    "t-shirt-top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
];

#[test]
fn fashion_mnist_as_png_files_reads_back_as_the_idx_tensors() {
    let Some(shared) =
        common::shared_data("fashion_mnist_as_png_files_reads_back_as_the_idx_tensors")
    else {
        return;
    };
    let fashion = shared.join("fashion-mnist");
    let test = load_idx_pair(
        &fashion.join("t10k-images-idx3-ubyte.gz"),
        &fashion.join("t10k-labels-idx1-ubyte.gz"),
        "fashion-mnist/test",
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    for name in FASHION_CLASSES {
        std::fs::create_dir(root.path().join(name)).unwrap();
    }
    for index in 0..test.len() {
        // IDX values are pixel / 255, so rounding recovers the byte exactly.
        let pixels: Vec<u8> = test
            .sample(index)
            .iter()
            .map(|v| (v * 255.0).round() as u8)
            .collect();
        let class = FASHION_CLASSES[test.labels[index] as usize];
        GrayImage::from_raw(28, 28, pixels)
            .unwrap()
            .save(root.path().join(class).join(format!("{index:05}.png")))
            .unwrap();
    }
    let written = start.elapsed();
    let mut config = ImageFolderConfig::new(28, 28);
    config.color = ColorMode::Grayscale;
    let folder = load_image_folder(root.path(), &config).unwrap();
    println!(
        "{} PNG files: written in {:.2} s, read in {:.2} s",
        test.len(),
        written.as_secs_f64(),
        (start.elapsed() - written).as_secs_f64()
    );
    let mut sorted = FASHION_CLASSES.to_vec();
    sorted.sort();
    assert_eq!(folder.class_names, sorted);
    assert!(folder.test.is_none() && folder.skipped.is_empty());
    let read = &folder.train;
    assert_eq!(read.len(), test.len());
    assert_eq!(read.shape, test.shape);
    assert_eq!(read.num_classes, 10);
    // Class by class in sorted order, then in file-name (= IDX) order.
    let mut expected_features = Vec::new();
    let mut expected_labels = Vec::new();
    for (label, name) in sorted.iter().enumerate() {
        let idx_label = FASHION_CLASSES.iter().position(|c| c == name).unwrap() as u32;
        for index in (0..test.len()).filter(|&i| test.labels[i] == idx_label) {
            expected_features.extend_from_slice(test.sample(index));
            expected_labels.push(label as u32);
        }
    }
    assert_eq!(read.labels, expected_labels);
    assert!(
        read.features
            .iter()
            .zip(&expected_features)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "the pixels differ"
    );
}

/// An RGB image whose pixel (x, y) is (10·x, 20·y, 7) — each position tells where it came from.
fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([(10 * x) as u8, (20 * y) as u8, 7])
    })
}

#[test]
fn images_are_centre_cropped_resized_and_kept_channel_major() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("only")).unwrap();
    gradient(8, 6).save(root.path().join("only/a.png")).unwrap();
    gradient(8, 6).save(root.path().join("only/b.bmp")).unwrap();

    // 8 × 6 already covers 6 × 6: no resize, columns 1..7 kept.
    let config = ImageFolderConfig::new(6, 6);
    let data = load_image_folder(root.path(), &config).unwrap().train;
    assert_eq!(data.len(), 2);
    assert_eq!(
        (data.shape.channels, data.shape.height, data.shape.width),
        (3, 6, 6)
    );
    let sample = data.sample(0);
    for y in 0..6 {
        for x in 0..6 {
            let red = sample[y * 6 + x];
            let green = sample[36 + y * 6 + x];
            let blue = sample[72 + y * 6 + x];
            assert_eq!(red, (10 * (x + 1)) as f32 / 255.0);
            assert_eq!(green, (20 * y) as f32 / 255.0);
            assert_eq!(blue, 7.0 / 255.0);
        }
    }
    assert_eq!(data.sample(0), data.sample(1), "BMP and PNG decode alike");

    // Smaller target: the 8 × 6 image is scaled to 4 × 3, then cropped to 3 × 3.
    let data = load_image_folder(root.path(), &ImageFolderConfig::new(3, 3))
        .unwrap()
        .train;
    assert_eq!(data.shape.len(), 27);
    // Red grows left to right and green top to bottom after resizing too.
    let s = data.sample(0);
    assert!(s[0] < s[2] && s[9] < s[9 + 6], "{s:?}");

    // An explicit resize: shorter side 12 (16 × 12), crop 10 × 10 in its middle.
    let mut config = ImageFolderConfig::new(10, 10);
    config.resize = Some(12);
    config.color = ColorMode::Grayscale;
    let data = load_image_folder(root.path(), &config).unwrap().train;
    assert_eq!(
        (data.shape.channels, data.shape.height, data.shape.width),
        (1, 10, 10)
    );
    assert!(data.features.iter().all(|v| (0.0..=1.0).contains(v)));

    config.resize = Some(8);
    let error = load_image_folder(root.path(), &config)
        .unwrap_err()
        .to_string();
    assert!(error.contains("resize 8"), "{error}");
}

#[test]
fn train_and_test_sub_roots_share_the_training_classes() {
    let root = tempfile::tempdir().unwrap();
    for (split, class, count) in [("train", "cat", 2), ("train", "dog", 3), ("test", "dog", 1)] {
        let folder = root.path().join(split).join(class);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..count {
            GrayImage::from_pixel(4, 4, image::Luma([40 * i as u8]))
                .save(folder.join(format!("{i}.png")))
                .unwrap();
        }
    }
    let mut config = ImageFolderConfig::new(4, 4);
    config.color = ColorMode::Grayscale;
    let folder = load_image_folder(root.path(), &config).unwrap();
    assert_eq!(folder.class_names, ["cat", "dog"]);
    assert_eq!(folder.train.labels, [0, 0, 1, 1, 1]);
    let test = folder.test.expect("a test split");
    assert_eq!(test.labels, [1]);
    assert_eq!(test.num_classes, 2);
    assert!(test.name.ends_with("/test"));

    std::fs::create_dir_all(root.path().join("test/bird")).unwrap();
    GrayImage::new(4, 4)
        .save(root.path().join("test/bird/0.png"))
        .unwrap();
    let error = load_image_folder(root.path(), &config)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("bird") && error.contains("not among the training classes"),
        "{error}"
    );
}

/// A folder with one good image per class, for the error tests.
fn small_folder(root: &Path) {
    for class in ["a", "b"] {
        std::fs::create_dir(root.join(class)).unwrap();
        GrayImage::new(5, 5)
            .save(root.join(class).join("0.png"))
            .unwrap();
    }
}

/// Loads and returns the one-line error, checking that it names `file`.
fn error_naming(root: &Path, config: &ImageFolderConfig, file: &Path) -> String {
    let message = load_image_folder(root, config).unwrap_err().to_string();
    println!("{message}");
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(
        message.contains(&file.display().to_string()),
        "names {}: {message}",
        file.display()
    );
    message
}

#[test]
fn bad_files_and_empty_classes_give_one_line_errors_naming_them() {
    let mut config = ImageFolderConfig::new(5, 5);
    config.color = ColorMode::Grayscale;

    // A corrupt image: stop names it; skip counts it.
    let root = tempfile::tempdir().unwrap();
    small_folder(root.path());
    let corrupt = root.path().join("a/1.png");
    let mut bytes = std::fs::read(root.path().join("a/0.png")).unwrap();
    bytes.truncate(bytes.len() / 2);
    bytes[20] ^= 0xff;
    std::fs::write(&corrupt, bytes).unwrap();
    let message = error_naming(root.path(), &config, &corrupt);
    assert!(message.contains("not a readable image"), "{message}");
    let mut skipping = config.clone();
    skipping.on_error = OnBadImage::Skip;
    let folder = load_image_folder(root.path(), &skipping).unwrap();
    assert_eq!(folder.train.len(), 2);
    assert_eq!(folder.skipped.len(), 1);
    assert_eq!(folder.skipped[0].path, corrupt);

    // A file that is not an image at all.
    let root = tempfile::tempdir().unwrap();
    small_folder(root.path());
    let notes = root.path().join("b/notes.txt");
    std::fs::write(&notes, "labels were checked by hand").unwrap();
    let message = error_naming(root.path(), &config, &notes);
    assert!(message.contains("not an image file"), "{message}");
    let folder = load_image_folder(root.path(), &skipping).unwrap();
    assert_eq!((folder.train.len(), folder.skipped.len()), (2, 1));

    // An image extension on text.
    let fake = root.path().join("b/fake.jpg");
    std::fs::remove_file(&notes).unwrap();
    std::fs::write(&fake, "no pixels here").unwrap();
    error_naming(root.path(), &config, &fake);

    // An empty class folder is an error in both modes: the class could never be learnt.
    let root = tempfile::tempdir().unwrap();
    small_folder(root.path());
    let empty = root.path().join("c");
    std::fs::create_dir(&empty).unwrap();
    let message = error_naming(root.path(), &config, &empty);
    assert!(message.contains("is empty"), "{message}");
    error_naming(root.path(), &skipping, &empty);

    // No class folders at all, and no folder at all.
    let root = tempfile::tempdir().unwrap();
    error_naming(root.path(), &config, root.path());
    let missing = root.path().join("absent");
    error_naming(&missing, &config, &missing);
}

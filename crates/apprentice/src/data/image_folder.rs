//! Images from folders, one folder per class: `root/<class>/*.png|jpg|jpeg|bmp|webp`, or the
//! same under `root/train/` and `root/test/` when the split is given.
//!
//! Every image becomes one sample of the configured size: resized (keeping its aspect ratio)
//! until it covers that size, then centre-cropped, in grey levels or RGB, with values pixel /
//! 255 in channel-major order, exactly like the IDX reader's, so the rest of apprentice treats
//! both alike. Classes are the folder names in sorted order. Decoding is the `image` crate's.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{DataError, Dataset, SampleShape};

/// File extensions read as images (compared without case).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "bmp", "webp"];

/// Colour of the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    /// One channel of grey levels (colour images are converted with the Rec. 709 weights).
    Grayscale,
    /// Three channels, red, green, blue.
    #[default]
    Rgb,
}

/// What to do with a file that is not a readable image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadImage {
    /// Stop with an error naming the file.
    #[default]
    Stop,
    /// Leave it out, and list it in [`ImageFolder::skipped`].
    Skip,
}

/// How an image folder is read: the `[data]` settings of `source = "image-folder"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFolderConfig {
    /// Sample size `[height, width]` after resizing and cropping.
    pub size: [usize; 2],
    /// Grey levels or RGB.
    #[serde(default)]
    pub color: ColorMode,
    /// Length of the shorter side after resizing, before the centre crop (torchvision's
    /// `Resize(n)` then `CenterCrop`); at least the larger of `size`. Default: the smallest
    /// resize that covers `size`, so that images already of that size are left untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<usize>,
    /// Files that are not readable images: stop (default) or skip them.
    #[serde(default)]
    pub on_error: OnBadImage,
    /// Class folder names in label order, when that order is not the sorted one: a teacher
    /// trained elsewhere predicts its classes in its own order. Must name every class folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

impl ImageFolderConfig {
    /// RGB samples of `height × width`, no explicit resize, stopping at bad files.
    pub fn new(height: usize, width: usize) -> Self {
        Self {
            size: [height, width],
            color: ColorMode::Rgb,
            resize: None,
            on_error: OnBadImage::Stop,
            classes: None,
        }
    }

    /// The shape of one sample.
    pub fn sample_shape(&self) -> SampleShape {
        let channels = match self.color {
            ColorMode::Grayscale => 1,
            ColorMode::Rgb => 3,
        };
        SampleShape::image(channels, self.size[0], self.size[1])
    }
}

/// A file left out under [`OnBadImage::Skip`].
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why it could not be read.
    pub reason: String,
}

/// What an image folder holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolder {
    /// Every image of `root/<class>/`, or of `root/train/<class>/` when the split is given.
    pub train: Dataset,
    /// The images of `root/test/<class>/`, when the folder has that split.
    pub test: Option<Dataset>,
    /// Class names in label order (sorted folder names).
    pub class_names: Vec<String>,
    /// Files left out (only under [`OnBadImage::Skip`]), in folder order.
    pub skipped: Vec<SkippedFile>,
}

/// Reads an image folder (see the module documentation). `train/` and `test/` sub-roots are
/// used when `root` holds both; the classes are those of the training part, and a test class
/// folder unknown to it is an error.
pub fn load_image_folder(
    root: &Path,
    config: &ImageFolderConfig,
) -> Result<ImageFolder, DataError> {
    check_config(root, config)?;
    let name = root.file_name().map_or_else(
        || root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (train_root, test_root) = {
        let (train, test) = (root.join("train"), root.join("test"));
        if train.is_dir() && test.is_dir() {
            (train, Some(test))
        } else {
            (root.to_path_buf(), None)
        }
    };
    let class_names = match &config.classes {
        Some(order) => ordered_classes(&train_root, class_folders(&train_root)?, order)?,
        None => class_folders(&train_root)?,
    };
    let mut skipped = Vec::new();
    let train_name = if test_root.is_some() {
        format!("{name}/train")
    } else {
        name.clone()
    };
    let train = read_split(
        &train_root,
        &class_names,
        &train_name,
        config,
        &mut skipped,
        true,
    )?;
    let test = match &test_root {
        Some(test_root) => {
            let test_classes = class_folders(test_root)?;
            if let Some(unknown) = test_classes.iter().find(|c| !class_names.contains(c)) {
                return Err(DataError::format(
                    &test_root.join(unknown).display().to_string(),
                    format!(
                        "class {unknown:?} is not among the training classes ({})",
                        class_names.join(", ")
                    ),
                ));
            }
            let test_name = format!("{name}/test");
            // A class may be absent from the test part; its label stays the training one.
            Some(read_split(
                test_root,
                &class_names,
                &test_name,
                config,
                &mut skipped,
                false,
            )?)
        }
        None => None,
    };
    Ok(ImageFolder {
        train,
        test,
        class_names,
        skipped,
    })
}

/// One image file as a sample of `config`'s shape (values pixel / 255, channel-major).
pub fn load_image(path: &Path, config: &ImageFolderConfig) -> Result<Vec<f32>, DataError> {
    check_config(path, config)?;
    read_image(path, config)
        .map_err(|reason| DataError::format(&path.display().to_string(), reason))
}

fn check_config(root: &Path, config: &ImageFolderConfig) -> Result<(), DataError> {
    let [height, width] = config.size;
    if height == 0 || width == 0 {
        return Err(DataError::format(
            &root.display().to_string(),
            format!(
                "image size {:?}: expected [height, width], each at least 1",
                config.size
            ),
        ));
    }
    if let Some(resize) = config.resize
        && resize < height.max(width)
    {
        return Err(DataError::format(
            &root.display().to_string(),
            format!(
                "resize {resize} is smaller than the crop {height} × {width}; expected at least {}",
                height.max(width)
            ),
        ));
    }
    Ok(())
}

/// The sorted names of the class folders under `root`.
fn class_folders(root: &Path) -> Result<Vec<String>, DataError> {
    let source = root.display().to_string();
    let mut names = Vec::new();
    for entry in read_dir(root)? {
        let path = entry;
        if path.is_dir() {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                return Err(DataError::format(
                    &path.display().to_string(),
                    "expected a class folder name in UTF-8",
                ));
            };
            if !name.starts_with('.') {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(DataError::format(
            &source,
            "expected one folder per class (root/<class>/*.png ...), found no folders",
        ));
    }
    Ok(names)
}

/// The class folders `found` in `root`, in the configured label `order`, which must name each
/// of them once.
fn ordered_classes(
    root: &Path,
    found: Vec<String>,
    order: &[String],
) -> Result<Vec<String>, DataError> {
    let source = root.display().to_string();
    for (index, name) in order.iter().enumerate() {
        if order[..index].contains(name) {
            return Err(DataError::format(
                &source,
                format!("data.image_folder.classes names {name:?} twice"),
            ));
        }
        if !found.contains(name) {
            return Err(DataError::format(
                &source,
                format!(
                    "data.image_folder.classes names {name:?}, but there is no such class folder (found {})",
                    found.join(", ")
                ),
            ));
        }
    }
    if let Some(missing) = found.iter().find(|name| !order.contains(name)) {
        return Err(DataError::format(
            &root.join(missing).display().to_string(),
            "a class folder missing from data.image_folder.classes; list every class in label order",
        ));
    }
    Ok(order.to_vec())
}

/// The entries of a folder, sorted by name so that sample order never depends on the file
/// system.
fn read_dir(folder: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: folder.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(io)? {
        paths.push(entry.map_err(io)?.path());
    }
    paths.sort();
    Ok(paths)
}

/// Reads every class folder of one split. With `require_every_class`, a class without a
/// readable image is an error (a class the model never sees cannot be learnt).
fn read_split(
    root: &Path,
    class_names: &[String],
    name: &str,
    config: &ImageFolderConfig,
    skipped: &mut Vec<SkippedFile>,
    require_every_class: bool,
) -> Result<Dataset, DataError> {
    let shape = config.sample_shape();
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in class_names.iter().enumerate() {
        let folder = root.join(class);
        if !folder.is_dir() {
            continue;
        }
        let files: Vec<PathBuf> = read_dir(&folder)?
            .into_iter()
            .filter(|p| {
                !p.is_dir()
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        let decoded: Vec<Result<Vec<f32>, String>> = files
            .par_iter()
            .map(|path| {
                if !has_image_extension(path) {
                    return Err(format!(
                        "not an image file: expected one of .{}",
                        IMAGE_EXTENSIONS.join(", .")
                    ));
                }
                read_image(path, config)
            })
            .collect();
        let mut count = 0usize;
        for (path, result) in files.iter().zip(decoded) {
            match result {
                Ok(sample) => {
                    features.extend_from_slice(&sample);
                    labels.push(label as u32);
                    count += 1;
                }
                Err(reason) => match config.on_error {
                    OnBadImage::Stop => {
                        return Err(DataError::format(&path.display().to_string(), reason));
                    }
                    OnBadImage::Skip => skipped.push(SkippedFile {
                        path: path.clone(),
                        reason,
                    }),
                },
            }
        }
        if count == 0 && require_every_class {
            let what = if files.is_empty() {
                "is empty"
            } else {
                "holds no readable image"
            };
            return Err(DataError::format(
                &folder.display().to_string(),
                format!(
                    "class folder {what}; expected at least one .png, .jpg, .jpeg, .bmp or .webp image"
                ),
            ));
        }
    }
    let dataset = Dataset {
        name: name.to_owned(),
        features,
        labels,
        shape,
        num_classes: class_names.len(),
    };
    dataset.validate()?;
    Ok(dataset)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Decodes, resizes, crops and converts one image; the error is the reason, on one line.
fn read_image(path: &Path, config: &ImageFolderConfig) -> Result<Vec<f32>, String> {
    let one_line = |e: &dyn std::fmt::Display| e.to_string().replace('\n', " ");
    let image = image::ImageReader::open(path)
        .map_err(|e| one_line(&e))?
        // The content decides the format, so that a JPEG named .png still reads.
        .with_guessed_format()
        .map_err(|e| one_line(&e))?
        .decode()
        .map_err(|e| format!("not a readable image: {}", one_line(&e)))?;
    let [height, width] = config.size;
    let (image_width, image_height) = (image.width() as usize, image.height() as usize);
    if image_width == 0 || image_height == 0 {
        return Err("the image has no pixels".into());
    }
    // The scaled size: the shorter side to `resize`, or just enough to cover the crop.
    let (scaled_height, scaled_width) = match config.resize {
        Some(shorter) => {
            let scale = shorter as f64 / image_height.min(image_width) as f64;
            (
                ((image_height as f64 * scale).round() as usize).max(shorter),
                ((image_width as f64 * scale).round() as usize).max(shorter),
            )
        }
        None => {
            let scale =
                (height as f64 / image_height as f64).max(width as f64 / image_width as f64);
            (
                ((image_height as f64 * scale).round() as usize).max(height),
                ((image_width as f64 * scale).round() as usize).max(width),
            )
        }
    };
    let image = if (scaled_height, scaled_width) == (image_height, image_width) {
        image
    } else {
        image.resize_exact(
            scaled_width as u32,
            scaled_height as u32,
            FilterType::Triangle,
        )
    };
    let top = ((scaled_height - height) / 2) as u32;
    let left = ((scaled_width - width) / 2) as u32;
    let image = image.crop_imm(left, top, width as u32, height as u32);
    let plane = height * width;
    Ok(match config.color {
        ColorMode::Grayscale => image
            .to_luma8()
            .into_raw()
            .into_iter()
            .map(|v| f32::from(v) / 255.0)
            .collect(),
        ColorMode::Rgb => {
            let pixels = image.to_rgb8().into_raw();
            let mut out = vec![0.0f32; 3 * plane];
            for (p, rgb) in pixels.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    out[c * plane + p] = f32::from(rgb[c]) / 255.0;
                }
            }
            out
        }
    })
}

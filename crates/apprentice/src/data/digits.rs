//! The UCI optical digits (8 × 8 grey images, 1797 samples, 10 classes), embedded in the
//! library so that examples and tests run without any download.

use super::csv::{CsvOptions, LabelColumn, parse_csv};
use super::{DataError, Dataset, SampleShape};

/// The gzip-compressed CSV: 64 pixel values from 0 to 16, then the digit.
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../assets/digits.csv.gz");

/// Largest pixel value of the UCI digits.
const MAX_PIXEL: f32 = 16.0;

/// Loads the embedded digits as `1 × 8 × 8` images with pixels scaled to `[0, 1]`.
pub fn load_digits() -> Result<Dataset, DataError> {
    let reader = flate2::read::GzDecoder::new(DIGITS_CSV_GZ);
    let options = CsvOptions {
        label_column: LabelColumn::Last,
        has_header: false,
        delimiter: b',',
        num_classes: Some(10),
    };
    let mut data = parse_csv(reader, "embedded digits.csv.gz", &options)?;
    if data.shape.len() != 64 {
        return Err(DataError::format(
            "embedded digits.csv.gz",
            format!("expected 64 pixels per row, found {}", data.shape.len()),
        ));
    }
    for value in &mut data.features {
        *value /= MAX_PIXEL;
    }
    data.name = "digits".to_owned();
    data.shape = SampleShape::image(1, 8, 8);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_digits_load() {
        let data = load_digits().unwrap();
        assert_eq!(data.name, "digits");
        assert_eq!(data.len(), 1797);
        assert_eq!(data.shape, SampleShape::image(1, 8, 8));
        assert_eq!(data.num_classes, 10);
        assert_eq!(
            data.class_counts(),
            vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
        );
        assert_eq!(data.features.len(), 1797 * 64);
        assert!(data.features.iter().all(|v| (0.0..=1.0).contains(v)));
        let max = data.features.iter().copied().fold(0.0f32, f32::max);
        assert_eq!(max, 1.0);
        data.validate().unwrap();
    }
}

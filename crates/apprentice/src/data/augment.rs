//! Seeded image augmentation: random translation and horizontal flip.
//!
//! Every sample's transformation is a pure function of `(seed, epoch, step, position in the
//! batch)`, so a resumed run augments exactly as the original would have.

use rand::RngExt;

use super::SampleShape;
use super::batch::{mix_seed, rng_for};

/// Separates augmentation generators from other generators derived from the same seed.
const AUGMENT_STREAM: u64 = 0x6175_676d_656e_745f; // "augment_"

/// Which random transformations to apply to training images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augmentation {
    /// Largest translation in pixels along each axis (0 disables translation). Shifting with
    /// a fill value is the same as padding by `max_shift` and cropping at a random offset.
    pub max_shift: usize,
    /// Mirror each image left to right with probability 1/2.
    pub horizontal_flip: bool,
}

/// The transformation drawn for one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transform {
    /// Columns to move right (negative: left).
    dx: i64,
    /// Rows to move down (negative: up).
    dy: i64,
    flip: bool,
}

impl Augmentation {
    /// True when [`Augmentation::apply`] never changes anything.
    pub fn is_identity(&self) -> bool {
        self.max_shift == 0 && !self.horizontal_flip
    }

    /// Augments every whole sample of `batch` (laid out one after another) independently.
    ///
    /// Pixels shifted in from outside take `fill[feature index]` (see
    /// [`Normalizer::normalized_zero`](super::normalize::Normalizer::normalized_zero); missing
    /// entries count as 0). All channels move together. Shapes that are not images (height
    /// or width 1) are left unchanged, as are values past the last whole sample.
    pub fn apply(
        &self,
        batch: &mut [f32],
        shape: SampleShape,
        fill: &[f32],
        seed: u64,
        epoch: u64,
        step: u64,
    ) {
        if self.is_identity() || !shape.is_image() {
            return;
        }
        let step_seed = mix_seed(mix_seed(mix_seed(seed, AUGMENT_STREAM), epoch), step);
        let mut scratch = vec![0.0; shape.len()];
        for (position, sample) in batch.chunks_exact_mut(shape.len()).enumerate() {
            let transform = self.draw(mix_seed(step_seed, position as u64));
            if transform
                != (Transform {
                    dx: 0,
                    dy: 0,
                    flip: false,
                })
            {
                transform_sample(sample, &mut scratch, shape, fill, transform);
            }
        }
    }

    fn draw(&self, sample_seed: u64) -> Transform {
        let mut rng = rng_for(sample_seed);
        // Shifts beyond the image are all equivalent to a blank image; the cap only keeps
        // the arithmetic in range for absurd settings.
        let max = i64::try_from(self.max_shift)
            .unwrap_or(i64::MAX)
            .min(1 << 32);
        let (dx, dy) = if max == 0 {
            (0, 0)
        } else {
            (rng.random_range(-max..=max), rng.random_range(-max..=max))
        };
        let flip = self.horizontal_flip && rng.random_bool(0.5);
        Transform { dx, dy, flip }
    }
}

/// Applies `transform` to one sample: output pixel `(y, x)` is input pixel `(y - dy, x - dx)`,
/// mirrored horizontally after the shift when `flip` is set.
fn transform_sample(
    sample: &mut [f32],
    scratch: &mut [f32],
    shape: SampleShape,
    fill: &[f32],
    transform: Transform,
) {
    let (height, width) = (shape.height, shape.width);
    scratch.copy_from_slice(sample);
    for channel in 0..shape.channels {
        let plane = channel * height * width;
        for y in 0..height {
            let source_y = y as i64 - transform.dy;
            for x in 0..width {
                let unflipped_x = if transform.flip { width - 1 - x } else { x };
                let source_x = unflipped_x as i64 - transform.dx;
                let out = plane + y * width + x;
                let inside =
                    (0..height as i64).contains(&source_y) && (0..width as i64).contains(&source_x);
                sample[out] = if inside {
                    scratch[plane + source_y as usize * width + source_x as usize]
                } else {
                    fill.get(out).copied().unwrap_or(0.0)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(shape: SampleShape, samples: usize) -> Vec<f32> {
        (0..shape.len() * samples).map(|v| v as f32 + 1.0).collect()
    }

    #[test]
    fn zero_shift_without_flip_is_identity() {
        let shape = SampleShape::image(3, 5, 4);
        let augmentation = Augmentation::default();
        assert!(augmentation.is_identity());
        let mut batch = ramp(shape, 4);
        let before = batch.clone();
        augmentation.apply(&mut batch, shape, &[0.0; 60], 1, 2, 3);
        assert_eq!(batch, before);
    }

    #[test]
    fn known_shift_moves_a_bright_pixel() {
        let shape = SampleShape::image(1, 5, 6);
        let mut sample = vec![0.0; 30];
        sample[2 * 6 + 3] = 1.0; // (y=2, x=3)
        let mut scratch = vec![0.0; 30];
        let fill = vec![-0.5; 30];
        let transform = Transform {
            dx: 2,
            dy: -1,
            flip: false,
        };
        transform_sample(&mut sample, &mut scratch, shape, &fill, transform);
        assert_eq!(sample[6 + 5], 1.0); // (y=1, x=5)
        assert_eq!(sample.iter().filter(|&&v| v == 1.0).count(), 1);
        // Columns 0-1 and the bottom row were shifted in from outside.
        assert_eq!(sample[0], -0.5);
        assert_eq!(sample[6 + 1], -0.5);
        assert_eq!(sample[4 * 6 + 4], -0.5);
        assert_eq!(sample[2 * 6 + 2], 0.0);
    }

    #[test]
    fn apply_moves_every_channel_by_the_drawn_shift() {
        let shape = SampleShape::image(2, 9, 9);
        let augmentation = Augmentation {
            max_shift: 2,
            horizontal_flip: false,
        };
        let mut batch = vec![0.0; shape.len() * 8];
        for sample in batch.chunks_exact_mut(shape.len()) {
            sample[4 * 9 + 4] = 1.0;
            sample[81 + 4 * 9 + 4] = 2.0;
        }
        augmentation.apply(&mut batch, shape, &[0.0; 162], 5, 1, 7);
        let step_seed = mix_seed(mix_seed(mix_seed(5, AUGMENT_STREAM), 1), 7);
        let mut shifts = std::collections::HashSet::new();
        for (position, sample) in batch.chunks_exact(shape.len()).enumerate() {
            let t = augmentation.draw(mix_seed(step_seed, position as u64));
            assert!(t.dx.abs() <= 2 && t.dy.abs() <= 2 && !t.flip);
            let at = ((4 + t.dy) * 9 + 4 + t.dx) as usize;
            assert_eq!(sample[at], 1.0);
            assert_eq!(sample[81 + at], 2.0);
            assert_eq!(sample.iter().sum::<f32>(), 3.0);
            shifts.insert((t.dx, t.dy));
        }
        assert!(
            shifts.len() > 1,
            "samples of a batch should draw different shifts"
        );
    }

    #[test]
    fn augmentation_is_deterministic() {
        let shape = SampleShape::image(1, 6, 6);
        let augmentation = Augmentation {
            max_shift: 2,
            horizontal_flip: true,
        };
        let run = |seed, epoch, step| {
            let mut batch = ramp(shape, 16);
            augmentation.apply(&mut batch, shape, &[0.0; 36], seed, epoch, step);
            batch
        };
        assert_eq!(run(1, 2, 3), run(1, 2, 3));
        assert_ne!(run(1, 2, 3), run(1, 2, 4));
        assert_ne!(run(1, 2, 3), run(1, 3, 3));
        assert_ne!(run(1, 2, 3), run(2, 2, 3));
    }

    #[test]
    fn flipping_twice_is_identity() {
        let shape = SampleShape::image(3, 4, 5);
        let original = ramp(shape, 1);
        let mut sample = original.clone();
        let mut scratch = vec![0.0; shape.len()];
        let flip = Transform {
            dx: 0,
            dy: 0,
            flip: true,
        };
        transform_sample(&mut sample, &mut scratch, shape, &[], flip);
        assert_ne!(sample, original);
        assert_eq!(sample[0], original[4]);
        transform_sample(&mut sample, &mut scratch, shape, &[], flip);
        assert_eq!(sample, original);

        // Through `apply`, a flip-only augmentation only ever mirrors rows.
        let augmentation = Augmentation {
            max_shift: 0,
            horizontal_flip: true,
        };
        let mut batch = ramp(shape, 32);
        let before = batch.clone();
        augmentation.apply(&mut batch, shape, &[], 3, 0, 0);
        let mut flipped = 0;
        for (new, old) in batch
            .chunks_exact(shape.len())
            .zip(before.chunks_exact(shape.len()))
        {
            let mut mirrored = old.to_vec();
            transform_sample(&mut mirrored, &mut scratch, shape, &[], flip);
            assert!(new == old || new == mirrored.as_slice());
            flipped += usize::from(new != old);
        }
        assert!(flipped > 0 && flipped < 32);
    }

    #[test]
    fn flat_shapes_are_untouched() {
        let shape = SampleShape::flat(10);
        let augmentation = Augmentation {
            max_shift: 3,
            horizontal_flip: true,
        };
        let mut batch = ramp(shape, 3);
        let before = batch.clone();
        augmentation.apply(&mut batch, shape, &[], 1, 1, 1);
        assert_eq!(batch, before);
    }

    #[test]
    fn absurd_shift_fills_everything() {
        let shape = SampleShape::image(1, 3, 3);
        let augmentation = Augmentation {
            max_shift: usize::MAX,
            horizontal_flip: false,
        };
        let mut batch = ramp(shape, 2);
        augmentation.apply(&mut batch, shape, &[7.0; 9], 1, 1, 1);
        assert!(batch.iter().all(|&v| v == 7.0));
    }

    #[test]
    fn config_reads_with_defaults_and_rejects_unknown_fields() {
        let a: Augmentation = serde_json::from_str(r#"{"max_shift": 2}"#).unwrap();
        assert_eq!(
            a,
            Augmentation {
                max_shift: 2,
                horizontal_flip: false
            }
        );
        assert!(serde_json::from_str::<Augmentation>(r#"{"shift": 2}"#).is_err());
    }
}

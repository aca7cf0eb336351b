//! Loading, splitting, normalising, batching and augmenting labelled data.
//!
//! Everything here works on [`Dataset`], an in-memory table of `f32` features with one class
//! label per sample. Loaders exist for the embedded UCI digits ([`digits`]), IDX files such as
//! MNIST and Fashion-MNIST ([`idx`]) and numeric CSV ([`csv`]). Every random choice (splits,
//! epoch orders, augmentation) is a pure function of explicit seeds, so a run can be repeated
//! exactly and a resumed run can recompute any epoch without saved generator state.

pub mod augment;
pub mod batch;
pub mod config;
pub mod csv;
pub mod dataset;
pub mod digits;
mod error;
pub mod idx;
pub mod image_folder;
pub mod normalize;
pub mod prepare;
mod read;
pub mod split;

pub use dataset::{Dataset, SampleShape};
pub use error::DataError;

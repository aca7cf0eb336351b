//! Text: a pretrained BERT sentence encoder as the teacher, text data sets, and small text
//! students distilled from it.
//!
//! - [`tokenizer`]: word pieces through the `tokenizers` crate, truncation and padding;
//! - [`bert`]: the encoder as burn modules;
//! - [`pooling`]: mean or `[CLS]` pooling and L2 normalisation;
//! - [`pretrained`]: reading a Hugging Face model folder, with errors that name a missing
//!   file, an unknown architecture or a missing or mis-shaped tensor;
//! - [`data`]: labelled text from CSV or JSON lines, and the stratified split;
//! - [`cache`]: the teacher's outputs on disk, keyed and verified by a hash;
//! - [`students`] and [`pca`]: bag-of-embeddings, CNN and static-embedding students;
//! - [`train`]: their training loop (labels, KD, or embedding regression);
//! - [`speed`]: sentences per second of a whole pipeline;
//! - [`config`] and [`experiment`]: the text experiment file and its runner.

pub mod bert;
pub mod cache;
pub mod config;
pub mod data;
pub mod embedding_loss;
pub mod error;
pub mod experiment;
pub mod pca;
pub mod pooling;
pub mod pretrained;
pub mod speed;
pub mod students;
pub mod tokenizer;
pub mod train;

pub use error::TextError;
pub use pretrained::PretrainedEncoder;

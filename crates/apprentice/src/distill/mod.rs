//! Distillation: losses, optimisers and schedules, and the training loop.

pub mod loss;
pub mod optim;
pub mod train;

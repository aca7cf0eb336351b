//! Distillation: losses, optimisers and schedules, and the training loop.

pub mod loss;
pub mod methods;
pub mod optim;
pub mod state;
pub mod train;

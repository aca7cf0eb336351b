//! Distillation: losses, optimisers and schedules, and the training loop.

pub mod cache;
pub mod fused;
pub mod loss;
pub mod methods;
pub mod mutual;
pub mod objective;
pub mod optim;
pub mod prefetch;
pub mod schemes;
pub mod state;
pub mod train;

//! Distillation: losses, optimisers and schedules, and the training loop.

pub mod cache;
pub mod checkpoint_eval;
pub mod fused;
pub mod learner;
pub mod loss;
pub mod method;
pub mod method_error;
pub mod methods;
pub mod mutual;
pub mod objective;
pub mod optim;
pub mod prefetch;
pub mod record;
pub mod registry;
pub mod settings;
pub mod state;
pub mod step;
pub mod supervision;
pub mod temperature;
pub mod train;

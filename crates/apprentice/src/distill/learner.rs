//! Everything one training run updates, as one burn module.

use burn::module::Module;

use super::methods::regressor::FitNetRegressor;
use crate::models::Network;
use crate::models::network::SequentialIds;

/// Everything one training run updates: the student (or, for deep mutual learning, a cohort of
/// students, the first one reported) and the FitNets regressors. Parameter ids are numbered
/// in visiting order, so a resumed run attaches the saved optimiser state to a freshly built
/// learner.
#[derive(Module, Debug)]
pub struct Learner {
    /// The networks trained; the first is the student the run returns.
    pub members: Vec<Network>,
    /// FitNets regressors, one per hint pair.
    pub regressors: Vec<FitNetRegressor>,
}

impl Learner {
    /// A learner of these networks and regressors, parameter ids renumbered.
    pub fn new(members: Vec<Network>, regressors: Vec<FitNetRegressor>) -> Self {
        Self {
            members,
            regressors,
        }
        .map(&mut SequentialIds { next: 1 })
    }

    /// One network and nothing else.
    pub fn single(network: Network) -> Self {
        Self::new(vec![network], Vec::new())
    }

    /// Whether every parameter of every member and regressor is finite.
    pub(super) fn parameters_are_finite(&self) -> bool {
        self.members.iter().all(Network::parameters_are_finite)
            && self.regressors.iter().all(|regressor| {
                crate::backend::to_host(regressor.layer.weight.val().sum())
                    .iter()
                    .chain(crate::backend::to_host(regressor.layer.bias.val().sum()).iter())
                    .all(|v| v.is_finite())
            })
    }
}

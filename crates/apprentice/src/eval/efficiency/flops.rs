//! FLOPs counted from the architecture rather than measured: [`FlopCount`] and
//! [`count_flops`], with the counting conventions. Separate because it needs no timing and no
//! device, only the network's layers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::models::Network;

/// Floating-point operations of one forward pass for a single example, counted from the
/// architecture.
///
/// Conventions, the usual ones of the model-compression literature:
///
/// * a multiply-add is **2** FLOPs; a bias add is 1 per output value;
/// * `dense`: `2·inputs·outputs + outputs`;
/// * `conv`: `2·k²·in_channels·out_channels·H·W + out_channels·H·W` for the 'same'-padded,
///   stride-1 convolutions apprentice builds (padding positions are counted, as is usual);
/// * `batch_norm`: 2 per value (a scale and a shift once the statistics are folded in);
/// * `activation`: 1 per value, whatever the function (ReLU, GELU, tanh, leaky ReLU);
/// * `max_pool`: 3 comparisons per output value of a 2×2 pool;
/// * the softmax is not counted: the model's output is its logits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlopCount {
    /// All FLOPs of one example's forward pass.
    pub total: u64,
    /// Multiply-adds of the dense and convolution layers (each counted 2 in `total`).
    pub multiply_adds: u64,
    /// FLOPs per layer type (`dense`, `conv`, `batch_norm`, `activation`, `max_pool`); types
    /// the network does not have are left out.
    pub by_layer_type: BTreeMap<String, u64>,
}

/// Counts the FLOPs of one example's forward pass through `network`; see [`FlopCount`].
pub fn count_flops(network: &Network) -> FlopCount {
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut multiply_adds = 0u64;
    let mut add = |kind: &str, flops: u64| {
        if flops > 0 {
            *by_type.entry(kind.to_string()).or_insert(0) += flops;
        }
    };
    let [_, mut height, mut width] = network.input_dims.map(|d| d as u64);
    for block in &network.blocks {
        let [out_channels, in_channels, kernel_h, kernel_w] = block.weight.val().dims();
        let (out_channels, in_channels) = (out_channels as u64, in_channels as u64);
        let positions = height * width;
        let macs = (kernel_h * kernel_w) as u64 * in_channels * out_channels * positions;
        multiply_adds += macs;
        add("conv", 2 * macs + out_channels * positions);
        if block.norm.is_some() {
            add("batch_norm", 2 * out_channels * positions);
        }
        add("activation", out_channels * positions);
        // The same rule as the forward pass: a map too small to halve is left as it is.
        if block.pool && height >= 2 && width >= 2 {
            height /= 2;
            width /= 2;
            add("max_pool", 3 * out_channels * height * width);
        }
    }
    let last = network.dense.len().saturating_sub(1);
    for (index, layer) in network.dense.iter().enumerate() {
        let [inputs, outputs] = layer.weight.val().dims();
        let (inputs, outputs) = (inputs as u64, outputs as u64);
        multiply_adds += inputs * outputs;
        add("dense", 2 * inputs * outputs + outputs);
        if index < last {
            add("activation", outputs);
        }
    }
    FlopCount {
        total: by_type.values().sum(),
        multiply_adds,
        by_layer_type: by_type,
    }
}

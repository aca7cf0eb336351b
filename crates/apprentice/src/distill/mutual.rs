//! Deep mutual learning's loss (Zhang, Xiang, Hospedales, Lu, CVPR 2018) for a whole cohort,
//! on logits, as a plain function so that it can be checked against an independent reference.
//!
//! Each member `k` learns from its labels and from its peers:
//! `L_k = CE(z_k, y) + (1/(K−1)) · Σ_{j≠k} T²·KL(softmax(z_j/T) ‖ softmax(z_k/T))`, batch means.
//! The paper uses plain softmax (T = 1) and no T² factor; with T = 1 the two agree. The
//! returned value is `Σ_k L_k`, and every peer is detached inside `L_k`, so the gradient of the
//! sum with respect to `z_k` is exactly the gradient of `L_k`: one backward pass trains every
//! member on its own loss, as the paper's alternating updates do within one step.

use burn::tensor::{Int, Tensor};

use super::loss::{cross_entropy, soft_target_kl};

/// The summed cohort loss `Σ_k L_k` for the members' `logits` (each `[batch, classes]`, at
/// least one), class `labels` `[batch]` and an optional labelled `mask` `[batch]` (see
/// [`cross_entropy`]: unlabelled samples get only the mutual terms). A cohort of one is
/// plain cross-entropy.
pub fn mutual_loss(
    logits: &[Tensor<2>],
    labels: Tensor<1, Int>,
    mask: Option<Tensor<1>>,
    temperature: f64,
) -> Tensor<1> {
    assert!(!logits.is_empty(), "a cohort has members");
    let peers = (logits.len() - 1).max(1) as f64;
    let mut total: Option<Tensor<1>> = None;
    for (k, own) in logits.iter().enumerate() {
        let mut term = cross_entropy(own.clone(), labels.clone(), mask.clone());
        for (j, peer) in logits.iter().enumerate() {
            if j != k {
                // soft_target_kl detaches its second argument: the peer is a fixed target.
                term = term + soft_target_kl(own.clone(), peer.clone(), temperature) / peers;
            }
        }
        total = Some(match total {
            Some(sum) => sum + term,
            None => term,
        });
    }
    total.expect("a cohort has members")
}

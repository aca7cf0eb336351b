//! Objectives in words, for the tables of a language-model run: the loss with its settings,
//! and where the training sequences come from when not from the corpus.

use super::config::{Continuations, ObjectiveConfig, SequenceSource};
use super::objectives::TokenDivergence;

/// The objective in words, for tables.
pub fn describe_objective(objective: &ObjectiveConfig) -> String {
    let Ok(Some(loss)) = objective.loss(0) else {
        return "next-token cross-entropy".to_string() + &describe_sequences(objective);
    };
    let name = match loss.divergence {
        TokenDivergence::ForwardKl => "forward KL".to_string(),
        TokenDivergence::ReverseKl => "reverse KL".to_string(),
        TokenDivergence::Jsd { beta } => format!("JSD β={beta}"),
        TokenDivergence::TotalVariation => "total variation".to_string(),
        TokenDivergence::SkewKl { alpha } => format!("skew KL α={alpha}"),
        TokenDivergence::SkewReverseKl { alpha } => format!("skew reverse KL α={alpha}"),
    };
    let mut text = format!("{name}, τ={}", loss.temperature);
    if loss.ce_weight > 0.0 {
        text.push_str(&format!(", CE weight {}", loss.ce_weight));
    }
    text + &describe_sequences(objective)
}

/// Where an objective's sequences come from, in words (nothing for the corpus).
fn describe_sequences(objective: &ObjectiveConfig) -> String {
    let sampling = |c: &Continuations| {
        let mut text = if c.temperature == 0.0 {
            "greedy".to_string()
        } else {
            format!("sampled at T={}", c.temperature)
        };
        if c.top_p < 1.0 {
            text.push_str(&format!(", top-p {}", c.top_p));
        }
        text
    };
    match objective.sequence_source(0, usize::MAX) {
        Ok(SequenceSource::Teacher(c)) => format!(
            "; on the teacher's continuations of {}-token prompts ({})",
            c.prompt_tokens,
            sampling(&c)
        ),
        Ok(SequenceSource::OnPolicy {
            lambda,
            continuations: c,
        }) => format!(
            "; on-policy λ={lambda} (the student's continuations of {}-token prompts, {})",
            c.prompt_tokens,
            sampling(&c)
        ),
        _ => String::new(),
    }
}

//! A tiny llama shape for language-model tests that need no real teacher.

use apprentice::lm::llama::LlamaConfig;

/// A 40-token vocabulary, width 32, 4 query and 2 key-value heads, SwiGLU 48, tied embeddings,
/// with `layers` decoder layers: small enough that a test trains it in seconds.
pub fn tiny_llama(layers: usize) -> LlamaConfig {
    LlamaConfig {
        vocab_size: 40,
        hidden: 32,
        layers,
        heads: 4,
        kv_heads: 2,
        ffn: 48,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        max_len: 64,
        tied: true,
    }
}

//! Architecture descriptions as they appear in experiment files and checkpoints.

use serde::{Deserialize, Serialize};

/// The non-linearity between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// max(0, x).
    #[default]
    Relu,
    /// Gaussian error linear unit (exact erf form).
    Gelu,
    /// Hyperbolic tangent.
    Tanh,
    /// max(0.01·x, x).
    LeakyRelu,
}

/// A multi-layer perceptron: dense layers with an activation (and dropout) between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpSpec {
    /// Widths of the hidden layers, input side first; empty means a linear classifier.
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Non-linearity after each hidden layer.
    #[serde(default)]
    pub activation: Activation,
    /// Dropout probability after each hidden activation, in [0, 1).
    #[serde(default)]
    pub dropout: f64,
}

/// A convolutional network: blocks of conv 'same' → batch norm → activation → max-pool 2×2,
/// then a dense head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnSpec {
    /// Output channels of each convolution block.
    pub channels: Vec<usize>,
    /// Square kernel size of every convolution (odd, so that 'same' padding is symmetric).
    #[serde(default = "default_kernel_size")]
    pub kernel_size: usize,
    /// Batch normalisation after each convolution.
    #[serde(default = "default_true")]
    pub batch_norm: bool,
    /// Max-pool 2×2 after each block (skipped once the map is 1 pixel wide).
    #[serde(default = "default_true")]
    pub pool: bool,
    /// Hidden widths of the dense head after flattening.
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Non-linearity used in blocks and head.
    #[serde(default)]
    pub activation: Activation,
    /// Dropout probability in the dense head, in [0, 1).
    #[serde(default)]
    pub dropout: f64,
}

fn default_kernel_size() -> usize {
    3
}

fn default_true() -> bool {
    true
}

/// Any architecture apprentice can build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelSpec {
    /// See [`MlpSpec`].
    Mlp(MlpSpec),
    /// See [`CnnSpec`].
    Cnn(CnnSpec),
}

impl ModelSpec {
    /// Checks the numbers that serde cannot; `key` names the spec in error messages.
    pub fn validate(&self, key: &str) -> Result<(), String> {
        let check_dropout = |p: f64| {
            if (0.0..1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!(
                    "{key}.dropout: expected a probability in [0, 1), found {p}"
                ))
            }
        };
        match self {
            ModelSpec::Mlp(mlp) => {
                if mlp.hidden.contains(&0) {
                    return Err(format!("{key}.hidden: layer widths must be at least 1"));
                }
                check_dropout(mlp.dropout)
            }
            ModelSpec::Cnn(cnn) => {
                if cnn.channels.is_empty() || cnn.channels.contains(&0) {
                    return Err(format!(
                        "{key}.channels: expected at least one block, each with at least 1 channel"
                    ));
                }
                if cnn.kernel_size == 0 || cnn.kernel_size % 2 == 0 {
                    return Err(format!(
                        "{key}.kernel_size: expected an odd size (1, 3, 5, ...), found {}",
                        cnn.kernel_size
                    ));
                }
                if cnn.hidden.contains(&0) {
                    return Err(format!("{key}.hidden: layer widths must be at least 1"));
                }
                check_dropout(cnn.dropout)
            }
        }
    }

    /// A short human description, e.g. `mlp 64-32-10` or `cnn c16-c32 h64 → 10`.
    pub fn describe(&self, input_len: usize, num_classes: usize) -> String {
        match self {
            ModelSpec::Mlp(mlp) => {
                let mut widths = vec![input_len];
                widths.extend(&mlp.hidden);
                widths.push(num_classes);
                let text: Vec<String> = widths.iter().map(|w| w.to_string()).collect();
                format!("mlp {}", text.join("-"))
            }
            ModelSpec::Cnn(cnn) => {
                let blocks: Vec<String> = cnn.channels.iter().map(|c| format!("c{c}")).collect();
                let head: Vec<String> = cnn.hidden.iter().map(|h| format!("h{h}")).collect();
                let head = if head.is_empty() {
                    String::new()
                } else {
                    format!(" {}", head.join("-"))
                };
                format!(
                    "cnn k{} {}{} → {num_classes}",
                    cnn.kernel_size,
                    blocks.join("-"),
                    head
                )
            }
        }
    }
}

//! Kernel files: the inputs and an empirical NTK in one safetensors file, the exchange format
//! with the PyTorch reference (`bench/reference/ntk.py`), which reads our inputs and writes
//! its kernel the same way.
//!
//! Tensors: `inputs` (`f32`, `[n, features]`, the student's normalised inputs) and `kernel`
//! (`f64` from apprentice, `f32` or `f64` from the reference; `[N, N]` with `N = n` for the trace
//! kernel, `n·C` for the block kernel). The header's metadata entry [`METADATA_KEY`] holds a
//! JSON [`DumpInfo`].

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::complexity::{ComplexityError, Result};
use crate::complexity::{KernelKind, Ntk};
use crate::fsutil::write_atomic;

/// The safetensors metadata entry that describes the kernel.
pub const METADATA_KEY: &str = "apprentice-ntk";

/// What a kernel file says about its kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpInfo {
    /// Trace or block kernel.
    pub kind: KernelKind,
    /// Examples `n`.
    pub examples: usize,
    /// Network outputs `C`.
    pub outputs: usize,
    /// The checkpoint of the network the kernel belongs to, when known.
    pub checkpoint: Option<String>,
    /// Who computed the kernel (`apprentice`, `torch.func`).
    pub computed_by: String,
    /// Seconds the computation took, when timed.
    pub seconds: Option<f64>,
}

/// A kernel file read back.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelDump {
    /// Row-major inputs, `examples × features`.
    pub inputs: Vec<f32>,
    /// Values per input.
    pub features: usize,
    /// The kernel, in `f64`.
    pub kernel: Ntk,
    /// The header's description.
    pub info: DumpInfo,
}

fn le_bytes<T: Copy, const N: usize>(values: &[T], to_bytes: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to_bytes(v)).collect()
}

/// Writes `inputs` (`n × features`) and `kernel` to `path` atomically.
pub fn write_kernel_dump(
    path: &Path,
    inputs: &[f32],
    features: usize,
    kernel: &Ntk,
    info: &DumpInfo,
) -> Result<()> {
    let fail = |message: String| ComplexityError::File {
        path: path.to_path_buf(),
        message,
    };
    if features == 0 || inputs.len() != kernel.examples() * features {
        return Err(fail(format!(
            "{} input values do not make {} examples of {features} features",
            inputs.len(),
            kernel.examples()
        )));
    }
    let input_bytes = le_bytes(inputs, f32::to_le_bytes);
    let kernel_bytes = le_bytes(kernel.values(), f64::to_le_bytes);
    let dim = kernel.dim();
    let views = [
        (
            "inputs",
            TensorView::new(Dtype::F32, vec![kernel.examples(), features], &input_bytes)
                .map_err(|e| fail(e.to_string()))?,
        ),
        (
            "kernel",
            TensorView::new(Dtype::F64, vec![dim, dim], &kernel_bytes)
                .map_err(|e| fail(e.to_string()))?,
        ),
    ];
    let json = serde_json::to_string(info).map_err(|e| fail(e.to_string()))?;
    let metadata = HashMap::from([(METADATA_KEY.to_owned(), json)]);
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| fail(e.to_string()))?;
    write_atomic(path, &bytes).map_err(|source| ComplexityError::File {
        path: path.to_path_buf(),
        message: source.to_string(),
    })
}

/// Reads a kernel file written by [`write_kernel_dump`] or by the reference script.
pub fn read_kernel_dump(path: &Path) -> Result<KernelDump> {
    let fail = |message: String| ComplexityError::File {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| ComplexityError::File {
        path: path.to_path_buf(),
        message: source.to_string(),
    })?;
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| fail(format!("no {METADATA_KEY} metadata: not a kernel file")))?;
    let info: DumpInfo =
        serde_json::from_str(json).map_err(|e| fail(format!("damaged {METADATA_KEY}: {e}")))?;
    let read = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
        let view = file
            .tensor(name)
            .map_err(|_| fail(format!("no tensor named {name:?}")))?;
        let values = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .collect(),
            other => {
                return Err(fail(format!(
                    "{name}: expected f32 or f64, found {other:?}"
                )));
            }
        };
        Ok((view.shape().to_vec(), values))
    };
    let (input_shape, inputs) = read("inputs")?;
    let (kernel_shape, kernel) = read("kernel")?;
    let features = match input_shape[..] {
        [rows, features] if rows == info.examples && features > 0 => features,
        _ => {
            return Err(fail(format!(
                "inputs: expected shape [{}, features], found {input_shape:?}",
                info.examples
            )));
        }
    };
    let dim = match info.kind {
        KernelKind::Trace => Some(info.examples),
        KernelKind::Block => info.examples.checked_mul(info.outputs),
    };
    if dim.is_none_or(|dim| kernel_shape != [dim, dim]) {
        let dim = dim.map_or_else(|| "too many".to_owned(), |d| d.to_string());
        return Err(fail(format!(
            "kernel: expected shape [{dim}, {dim}], found {kernel_shape:?}"
        )));
    }
    let kernel = Ntk::new(info.kind, info.examples, info.outputs, kernel)
        .map_err(|e| fail(format!("kernel: {e}")))?;
    Ok(KernelDump {
        inputs: inputs.into_iter().map(|v| v as f32).collect(),
        features,
        kernel,
        info,
    })
}

//! The one place that knows which burn backend runs the tensors.
//!
//! Everything else asks this module for a [`ComputeDevice`] and converts host buffers to and from
//! tensors through the helpers below, so that a burn upgrade or a new backend touches this file
//! (and the model layers) rather than the whole crate.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Where the tensors live. The CPU backend is always available; GPU backends are cargo features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// burn's pure-Rust CPU backend (`flex`).
    #[default]
    Cpu,
    /// NVIDIA GPUs through burn's CUDA backend (cargo feature `cuda`).
    Cuda,
    /// Any GPU through burn's wgpu backend (cargo feature `wgpu`).
    Wgpu,
}

impl DeviceKind {
    /// Parses `cpu`, `cuda` or `wgpu`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "wgpu" => Ok(Self::Wgpu),
            other => Err(format!(
                "unknown device {other:?}: expected cpu, cuda or wgpu"
            )),
        }
    }

    /// The device kinds this build can run on.
    pub fn available() -> Vec<DeviceKind> {
        let mut kinds = vec![DeviceKind::Cpu];
        if cfg!(feature = "cuda") {
            kinds.push(DeviceKind::Cuda);
        }
        if cfg!(feature = "wgpu") {
            kinds.push(DeviceKind::Wgpu);
        }
        kinds
    }
}

/// A pair of burn devices: one that records gradients (training) and the same one without
/// (inference, teachers, evaluation).
#[derive(Debug, Clone)]
pub struct ComputeDevice {
    kind: DeviceKind,
    plain: Device,
}

impl ComputeDevice {
    /// Opens a device of the given kind, or says why this build cannot.
    pub fn new(kind: DeviceKind) -> Result<Self, String> {
        let plain = match kind {
            DeviceKind::Cpu => Device::flex(),
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda => Device::cuda(0),
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => Device::wgpu(Default::default()),
            #[allow(unreachable_patterns)]
            other => {
                return Err(format!(
                    "device {other:?} is not built in: rebuild with `--features {}`",
                    format!("{other:?}").to_lowercase()
                ));
            }
        };
        if kind != DeviceKind::Cpu {
            probe_gpu(kind, &plain)?;
        }
        Ok(Self { kind, plain })
    }

    /// The CPU device.
    pub fn cpu() -> Self {
        Self {
            kind: DeviceKind::Cpu,
            plain: Device::flex(),
        }
    }

    /// Which backend this is.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// The device without gradient tracking.
    pub fn inference(&self) -> Device {
        self.plain.clone()
    }

    /// The same device with gradient tracking, for training.
    pub fn training(&self) -> Device {
        self.plain.clone().autodiff()
    }
}

/// Makes one tensor on a GPU device, so that a machine without a usable GPU or driver gets a
/// one-line error now instead of a panic deep inside burn at the first operation.
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
fn probe_gpu(kind: DeviceKind, device: &Device) -> Result<(), String> {
    // burn's GPU runtimes panic when they find no adapter or driver; the default hook would
    // print that panic's backtrace before the clean message.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Tensor::<1>::zeros([1], device).into_data()
    }));
    std::panic::set_hook(previous_hook);
    outcome.map(|_| ()).map_err(|payload| {
        let reason = panic_message(payload.as_ref());
        let name = format!("{kind:?}").to_lowercase();
        format!("no usable {name} device on this machine ({reason}); use --device cpu")
    })
}

/// The message a panic carried (burn reports failures inside its backends as panics).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "it panicked".into())
}

/// A rank-2 float tensor from a row-major host buffer.
pub fn matrix(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// A rank-1 integer tensor of class indices.
pub fn class_indices(labels: &[u32], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let len = values.len();
    Tensor::from_data(TensorData::new(values, [len]), device)
}

/// A rank-1 float tensor.
pub fn vector(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let len = values.len();
    Tensor::from_data(TensorData::new(values, [len]), device)
}

/// Copies any float tensor to a host vector, row-major.
pub fn to_host<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("a float tensor converts to f32 values")
}

/// The value of a one-element tensor.
pub fn scalar(tensor: Tensor<1>) -> f32 {
    to_host(tensor)[0]
}

/// Keeps freed tensor buffers inside the process instead of handing them back to the kernel.
///
/// burn's CPU backend writes every operation's result to a fresh buffer of a few MiB. With
/// glibc's default thresholds such buffers are mapped and unmapped on every step, and the page
/// faults of mapping them again cost a fifth of a training step (bench/RESULTS.md). Raising the
/// trim threshold and taking no buffer from mmap at all makes glibc reuse them: buffers above
/// glibc's largest mmap threshold (32 MiB), such as a transformer's word-embedding gradient,
/// would otherwise still be mapped afresh on every step. Call this once at start-up, before any
/// tensor is made. A no-op on other C libraries, and when `GLIBC_TUNABLES` already sets the
/// allocator (the user's choice wins).
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_tuned = std::env::var("GLIBC_TUNABLES").is_ok_and(|v| v.contains("glibc.malloc"));
        if !user_tuned {
            // SAFETY: mallopt only changes glibc's allocator parameters; it is called before any
            // other thread allocates through it.
            unsafe {
                libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
                // Every buffer from the heap, however large; the same peak memory on the
                // fine-tuning benchmark, a tenth faster per step (docs/results/bert-speed.md).
                libc::mallopt(libc::M_MMAP_MAX, 0);
            }
        }
    }
}

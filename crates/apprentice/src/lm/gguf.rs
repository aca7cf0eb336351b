//! A reader of GGUF files (llama.cpp's model format, version 2 and 3): the header, every
//! metadata value (arrays included), the tensor infos, the data section's alignment, and each
//! tensor's bytes.
//!
//! Hand-written: the Rust crates that read GGUF come inside whole inference engines (candle,
//! llama.cpp bindings) with their own tensor types; the format itself is a short header and a
//! table. Every length, count and offset read from the file is checked against the bytes that
//! remain before anything is allocated for it, so a corrupt or hostile file gets a one-line
//! [`GgufError`] and never an allocation the file cannot back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use super::gguf_value::MetaValue;
use super::quant::{self, GgmlType};

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// The data section's alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most this many dimensions.
pub const MAX_DIMS: u32 = 4;
/// Arrays nested deeper than this are refused (llama.cpp writes none).
const MAX_NESTING: usize = 3;

/// Why a GGUF file could not be read; every message is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or mapped.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The header or the layout of the file is wrong.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },
    /// A metadata entry is missing, malformed or of the wrong type.
    #[error("{}: metadata {key:?}: {message}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A tensor info is malformed, out of the file's bounds, or of an unusable type.
    #[error("{}: tensor {tensor:?}: {message}", path.display())]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name (or its index when the name itself could not be read).
        tensor: String,
        /// What was expected and what was found.
        message: String,
    },
}

/// Where one tensor lies in the file and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`).
    pub name: String,
    /// ggml's dimensions, innermost (contiguous) first: a PyTorch `[out, in]` matrix is `[in,
    /// out]` here.
    pub dims: Vec<u64>,
    /// How its values are stored.
    pub ty: GgmlType,
    /// Offset of its first byte from the start of the data section (aligned).
    pub offset: u64,
    /// Number of values (product of `dims`).
    pub values: u64,
    /// Number of bytes it takes.
    pub bytes: u64,
}

impl TensorInfo {
    /// The dimensions outermost first, as PyTorch and burn write shapes.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// The bytes of the file: mapped from disk, or owned (tests, fuzzing).
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A parsed GGUF file: metadata and tensor infos, with the tensor bytes kept mapped.
pub struct GgufFile {
    path: PathBuf,
    bytes: Bytes,
    version: u32,
    alignment: u64,
    data_start: u64,
    metadata: Vec<(String, MetaValue)>,
    index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and parses a GGUF file; its tensor bytes stay memory-mapped.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process; a model file is not
        // modified while it is read, and another program truncating it under us is outside what
        // any reader can defend against.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(Bytes::Mapped(map), path)
    }

    /// Parses a GGUF file held in memory; `path` only names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, GgufError> {
        Self::parse(Bytes::Owned(bytes), path)
    }

    fn parse(bytes: Bytes, path: &Path) -> Result<Self, GgufError> {
        let mut r = Reader {
            bytes: &bytes,
            pos: 0,
            path,
        };
        let magic = r.take(4, || "the 4-byte magic".into())?;
        if magic != MAGIC {
            return Err(r.format(format!(
                "not a GGUF file: expected magic \"GGUF\", found {magic:02x?}"
            )));
        }
        let version = r.u32(|| "the version".into())?;
        if version != 2 && version != 3 {
            return Err(r.format(format!(
                "GGUF version {version} is not supported (expected 2 or 3)"
            )));
        }
        let tensor_count = r.u64(|| "the tensor count".into())?;
        let kv_count = r.u64(|| "the metadata count".into())?;
        // A metadata entry takes at least 13 bytes (empty key, type, a bool); a tensor info at
        // least 24 (empty name, one dimension, type, offset).
        r.check_count(kv_count, 13, "metadata entries")?;
        let mut metadata = Vec::with_capacity(kv_count as usize);
        let mut index = HashMap::with_capacity(kv_count as usize);
        for i in 0..kv_count {
            let key = r.string(|| format!("the key of metadata entry {i}"))?;
            let ty = r.u32(|| format!("the type of metadata {key:?}"))?;
            let value = r.value(ty, &key, 0)?;
            if index.insert(key.clone(), metadata.len()).is_some() {
                return Err(r.key(&key, "appears twice"));
            }
            metadata.push((key, value));
        }
        let alignment = match index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => match metadata[i].1.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
                _ => {
                    return Err(r.key(
                        "general.alignment",
                        format!(
                            "expected a power of two up to 2^20, found {:?}",
                            metadata[i].1
                        ),
                    ));
                }
            },
        };
        r.check_count(tensor_count, 24, "tensor infos")?;
        let mut tensors = Vec::with_capacity(tensor_count as usize);
        let mut tensor_index = HashMap::with_capacity(tensor_count as usize);
        for i in 0..tensor_count {
            let info = r.tensor_info(i)?;
            if tensor_index
                .insert(info.name.clone(), tensors.len())
                .is_some()
            {
                return Err(r.tensor(&info.name, "appears twice"));
            }
            tensors.push(info);
        }
        let data_start = r.pos.div_ceil(alignment).saturating_mul(alignment);
        let file_len = bytes.len() as u64;
        if !tensors.is_empty() && data_start > file_len {
            return Err(r.format(format!(
                "truncated: the data section starts at byte {data_start}, past the end ({file_len} bytes)"
            )));
        }
        for info in &tensors {
            if !info.offset.is_multiple_of(alignment) {
                return Err(r.tensor(
                    &info.name,
                    format!(
                        "offset {} is not a multiple of the alignment {alignment}",
                        info.offset
                    ),
                ));
            }
            let end = data_start
                .checked_add(info.offset)
                .and_then(|s| s.checked_add(info.bytes));
            if end.is_none_or(|e| e > file_len) {
                return Err(r.tensor(
                    &info.name,
                    format!(
                        "{} bytes at offset {} run past the end of the file ({} bytes of data)",
                        info.bytes,
                        info.offset,
                        file_len.saturating_sub(data_start)
                    ),
                ));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            version,
            alignment,
            data_start,
            metadata,
            index,
            tensors,
            tensor_index,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of the data section and of every tensor's offset.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section in the file.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Every metadata entry, in file order.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    /// The value of a metadata key, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// The value of a key that must be present.
    pub fn require(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.get(key).ok_or_else(|| self.key_error(key, "missing"))
    }

    /// A required string.
    pub fn string(&self, key: &str) -> Result<&str, GgufError> {
        let value = self.require(key)?;
        value
            .as_str()
            .ok_or_else(|| self.key_error(key, wrong_type("a string", value)))
    }

    /// A required non-negative integer.
    pub fn unsigned(&self, key: &str) -> Result<u64, GgufError> {
        let value = self.require(key)?;
        value
            .as_u64()
            .ok_or_else(|| self.key_error(key, wrong_type("a non-negative integer", value)))
    }

    /// A required number.
    pub fn float(&self, key: &str) -> Result<f64, GgufError> {
        let value = self.require(key)?;
        value
            .as_f64()
            .ok_or_else(|| self.key_error(key, wrong_type("a number", value)))
    }

    /// A required array of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        let value = self.require(key)?;
        let items = value
            .as_array()
            .ok_or_else(|| self.key_error(key, wrong_type("an array of strings", value)))?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    self.key_error(key, format!("item {i}: {}", wrong_type("a string", v)))
                })
            })
            .collect()
    }

    /// An error about a metadata key of this file.
    pub fn key_error(&self, key: &str, message: impl Into<String>) -> GgufError {
        GgufError::Metadata {
            path: self.path.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// An error about a tensor of this file.
    pub fn tensor_error(&self, tensor: &str, message: impl Into<String>) -> GgufError {
        GgufError::Tensor {
            path: self.path.clone(),
            tensor: tensor.into(),
            message: message.into(),
        }
    }

    /// Every tensor info, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The info of a tensor, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The stored bytes of a tensor (bounds were checked when the file was opened).
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        let start = (self.data_start + info.offset) as usize;
        &self.bytes[start..start + info.bytes as usize]
    }

    /// A tensor's values as `f32`, in storage order (innermost dimension fastest), with its
    /// shape outermost first; `shape` (outermost first), when given, must match.
    pub fn dequantize(
        &self,
        name: &str,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<f32>, Vec<usize>), GgufError> {
        let info = self
            .tensor(name)
            .ok_or_else(|| self.tensor_error(name, "missing"))?;
        let found = info.shape();
        if let Some(expected) = shape
            && expected != found.as_slice()
        {
            return Err(self.tensor_error(
                name,
                format!("expected shape {expected:?}, found {found:?}"),
            ));
        }
        let values = quant::dequantize(info.ty, self.tensor_bytes(info), info.values)
            .map_err(|e| self.tensor_error(name, e.to_string()))?;
        Ok((values, found))
    }
}

fn wrong_type(expected: &str, found: &MetaValue) -> String {
    format!(
        "expected {expected}, found a value of type {}",
        found.type_name()
    )
}

/// A cursor over the file's bytes that checks every read against the end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: u64,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> u64 {
        self.bytes.len() as u64 - self.pos
    }

    fn format(&self, message: String) -> GgufError {
        GgufError::Format {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn key(&self, key: &str, message: impl Into<String>) -> GgufError {
        GgufError::Metadata {
            path: self.path.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn tensor(&self, tensor: &str, message: impl Into<String>) -> GgufError {
        GgufError::Tensor {
            path: self.path.to_path_buf(),
            tensor: tensor.into(),
            message: message.into(),
        }
    }

    /// `n` bytes, or a "truncated" error naming `what`.
    fn take(&mut self, n: u64, what: impl Fn() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(self.format(format!(
                "truncated: {} needs {n} bytes at byte {}, {} remain",
                what(),
                self.pos,
                self.remaining()
            )));
        }
        let start = self.pos as usize;
        self.pos += n;
        Ok(&self.bytes[start..start + n as usize])
    }

    fn array<const N: usize>(&mut self, what: impl Fn() -> String) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        Ok(bytes.try_into().expect("take returned N bytes"))
    }

    fn u32(&mut self, what: impl Fn() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl Fn() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Refuses a count of items of at least `min_bytes` each that the rest cannot hold.
    fn check_count(&self, count: u64, min_bytes: u64, what: &str) -> Result<(), GgufError> {
        if count
            .checked_mul(min_bytes)
            .is_none_or(|b| b > self.remaining())
        {
            return Err(self.format(format!(
                "{count} {what} cannot fit in the {} bytes that remain at byte {}",
                self.remaining(),
                self.pos
            )));
        }
        Ok(())
    }

    fn string(&mut self, what: impl Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(|| format!("the length of {}", what()))?;
        let bytes = self.take(len, &what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| self.format(format!("{} is not valid UTF-8", what())))
    }

    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<MetaValue, GgufError> {
        let what = || format!("the value of {key:?}");
        Ok(match ty {
            0 => MetaValue::U8(self.array::<1>(what)?[0]),
            1 => MetaValue::I8(self.array::<1>(what)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(what)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(what)?)),
            4 => MetaValue::U32(u32::from_le_bytes(self.array(what)?)),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(what)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)?[0] {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                other => {
                    return Err(self.key(key, format!("expected a bool (0 or 1), found {other}")));
                }
            },
            8 => MetaValue::String(self.string(what)?),
            9 => {
                if depth >= MAX_NESTING {
                    return Err(self.key(
                        key,
                        format!("arrays nested deeper than {MAX_NESTING} are not supported"),
                    ));
                }
                let item_ty = self.u32(|| format!("the item type of {key:?}"))?;
                let count = self.u64(|| format!("the item count of {key:?}"))?;
                let min_bytes = match item_ty {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    other => {
                        return Err(self.key(key, format!("unknown array item type {other}")));
                    }
                };
                if count
                    .checked_mul(min_bytes)
                    .is_none_or(|b| b > self.remaining())
                {
                    return Err(self.key(
                        key,
                        format!(
                            "{count} array items cannot fit in the {} bytes that remain",
                            self.remaining()
                        ),
                    ));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(item_ty, key, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(u64::from_le_bytes(self.array(what)?)),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(what)?)),
            other => return Err(self.key(key, format!("unknown value type {other}"))),
        })
    }

    fn tensor_info(&mut self, i: u64) -> Result<TensorInfo, GgufError> {
        let name = self.string(|| format!("the name of tensor {i}"))?;
        let n_dims = self.u32(|| format!("the dimension count of tensor {name:?}"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(self.tensor(
                &name,
                format!("expected 1 to {MAX_DIMS} dimensions, found {n_dims}"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(self.u64(|| format!("dimension {d} of tensor {name:?}"))?);
        }
        let type_id = self.u32(|| format!("the type of tensor {name:?}"))?;
        let offset = self.u64(|| format!("the offset of tensor {name:?}"))?;
        let ty = GgmlType::from_id(type_id)
            .ok_or_else(|| self.tensor(&name, format!("unknown tensor type {type_id}")))?;
        if dims.contains(&0) {
            return Err(self.tensor(&name, format!("dimensions {dims:?} include a zero")));
        }
        let values = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| self.tensor(&name, format!("dimensions {dims:?} overflow")))?;
        if !dims[0].is_multiple_of(ty.block_values()) {
            return Err(self.tensor(
                &name,
                format!(
                    "innermost dimension {} is not a multiple of the {:?} block of {} values",
                    dims[0],
                    ty,
                    ty.block_values()
                ),
            ));
        }
        let bytes = quant::byte_len(ty, values)
            .ok_or_else(|| self.tensor(&name, format!("dimensions {dims:?} overflow")))?;
        Ok(TensorInfo {
            name,
            dims,
            ty,
            offset,
            values,
            bytes,
        })
    }
}

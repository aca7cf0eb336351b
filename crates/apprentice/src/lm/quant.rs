//! ggml's tensor types as stored in GGUF files: their block sizes (those of gguf-py's
//! `GGML_QUANT_SIZES`, so that a GGUF reader can check every tensor's byte size against the
//! file) and the dequantisation of the common ones to `f32`.
//!
//! Written here rather than taken from a crate: the crates that dequantise ggml blocks are parts
//! of whole inference engines (candle, llama.cpp bindings); the five layouts below are a few
//! lines each and are checked against hand-made blocks in the tests.
//!
//! Layouts (little-endian, as in ggml's `ggml-common.h`; a block holds 32 values):
//! - `Q4_0`: `f16 d`, then 16 bytes of 4-bit codes `q`; value `(q - 8) · d`. Byte `j` holds
//!   value `j` in its low nibble and value `j + 16` in its high nibble.
//! - `Q4_1`: `f16 d`, `f16 m`, then 16 bytes of codes as in `Q4_0`; value `q · d + m`.
//! - `Q8_0`: `f16 d`, then 32 signed bytes `q`; value `q · d`.

use half::f16;

/// A ggml tensor type, by its id in GGUF files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// 4-bit codes with a scale, blocks of 32.
    Q4_0,
    /// 4-bit codes with a scale and a minimum, blocks of 32.
    Q4_1,
    /// 5-bit codes with a scale, blocks of 32.
    Q5_0,
    /// 5-bit codes with a scale and a minimum, blocks of 32.
    Q5_1,
    /// 8-bit codes with a scale, blocks of 32.
    Q8_0,
    /// k-quant, 2 bits, super-blocks of 256.
    Q2_K,
    /// k-quant, 3 bits, super-blocks of 256.
    Q3_K,
    /// k-quant, 4 bits, super-blocks of 256.
    Q4_K,
    /// k-quant, 5 bits, super-blocks of 256.
    Q5_K,
    /// k-quant, 6 bits, super-blocks of 256.
    Q6_K,
    /// k-quant, 8 bits, super-blocks of 256.
    Q8_K,
    /// 8-bit integer.
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 64-bit float.
    F64,
    /// bfloat16.
    BF16,
    /// i-quant or ternary type IQ2_XXS (stored, not dequantised here).
    IQ2_XXS,
    /// i-quant or ternary type IQ2_XS (stored, not dequantised here).
    IQ2_XS,
    /// i-quant or ternary type IQ3_XXS (stored, not dequantised here).
    IQ3_XXS,
    /// i-quant or ternary type IQ1_S (stored, not dequantised here).
    IQ1_S,
    /// i-quant or ternary type IQ4_NL (stored, not dequantised here).
    IQ4_NL,
    /// i-quant or ternary type IQ3_S (stored, not dequantised here).
    IQ3_S,
    /// i-quant or ternary type IQ2_S (stored, not dequantised here).
    IQ2_S,
    /// i-quant or ternary type IQ4_XS (stored, not dequantised here).
    IQ4_XS,
    /// i-quant or ternary type IQ1_M (stored, not dequantised here).
    IQ1_M,
    /// i-quant or ternary type TQ1_0 (stored, not dequantised here).
    TQ1_0,
    /// i-quant or ternary type TQ2_0 (stored, not dequantised here).
    TQ2_0,
    /// i-quant or ternary type MXFP4 (stored, not dequantised here).
    MXFP4,
}

impl GgmlType {
    /// The type of a GGUF type id, or `None` for ids this reader does not know the layout of.
    pub fn from_id(id: u32) -> Option<Self> {
        use GgmlType::*;
        Some(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            10 => Q2_K,
            11 => Q3_K,
            12 => Q4_K,
            13 => Q5_K,
            14 => Q6_K,
            15 => Q8_K,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            30 => BF16,
            16 => IQ2_XXS,
            17 => IQ2_XS,
            18 => IQ3_XXS,
            19 => IQ1_S,
            20 => IQ4_NL,
            21 => IQ3_S,
            22 => IQ2_S,
            23 => IQ4_XS,
            29 => IQ1_M,
            34 => TQ1_0,
            35 => TQ2_0,
            39 => MXFP4,
            _ => return None,
        })
    }

    /// The type's id in GGUF files.
    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q2_K => 10,
            Q3_K => 11,
            Q4_K => 12,
            Q5_K => 13,
            Q6_K => 14,
            Q8_K => 15,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            BF16 => 30,
            IQ2_XXS => 16,
            IQ2_XS => 17,
            IQ3_XXS => 18,
            IQ1_S => 19,
            IQ4_NL => 20,
            IQ3_S => 21,
            IQ2_S => 22,
            IQ4_XS => 23,
            IQ1_M => 29,
            TQ1_0 => 34,
            TQ2_0 => 35,
            MXFP4 => 39,
        }
    }

    /// Number of values in one block (1 for plain types).
    pub fn block_values(self) -> u64 {
        use GgmlType::*;
        match self {
            F32 | F16 | I8 | I16 | I32 | I64 | F64 | BF16 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 => 32,
            Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | Q8_K => 256,
            IQ4_NL | MXFP4 => 32,
            IQ2_XXS | IQ2_XS | IQ3_XXS | IQ1_S | IQ3_S | IQ2_S | IQ4_XS | IQ1_M | TQ1_0 | TQ2_0 => {
                256
            }
        }
    }

    /// Number of bytes of one block (ggml's `type_size`).
    pub fn block_bytes(self) -> u64 {
        use GgmlType::*;
        match self {
            F32 | I32 => 4,
            F16 | I16 | BF16 => 2,
            I8 => 1,
            I64 | F64 => 8,
            Q4_0 => 18,
            Q4_1 => 20,
            Q5_0 => 22,
            Q5_1 => 24,
            Q8_0 => 34,
            Q2_K => 84,
            Q3_K => 110,
            Q4_K => 144,
            Q5_K => 176,
            Q6_K => 210,
            Q8_K => 292,
            IQ2_XXS => 66,
            IQ2_XS => 74,
            IQ3_XXS => 98,
            IQ1_S => 50,
            IQ4_NL => 18,
            IQ3_S => 110,
            IQ2_S => 82,
            IQ4_XS => 136,
            IQ1_M => 56,
            TQ1_0 => 54,
            TQ2_0 => 66,
            MXFP4 => 17,
        }
    }

    /// ggml's name of the type (`Q4_1`, `F32`, ...).
    pub fn name(self) -> String {
        format!("{self:?}")
    }

    /// Whether [`dequantize`] reads this type.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            GgmlType::F32 | GgmlType::F16 | GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1
        )
    }
}

/// Why bytes could not be turned into values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// A type whose blocks this reader does not decode.
    #[error("tensor type {0:?} cannot be dequantised (supported: F32, F16, Q8_0, Q4_0, Q4_1)")]
    Unsupported(GgmlType),
    /// The byte count is not what `values` values of the type take.
    #[error("{found} bytes for {values} values of type {ty:?}: expected {expected}")]
    Length {
        /// The type.
        ty: GgmlType,
        /// Number of values asked for.
        values: u64,
        /// Bytes those values take.
        expected: u64,
        /// Bytes given.
        found: u64,
    },
}

/// Bytes that `values` values of type `ty` take, or `None` when `values` is not a whole number
/// of blocks or the size overflows.
pub fn byte_len(ty: GgmlType, values: u64) -> Option<u64> {
    if !values.is_multiple_of(ty.block_values()) {
        return None;
    }
    (values / ty.block_values()).checked_mul(ty.block_bytes())
}

/// The `values` values stored in `bytes` as type `ty`, in storage order.
pub fn dequantize(ty: GgmlType, bytes: &[u8], values: u64) -> Result<Vec<f32>, QuantError> {
    if !ty.is_supported() {
        return Err(QuantError::Unsupported(ty));
    }
    let expected = byte_len(ty, values);
    if expected != Some(bytes.len() as u64) {
        return Err(QuantError::Length {
            ty,
            values,
            expected: expected.unwrap_or(u64::MAX),
            found: bytes.len() as u64,
        });
    }
    // The length check above bounds the allocation by the bytes given (at most 8 values a byte).
    let mut out = Vec::with_capacity(values as usize);
    let chunks = bytes.chunks_exact(ty.block_bytes() as usize);
    match ty {
        GgmlType::F32 => out.extend(chunks.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        GgmlType::F16 => out.extend(chunks.map(half_at)),
        GgmlType::Q8_0 => {
            for block in chunks {
                let d = half_at(block);
                out.extend(block[2..].iter().map(|&q| q as i8 as f32 * d));
            }
        }
        GgmlType::Q4_0 => {
            for block in chunks {
                let d = half_at(block);
                push_nibbles(&mut out, &block[2..], |q| (q as f32 - 8.0) * d);
            }
        }
        GgmlType::Q4_1 => {
            for block in chunks {
                let d = half_at(block);
                let m = half_at(&block[2..]);
                push_nibbles(&mut out, &block[4..], |q| q as f32 * d + m);
            }
        }
        _ => unreachable!("is_supported covers the types above"),
    }
    Ok(out)
}

/// The f16 in the first two bytes, as f32.
fn half_at(bytes: &[u8]) -> f32 {
    f16::from_le_bytes([bytes[0], bytes[1]]).to_f32()
}

/// The 32 values of 16 bytes of 4-bit codes: low nibbles first, then high nibbles.
fn push_nibbles(out: &mut Vec<f32>, codes: &[u8], value: impl Fn(u8) -> f32) {
    out.extend(codes.iter().map(|&b| value(b & 0x0f)));
    out.extend(codes.iter().map(|&b| value(b >> 4)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(x: f32) -> [u8; 2] {
        f16::from_f32(x).to_le_bytes()
    }

    #[test]
    fn q8_0_block() {
        let mut block = h(0.5).to_vec();
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let values = dequantize(GgmlType::Q8_0, &block, 32).unwrap();
        let expected: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) * 0.5).collect();
        assert_eq!(values, expected);
    }

    #[test]
    fn q4_0_block() {
        let mut block = h(0.25).to_vec();
        // byte j: low nibble j, high nibble 15 - j.
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let values = dequantize(GgmlType::Q4_0, &block, 32).unwrap();
        for j in 0..16 {
            assert_eq!(values[j], (j as f32 - 8.0) * 0.25);
            assert_eq!(values[j + 16], (15.0 - j as f32 - 8.0) * 0.25);
        }
    }

    #[test]
    fn q4_1_block() {
        let mut block = h(2.0).to_vec();
        block.extend(h(-3.0));
        block.extend((0..16u8).map(|j| (j % 16) | (((j + 1) % 16) << 4)));
        let values = dequantize(GgmlType::Q4_1, &block, 32).unwrap();
        for j in 0..16 {
            assert_eq!(values[j], j as f32 * 2.0 - 3.0);
            assert_eq!(values[j + 16], ((j + 1) % 16) as f32 * 2.0 - 3.0);
        }
    }

    #[test]
    fn plain_floats() {
        let bytes: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            dequantize(GgmlType::F32, &bytes, 2).unwrap(),
            vec![1.5, -2.0]
        );
        let bytes: Vec<u8> = [h(0.125), h(-65504.0)].concat();
        assert_eq!(
            dequantize(GgmlType::F16, &bytes, 2).unwrap(),
            vec![0.125, -65504.0]
        );
    }

    #[test]
    fn other_types_and_wrong_lengths_are_refused() {
        let err = dequantize(GgmlType::Q6_K, &[0; 210], 256).unwrap_err();
        assert_eq!(err, QuantError::Unsupported(GgmlType::Q6_K));
        assert!(err.to_string().contains("Q6_K"));
        assert!(matches!(
            dequantize(GgmlType::Q8_0, &[0; 33], 32),
            Err(QuantError::Length { .. })
        ));
        assert!(dequantize(GgmlType::Q4_0, &[0; 18], 31).is_err());
    }

    #[test]
    fn ids_round_trip() {
        for id in 0..64 {
            if let Some(ty) = GgmlType::from_id(id) {
                assert_eq!(ty.id(), id);
            }
        }
        assert_eq!(GgmlType::from_id(4), None);
    }
}

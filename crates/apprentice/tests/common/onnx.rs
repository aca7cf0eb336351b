//! Helpers of the ONNX export tests: the committed fixtures (their folder, and the JSON that
//! the Python scripts beside them wrote), exported graphs run by tract, padded batches of
//! texts, and the largest difference between two sets of logits.

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;

/// The folder of the committed ONNX fixtures and the scripts that made them.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

/// A committed fixture's JSON, or one entry of it, read by key.
pub struct FixtureJson(pub serde_json::Value);

impl FixtureJson {
    /// The JSON file `name` of [`fixture_dir`].
    pub fn read(name: &str) -> Self {
        let path = fixture_dir().join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the committed fixture {}: {e}", path.display()));
        Self(serde_json::from_str(&text).expect("the fixture is JSON"))
    }

    /// The object under `key` (a file that holds one entry per model).
    pub fn entry(&self, key: &str) -> Self {
        Self(self.0[key].clone())
    }

    /// The value under `key`, as written.
    pub fn get(&self, key: &str) -> &serde_json::Value {
        &self.0[key]
    }

    /// The array of numbers under `key`.
    pub fn numbers(&self, key: &str) -> Vec<f64> {
        self.0[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: an array"))
            .iter()
            .map(|x| x.as_f64().unwrap_or_else(|| panic!("{key}: numbers")))
            .collect()
    }

    /// The array under `key` as integers (token ids, masks).
    pub fn ints(&self, key: &str) -> Vec<i64> {
        self.numbers(key).iter().map(|&v| v as i64).collect()
    }

    /// The array under `key` as float32 (logits).
    pub fn floats(&self, key: &str) -> Vec<f32> {
        self.numbers(key).iter().map(|&v| v as f32).collect()
    }

    /// `shape` as `(rows, length)`.
    pub fn rows_and_length(&self) -> (usize, usize) {
        let shape = self.numbers("shape");
        (shape[0] as usize, shape[1] as usize)
    }
}

/// An ONNX graph planned by tract, ready to run.
pub type TractGraph = Arc<TypedRunnableModel>;

/// An ONNX graph read, optimised and planned by tract.
pub fn tract_plan(bytes: &[u8]) -> TractGraph {
    tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .expect("tract reads the export")
        .into_optimized()
        .expect("tract optimises it")
        .into_runnable()
        .expect("tract plans it")
}

/// The ONNX file at `path`, planned by tract.
pub fn tract_plan_file(path: &Path) -> TractGraph {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    tract_plan(&bytes)
}

/// An int64 `[rows, len]` input.
pub fn int_matrix(values: &[i64], rows: usize, len: usize) -> TValue {
    Tensor::from_shape(&[rows, len], values)
        .expect("rows × len values")
        .into()
}

/// A float32 output's values in row-major order.
pub fn floats_of(value: &TValue) -> Vec<f32> {
    value
        .to_plain_array_view::<f32>()
        .expect("a float32 output")
        .iter()
        .copied()
        .collect()
}

/// The first output of `graph` run on int64 `[rows, len]` inputs, in the graph's input order
/// (`input_ids`, then `attention_mask` where the graph takes one).
pub fn tract_logits(graph: &TractGraph, inputs: &[&[i64]], rows: usize, len: usize) -> Vec<f32> {
    let inputs: TVec<TValue> = inputs
        .iter()
        .map(|values| int_matrix(values, rows, len))
        .collect();
    floats_of(&graph.run(inputs).expect("tract runs it")[0])
}

/// [`tract_logits`] of the ONNX file at `path`.
pub fn tract_file_logits(path: &Path, inputs: &[&[i64]], rows: usize, len: usize) -> Vec<f32> {
    tract_logits(&tract_plan_file(path), inputs, rows, len)
}

/// The largest absolute difference between two sets of logits of the same length.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "logits of different lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Texts as a graph takes them: padded to the longest (at least 1), with `junk(row, column)`
/// rather than the pad id at padded positions, which the mask must make irrelevant.
pub fn padded_batch(
    texts: &[Vec<u32>],
    junk: impl Fn(usize, usize) -> i64,
) -> (Vec<i64>, Vec<i64>, usize) {
    let len = texts.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for (row, text) in texts.iter().enumerate() {
        for column in 0..len {
            match text.get(column) {
                Some(&id) => {
                    ids.push(i64::from(id));
                    mask.push(1);
                }
                None => {
                    ids.push(junk(row, column));
                    mask.push(0);
                }
            }
        }
    }
    (ids, mask, len)
}

/// The real tokens of each row of a padded `[rows, len]` batch whose mask marks a prefix.
pub fn unpadded(ids: &[i64], mask: &[i64], rows: usize, len: usize) -> Vec<Vec<u32>> {
    (0..rows)
        .map(|r| {
            (0..len)
                .filter(|&c| mask[r * len + c] == 1)
                .map(|c| ids[r * len + c] as u32)
                .collect()
        })
        .collect()
}

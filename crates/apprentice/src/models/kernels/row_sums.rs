//! Sums of many rows, each taken left to right exactly as `iter().sum::<f32>()` takes it,
//! several rows side by side.
//!
//! A float sum taken left to right is one chain of additions, each waiting for the one before
//! (about four cycles apiece on current x86 cores), so a row's sum costs that per value however
//! wide the vector units are. Reassociating the additions would change the floats; summing eight
//! rows side by side keeps every row's order and lets their chains overlap.

/// Rows summed side by side.
const ROWS: usize = 8;

/// Writes into `sums[r]` the sum of row `r` of `values` (rows of `width` values, `sums` one
/// per row): each is exactly `row.iter().sum::<f32>()`, from `-0.0`, left to right.
pub fn row_sums_in_order(values: &[f32], width: usize, sums: &mut [f32]) {
    assert!(
        values.len() == sums.len() * width,
        "row sums: {} values are not {} rows of {width}",
        values.len(),
        sums.len()
    );
    if width == 0 {
        sums.fill(-0.0);
        return;
    }
    let mut groups = values.chunks_exact(ROWS * width);
    let mut outputs = sums.chunks_exact_mut(ROWS);
    for (group, out) in (&mut groups).zip(&mut outputs) {
        let mut acc = [-0.0f32; ROWS];
        for column in 0..width {
            for (row, acc) in acc.iter_mut().enumerate() {
                *acc += group[row * width + column];
            }
        }
        out.copy_from_slice(&acc);
    }
    for (row, sum) in groups
        .remainder()
        .chunks_exact(width)
        .zip(outputs.into_remainder())
    {
        *sum = row.iter().sum();
    }
}

//! `apprentice export`: writes a trained model as an ONNX file (opset 17) that onnxruntime,
//! tract and the converters to phone runtimes read; the normalisation is inside the graph, so
//! it takes raw inputs (pixels / 255 for images).

use std::path::PathBuf;

/// Arguments of `apprentice export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A `.safetensors` checkpoint written by `apprentice run` (an MLP or CNN).
    pub checkpoint: PathBuf,
    /// The ONNX file to write (input `images` [N, C, H, W] or [N, features], output `logits`).
    #[arg(long, value_name = "OUT.onnx")]
    pub onnx: PathBuf,
}

/// Runs `apprentice export`.
pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    let summary = apprentice::onnx::export_checkpoint(&args.checkpoint, &args.onnx)?;
    let shape: Vec<String> = summary
        .input_shape
        .iter()
        .map(|d| d.map_or_else(|| "N".to_string(), |d| d.to_string()))
        .collect();
    println!(
        "wrote {} ({} bytes, {} operators): input images [{}], output logits [N, {}]",
        args.onnx.display(),
        summary.bytes,
        summary.nodes,
        shape.join(", "),
        summary.num_classes
    );
    Ok(())
}

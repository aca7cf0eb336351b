//! `apprentice export`: writes a trained model as an ONNX file (opset 17) that onnxruntime,
//! tract and the converters to phone runtimes read. An image model has its normalisation
//! inside the graph, so it takes raw inputs (pixels / 255 for images); a text run's bag or CNN
//! student, and a BERT classifier folder (a text run's teacher or transformer student, or one
//! fine-tuned elsewhere), take the token ids of their tokenizer, which the command names; so
//! does a language-model run's student, which gives the next-token logits of every position.

use std::path::PathBuf;

use apprentice::lm::onnx_export::{export_lm_checkpoint, is_lm_checkpoint};
use apprentice::text::onnx_export::{ExportedStudent, export_student};

/// Arguments of `apprentice export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A `.safetensors` checkpoint written by `apprentice run`: an MLP or CNN, or a text run's
    /// bag or CNN student (`<run>/seed-N/<model>.safetensors`, told by the run's config.toml);
    /// or a `BertForSequenceClassification` folder (`<run>/seed-N/<model>.hf`, or one
    /// fine-tuned elsewhere); or a language-model run's student (`<run>/seed-N/<name>.safetensors`
    /// with its description `<name>.json` beside it).
    pub checkpoint: PathBuf,
    /// The ONNX file to write (input `images` [N, C, H, W] or [N, features], or for a text
    /// student `input_ids` and `attention_mask` [N, L]; output `logits`; for a language model
    /// input `input_ids` [N, L], output `logits` [N, L, vocabulary]).
    #[arg(long, value_name = "OUT.onnx")]
    pub onnx: PathBuf,
    /// For a language-model student: a graph for generation that also takes each layer's
    /// cached keys and values (`past_key.{i}`, `past_value.{i}`, empty at the first call) and
    /// returns them extended (`present_key.{i}`, `present_value.{i}`).
    #[arg(long)]
    pub kv_cache: bool,
}

/// Runs `apprentice export`.
pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    if is_lm_checkpoint(&args.checkpoint) {
        let summary = export_lm_checkpoint(&args.checkpoint, &args.onnx, args.kv_cache)?;
        println!(
            "wrote {} ({} bytes, {} operators): {} ({}), input input_ids int64 [N, L], output \
             the next-token logits of every position [N, L, {}]",
            args.onnx.display(),
            summary.bytes,
            summary.nodes,
            summary.name,
            summary.architecture,
            summary.vocab_size
        );
        println!(
            "token ids from the tokenizer {}, at most {} positions, no padding",
            summary.tokenizer.display(),
            summary.max_positions
        );
        if summary.kv_cache {
            println!(
                "with a key/value cache: inputs past_key.i and past_value.i [N, kv_heads, P, \
                 head_dim] (P = 0 at the first call), outputs present_key.i and \
                 present_value.i [N, kv_heads, P + L, head_dim]"
            );
        }
        return Ok(());
    }
    if args.kv_cache {
        anyhow::bail!(
            "--kv-cache: only a language-model student has a key/value cache; {} is not one \
             (no language-model description {} beside it)",
            args.checkpoint.display(),
            apprentice::lm::checkpoint::meta_path(&args.checkpoint).display()
        );
    }
    match export_student(&args.checkpoint, &args.onnx)? {
        ExportedStudent::Network(summary) => {
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
        }
        ExportedStudent::Bert(summary) => {
            println!(
                "wrote {} ({} bytes, {} operators): {}, inputs input_ids and attention_mask \
                 int64 [N, L], output logits [N, {}] ({})",
                args.onnx.display(),
                summary.bytes,
                summary.nodes,
                summary.architecture,
                summary.labels.len(),
                summary.labels.join(", ")
            );
            println!(
                "token ids from the tokenizer {} (special tokens included, truncated as the \
                 model was trained, at most {} pieces); padded positions need attention_mask 0",
                summary.tokenizer.display(),
                summary.max_positions
            );
        }
        ExportedStudent::Text(summary) => {
            println!(
                "wrote {} ({} bytes, {} operators): {} ({}), inputs input_ids and \
                 attention_mask int64 [N, L], output logits [N, {}]",
                args.onnx.display(),
                summary.bytes,
                summary.nodes,
                summary.model,
                summary.architecture,
                summary.num_classes
            );
            println!(
                "token ids from the tokenizer {} (special tokens included); the graph reads \
                 at most {} pieces and padded positions as the pad id {}",
                summary.tokenizer.display(),
                summary.max_tokens,
                summary.pad_id
            );
        }
    }
    Ok(())
}

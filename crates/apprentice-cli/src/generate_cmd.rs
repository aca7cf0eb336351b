//! `apprentice generate`: continue a prompt with a student language-model checkpoint written
//! by `apprentice run` (or with a GGUF teacher), greedily or by seeded sampling.

use std::path::PathBuf;

use apprentice::backend::{ComputeDevice, DeviceKind};
use apprentice::lm::checkpoint::load_student;
use apprentice::lm::generate::{Sampling, generate};
use apprentice::lm::teacher::Teacher;

/// Arguments of `apprentice generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// A student checkpoint (`.safetensors` with its `.json` beside it) or a GGUF model.
    checkpoint: PathBuf,
    /// The text to continue.
    #[arg(long)]
    prompt: String,
    /// New tokens at most (generation stops earlier at the end-of-sequence token).
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus sampling: keep the most likely tokens up to this probability mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or wgpu.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Prints the continuation of the prompt.
pub fn generate_text(args: GenerateArgs) -> anyhow::Result<()> {
    let kind = DeviceKind::parse(&args.device).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    let device = ComputeDevice::new(kind)
        .map_err(|e| anyhow::anyhow!("device: {e}"))?
        .inference();
    let sampling = Sampling {
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
    };
    sampling.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let is_gguf = args
        .checkpoint
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    let (model, config, tokenizer) = if is_gguf {
        let teacher = Teacher::open(&args.checkpoint, &device)?;
        (teacher.model, teacher.config, teacher.tokenizer)
    } else {
        let student = load_student(&args.checkpoint, &device)?;
        (student.model, student.meta.config, student.tokenizer)
    };
    let mut prompt = tokenizer.encode(&args.prompt)?;
    if tokenizer.adds_bos()
        && let Some(bos) = tokenizer.bos_id()
    {
        prompt.insert(0, bos);
    }
    if prompt.is_empty() {
        anyhow::bail!("--prompt: expected some text");
    }
    let room = config.max_len.saturating_sub(prompt.len());
    if args.max_tokens > room {
        anyhow::bail!(
            "--max-tokens: {} new tokens after {} prompt tokens exceed the context of {}; at most {room}",
            args.max_tokens,
            prompt.len(),
            config.max_len
        );
    }
    let ids = generate(
        &model,
        &config,
        &prompt,
        args.max_tokens,
        &sampling,
        tokenizer.eos_id(),
        &device,
    )?;
    let text_ids: Vec<u32> = ids
        .iter()
        .copied()
        .filter(|&id| Some(id) != tokenizer.eos_id())
        .collect();
    println!("{}", tokenizer.decode(&text_ids)?);
    Ok(())
}

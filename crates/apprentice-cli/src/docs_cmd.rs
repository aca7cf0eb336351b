//! `apprentice docs`: regenerates the tables and numbers of Markdown pages from the raw files
//! they name, or checks that they are up to date.

use std::path::{Path, PathBuf};

use apprentice::report::inline_values::regenerate_values;
use apprentice::report::markdown::regenerate_blocks;

/// Arguments of `apprentice docs`.
#[derive(clap::Args, Debug)]
pub struct DocsArgs {
    /// Markdown pages whose generated blocks (`<!-- generated: ... -->`) and values
    /// (`<!-- value: ... -->`) are rewritten from their raw files.
    #[arg(required = true)]
    pub pages: Vec<PathBuf>,
    /// The folder the raw files' paths are relative to.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Rewrite nothing; fail, naming the pages, when one differs from what its raw files give.
    #[arg(long)]
    pub check: bool,
}

/// Runs `apprentice docs`.
pub fn docs(args: DocsArgs) -> anyhow::Result<()> {
    let mut stale = Vec::new();
    for page in &args.pages {
        let text = std::fs::read_to_string(page)
            .map_err(|e| anyhow::anyhow!("{}: {e}", page.display()))?;
        let generated = regenerate(&text, page, &args.root)?;
        if generated == text {
            continue;
        }
        if args.check {
            stale.push(page.display().to_string());
        } else {
            apprentice::fsutil::write_atomic(page, generated.as_bytes())
                .map_err(|e| anyhow::anyhow!("{}: {e}", page.display()))?;
            eprintln!("rewrote {}", page.display());
        }
    }
    if !stale.is_empty() {
        anyhow::bail!(
            "differ from what their raw files generate: {}",
            stale.join(", ")
        );
    }
    Ok(())
}

/// A page's tables, then its values, from the raw files under `root`.
fn regenerate(text: &str, page: &Path, root: &Path) -> anyhow::Result<String> {
    let name = page.display().to_string();
    let text = regenerate_blocks(text, &name, root)?;
    regenerate_values(&text, &name, root).map_err(anyhow::Error::msg)
}

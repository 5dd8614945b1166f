//! `hibp-mirror generate`: man pages and shell completions made from the clap definitions, so
//! packages ship documentation that cannot drift from the flags.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use clap_complete::Shell;

/// What `generate` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Artifact {
    /// `hibp-mirror.1` and one `hibp-mirror-<command>.1` per subcommand.
    Man,
    /// Completion scripts for bash, zsh and fish.
    Completions,
}

/// Writes `artifact` for `cmd` into `dir` (created if missing) and lists each file on stdout.
pub fn generate(mut cmd: clap::Command, artifact: Artifact, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = cmd.get_name().to_string();
    match artifact {
        Artifact::Man => {
            // `help <command>` would only repeat each command's own page.
            let cmd = cmd.disable_help_subcommand(true);
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
            let mut pages: Vec<_> = fs::read_dir(dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "1"))
                .collect();
            pages.sort();
            for page in pages {
                println!("{}", page.display());
            }
        }
        Artifact::Completions => {
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let path = clap_complete::generate_to(shell, &mut cmd, &name, dir)
                    .with_context(|| format!("cannot write {shell} completions"))?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

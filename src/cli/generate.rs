//! `hibp-mirror generate`: man pages and shell completions made from the clap definitions, so
//! packages ship documentation that cannot drift from the flags. Hidden from `--help`; the Debian
//! package build (tools/deb-test.sh) calls it.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

/// Write man pages or shell completions made from these definitions (for packagers).
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// What to write.
    artifact: Artifact,
    /// Directory to write into (created if missing).
    dir: PathBuf,
}

/// What `generate` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Artifact {
    /// `hibp-mirror.1` and one `hibp-mirror-<command>.1` per subcommand.
    Man,
    /// Completion scripts for bash, zsh and fish.
    Completions,
}

/// Writes the artifact into the directory and lists each file written on stdout.
pub fn run(args: GenerateArgs) -> Result<()> {
    let dir = &args.dir;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cmd = super::Cli::command();
    let name = cmd.get_name().to_string();
    match args.artifact {
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

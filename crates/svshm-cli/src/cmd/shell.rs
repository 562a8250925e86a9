//! `svshm completions SHELL` and `svshm man`: generated from the command-line
//! definition itself, so they always match the options of this binary.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

const COMPLETIONS_HELP: &str = "\
Install (for the current user):
  bash: svshm completions bash > ~/.local/share/bash-completion/completions/svshm
  zsh:  svshm completions zsh > ~/.zfunc/_svshm   (with fpath+=~/.zfunc before compinit)
  fish: svshm completions fish > ~/.config/fish/completions/svshm.fish
Or for one bash session: source <(svshm completions bash)";

/// Print a shell completion script for svshm.
#[derive(Debug, clap::Args)]
#[command(after_help = COMPLETIONS_HELP)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

const MAN_HELP: &str = "\
Examples:
  svshm man | man -l -                 read it now
  svshm man --dir /usr/local/share/man/man1   install svshm.1 and svshm-COMMAND.1";

/// Print the svshm manual page (roff), or write one page per command.
#[derive(Debug, clap::Args)]
#[command(after_help = MAN_HELP)]
pub struct ManArgs {
    /// Write svshm.1 and one svshm-COMMAND.1 per command into DIR instead.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Runs `svshm completions`.
pub fn completions(
    args: CompletionsArgs,
    mut cmd: clap::Command,
    out: &mut dyn Write,
) -> Result<()> {
    clap_complete::generate(args.shell, &mut cmd, "svshm", out);
    Ok(())
}

/// Runs `svshm man`.
pub fn man(args: ManArgs, cmd: clap::Command, out: &mut dyn Write) -> Result<()> {
    match args.dir {
        None => clap_mangen::Man::new(cmd).render(out)?,
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| {
                format!(
                    "create {}: check the path and your permissions",
                    dir.display()
                )
            })?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("write manual pages into {}", dir.display()))?;
            writeln!(out, "manual pages written to {}", dir.display())?;
        }
    }
    Ok(())
}

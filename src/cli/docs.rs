//! Shell completions and man pages, generated from the same clap definition the parser uses,
//! so they cannot drift from the flags berth really takes.

use std::path::{Path, PathBuf};

use berth::container::Error;
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// Shell to generate the completion script for
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write berth.8 and berth-VERB.8 into (created if missing)
    pub dir: PathBuf,
}

pub fn completion(a: &CompletionArgs) -> Result<i32, Error> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "berth", &mut std::io::stdout());
    Ok(0)
}

pub fn man_pages(a: &ManArgs) -> Result<i32, Error> {
    std::fs::create_dir_all(&a.dir).map_err(|e| io_err(&a.dir, e))?;
    let cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    write_page(&a.dir, "berth", cmd.clone())?;
    for sub in cmd.get_subcommands() {
        let name = format!("berth-{}", sub.get_name());
        // Each page names itself as its reader types it: `berth create`, not `create`.
        let page = sub.clone().name(name.clone()).display_name(name.clone());
        write_page(&a.dir, &name, page)?;
    }
    Ok(0)
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> Result<(), Error> {
    let path = dir.join(format!("{name}.8"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .render(&mut buf)
        .map_err(|e| io_err(&path, e))?;
    std::fs::write(&path, buf).map_err(|e| io_err(&path, e))
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Msg(format!("man-pages: {}: {e}", path.display()))
}

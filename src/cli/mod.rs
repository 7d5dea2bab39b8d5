//! Command line in runc's shape: global flags, then one verb per file.

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod docs;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "berth: a low-level OCI container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for container state (tmpfs recommended) [default: /run/berth, or
    /// $XDG_RUNTIME_DIR/berth when rootless]
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub root: Option<PathBuf>,
    /// Also write log lines to this file
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub log: Option<PathBuf>,
    /// Format of the log file
    #[arg(long = "log-format", global = true, help_heading = GLOBAL, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub debug: bool,
    /// Make the container's cgroup a transient systemd scope (cgroupsPath "slice:prefix:name")
    #[arg(long = "systemd-cgroup", global = true, help_heading = GLOBAL)]
    pub systemd_cgroup: bool,
    /// CRIU binary for checkpoint and restore
    #[arg(long, global = true, help_heading = GLOBAL, default_value = "criu")]
    pub criu: PathBuf,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where every verb's help lists the flags that belong to berth, not to the verb.
const GLOBAL: &str = "Global options";

/// Output format of `list` and `ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; it waits for `start`
    Create(create::Args),
    /// Run the user process of a created container
    Start(start::Args),
    /// Print the state of a container as JSON
    State(state::Args),
    /// Send a signal to the container's init process
    Kill(kill::Args),
    /// Delete a stopped (or, with --force, running) container
    Delete(delete::Args),
    /// Create, start, wait for and delete a container
    Run(run::Args),
    /// Run a further process in a running container
    Exec(Box<exec::Args>),
    /// List containers under --root
    List(list::Args),
    /// Write a default config.json for a busybox bundle
    Spec(spec::Args),
    /// Print what this runtime supports (runtime-spec features.json)
    Features,
    /// Change the cgroup limits of a container
    Update(Box<update::Args>),
    /// Freeze every process of a container
    Pause(pause::Args),
    /// Thaw a paused container
    Resume(pause::Args),
    /// List the processes of a container
    Ps(ps::Args),
    /// Checkpoint a running container with CRIU
    Checkpoint(Box<checkpoint::Args>),
    /// Restore a container from a CRIU checkpoint
    Restore(Box<restore::Args>),
    /// Print cgroup statistics and OOM events of a container as JSON
    Events(events::Args),
    /// Print a shell completion script (bash, zsh or fish) generated from this command line
    Completion(docs::CompletionArgs),
    /// Write man pages for berth and every verb into a directory
    #[command(name = "man-pages")]
    ManPages(docs::ManArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every option and argument of every verb explains itself in `--help`.
    #[test]
    fn every_argument_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "berth", &mut missing);
        assert!(missing.is_empty(), "undocumented: {missing:#?}");
    }

    /// Global flags show under their own heading in each verb's help, apart from its own.
    #[test]
    fn global_flags_have_their_own_heading() {
        let mut cmd = Cli::command();
        cmd.build();
        let create = cmd.find_subcommand_mut("create").expect("create verb");
        let help = create.render_help().to_string();
        let global = help
            .find("Global options:")
            .expect("a Global options heading");
        assert!(help[global..].contains("--root <ROOT>"), "{help}");
        assert!(!help[..global].contains("--root <ROOT>"), "{help}");
        assert!(help[..global].contains("--bundle"), "{help}");
    }
}

//! Command line in runc's shape: global flags, then one verb per file.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
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
    /// Directory for container state (tmpfs recommended)
    #[arg(long, global = true, default_value = "/run/berth")]
    pub root: PathBuf,
    /// Also write log lines to this file
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of the log file
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups (not available: this host has no systemd)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

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
    /// Print cgroup statistics and OOM events of a container as JSON
    Events(events::Args),
}

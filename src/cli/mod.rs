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
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The flags that belong to berth, not to a verb.
#[derive(Debug, clap::Args)]
pub struct Global {
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

/// Parses the command line building only the verb it names. clap's whole tree (every verb,
/// every flag, global flags copied into each) cost about 1.7 of the 2.2 million
/// instructions of a `berth --version` (callgrind), and every verb pays it at start, twice
/// for the sealed re-exec. Help, a missing or unknown verb, and anything the scan below does
/// not understand take the full tree, so messages and suggestions stay clap's own.
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let global = <Global as clap::Args>::augment_args(
        clap::Command::new("berth").disable_version_flag(true),
    );
    let cmd = match scan(&args) {
        // `berth --version`, what engines ask at start: no verb to build at all.
        Scan::NoVerb => global,
        Scan::Verb(v) => match verb_command(v) {
            Some(sub) => global.subcommand(sub),
            None => return Cli::try_parse_from(args),
        },
        Scan::Other => return Cli::try_parse_from(args),
    };
    let mut m = cmd.try_get_matches_from(args)?;
    Cli::from_arg_matches_mut(&mut m)
}

/// What the command line names, as far as the lean parse needs to know.
enum Scan<'a> {
    /// Only global flags (`--version`, or nothing: clap's own answer either way).
    NoVerb,
    /// The first argument that is neither a global flag nor its value.
    Verb(&'a str),
    /// Help asked for, or something unexpected: the full tree answers.
    Other,
}

fn scan(args: &[std::ffi::OsString]) -> Scan<'_> {
    if args.iter().any(|x| x == "--help" || x == "-h") {
        return Scan::Other;
    }
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let Some(a) = a.to_str() else {
            return Scan::Other;
        };
        match a {
            "--root" | "--log" | "--log-format" | "--criu" => {
                if it.next().is_none() {
                    return Scan::Other;
                }
            }
            "--debug" | "--systemd-cgroup" | "--version" | "-v" => {}
            _ if a.starts_with("--root=")
                || a.starts_with("--log=")
                || a.starts_with("--log-format=")
                || a.starts_with("--criu=") => {}
            _ if a.starts_with('-') => return Scan::Other,
            verb => return Scan::Verb(verb),
        }
    }
    Scan::NoVerb
}

/// One verb's clap command, as the Command derive would build it (minus its about text).
fn verb_command(verb: &str) -> Option<clap::Command> {
    use clap::Args as A;
    let c = clap::Command::new(verb.to_string());
    Some(match verb {
        "create" => create::Args::augment_args(c),
        "start" => start::Args::augment_args(c),
        "state" => state::Args::augment_args(c),
        "kill" => kill::Args::augment_args(c),
        "delete" => delete::Args::augment_args(c),
        "run" => run::Args::augment_args(c),
        "exec" => exec::Args::augment_args(c),
        "list" => list::Args::augment_args(c),
        "spec" => spec::Args::augment_args(c),
        "features" => c,
        "update" => update::Args::augment_args(c),
        "pause" | "resume" => pause::Args::augment_args(c),
        "ps" => ps::Args::augment_args(c),
        "checkpoint" => checkpoint::Args::augment_args(c),
        "restore" => restore::Args::augment_args(c),
        "events" => events::Args::augment_args(c),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// The lean parse builds each verb exactly as the full tree does, and reads the same.
    #[test]
    fn lean_parse_matches_the_full_tree() {
        let full = Cli::command();
        for sub in full.get_subcommands() {
            let name = sub.get_name();
            let Some(lean) = super::verb_command(name) else {
                assert!(
                    ["completion", "man-pages"].contains(&name),
                    "{name}: no lean builder"
                );
                continue;
            };
            let a: Vec<String> = sub.get_arguments().map(|x| format!("{x:?}")).collect();
            let b: Vec<String> = lean.get_arguments().map(|x| format!("{x:?}")).collect();
            assert_eq!(a, b, "{name}");
        }
        let cases: &[&[&str]] = &[
            &["berth", "--root", "/r", "create", "--bundle", "b", "id"],
            &[
                "berth",
                "--log-format=json",
                "--log",
                "l",
                "delete",
                "-f",
                "x",
            ],
            &[
                "berth", "run", "-d", "--bundle", "b", "x", "--root", "/y", "--debug",
            ],
            &[
                "berth", "exec", "-t", "--env", "A=1", "id", "sh", "-c", "echo",
            ],
            &["berth", "kill", "--all", "id", "KILL"],
            &[
                "berth",
                "--systemd-cgroup",
                "update",
                "--memory",
                "64M",
                "id",
            ],
            &["berth", "features"],
            &["berth", "resume", "id"],
            &["berth", "--version"],
            &["berth", "-v"],
            &["berth", "--root", "/r"],
        ];
        for argv in cases {
            let args: Vec<std::ffi::OsString> = argv.iter().map(|a| a.into()).collect();
            let full = format!("{:?}", Cli::try_parse_from(args.clone()).expect("full"));
            let lean = format!("{:?}", super::parse(args).expect("lean"));
            assert_eq!(full, lean, "{argv:?}");
        }
        for argv in [
            &["berth", "create"][..],
            &["berth", "start", "a", "b"],
            &["berth", "kill", "--nope", "x"],
        ] {
            let args: Vec<std::ffi::OsString> = argv.iter().map(|a| a.into()).collect();
            let full = Cli::try_parse_from(args.clone()).expect_err("full").kind();
            let lean = super::parse(args).expect_err("lean").kind();
            assert_eq!(full, lean, "{argv:?}");
        }
    }

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

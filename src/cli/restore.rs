use std::path::{Path, PathBuf};

use berth::container;
use berth::criu::{self, RestoreOpts};

use super::checkpoint::CriuArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Bundle directory (holds config.json); default: current directory
    #[arg(short = 'b', long)]
    pub bundle: Option<PathBuf>,
    /// Return once the container is restored
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the restored init's pid to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master of a container with a terminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Do not become the subreaper of reparented processes while waiting
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Accepted as runc does (CRIU mounts the restored root itself)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// LSM profile for the restored processes, TYPE:NAME
    #[arg(long = "lsm-profile", value_name = "TYPE:NAME")]
    pub lsm_profile: Option<String>,
    /// LSM mount context for the restored mounts
    #[arg(long = "lsm-mount-context", value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,
    /// Container id (unique under --root)
    pub id: String,
}

pub fn exec(root: &Path, criu: &Path, a: &Args) -> Result<i32, container::Error> {
    let opts = RestoreOpts {
        common: a.criu.common(criu),
        bundle: a.bundle.clone().unwrap_or_default(),
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_subreaper: a.no_subreaper,
        no_pivot: a.no_pivot,
        lsm_profile: a.lsm_profile.clone(),
        lsm_mount_context: a.lsm_mount_context.clone(),
    };
    criu::restore(root, &a.id, &opts).map_err(|e| container::Error::Msg(e.to_string()))
}

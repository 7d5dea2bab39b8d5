use std::path::PathBuf;

use berth::container::{self, CreateOpts};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bundle directory (holds config.json); default: current directory
    #[arg(short = 'b', long)]
    pub bundle: Option<PathBuf>,
    /// Write the container's init pid to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the container process (runc 1.2+)
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Move the rootfs over / and chroot instead of pivot_root (for ramfs roots)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring (default: a new one per container)
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (from 3 on) to the container process
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id (unique under --root)
    pub id: String,
}

impl Args {
    pub fn opts(&self, detached: bool) -> CreateOpts {
        CreateOpts {
            bundle: self.bundle.clone().unwrap_or_default(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            pidfd_socket: self.pidfd_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            detached,
            internal_console: false,
        }
    }
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, container::Error> {
    container::create(root, &a.id, &a.opts(true))?;
    Ok(0)
}

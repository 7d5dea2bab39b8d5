use std::path::PathBuf;

use berth::container::{self, RunOpts};

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
    /// Return once the container has started
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    /// Container id, or a bundle path (contains '/' or starts with '.'): an id is generated
    pub id: Option<String>,
}

/// `berth run ./bundle`: a positional that looks like a path is the bundle.
fn id_and_bundle(a: &Args) -> (String, PathBuf) {
    match &a.id {
        Some(s) if s.contains('/') || s.starts_with('.') => (generated_id(), PathBuf::from(s)),
        Some(s) => (s.clone(), a.bundle.clone().unwrap_or_default()),
        None => (generated_id(), a.bundle.clone().unwrap_or_default()),
    }
}

fn generated_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("berth-{}-{nanos:08x}", std::process::id())
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, container::Error> {
    let (id, bundle) = id_and_bundle(a);
    let opts = RunOpts {
        create: container::CreateOpts {
            bundle,
            pid_file: a.pid_file.clone(),
            console_socket: a.console_socket.clone(),
            pidfd_socket: a.pidfd_socket.clone(),
            no_pivot: a.no_pivot,
            no_new_keyring: a.no_new_keyring,
            preserve_fds: a.preserve_fds,
            detached: a.detach,
            internal_console: !a.detach && a.console_socket.is_none(),
        },
        detach: a.detach,
        keep: a.keep,
    };
    container::run(root, &id, &opts)
}

use std::path::{Path, PathBuf};

use berth::container;
use berth::criu::{self, CheckpointOpts, Common};

/// Flags both `checkpoint` and `restore` take, as runc names them.
#[derive(Debug, clap::Args)]
pub struct CriuArgs {
    /// Directory of the CRIU image files (default: ./checkpoint)
    #[arg(long = "image-path", value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and log (default: the image directory)
    #[arg(long = "work-path", value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Cgroups mode: soft (default), full, strict or ignore
    #[arg(long = "manage-cgroups-mode", value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace but do not restore its properties (only "network")
    #[arg(long = "empty-ns", value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images as they are read or written
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Restore memory pages lazily through userfaultfd
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

impl CriuArgs {
    pub fn common(&self, criu: &Path) -> Common {
        Common {
            criu: criu.to_path_buf(),
            image_path: self.image_path.clone(),
            work_path: self.work_path.clone(),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: self.manage_cgroups_mode.clone(),
            empty_ns: self.empty_ns.clone(),
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Images of an earlier (pre-)dump, relative to --image-path
    #[arg(long = "parent-path", value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Dump memory only and leave the container running (for a later --parent-path dump)
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// ADDRESS:PORT of a CRIU page server to send the memory pages to
    #[arg(long = "page-server", value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,
    /// With --lazy-pages: CRIU writes \0 to this fd once the lazy pages are ready
    #[arg(long = "status-fd", value_name = "FD", default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,
    /// Container id
    pub id: String,
}

pub fn exec(root: &Path, criu: &Path, a: &Args) -> Result<i32, container::Error> {
    let opts = CheckpointOpts {
        common: a.criu.common(criu),
        parent_path: a.parent_path.clone(),
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
        page_server: a.page_server.clone(),
        status_fd: (a.status_fd >= 0).then_some(a.status_fd),
    };
    criu::checkpoint(root, &a.id, &opts).map_err(|e| container::Error::Msg(e.to_string()))?;
    Ok(0)
}

//! Path resolution inside the container root with openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS): a symlink in the rootfs, absolute or `..`-laden, can never lead
//! outside it. From here on we operate on fds and mount onto `/proc/self/fd/N`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2) with a resolve mask.
pub fn openat2(
    dirfd: RawFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: valid C string and open_how struct of the size we pass.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: a new fd owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        match Errno::last() {
            Errno::EAGAIN | Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// The container's root directory, held open.
pub struct Root {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

/// What to create at a destination that does not exist yet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

impl Root {
    pub fn open(path: &Path) -> Result<Root, Errno> {
        let fd = openat2(libc::AT_FDCWD, path, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens `p` (a container path) inside the root.
    pub fn open_in(&self, p: &Path, flags: i32) -> Result<OwnedFd, Errno> {
        openat2(
            self.fd.as_raw_fd(),
            &relative(p),
            flags,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )
    }

    /// `mkdir -p` inside the root; returns an O_PATH fd on the directory. A dangling
    /// symlink on the way is followed as the kernel would, inside the root.
    pub fn mkdir_all(&self, p: &Path) -> Result<OwnedFd, Errno> {
        self.mkdir_all_depth(p, 0)
    }

    fn mkdir_all_depth(&self, p: &Path, depth: u32) -> Result<OwnedFd, Errno> {
        match self.open_in(p, libc::O_PATH | libc::O_DIRECTORY) {
            Err(Errno::ENOENT) => {}
            r => return r,
        }
        let (parent, name) = split(p)?;
        let pfd = self.mkdir_all_depth(&parent, depth)?;
        match nix::sys::stat::mkdirat(
            &pfd,
            name.as_path(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        // Resolve again from the root: whatever now sits there is followed inside the root.
        match self.open_in(p, libc::O_PATH | libc::O_DIRECTORY) {
            Err(Errno::ENOENT) => {
                // `name` exists but leads nowhere: a symlink to a missing directory.
                if depth >= 40 {
                    return Err(Errno::ELOOP);
                }
                let target = nix::fcntl::readlinkat(&pfd, name.as_path())?;
                let target = Path::new(&target);
                let next = if target.is_absolute() {
                    target.to_path_buf()
                } else {
                    parent.join(target)
                };
                self.mkdir_all_depth(&normalize(&next), depth + 1)
            }
            r => r,
        }
    }

    /// Ensures a mount destination exists, creating a directory or an empty file.
    pub fn ensure(&self, p: &Path, kind: Kind) -> Result<OwnedFd, Errno> {
        match kind {
            Kind::Dir => self.mkdir_all(p),
            Kind::File => match self.open_in(p, libc::O_PATH) {
                Err(Errno::ENOENT) => {
                    let (parent, name) = split(p)?;
                    let pfd = self.mkdir_all(&parent)?;
                    // O_NOFOLLOW: a symlink planted at the last component is refused.
                    match nix::fcntl::openat(
                        &pfd,
                        name.as_path(),
                        nix::fcntl::OFlag::O_CREAT
                            | nix::fcntl::OFlag::O_WRONLY
                            | nix::fcntl::OFlag::O_NOFOLLOW
                            | nix::fcntl::OFlag::O_CLOEXEC,
                        nix::sys::stat::Mode::from_bits_truncate(0o644),
                    ) {
                        Ok(_) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                    self.open_in(p, libc::O_PATH)
                }
                r => r,
            },
        }
    }
}

/// `/proc/self/fd/N`: the path through which mount(2) acts on an fd we resolved safely.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Container path → path relative to the root ("/a/b" → "a/b", "/" → ".").
pub fn relative(p: &Path) -> PathBuf {
    let r: PathBuf = p
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect();
    if r.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        r
    }
}

/// Lexical clean-up: "." dropped, ".." pops but never above "/" (as RESOLVE_IN_ROOT).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn split(p: &Path) -> Result<(PathBuf, PathBuf), Errno> {
    let rel = relative(p);
    let name = rel.file_name().ok_or(Errno::EINVAL)?.into();
    let parent = Path::new("/").join(rel.parent().unwrap_or(Path::new("")));
    Ok((parent, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/a/b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
        assert_eq!(relative(Path::new("//a/./b/")), PathBuf::from("a/b"));
    }

    #[test]
    fn symlinks_stay_inside_root() {
        let tmp = std::env::temp_dir().join(format!("berth-paths-{}", std::process::id()));
        let root = tmp.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(tmp.join("outside")).unwrap();
        // An absolute symlink pointing "outside" must resolve to root/outside.
        std::os::unix::fs::symlink("/outside", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../outside", root.join("etc/dotdot")).unwrap();
        let r = Root::open(&root).unwrap();
        r.mkdir_all(Path::new("/escape/new")).unwrap();
        r.mkdir_all(Path::new("/etc/dotdot/x")).unwrap();
        assert!(root.join("outside/new").is_dir());
        assert!(root.join("outside/x").is_dir());
        assert!(!tmp.join("outside/new").exists());
        r.ensure(Path::new("/f/file"), Kind::File).unwrap();
        assert!(root.join("f/file").is_file());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}

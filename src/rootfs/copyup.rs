//! runc's `tmpcopyup` extension: a tmpfs mounted over a directory of the image starts with a
//! copy of what it hides (podman's `--read-only` puts such tmpfs on /tmp, /run, /var/tmp).
//!
//! The directory is opened *before* the tmpfs covers it: lookups relative to that fd stay
//! in the shadowed directory, so the copy needs no staging mount and no path outside the
//! root. Every step is relative to a directory fd and never follows a symlink, so a link in
//! the image cannot make the copy read or write anything outside the two trees. What is
//! copied keeps type, content, owner, mode and times; hard links become separate files.
//! The tmpfs root itself takes the covered directory's mode in `mounts::tmpfs`, as runc.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

/// Deeper than any real image; stops a runaway walk.
const MAX_DEPTH: u32 = 128;

/// What failed and where (a path relative to the mount destination).
#[derive(Debug)]
pub struct CopyError {
    pub step: &'static str,
    pub rel: std::path::PathBuf,
    pub errno: Errno,
}

type Result<T> = std::result::Result<T, CopyError>;

trait Step<T> {
    fn step(self, step: &'static str, rel: &Path) -> Result<T>;
}

impl<T> Step<T> for std::result::Result<T, Errno> {
    fn step(self, step: &'static str, rel: &Path) -> Result<T> {
        self.map_err(|errno| CopyError {
            step,
            rel: rel.to_path_buf(),
            errno,
        })
    }
}

fn cvt(r: libc::c_int) -> std::result::Result<libc::c_int, Errno> {
    if r < 0 { Err(Errno::last()) } else { Ok(r) }
}

fn openat(
    dir: BorrowedFd,
    name: &CStr,
    flags: i32,
    mode: u32,
) -> std::result::Result<OwnedFd, Errno> {
    loop {
        // SAFETY: valid fd and C string.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                mode,
            )
        };
        match cvt(fd) {
            // SAFETY: a new fd owned by nobody else.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn fstatat(dir: BorrowedFd, name: &CStr) -> std::result::Result<libc::stat, Errno> {
    // SAFETY: zeroed stat is a valid out-buffer; valid fd and C string.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

fn times(st: &libc::stat) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec,
        },
        libc::timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec,
        },
    ]
}

/// Owner, then mode (chown clears set-id bits), then times, on an open file or directory.
fn set_meta(fd: BorrowedFd, st: &libc::stat) -> std::result::Result<(), Errno> {
    let fd = fd.as_raw_fd();
    // SAFETY: plain syscalls on a valid fd; `times` is a two-element array.
    unsafe {
        cvt(libc::fchown(fd, st.st_uid, st.st_gid))?;
        cvt(libc::fchmod(fd, st.st_mode & 0o7777))?;
        cvt(libc::futimens(fd, times(st).as_ptr()))?;
    }
    Ok(())
}

/// Copies the entries of `src` (the shadowed directory) into `dst` (the new tmpfs root).
pub fn copy_tree(src: BorrowedFd, dst: BorrowedFd) -> Result<()> {
    copy_dir(src, dst, Path::new(""), 0)
}

fn copy_dir(src: BorrowedFd, dst: BorrowedFd, rel: &Path, depth: u32) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Errno::ELOOP).step("copy up (too deep)", rel);
    }
    let listing = nix::unistd::dup(src).step("dup", rel)?;
    let mut dir = nix::dir::Dir::from_fd(listing).step("read directory", rel)?;
    let mut names = Vec::new();
    for e in dir.iter() {
        let e = e.step("read directory", rel)?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(n.to_owned());
        }
    }
    for name in names {
        let path = rel.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        copy_entry(src, dst, &name, &path, depth)?;
    }
    Ok(())
}

fn copy_entry(src: BorrowedFd, dst: BorrowedFd, name: &CStr, rel: &Path, depth: u32) -> Result<()> {
    let st = fstatat(src, name).step("stat", rel)?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            // SAFETY: valid fd and C string.
            cvt(unsafe { libc::mkdirat(dst.as_raw_fd(), name.as_ptr(), 0o700) })
                .step("create directory", rel)?;
            let from = openat(src, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .step("open directory", rel)?;
            let to = openat(dst, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .step("open new directory", rel)?;
            copy_dir(from.as_fd(), to.as_fd(), rel, depth + 1)?;
            set_meta(to.as_fd(), &st).step("set owner, mode and times of", rel)?;
        }
        libc::S_IFREG => {
            let from = openat(src, name, libc::O_RDONLY, 0).step("open file", rel)?;
            let to = openat(
                dst,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                0o600,
            )
            .step("create file", rel)?;
            let (mut r, mut w) = (std::fs::File::from(from), std::fs::File::from(to));
            std::io::copy(&mut r, &mut w)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
                .step("copy file", rel)?;
            set_meta(w.as_fd(), &st).step("set owner, mode and times of", rel)?;
        }
        libc::S_IFLNK => {
            let target = nix::fcntl::readlinkat(src, name).step("read symlink", rel)?;
            nix::unistd::symlinkat(target.as_os_str(), dst, name).step("create symlink", rel)?;
            // SAFETY: valid fd and C string; `times` is a two-element array.
            unsafe {
                let nf = libc::AT_SYMLINK_NOFOLLOW;
                cvt(libc::fchownat(
                    dst.as_raw_fd(),
                    name.as_ptr(),
                    st.st_uid,
                    st.st_gid,
                    nf,
                ))
                .step("set owner of symlink", rel)?;
                cvt(libc::utimensat(
                    dst.as_raw_fd(),
                    name.as_ptr(),
                    times(&st).as_ptr(),
                    nf,
                ))
                .step("set times of symlink", rel)?;
            }
        }
        _ => {
            // Devices, fifos, sockets: made anew with the same type and number; only this
            // process can see the fresh tmpfs, so the name cannot be swapped in between.
            // SAFETY: valid fd and C string; `times` is a two-element array.
            unsafe {
                let nf = libc::AT_SYMLINK_NOFOLLOW;
                let (d, n) = (dst.as_raw_fd(), name.as_ptr());
                cvt(libc::mknodat(
                    d,
                    n,
                    st.st_mode & (libc::S_IFMT | 0o600),
                    st.st_rdev,
                ))
                .step("create node", rel)?;
                cvt(libc::fchownat(d, n, st.st_uid, st.st_gid, nf)).step("set owner of", rel)?;
                cvt(libc::fchmodat(d, n, st.st_mode & 0o7777, 0)).step("set mode of", rel)?;
                cvt(libc::utimensat(d, n, times(&st).as_ptr(), nf)).step("set times of", rel)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn open_dir(p: &Path) -> OwnedFd {
        std::fs::File::open(p).unwrap().into()
    }

    #[test]
    fn copies_files_dirs_symlinks_and_fifos_without_following_links() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst, outside) = (
            tmp.path().join("src"),
            tmp.path().join("dst"),
            tmp.path().join("outside"),
        );
        for d in [&src, &dst, &outside] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(outside.join("secret"), "no").unwrap();
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        std::fs::write(src.join("a/b/f"), "data").unwrap();
        std::fs::set_permissions(src.join("a/b/f"), std::fs::Permissions::from_mode(0o4751))
            .unwrap();
        std::fs::set_permissions(src.join("a"), std::fs::Permissions::from_mode(0o1733)).unwrap();
        std::os::unix::fs::symlink(&outside, src.join("link")).unwrap();
        nix::unistd::mkfifo(
            &src.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o640),
        )
        .unwrap();
        let (s, d) = (open_dir(&src), open_dir(&dst));
        copy_tree(s.as_fd(), d.as_fd()).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("a/b/f")).unwrap(), "data");
        let m = std::fs::metadata(dst.join("a/b/f")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4751);
        assert_eq!(
            m.mtime(),
            std::fs::metadata(src.join("a/b/f")).unwrap().mtime()
        );
        assert_eq!(
            std::fs::metadata(dst.join("a")).unwrap().mode() & 0o7777,
            0o1733
        );
        assert_eq!(std::fs::read_link(dst.join("link")).unwrap(), outside);
        let fifo = std::fs::symlink_metadata(dst.join("fifo")).unwrap();
        assert_eq!(fifo.mode() & libc::S_IFMT, libc::S_IFIFO);
        assert_eq!(fifo.mode() & 0o7777, 0o640);
        // The link was copied as a link, not followed.
        assert!(!dst.join("secret").exists());
        assert!(
            std::fs::symlink_metadata(dst.join("link"))
                .unwrap()
                .is_symlink()
        );
    }
}

//! mount(8)-style option strings → mount(2) flags, propagation, mount_setattr attributes
//! and filesystem data. Pure logic, unit-tested without root.

use nix::mount::MsFlags;

/// mount_setattr(2) attribute bits (linux/mount.h); not all are exported by libc.
pub mod attr {
    pub const RDONLY: u64 = 0x0000_0001;
    pub const NOSUID: u64 = 0x0000_0002;
    pub const NODEV: u64 = 0x0000_0004;
    pub const NOEXEC: u64 = 0x0000_0008;
    pub const ATIME_MASK: u64 = 0x0000_0070;
    pub const RELATIME: u64 = 0x0000_0000;
    pub const NOATIME: u64 = 0x0000_0010;
    pub const STRICTATIME: u64 = 0x0000_0020;
    pub const NODIRATIME: u64 = 0x0000_0080;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// Everything one mount's option list asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to set on mount(2).
    pub flags: MsFlags,
    /// Flags an option explicitly cleared (e.g. `rw`, `suid`): needed for remounts.
    pub cleared: MsFlags,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes to set / clear with mount_setattr(AT_RECURSIVE).
    pub attr_set: u64,
    pub attr_clr: u64,
    /// Filesystem-specific data (`mode=755,size=65536k`), comma-joined.
    pub data: Vec<String>,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    pub recursive_bind: bool,
    /// `idmap`/`ridmap`: the mount should be id-mapped (implemented with user namespaces).
    pub idmap: bool,
    /// `ridmap`: the mapping goes to every mount of an `rbind` tree; with `idmap` only
    /// the top one is mapped (runc's reading of the two words).
    pub recursive_idmap: bool,
    /// runc's `tmpcopyup` extension: copy the shadowed directory into a new tmpfs.
    pub tmpcopyup: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            attr_set: 0,
            attr_clr: 0,
            data: Vec::new(),
            bind: false,
            recursive_bind: false,
            idmap: false,
            recursive_idmap: false,
            tmpcopyup: false,
        }
    }
}

impl MountOptions {
    pub fn data_string(&self) -> String {
        self.data.join(",")
    }
}

/// Parses one mount's options. Anything not a known flag is filesystem data (ignored on a
/// bind mount, as the kernel and runc ignore it).
pub fn parse(options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    for opt in options {
        let opt = opt.as_str();
        if let Some((set, flag)) = flag_option(opt) {
            if set {
                o.flags |= flag;
                o.cleared &= !flag;
            } else {
                o.flags &= !flag;
                o.cleared |= flag;
            }
            continue;
        }
        if let Some(p) = propagation_option(opt) {
            o.propagation.push(p);
            continue;
        }
        if let Some((set, bits)) = recursive_attr_option(opt) {
            let atime = bits & attr::ATIME_MASK != 0 || bits == attr::RELATIME;
            if set && atime {
                // mount_setattr changes the atime mode only with the whole mask in attr_clr.
                o.attr_clr |= attr::ATIME_MASK;
                o.attr_set = (o.attr_set & !attr::ATIME_MASK) | bits;
            } else if set {
                o.attr_set |= bits;
                o.attr_clr &= !bits;
            } else {
                o.attr_clr |= bits;
                o.attr_set &= !bits;
            }
            continue;
        }
        match opt {
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive_bind = true;
            }
            "idmap" => o.idmap = true,
            "ridmap" => {
                o.idmap = true;
                o.recursive_idmap = true;
            }
            "tmpcopyup" => o.tmpcopyup = true,
            "defaults" | "" => {}
            other => o.data.push(other.to_string()),
        }
    }
    o
}

/// Every option word berth understands, for `features` (filesystem data aside).
pub const KNOWN: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
    "ratime",
];

/// mount(8) flag words: (true = set, false = clear, flag).
fn flag_option(opt: &str) -> Option<(bool, MsFlags)> {
    Some(match opt {
        "ro" => (true, MsFlags::MS_RDONLY),
        "rw" => (false, MsFlags::MS_RDONLY),
        "nosuid" => (true, MsFlags::MS_NOSUID),
        "suid" => (false, MsFlags::MS_NOSUID),
        "nodev" => (true, MsFlags::MS_NODEV),
        "dev" => (false, MsFlags::MS_NODEV),
        "noexec" => (true, MsFlags::MS_NOEXEC),
        "exec" => (false, MsFlags::MS_NOEXEC),
        "sync" => (true, MsFlags::MS_SYNCHRONOUS),
        "async" => (false, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (true, MsFlags::MS_DIRSYNC),
        "remount" => (true, MsFlags::MS_REMOUNT),
        "mand" => (true, MsFlags::MS_MANDLOCK),
        "nomand" => (false, MsFlags::MS_MANDLOCK),
        "atime" => (false, MsFlags::MS_NOATIME),
        "noatime" => (true, MsFlags::MS_NOATIME),
        "diratime" => (false, MsFlags::MS_NODIRATIME),
        "nodiratime" => (true, MsFlags::MS_NODIRATIME),
        "relatime" => (true, MsFlags::MS_RELATIME),
        "norelatime" => (false, MsFlags::MS_RELATIME),
        "strictatime" => (true, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
        "lazytime" => (true, MsFlags::MS_LAZYTIME),
        "nolazytime" => (false, MsFlags::MS_LAZYTIME),
        "silent" => (true, MsFlags::MS_SILENT),
        "loud" => (false, MsFlags::MS_SILENT),
        "iversion" => (true, MsFlags::MS_I_VERSION),
        "noiversion" => (false, MsFlags::MS_I_VERSION),
        "nosymfollow" => (true, MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        "symfollow" => (false, MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        _ => return None,
    })
}

pub fn propagation_option(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// The recursive attribute words of runtime-spec config.md ("rro", "rnosuid", …).
fn recursive_attr_option(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" => (true, attr::RDONLY),
        "rrw" => (false, attr::RDONLY),
        "rnosuid" => (true, attr::NOSUID),
        "rsuid" => (false, attr::NOSUID),
        "rnodev" => (true, attr::NODEV),
        "rdev" => (false, attr::NODEV),
        "rnoexec" => (true, attr::NOEXEC),
        "rexec" => (false, attr::NOEXEC),
        "rnodiratime" => (true, attr::NODIRATIME),
        "rdiratime" => (false, attr::NODIRATIME),
        "rrelatime" => (true, attr::RELATIME),
        "rnorelatime" => (false, attr::ATIME_MASK),
        "rnoatime" => (true, attr::NOATIME),
        "ratime" => (false, attr::ATIME_MASK),
        "rstrictatime" => (true, attr::STRICTATIME),
        "rnostrictatime" => (false, attr::ATIME_MASK),
        "rnosymfollow" => (true, attr::NOSYMFOLLOW),
        "rsymfollow" => (false, attr::NOSYMFOLLOW),
        _ => return None,
    })
}

/// rootfsPropagation values (config-linux.md); the plain words affect `/` alone, the
/// r-words its whole tree, as runc maps them.
pub fn rootfs_propagation(value: &str) -> Option<MsFlags> {
    propagation_option(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> MountOptions {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_data_split() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data_string(), "mode=755,size=65536k");
        assert!(!o.bind);
    }

    #[test]
    fn later_option_wins() {
        let o = p(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
        let o = p(&["rw", "ro"]);
        assert!(o.flags.contains(MsFlags::MS_RDONLY));
        assert!(!o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bind_and_propagation() {
        let o = p(&["rbind", "rprivate", "ro"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert!(o.data.is_empty());
    }

    #[test]
    fn recursive_attributes() {
        let o = p(&["rro", "rnosuid", "rnoatime"]);
        assert_eq!(o.attr_set, attr::RDONLY | attr::NOSUID | attr::NOATIME);
        assert_eq!(o.attr_clr, attr::ATIME_MASK);
        let o = p(&["rro", "rrw"]);
        assert_eq!(o.attr_set & attr::RDONLY, 0);
        assert_eq!(o.attr_clr & attr::RDONLY, attr::RDONLY);
    }

    #[test]
    fn idmap_is_recursive_only_as_ridmap() {
        let o = p(&["rbind", "idmap"]);
        assert!(o.idmap && o.recursive_bind && !o.recursive_idmap);
        let o = p(&["bind", "ridmap"]);
        assert!(o.idmap && !o.recursive_bind && o.recursive_idmap);
    }

    #[test]
    fn every_known_word_is_parsed_as_an_option() {
        for w in KNOWN {
            let o = p(&[w]);
            assert!(o.data.is_empty(), "{w} fell through to filesystem data");
        }
    }

    #[test]
    fn rootfs_propagation_values() {
        assert_eq!(
            rootfs_propagation("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(rootfs_propagation("private"), Some(MsFlags::MS_PRIVATE));
        assert_eq!(rootfs_propagation("sideways"), None);
    }
}

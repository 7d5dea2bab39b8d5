//! berth: a low-level OCI container runtime. See docs/design.md for the flow:
//! config.json → spec (plan) → container (create/start/…) → init stub → execve.

pub mod attach;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod control;
pub mod criu;
pub mod exec;
pub mod failpoints;
pub mod hooks;
pub mod init;
pub mod logging;
pub mod namespaces;
pub mod netdev;
pub mod pidfd;
pub mod poll;
pub mod rootfs;
pub mod rootless;
pub mod security;
pub mod signals;
pub mod spec;
pub mod state;
pub mod sync;

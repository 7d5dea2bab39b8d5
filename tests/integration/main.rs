//! Black-box tests of the built `berth` binary on real bundles. They need root.

mod apparmor;
mod bad_input;
mod cgroups;
mod cgroups_v2;
mod cgroups_v2_life;
mod cgroups_v2_system;
mod checkpoint;
mod cli;
mod common;
mod concurrency;
pub(crate) mod contract;
mod contract_tty_cgroups;
mod engines;
mod exec;
mod exec_contract;
#[cfg(feature = "failpoints")]
mod faults;
mod help;
mod hooks;
mod host_safety_mounts;
mod host_safety_process;
mod lifecycle;
mod malformed;
mod namespaces;
mod netdev;
mod process;
mod rootfs;
mod rootless;
mod run;
mod sandbox;
mod seccomp;
mod seccomp_contract;
mod security;
mod systemd_guest;
mod verbs;

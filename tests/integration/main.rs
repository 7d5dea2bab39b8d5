//! Black-box tests of the built `berth` binary on real bundles. They need root.

mod apparmor;
mod bad_input;
mod cgroups;
mod cgroups_v2;
mod cgroups_v2_life;
mod cgroups_v2_system;
mod cli;
mod common;
mod concurrency;
mod contract;
mod contract_tty_cgroups;
mod engines;
mod exec;
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
mod run;
mod sandbox;
mod seccomp;
mod security;
mod verbs;

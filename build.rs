//! Embeds the git commit berth is built from, for `berth --version` (runc prints its commit
//! the same way). Outside a git checkout (a release tarball) the line says "unknown".
//! Also generates CRIU's RPC messages from src/criu/rpc.proto (prost-build).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    criu_rpc();
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    println!(
        "cargo:rustc-env=BERTH_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    // Rebuild when HEAD moves: HEAD itself (branch switch) and the ref it names (a commit).
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{r}");
        }
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        println!("cargo:rerun-if-changed={common}/packed-refs");
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={common}/{r}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// CRIU's RPC messages (src/criu/rpc.proto, vendored from CRIU) as Rust types in OUT_DIR,
/// included by src/criu/rpc.rs. Needs protoc (PROTOC or on PATH).
fn criu_rpc() {
    println!("cargo:rerun-if-changed=src/criu/rpc.proto");
    if let Err(e) = prost_build::compile_protos(&["src/criu/rpc.proto"], &["src/criu"]) {
        panic!("generate CRIU's RPC code from src/criu/rpc.proto (is protoc installed?): {e}");
    }
}

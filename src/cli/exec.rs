use std::path::PathBuf;

use berth::container::Error;
use berth::exec::ExecOpts;
use oci_spec::runtime::{Capability, Process};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON file with an OCI process object (replaces every other process flag)
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Give the process a terminal (needs --console-socket)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Return once the process has started
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the pid of the new process to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when --tty is given
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the new process (runc 1.2+)
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Working directory inside the container (default: the config's process.cwd)
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE, repeatable; replaces a variable of the same name
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// UID[:GID]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// An additional group id for the process, repeatable
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_NAME), repeatable
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile for the process (AppArmor must be enabled and the profile loaded)
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process (refused: berth does not apply SELinux labels)
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Pass N extra fds (from 3 on) to the process
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run the process in an existing sub-cgroup of the container's:
    /// [CONTROLLER[,CONTROLLER...]:]PATH, repeatable (one per controller)
    #[arg(long = "cgroup", value_name = "[CONTROLLER:]PATH")]
    pub cgroup: Vec<String>,
    /// Exec even if the container is paused
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Container id
    pub id: String,
    /// Command and arguments (unless --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn msg(s: impl Into<String>) -> Error {
    Error::Msg(s.into())
}

/// The container's own process from its config.json, with this command's overrides.
fn process(a: &Args, spec: &oci_spec::runtime::Spec) -> Result<Process, Error> {
    if let Some(p) = &a.process {
        let data = std::fs::read(p).map_err(|e| msg(format!("--process {}: {e}", p.display())))?;
        let de = &mut serde_json::Deserializer::from_slice(&data);
        let process = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            msg(format!(
                "--process {}: {}: {}",
                p.display(),
                e.path(),
                e.inner()
            ))
        })?;
        // Bytes after the object: not the process the caller meant (as for config.json).
        de.end()
            .map_err(|e| msg(format!("--process {}: {e}", p.display())))?;
        return Ok(process);
    }
    if a.command.is_empty() {
        return Err(msg("exec: no command given (and no --process)"));
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, ""));
        let user = p.user_mut();
        user.set_uid(
            uid.parse()
                .map_err(|_| msg(format!("--user {u}: not UID[:GID]")))?,
        );
        if !gid.is_empty() {
            user.set_gid(
                gid.parse()
                    .map_err(|_| msg(format!("--user {u}: not UID[:GID]")))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if !a.cap.is_empty() {
        // No capabilities in the config means none: --cap adds to empty sets (oci-spec's
        // default would bring its own list).
        let mut caps = p.capabilities().clone().unwrap_or_else(no_caps);
        for name in &a.cap {
            let c: Capability = serde_json::from_value(serde_json::json!(name))
                .map_err(|_| msg(format!("--cap {name}: unknown capability")))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(c);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            // As runc: ambient too when the config has an inheritable set (raised only
            // where that set holds the capability; the kernel requires it).
            if caps.inheritable().is_some() {
                caps.set_ambient(add(caps.ambient()));
            }
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    p.set_terminal(Some(a.tty));
    Ok(p)
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, Error> {
    if a.process_label.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(msg("--process-label: this host has no SELinux to apply it"));
    }
    // Before anything is read: the exec'd side runs from a sealed copy (CVE-2019-5736), and
    // the first image should do no work the re-executed one repeats.
    berth::security::sealed::ensure(&berth::security::sealed::spare_dir(root))
        .map_err(|e| msg(e.to_string()))?;
    berth::logging::step("exec: running sealed");
    // Read once: the process defaults, seccomp, oomScoreAdj and personality all come from it.
    let st = berth::state::ContainerDir::new(root, &a.id)?.load()?;
    let spec = berth::spec::load(&st.bundle)?;
    let p = process(a, &spec)?;
    let mut plan = berth::spec::process_plan(&p)?;
    apparmor(&mut plan, a, &spec)?;
    // The exec'd process gets the container's seccomp profile.
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().clone()) {
        Some(s) => Some(berth::spec::seccomp_plan(&s)?),
        None => None,
    };
    let opts = ExecOpts {
        process: plan,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        pidfd_socket: a.pidfd_socket.clone(),
        ignore_paused: a.ignore_paused,
        preserve_fds: a.preserve_fds,
        seccomp,
        oom_score_adj: spec.process().as_ref().and_then(|p| p.oom_score_adj()),
        sub_cgroups: berth::cgroups::subgroup::SubCgroups::parse(&a.cgroup)?,
        personality: berth::spec::personality_plan(
            spec.linux().as_ref().and_then(|l| l.personality().as_ref()),
        )?,
    };
    berth::exec::exec(root, &a.id, st, &opts)
}

/// The exec'd process's AppArmor profile, as runc picks it: --apparmor, else the
/// process's own (--process), else the container's.
fn apparmor(
    plan: &mut berth::spec::ProcessPlan,
    a: &Args,
    spec: &oci_spec::runtime::Spec,
) -> Result<(), Error> {
    let container = spec
        .process()
        .as_ref()
        .and_then(|p| p.apparmor_profile().clone());
    let (field, profile) = match (&a.apparmor, &plan.apparmor_profile) {
        (Some(f), _) => ("--apparmor", Some(f.clone())),
        (None, Some(p)) => ("process.apparmorProfile", Some(p.clone())),
        (None, None) => ("process.apparmorProfile", container),
    };
    plan.apparmor_profile = profile.filter(|p| !p.is_empty());
    if let Some(p) = &plan.apparmor_profile {
        berth::security::lsm::check_apparmor(field, p).map_err(|e| msg(e.to_string()))?;
    }
    Ok(())
}

fn no_caps() -> oci_spec::runtime::LinuxCapabilities {
    let mut c = oci_spec::runtime::LinuxCapabilities::default();
    let empty = || Some(oci_spec::runtime::Capabilities::new());
    c.set_bounding(empty());
    c.set_effective(empty());
    c.set_permitted(empty());
    c.set_inheritable(empty());
    c.set_ambient(empty());
    c
}

//! Kubernetes' path: containerd's CRI plugin, the API kubelet speaks, configured with berth
//! as the runc binary of its `runc` runtime (`BinaryName`), driven by a CRI client in the
//! test (the `k8s-cri` crate's generated gRPC stubs over containerd's unix socket).
//!
//! The pod uses the host's network namespace, so no CNI plugin is needed; the sandbox
//! ("pause") image is test-bundles' busybox layer running `sleep`, imported locally with
//! `ctr images import` like the test image. The shim's runtime root is pointed into the
//! test's temp dir (option `Root`), so the test can ask berth itself about the pod's
//! containers and everything goes away with the temp dir.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, ImageSpec, KeyValue, LinuxContainerConfig,
    LinuxContainerResources, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode,
    NamespaceOption, PodSandboxConfig, PodSandboxMetadata, RemoveContainerRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest, VersionRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};

use super::{LIMIT, Scratch, image_dir, installed, ok, unique};
use crate::common::run_cmd;

/// The CRI namespace of containerd: images must be imported there for the plugin to see them.
const K8S_NS: &str = "k8s.io";
const LOOPBACK_CNI: &str = "/usr/lib/cni/loopback";
/// containerd 1.6's CRI wants an eth0 in a pod's network namespace: a bridge with a static
/// address, made in the test's own network namespace (never the machine's), no gateway,
/// no masquerading and no IPAM state on disk, and loopback.
const POD_CNI: &str = r#"{"cniVersion": "1.0.0", "name": "berth-pods", "plugins": [
  {"type": "bridge", "bridge": "berthcni0", "isGateway": false, "ipMasq": false,
   "ipam": {"type": "static", "addresses": [{"address": "10.203.0.2/24"}]}},
  {"type": "loopback"}]}"#;

/// The bridge plugin changes the network namespace containerd runs in: this must be the
/// test sandbox's (tests/isolate.sh), never the machine's, whose interfaces are more than lo.
fn own_network_namespace() {
    // /proc/self/net follows the network namespace (a /sys mount may show another's).
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let links: Vec<&str> = (dev.lines().skip(2))
        .filter_map(|l| Some(l.split_once(':')?.0.trim()))
        .filter(|n| *n != "lo" && !n.starts_with("berthcni") && !n.starts_with("veth"))
        .collect();
    assert!(
        links.is_empty(),
        "run the CNI pod test in a network namespace of its own (tests/isolate.sh); this one \
         has {links:?}"
    );
}

struct Cri {
    s: Scratch,
    /// The pod's cgroup parent, unique to the test, so the cgroups CRI names are ours to
    /// check and remove (containerd's default parent would be a shared /k8s.io).
    cgroup_parent: String,
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
}

impl Cri {
    /// A private containerd with its CRI plugin on, berth as the runc binary, and the test
    /// and sandbox images imported; None (skip) when containerd is not installed.
    fn start() -> Option<Cri> {
        Cri::start_with(&super::runtime(), false)
    }

    fn start_with(runtime: &str, loopback_cni: bool) -> Option<Cri> {
        Cri::start_opts(runtime, loopback_cni, false)
    }

    /// As `start`, with `runtime` as the runc binary; `loopback_cni` gives pods with a
    /// network namespace of their own an isolated network from Debian's
    /// containernetworking-plugins (POD_CNI): a pod without a way out. `systemd_cgroup` is
    /// containerd's `SystemdCgroup = true` (the Kubernetes node default): pods go in a slice,
    /// containers in transient scopes through the runtime's `--systemd-cgroup`.
    fn start_opts(runtime: &str, loopback_cni: bool, systemd_cgroup: bool) -> Option<Cri> {
        if !installed(
            "containerd (CRI)",
            &["containerd", "ctr", "containerd-shim-runc-v2"],
        ) {
            return None;
        }
        let mut s = Scratch::new("berth-cri-");
        let d = s.path().to_str().unwrap().to_string();
        for sub in ["cni/bin", "cni/conf", "pods"] {
            std::fs::create_dir_all(s.path().join(sub)).unwrap();
        }
        let cni_bin = if loopback_cni {
            assert!(
                Path::new(LOOPBACK_CNI).exists(),
                "{LOOPBACK_CNI} missing: tests/run-all.sh installs containernetworking-plugins"
            );
            own_network_namespace();
            std::fs::write(s.path().join("cni/conf/10-pod.conflist"), POD_CNI).unwrap();
            "/usr/lib/cni".to_string()
        } else {
            format!("{d}/cni/bin")
        };
        let config = s.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/c.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:latest"
  disable_apparmor = true
  enable_selinux = false
  # Sandboxes ask for oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which this
  # host's bounding set lacks (for every runtime), so keep it at containerd's own value.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{d}/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runtime}"
        Root = "{d}/runtime-root"
        SystemdCgroup = {systemd_cgroup}
"#
            ),
        )
        .unwrap();
        let sock = super::containerd::daemon(&mut s, &config);
        // Pods still there when the test fails: stop and remove them through the CRI's own
        // ctr view (tasks first), before the daemon is stopped.
        let d2 = PathBuf::from(&d);
        s.cleanups.push(Box::new(move || {
            let ctr = |args: &[&str]| {
                let mut c = Command::new("ctr");
                c.arg("-a").arg(d2.join("c.sock")).args(["-n", K8S_NS]);
                run_cmd(c.args(args), LIMIT)
            };
            for t in ctr(&["task", "ls", "-q"]).stdout.lines() {
                let _ = ctr(&["task", "rm", "-f", t]);
            }
            for c in ctr(&["containers", "ls", "-q"]).stdout.lines() {
                let _ = ctr(&["containers", "rm", c]);
            }
        }));
        let cgroup_parent = if systemd_cgroup {
            format!("{}.slice", unique("berthcri"))
        } else {
            format!("/{}", unique("berthcri"))
        };
        let parent = cgroup_parent.clone();
        s.cleanups.push(Box::new(move || {
            for h in std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = std::fs::remove_dir(h.path().join(parent.trim_start_matches('/')));
            }
        }));
        for image in ["image.tar", "pause.tar"] {
            let path = image_dir().join(image);
            let mut c = Command::new("ctr");
            c.arg("-a").arg(&sock).args(["-n", K8S_NS]);
            let o = run_cmd(c.args(["images", "import", path.to_str().unwrap()]), LIMIT);
            ok(&o, "ctr images import");
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let channel = rt
            .block_on(
                Endpoint::try_from("http://[::]")
                    .unwrap()
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let sock = sock.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(sock).await?,
                            ))
                        }
                    })),
            )
            .expect("connect to the CRI socket");
        Some(Cri {
            s,
            cgroup_parent,
            rt,
            client: RuntimeServiceClient::new(channel),
        })
    }

    /// Runs one CRI call to completion; a call that hangs fails the test.
    fn call<T, F: Future<Output = Result<tonic::Response<T>, tonic::Status>>>(
        &self,
        what: &str,
        f: F,
    ) -> T {
        self.call_for(what, LIMIT, f)
    }

    fn call_for<T, F: Future<Output = Result<tonic::Response<T>, tonic::Status>>>(
        &self,
        what: &str,
        limit: Duration,
        f: F,
    ) -> T {
        match self
            .rt
            .block_on(async { tokio::time::timeout(limit, f).await })
        {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => panic!("CRI {what} failed: {status}"),
            Err(_) => panic!("CRI {what} did not answer within {limit:?}"),
        }
    }

    /// RunPodSandbox of a new pod named after `tag`: its id and its config.
    fn run_pod(&self, tag: &str, network: NamespaceMode) -> (String, PodSandboxConfig) {
        let name = unique(tag);
        let sandbox = sandbox_config(self.s.path(), &name, &self.cgroup_parent, network);
        let mut c = self.client.clone();
        let pod = self
            .call(
                "RunPodSandbox",
                c.run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(sandbox.clone()),
                    runtime_handler: String::new(),
                }),
            )
            .pod_sandbox_id;
        (pod, sandbox)
    }

    /// StopPodSandbox then RemovePodSandbox: what kubelet does to a pod it is done with.
    fn remove_pod(&self, pod: &str) {
        let mut c = self.client.clone();
        let id = pod.to_string();
        self.call(
            "StopPodSandbox",
            c.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            }),
        );
        self.call(
            "RemovePodSandbox",
            c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id }),
        );
    }

    fn runtime_root(&self) -> PathBuf {
        self.s.path().join("runtime-root").join(K8S_NS)
    }

    /// `berth state ID` on the shim's runtime root, as a JSON value.
    fn berth_state(&self, id: &str) -> serde_json::Value {
        let o = run_cmd(
            Command::new(super::runtime())
                .arg("--root")
                .arg(self.runtime_root())
                .args(["state", id]),
            LIMIT,
        );
        ok(&o, "runtime state");
        serde_json::from_str(&o.stdout).expect("state JSON")
    }

    fn wait_container_state(&self, id: &str, want: ContainerState) -> k8s_cri::v1::ContainerStatus {
        let start = Instant::now();
        loop {
            let mut c = self.client.clone();
            let r = self.call(
                "ContainerStatus",
                c.container_status(ContainerStatusRequest {
                    container_id: id.to_string(),
                    verbose: false,
                }),
            );
            let status = r.status.expect("ContainerStatus without status");
            if status.state == want as i32 {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "container {id} not {want:?}: {status:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn sandbox_config(
    s: &Path,
    name: &str,
    cgroup_parent: &str,
    network: NamespaceMode,
) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: unique("uid"),
            namespace: "default".to_string(),
            attempt: 0,
        }),
        log_directory: s.join("pods").join(name).to_str().unwrap().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.to_string(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: network as i32,
                    pid: NamespaceMode::Pod as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn pod_lifecycle_through_the_cri_plugin() {
    let Some(cri) = Cri::start() else { return };
    let mut c = cri.client.clone();
    let v = cri.call(
        "Version",
        c.version(VersionRequest {
            version: "v1".into(),
        }),
    );
    assert_eq!(v.runtime_name, "containerd", "{v:?}");

    let (pod, sandbox) = cri.run_pod("pod", NamespaceMode::Node);
    // The sandbox container is berth's: berth reads its own state for it.
    let st = cri.berth_state(&pod);
    assert_eq!(st["status"], "running", "{st}");

    let memory = 64 << 20;
    let created = cri.call(
        "CreateContainer",
        c.create_container(CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "app".into(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: super::IMAGE.into(),
                    ..Default::default()
                }),
                command: vec!["sh".into(), "-c".into()],
                args: vec!["echo started $GREETING; exec sleep 1000".into()],
                working_dir: "/tmp".into(),
                envs: vec![KeyValue {
                    key: "GREETING".into(),
                    value: "from-cri".into(),
                }],
                log_path: "app.log".into(),
                linux: Some(LinuxContainerConfig {
                    resources: Some(LinuxContainerResources {
                        memory_limit_in_bytes: memory,
                        ..Default::default()
                    }),
                    security_context: None,
                }),
                ..Default::default()
            }),
            sandbox_config: Some(sandbox.clone()),
        }),
    );
    let id = created.container_id;
    // CRI's "created" is containerd metadata only: the runtime is first called at start.
    cri.wait_container_state(&id, ContainerState::ContainerCreated);

    cri.call(
        "StartContainer",
        c.start_container(StartContainerRequest {
            container_id: id.clone(),
        }),
    );
    let status = cri.wait_container_state(&id, ContainerState::ContainerRunning);
    assert!(status.started_at > 0, "{status:?}");
    let st = cri.berth_state(&id);
    assert_eq!(st["status"], "running", "{st}");

    // ExecSync runs through `berth exec`: the container's env, cwd and memory limit, and the
    // pod's shared pid namespace, whose pid 1 is the sandbox.
    let r = cri.call(
        "ExecSync",
        c.exec_sync(ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "echo $GREETING $(pwd); cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
                 tr '\\0' ' ' </proc/1/cmdline; echo; echo oops >&2; exit 3"
                    .into(),
            ],
            timeout: 20,
        }),
    );
    assert_eq!(r.exit_code, 3, "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        format!("from-cri /tmp\n{memory}\n/bin/sleep 2147483647 \n"),
        "stderr: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&r.stderr), "oops\n");

    // The container's output reached its CRI log (CRI log format: time stream tag line).
    let log = Path::new(&sandbox.log_directory).join("app.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines()
            .any(|l| l.ends_with(" stdout F started from-cri")),
        "{}: {text}",
        log.display()
    );

    cri.call(
        "StopContainer",
        c.stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 10,
        }),
    );
    let status = cri.wait_container_state(&id, ContainerState::ContainerExited);
    // sleep is not the pod's pid 1 (the sandbox is), so SIGTERM ends it: 128 + 15.
    assert_eq!(status.exit_code, 143, "{status:?}");
    cri.call(
        "RemoveContainer",
        c.remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        }),
    );
    cri.remove_pod(&pod);
    // Nothing of either container is left in berth's root.
    let o = run_cmd(
        Command::new(super::runtime())
            .arg("--root")
            .arg(cri.runtime_root())
            .args(["list", "-q"]),
        LIMIT,
    );
    ok(&o, "runtime list");
    assert_eq!(o.stdout.trim(), "", "containers left: {}", o.stdout);
    // berth removed the cgroup it made for each container; only the pod's parent is left.
    for h in crate::common::cgroup_mounts() {
        let parent = h.join(cri.cgroup_parent.trim_start_matches('/'));
        let left: Vec<_> = std::fs::read_dir(&parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "cgroups left: {left:?}");
    }
}

/// A pod with a network namespace of its own whose only CNI plugin is loopback (a pod
/// without network), the container from the Debian services image: redis, postgres and
/// nginx answer on 127.0.0.1 inside it, run through `ExecSync`, with berth and with runc.
#[test]
fn pod_without_host_network_serves_redis_postgres_and_nginx_on_localhost() {
    for rt in [super::runtime(), "/usr/sbin/runc".to_string()] {
        let Some(cri) = Cri::start_with(&rt, true) else {
            return;
        };
        let mut ctr = Command::new("ctr");
        ctr.arg("-a")
            .arg(cri.s.path().join("c.sock"))
            .args(["-n", K8S_NS]);
        let tar = super::services::debian_image().to_str().unwrap();
        ok(
            &run_cmd(
                ctr.args(["images", "import", tar]),
                super::services::SERVICE_LIMIT,
            ),
            "ctr images import (debian)",
        );
        let mut c = cri.client.clone();
        let (pod, sandbox) = cri.run_pod("netpod", NamespaceMode::Pod);
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "services".into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: super::services::DEBIAN.into(),
                ..Default::default()
            }),
            command: vec!["sleep".into(), "1000".into()],
            log_path: "services.log".into(),
            ..Default::default()
        };
        let id = cri
            .call(
                "CreateContainer",
                c.create_container(CreateContainerRequest {
                    pod_sandbox_id: pod.clone(),
                    config: Some(config),
                    sandbox_config: Some(sandbox.clone()),
                }),
            )
            .container_id;
        cri.call(
            "StartContainer",
            c.start_container(StartContainerRequest {
                container_id: id.clone(),
            }),
        );
        cri.wait_container_state(&id, ContainerState::ContainerRunning);
        let r = cri.call_for(
            "ExecSync",
            super::services::SERVICE_LIMIT,
            c.exec_sync(ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["bash".into(), "-c".into(), super::services::SCRIPT.into()],
                timeout: super::services::SERVICE_LIMIT.as_secs() as i64,
            }),
        );
        assert_eq!(
            String::from_utf8_lossy(&r.stdout),
            super::services::WANT,
            "{rt}: exit {}, stderr {}",
            r.exit_code,
            String::from_utf8_lossy(&r.stderr)
        );
        assert_eq!(r.exit_code, 0, "{rt}");
        cri.remove_pod(&pod);
    }
}

/// The Kubernetes node default on a cgroup v2 + systemd host (the guest lane): containerd's
/// CRI with `SystemdCgroup = true` and berth as BinaryName. The pod's containers run in
/// transient scopes `cri-containerd-ID.scope` in the pod's slice, with the memory limit on
/// the unit and in the container; no scope is left once the pod is gone.
#[test]
#[ignore = "guest lane: needs a cgroup v2 + systemd host (tests/guest/run.sh)"]
fn guest_cri_pod_with_systemd_cgroup() {
    let cri = Cri::start_opts(&super::runtime(), false, true)
        .expect("containerd is in the guest image (tests/guest/image.sh)");
    let mut c = cri.client.clone();
    let (pod, sandbox) = cri.run_pod("sdpod", NamespaceMode::Node);
    let memory = 64 << 20;
    let id = cri
        .call(
            "CreateContainer",
            c.create_container(CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: "app".into(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: super::IMAGE.into(),
                        ..Default::default()
                    }),
                    command: vec!["sleep".into(), "1000".into()],
                    linux: Some(LinuxContainerConfig {
                        resources: Some(LinuxContainerResources {
                            memory_limit_in_bytes: memory,
                            ..Default::default()
                        }),
                        security_context: None,
                    }),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox.clone()),
            }),
        )
        .container_id;
    cri.call(
        "StartContainer",
        c.start_container(StartContainerRequest {
            container_id: id.clone(),
        }),
    );
    cri.wait_container_state(&id, ContainerState::ContainerRunning);
    let unit = format!("cri-containerd-{id}.scope");
    let show = |unit: &str| {
        let o = run_cmd(
            Command::new("systemctl").args([
                "show",
                "-p",
                "ActiveState",
                "-p",
                "MemoryMax",
                "-p",
                "Slice",
                unit,
            ]),
            LIMIT,
        );
        o.stdout
    };
    let props = show(&unit);
    assert!(props.contains("ActiveState=active\n"), "{unit}: {props}");
    assert!(
        props.contains(&format!("MemoryMax={memory}\n")),
        "{unit}: {props}"
    );
    assert!(
        props.contains(&format!("Slice={}\n", cri.cgroup_parent)),
        "{unit}: {props}"
    );
    let r = cri.call(
        "ExecSync",
        c.exec_sync(ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["cat".into(), "/sys/fs/cgroup/memory.max".into()],
            timeout: 20,
        }),
    );
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        format!("{memory}\n"),
        "{r:?}"
    );
    cri.remove_pod(&pod);
    let o = run_cmd(
        Command::new("systemctl").args([
            "list-units",
            "--all",
            "--no-legend",
            "cri-containerd-*.scope",
        ]),
        LIMIT,
    );
    assert_eq!(o.stdout.trim(), "", "scopes left: {}", o.stdout);
}

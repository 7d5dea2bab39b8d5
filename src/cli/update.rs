use std::io::Read;
use std::path::PathBuf;

use berth::cgroups::convert::parse_bytes;
use berth::container::Error;
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON file with a linux.resources object ("-" reads stdin); flags apply on top
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (suffixes k, m, g, t; -1: no limit)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit in bytes (suffixes k, m, g, t)
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit in bytes (-1: unlimited swap)
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit in bytes (deprecated by the kernel)
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit in bytes (deprecated by the kernel)
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_share: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1: no limit)
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS burst in microseconds per period (runc 1.2+)
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    /// CPU realtime period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds per period
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs the container may use (e.g. 0-3,5)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (e.g. 0-1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1: no limit)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Container id
    pub id: String,
}

fn bytes(flag: &str, v: &Option<String>) -> Result<Option<i64>, Error> {
    v.as_deref()
        .map(|s| parse_bytes(s).map_err(|e| Error::Msg(format!("--{flag}: {e}"))))
        .transpose()
}

/// The resources to apply: the file's object with the flags laid over it.
fn resources(a: &Args) -> Result<Value, Error> {
    let mut r = match &a.resources {
        None => json!({}),
        Some(p) => {
            let mut text = String::new();
            let res = if p.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text).map(|_| ())
            } else {
                std::fs::read_to_string(p).map(|t| text = t)
            };
            res.map_err(|e| Error::Msg(format!("--resources {}: {e}", p.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| Error::Msg(format!("--resources {}: {e}", p.display())))?
        }
    };
    let mut set = |section: &str, key: &str, v: Value| {
        if !r[section].is_object() {
            r[section] = json!({});
        }
        r[section][key] = v;
    };
    for (key, flag, v) in [
        ("limit", "memory", &a.memory),
        ("reservation", "memory-reservation", &a.memory_reservation),
        ("swap", "memory-swap", &a.memory_swap),
        ("kernel", "kernel-memory", &a.kernel_memory),
        ("kernelTCP", "kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if let Some(b) = bytes(flag, v)? {
            set("memory", key, json!(b));
        }
    }
    if let Some(v) = a.cpu_share {
        set("cpu", "shares", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set("cpu", "quota", json!(v));
    }
    if let Some(v) = a.cpu_period {
        set("cpu", "period", json!(v));
    }
    if let Some(v) = a.cpu_burst {
        set("cpu", "burst", json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        set("cpu", "realtimePeriod", json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", json!(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        set("cpu", "cpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set("cpu", "mems", json!(v));
    }
    if let Some(v) = a.pids_limit {
        set("pids", "limit", json!(v));
    }
    if let Some(v) = a.blkio_weight {
        set("blockIO", "weight", json!(v));
    }
    Ok(r)
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, Error> {
    let v = resources(a)?;
    let de = serde_json::Value::into_deserializer(v);
    let res = serde_path_to_error::deserialize(de)
        .map_err(|e| Error::Msg(format!("resources: {}: {}", e.path(), e.inner())))?;
    berth::control::update(root, &a.id, &res)?;
    Ok(0)
}

use serde::de::IntoDeserializer;

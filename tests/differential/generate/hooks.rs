//! Hooks of each kind, each writing what it sees (args, env, cwd, the state on stdin, its
//! open fds) to a file the harness reads; failing and timing-out hooks.

use serde_json::{Value, json};

use crate::scenario::{Ctx, Scenario};

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Runs on the host (dash) or, for startContainer, inside the container (busybox sh): the
/// host out dir, or /out where the container sees it.
const RECORD: &str = r#"kind=$1; out=$2; [ -d "$out" ] || out=/out
echo "$kind" >> "$out/order"
{ echo "@@ args"; echo "$0 $*"
  echo "@@ env"; env | sort
  echo "@@ cwd"; pwd
  echo "@@ fds"; ls -l /proc/self/fd 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "->") print $1, $(i-1), $(i+1)}'
  echo "@@ stdin"; cat; echo; } > "$out/hook-$kind" 2>&1
exit ${3:-0}"#;

/// A hook of `kind` recording what it sees; `status` is its exit code, `env` its env.
fn hook(
    s: Scenario,
    kind: &'static str,
    env: Option<Value>,
    status: u8,
    timeout: Option<u32>,
) -> Scenario {
    s.m(move |c, ctx: &Ctx| {
        let out = ctx.out.to_string_lossy().into_owned();
        let mut h = json!({"path": "/bin/sh", "args": ["sh", "-c", RECORD, "hook", kind, out, status.to_string()]});
        if let Some(e) = &env {
            h["env"] = e.clone();
        }
        if let Some(t) = timeout {
            h["timeout"] = json!(t);
            h["args"] = json!(["sh", "-c", "sleep 3"]);
        }
        if c["hooks"][kind].is_null() {
            c["hooks"][kind] = json!([]);
        }
        c["hooks"][kind].as_array_mut().unwrap().push(h);
    })
}

/// The per-runtime out dir at /out, so a hook inside the container can write there too.
fn out_mount(s: Scenario) -> Scenario {
    s.m(|c, ctx: &Ctx| {
        let m = json!({"destination": "/out", "type": "bind", "source": ctx.out, "options": ["rbind", "rw"]});
        c["mounts"].as_array_mut().unwrap().push(m);
    })
}

pub fn all() -> Vec<Scenario> {
    let mut v = Vec::new();
    let envs = [
        ("no-env", None),
        ("env", Some(json!(["HOOKVAR=1", "PATH=/usr/bin:/bin"]))),
    ];
    for kind in KINDS {
        for (en, e) in &envs {
            let s = out_mount(Scenario::new(format!("hooks/{kind}-{en}")));
            v.push(hook(s, kind, e.clone(), 0, None));
        }
        let s = out_mount(Scenario::new(format!("hooks/{kind}-fails")));
        v.push(hook(s, kind, None, 3, None));
    }
    let mut every = out_mount(Scenario::new("hooks/all-kinds-in-order"));
    for kind in KINDS {
        every = hook(every, kind, None, 0, None);
    }
    v.push(every);
    for kind in ["prestart", "createRuntime"] {
        let s = out_mount(Scenario::new(format!("hooks/{kind}-timeout")));
        v.push(hook(s, kind, None, 0, Some(1)));
    }
    let s = out_mount(Scenario::new("hooks/missing-path"));
    v.push(s.set("/hooks/prestart", json!([{"path": "/no/such/hook"}])));
    v
}

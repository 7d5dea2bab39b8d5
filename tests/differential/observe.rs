//! The observation script: busybox sh inside the container prints one `@@ NAME` header per
//! observation, then what it saw. Each section is compared on its own, so a diff names the
//! observation that differs. Commands print facts, never dates or sizes that drift.

pub const SCRIPT: &str = r#"o() { echo "@@ $1"; }
o id; id
o pid1; [ $$ = 1 ] && echo yes || echo no
o status; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Uid|Gid|Groups|Cpus_allowed_list):' /proc/self/status
o env; env | sort
o pwd; pwd
o stdio; ls -l /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2 | awk '{n = $(NF-2); sub(/.*\//, "", n); print $1, n, $NF}'
o fds; ls -l /proc/self/fd 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "->" && $(i-1) >= 3) print $1, $(i-1), $(i+1)}'
o mountinfo; cat /proc/self/mountinfo
o ulimit; ulimit -a
o oom_score_adj; cat /proc/self/oom_score_adj
o lo; ip addr show dev lo 2>&1
o hostname; hostname; cat /proc/sys/kernel/domainname
o umask; umask
o idmap; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups
o cgroup; cat /proc/self/cgroup
o dev; stat -c '%N %A %u %g %t:%T' /dev/* /dev/pts/* 2>&1
o tty; if [ -t 0 ]; then tty; stty -a | tr ' ;' '\n\n' | grep -v '^$'; else echo none; fi
"#;

/// Splits the container's output into (section, text) in order; text before the first
/// header (if any) is the "preamble" section.
pub fn sections(out: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("@@ ") {
            v.push((format!("proc.{}", name.trim()), String::new()));
            continue;
        }
        if v.is_empty() {
            v.push(("proc.preamble".into(), String::new()));
        }
        let text = &mut v.last_mut().unwrap().1;
        text.push_str(line);
        text.push('\n');
    }
    v
}

/// Whether the container got far enough to print its first observation.
pub fn container_ran(out: &str) -> bool {
    out.lines().any(|l| l.starts_with("@@ "))
}

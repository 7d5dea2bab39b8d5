//! `exec --cgroup [CONTROLLER[,CONTROLLER…]:]PATH`: the exec'd process joins an existing
//! sub-cgroup of the container's cgroup instead of the container's own (runc 1.1+). One
//! PATH without a controller applies to every hierarchy; a controller-prefixed one to the
//! v1 hierarchies holding that controller. Unlike runc, a PATH that climbs out of the
//! container's cgroup (`..`) is refused: exec must never move a process into a cgroup of
//! someone else's.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{CgroupError, Hierarchy};

/// The parsed `--cgroup` arguments.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SubCgroups {
    /// PATH given without a controller.
    pub all: Option<PathBuf>,
    /// Controller name → PATH.
    pub per: BTreeMap<String, PathBuf>,
}

fn invalid(arg: &str, why: &str) -> CgroupError {
    CgroupError::State(format!("--cgroup {arg}: {why}"))
}

impl SubCgroups {
    pub fn parse(args: &[String]) -> Result<SubCgroups, CgroupError> {
        let mut s = SubCgroups::default();
        for arg in args {
            let (ctrls, path) = match arg.split_once(':') {
                Some((_, p)) if p.contains(':') => return Err(invalid(arg, "more than one ':'")),
                Some((c, p)) => (Some(c), p),
                None => (None, arg.as_str()),
            };
            let path = relative(arg, path)?;
            let Some(ctrls) = ctrls else {
                if args.len() != 1 {
                    return Err(invalid(arg, "missing the CONTROLLER: prefix"));
                }
                s.all = Some(path);
                continue;
            };
            for c in ctrls.split(',') {
                if c.is_empty() {
                    return Err(invalid(arg, "empty controller name"));
                }
                if s.per.insert(c.to_string(), path.clone()).is_some() {
                    return Err(invalid(
                        arg,
                        &format!("controller {c} given more than once"),
                    ));
                }
            }
        }
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.per.is_empty()
    }

    /// The directory each of the container's cgroup dirs becomes; each must exist.
    pub fn apply(&self, joined: &[PathBuf], hs: &[Hierarchy]) -> Result<Vec<PathBuf>, CgroupError> {
        let mut out = Vec::with_capacity(joined.len());
        for dir in joined {
            let h = (hs.iter())
                .filter(|h| dir.starts_with(&h.mount))
                .max_by_key(|h| h.mount.as_os_str().len());
            let sub = match h {
                Some(h) if !h.v2 => (h.controllers.iter())
                    .find_map(|c| {
                        (self.per.get(c.as_str()))
                            .or_else(|| c.strip_prefix("name=").and_then(|n| self.per.get(n)))
                    })
                    .or(self.all.as_ref()),
                // A hybrid host's unified tree takes only a PATH without a controller;
                // a pure v2 host also takes controller-prefixed paths that agree.
                _ if hs.iter().all(|h| h.v2) => self.all.as_ref().or_else(|| self.same_for_all()),
                _ => self.all.as_ref(),
            };
            let Some(sub) = sub else {
                out.push(dir.clone());
                continue;
            };
            let target = dir.join(sub);
            if !target.is_dir() {
                return Err(CgroupError::State(format!(
                    "--cgroup: {} does not exist (the sub-cgroup must be made first)",
                    target.display()
                )));
            }
            out.push(target);
        }
        Ok(out)
    }

    /// cgroup v2 has one hierarchy: controller-prefixed paths apply there when they agree.
    fn same_for_all(&self) -> Option<&PathBuf> {
        let mut paths = self.per.values();
        let first = paths.next()?;
        paths.all(|p| p == first).then_some(first)
    }
}

/// PATH below the container's cgroup: a leading `/` is dropped (runc joins it the same
/// way); `..` is refused.
fn relative(arg: &str, path: &str) -> Result<PathBuf, CgroupError> {
    let p = Path::new(path.trim_start_matches('/'));
    if path.is_empty() || p.as_os_str().is_empty() {
        return Err(invalid(arg, "empty path"));
    }
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(invalid(
            arg,
            "the path must stay inside the container's cgroup (no '..')",
        ));
    }
    Ok(p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<SubCgroups, String> {
        let v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        SubCgroups::parse(&v).map_err(|e| e.to_string())
    }

    #[test]
    fn arguments_as_runc_takes_them() {
        let s = parse(&["sub"]).unwrap();
        assert_eq!(s.all, Some(PathBuf::from("sub")));
        let s = parse(&["memory,pids:/a/b", "cpu:c"]).unwrap();
        assert_eq!(s.per["memory"], PathBuf::from("a/b"));
        assert_eq!(s.per["pids"], PathBuf::from("a/b"));
        assert_eq!(s.per["cpu"], PathBuf::from("c"));
        for (args, why) in [
            (&["a", "b"][..], "missing the CONTROLLER: prefix"),
            (&[":x"][..], "empty controller name"),
            (
                &["memory:x", "memory:y"][..],
                "controller memory given more than once",
            ),
            (&["a:b:c"][..], "more than one ':'"),
            (&["../up"][..], "no '..'"),
            (&["memory:a/../../b"][..], "no '..'"),
            (&["/"][..], "empty path"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.contains(why), "{args:?}: {e}");
        }
    }

    #[test]
    fn each_hierarchy_gets_its_controllers_path() {
        let dir = tempfile::tempdir().unwrap();
        let h = |name: &str, ctrls: &[&str]| Hierarchy {
            mount: dir.path().join(name),
            root: "/".into(),
            v2: false,
            controllers: ctrls.iter().map(|c| c.to_string()).collect(),
        };
        let hs = [h("memory", &["memory"]), h("systemd", &["name=systemd"])];
        let joined: Vec<PathBuf> = ["memory", "systemd"]
            .iter()
            .map(|n| dir.path().join(n).join("c1"))
            .collect();
        std::fs::create_dir_all(joined[0].join("m")).unwrap();
        std::fs::create_dir_all(joined[1].join("s")).unwrap();
        let s = parse(&["memory:m", "systemd:s"]).unwrap();
        let got = s.apply(&joined, &hs).unwrap();
        assert_eq!(got, vec![joined[0].join("m"), joined[1].join("s")]);
        let s = parse(&["memory:m"]).unwrap();
        assert_eq!(s.apply(&joined, &hs).unwrap()[1], joined[1]);
        let e = parse(&["nope"]).unwrap().apply(&joined, &hs).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}

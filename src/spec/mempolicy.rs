//! `linux.memoryPolicy` (runtime-spec 1.3) → the arguments of set_mempolicy(2).

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use super::{MemoryPolicyPlan, SpecError, invalid};

/// The largest node count any kernel build has (CONFIG_NODES_SHIFT is at most 10): a
/// bigger node number cannot exist, so it is refused before a mask that size is built.
const MAX_NODES: usize = 1024;

/// Validates the policy and converts names to the kernel's numbers (uapi mempolicy.h).
pub(super) fn plan(p: &LinuxMemoryPolicy) -> Result<MemoryPolicyPlan, SpecError> {
    use MemoryPolicyModeType as M;
    let (mode, name) = match p.mode() {
        M::MpolDefault => (0, "MPOL_DEFAULT"),
        M::MpolPreferred => (1, "MPOL_PREFERRED"),
        M::MpolBind => (2, "MPOL_BIND"),
        M::MpolInterleave => (3, "MPOL_INTERLEAVE"),
        M::MpolLocal => (4, "MPOL_LOCAL"),
        M::MpolPreferredMany => (5, "MPOL_PREFERRED_MANY"),
        M::MpolWeightedInterleave => (6, "MPOL_WEIGHTED_INTERLEAVE"),
    };
    let nodes_text = p.nodes().as_deref().unwrap_or("").trim();
    let nodes = if nodes_text.is_empty() {
        Vec::new()
    } else {
        parse_nodes(nodes_text).map_err(|e| invalid("linux.memoryPolicy.nodes", e))?
    };
    match p.mode() {
        // Both mean "no node list": the kernel refuses one with a bare EINVAL.
        M::MpolDefault | M::MpolLocal if !nodes.is_empty() => {
            return Err(invalid(
                "linux.memoryPolicy.nodes",
                format!("{name} takes no nodes"),
            ));
        }
        // MPOL_PREFERRED without nodes is the kernel's "allocate locally"; these have
        // nothing to bind, interleave or prefer without them.
        M::MpolBind | M::MpolInterleave | M::MpolWeightedInterleave | M::MpolPreferredMany
            if nodes.is_empty() =>
        {
            return Err(invalid(
                "linux.memoryPolicy.nodes",
                format!("{name} needs at least one node"),
            ));
        }
        _ => {}
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => {
                // The kernel accepts it with these modes only.
                if !matches!(p.mode(), M::MpolBind | M::MpolPreferredMany) {
                    return Err(invalid(
                        "linux.memoryPolicy.flags",
                        format!("MPOL_F_NUMA_BALANCING does not go with {name}"),
                    ));
                }
                1 << 13
            }
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    const NODE_FLAGS: libc::c_int = (1 << 14) | (1 << 15);
    if flags & NODE_FLAGS == NODE_FLAGS {
        return Err(invalid(
            "linux.memoryPolicy.flags",
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other",
        ));
    }
    if flags & NODE_FLAGS != 0 && nodes.is_empty() {
        return Err(invalid(
            "linux.memoryPolicy.flags",
            format!("{name} without nodes takes no node flags"),
        ));
    }
    let bits = libc::c_ulong::BITS as usize;
    let mut mask: Vec<libc::c_ulong> = Vec::new();
    if let Some(&max) = nodes.iter().max() {
        mask.resize(max / bits + 1, 0);
    }
    for n in &nodes {
        mask[n / bits] |= 1 << (n % bits);
    }
    let text = if nodes.is_empty() {
        name.to_string()
    } else {
        format!("{name} nodes {nodes_text}")
    };
    Ok(MemoryPolicyPlan {
        mode: mode | flags,
        mask,
        text,
    })
}

/// "0-3,7" → [0, 1, 2, 3, 7]: the kernel's list format, as in Mems_allowed_list.
fn parse_nodes(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let bad = || format!("{s:?}: not a node list such as \"0-3,7\"");
        let num = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if a > b {
            return Err(bad());
        }
        if b >= MAX_NODES {
            return Err(format!(
                "node {b} is above {}, the most any kernel allows",
                MAX_NODES - 1
            ));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<MemoryPolicyPlan, String> {
        let p: LinuxMemoryPolicy = serde_json::from_str(json).map_err(|e| e.to_string())?;
        plan(&p).map_err(|e| e.to_string())
    }

    #[test]
    fn modes_flags_and_masks_convert() {
        let p = policy(r#"{"mode":"MPOL_BIND","nodes":"0-3,7"}"#).unwrap();
        assert_eq!((p.mode, p.mask.clone()), (2, vec![0b1000_1111]));
        assert_eq!(p.text, "MPOL_BIND nodes 0-3,7");
        let p =
            policy(r#"{"mode":"MPOL_INTERLEAVE","nodes":"64","flags":["MPOL_F_STATIC_NODES"]}"#)
                .unwrap();
        assert_eq!((p.mode, p.mask), (3 | 1 << 15, vec![0, 1]));
        let p = policy(r#"{"mode":"MPOL_BIND","nodes":"1","flags":["MPOL_F_NUMA_BALANCING"]}"#)
            .unwrap();
        assert_eq!(p.mode, 2 | 1 << 13);
        let p = policy(r#"{"mode":"MPOL_LOCAL"}"#).unwrap();
        assert_eq!((p.mode, p.mask.len()), (4, 0));
        assert_eq!(policy(r#"{"mode":"MPOL_PREFERRED"}"#).unwrap().mode, 1);
        let p = policy(r#"{"mode":"MPOL_WEIGHTED_INTERLEAVE","nodes":"0,2"}"#).unwrap();
        assert_eq!((p.mode, p.mask), (6, vec![0b101]));
        assert_eq!(
            policy(r#"{"mode":"MPOL_PREFERRED_MANY","nodes":"1023"}"#)
                .unwrap()
                .mask
                .len(),
            16
        );
    }

    #[test]
    fn bad_policies_name_the_field() {
        for (json, field, what) in [
            (
                r#"{"mode":"MPOL_BIND"}"#,
                "nodes",
                "needs at least one node",
            ),
            (
                r#"{"mode":"MPOL_INTERLEAVE","nodes":" "}"#,
                "nodes",
                "needs",
            ),
            (
                r#"{"mode":"MPOL_DEFAULT","nodes":"0"}"#,
                "nodes",
                "takes no nodes",
            ),
            (
                r#"{"mode":"MPOL_LOCAL","nodes":"0"}"#,
                "nodes",
                "takes no nodes",
            ),
            (
                r#"{"mode":"MPOL_BIND","nodes":"3-1"}"#,
                "nodes",
                "not a node list",
            ),
            (
                r#"{"mode":"MPOL_BIND","nodes":"0,,1"}"#,
                "nodes",
                "not a node list",
            ),
            (
                r#"{"mode":"MPOL_BIND","nodes":"x"}"#,
                "nodes",
                "not a node list",
            ),
            (
                r#"{"mode":"MPOL_BIND","nodes":"1024"}"#,
                "nodes",
                "above 1023",
            ),
            (
                r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#,
                "flags",
                "exclude",
            ),
            (
                r#"{"mode":"MPOL_INTERLEAVE","nodes":"0","flags":["MPOL_F_NUMA_BALANCING"]}"#,
                "flags",
                "MPOL_F_NUMA_BALANCING",
            ),
            (
                r#"{"mode":"MPOL_PREFERRED","flags":["MPOL_F_STATIC_NODES"]}"#,
                "flags",
                "without nodes",
            ),
        ] {
            let e = policy(json).unwrap_err();
            assert!(
                e.contains(&format!("linux.memoryPolicy.{field}: ")) && e.contains(what),
                "{json}: {e}"
            );
        }
    }
}

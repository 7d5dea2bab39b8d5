//! Comparing two observation lists and printing a readable difference.

use crate::scenario::Obs;

/// (key, runc's text, berth's text) for every key either side has, in runc's order then
/// berth's extras; a missing observation is "<absent>".
pub fn pairs(a: &Obs, b: &Obs) -> Vec<(String, String, String)> {
    let get = |o: &Obs, k: &str| {
        o.iter()
            .find(|(key, _)| key == k)
            .map_or_else(|| "<absent>\n".to_string(), |(_, v)| v.clone())
    };
    let mut keys: Vec<&String> = a.iter().map(|(k, _)| k).collect();
    for (k, _) in b {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|k| (k.clone(), get(a, k), get(b, k)))
        .collect()
}

/// The observation's lines that only one side printed, runc's as `-`, berth's as `+`,
/// each in its own order; lines both printed are left out unless the order alone differs.
pub fn render(key: &str, runc: &str, berth: &str) -> String {
    let ra: Vec<&str> = runc.lines().collect();
    let rb: Vec<&str> = berth.lines().collect();
    let mut out = format!("--- observation `{key}` differs (- runc, + berth)\n");
    let only_a: Vec<&&str> = ra.iter().filter(|l| !rb.contains(l)).collect();
    let only_b: Vec<&&str> = rb.iter().filter(|l| !ra.contains(l)).collect();
    if only_a.is_empty() && only_b.is_empty() {
        out.push_str("  same lines, different order or count:\n");
        ra.iter().for_each(|l| out.push_str(&format!("  - {l}\n")));
        rb.iter().for_each(|l| out.push_str(&format!("  + {l}\n")));
        return out;
    }
    only_a
        .iter()
        .for_each(|l| out.push_str(&format!("  - {l}\n")));
    only_b
        .iter()
        .for_each(|l| out.push_str(&format!("  + {l}\n")));
    out
}

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

/// A line diff (longest common subsequence; observations are short): `-` runc's lines
/// berth lacks, `+` berth's lines runc lacks, each at its place, so a moved line shows too.
pub fn render(key: &str, runc: &str, berth: &str) -> String {
    let a: Vec<&str> = runc.lines().collect();
    let b: Vec<&str> = berth.lines().collect();
    let mut out = format!("--- observation `{key}` differs (- runc, + berth)\n");
    // lcs[i][j]: length of the common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            (i, j) = (i + 1, j + 1);
        } else if j == b.len() || (i < a.len() && lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("  - {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("  + {}\n", b[j]));
            j += 1;
        }
    }
    out
}

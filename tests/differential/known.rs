//! known-differences.txt: `SCENARIO-GLOB  OBSERVATION[~LINE]  reason`, one per line (`*`
//! matches any run of characters; `#` starts a comment). A difference in a listed
//! observation of a matching scenario is reported but does not fail it. With `~LINE`, only
//! the lines containing LINE (`\s` for a space, a trailing `$` anchors it at the line's end)
//! are set aside on both sides, so the rest of the observation is still compared: one known
//! mount difference does not hide every other line of mountinfo. An entry that matched scenarios in
//! this run but saw no difference in any of them is reported as gone, so the list stays
//! honest: fix berth, then delete the line.

use std::collections::BTreeSet;
use std::sync::Mutex;

pub struct Entry {
    pub glob: String,
    pub observation: String,
    pub line: Option<String>,
    pub reason: String,
}

impl Entry {
    fn takes(&self, line: &str) -> bool {
        match &self.line {
            None => true,
            Some(p) => match p.strip_suffix('$') {
                Some(end) => line.ends_with(end),
                None => line.contains(p.as_str()),
            },
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    /// Scenarios of the whole generated set the glob matches.
    total: usize,
    applied: usize,
    seen: usize,
}

pub struct Known {
    pub entries: Vec<Entry>,
    tallies: Mutex<Vec<Tally>>,
}

impl Known {
    pub fn load() -> Known {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/differential/known-differences.txt"
        );
        let text = std::fs::read_to_string(path).expect("read known-differences.txt");
        let entries: Vec<Entry> = text.lines().filter_map(parse).collect();
        let tallies = Mutex::new(vec![Tally::default(); entries.len()]);
        Known { entries, tallies }
    }

    /// Sets aside what the entries matching `name` and `observation` explain, adding to
    /// `seen` those that saw a difference; returns what is left to compare of each side.
    pub fn filter(
        &self,
        name: &str,
        observation: &str,
        (a, b): (&str, &str),
        seen: &mut BTreeSet<usize>,
    ) -> (String, String) {
        let (mut a, mut b) = (a.to_string(), b.to_string());
        let hits: Vec<usize> = self
            .matching(name)
            .filter(|&i| glob(&self.entries[i].observation, observation))
            .collect();
        for i in hits {
            let e = &self.entries[i];
            let (ka, ra) = split(&a, e);
            let (kb, rb) = split(&b, e);
            // Seen: the lines it takes differ, or only their place among the others does.
            let moved = ka == kb && marked(&a, e) != marked(&b, e);
            if ra != rb || moved {
                seen.insert(i);
            }
            (a, b) = (ka, kb);
        }
        (a, b)
    }

    /// Records the entries one scenario saw (each once, however many observations).
    pub fn saw(&self, seen: &BTreeSet<usize>) {
        let mut t = self.tallies.lock().unwrap();
        for &i in seen {
            t[i].seen += 1;
        }
    }

    /// Records that scenario `name` ran, for every entry whose glob matches it.
    pub fn ran(&self, name: &str) {
        let hits: Vec<usize> = self.matching(name).collect();
        let mut t = self.tallies.lock().unwrap();
        for i in hits {
            t[i].applied += 1;
        }
    }

    fn matching<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        (0..self.entries.len()).filter(move |&i| glob(&self.entries[i].glob, name))
    }

    /// Counts, for every entry, the scenarios of the whole set it matches, so a filtered
    /// run can tell "gone" from "not run".
    pub fn count(&self, names: &[&str]) {
        let mut t = self.tallies.lock().unwrap();
        for (i, e) in self.entries.iter().enumerate() {
            t[i].total = names.iter().filter(|n| glob(&e.glob, n)).count();
        }
    }

    /// The end-of-run account: how often each entry was seen, and entries now gone (unseen
    /// although every scenario it matches ran).
    pub fn report(&self) {
        let t = self.tallies.lock().unwrap();
        let mut gone = 0;
        eprintln!("\nknown differences (tests/differential/known-differences.txt):");
        for (e, t) in self.entries.iter().zip(t.iter()) {
            if t.applied == 0 {
                continue;
            }
            let verdict = if t.seen == 0 && t.applied < t.total {
                let (a, n) = (t.applied, t.total);
                format!("not seen in the {a} of its {n} scenarios that ran")
            } else if t.seen == 0 {
                gone += 1;
                "NO LONGER OCCURS: remove the line".to_string()
            } else {
                format!("seen in {} of {} matching scenarios", t.seen, t.applied)
            };
            let line = e
                .line
                .as_deref()
                .map(|l| format!(" lines with {l:?}"))
                .unwrap_or_default();
            eprintln!(
                "  {} {}{line}: {verdict}\n      ({})",
                e.glob, e.observation, e.reason
            );
        }
        eprintln!("{gone} listed difference(s) no longer occur");
    }
}

fn parse(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (glob, rest) = line.split_once(char::is_whitespace)?;
    let (observation, reason) = rest.trim_start().split_once(char::is_whitespace)?;
    let (observation, line) = match observation.split_once('~') {
        Some((o, l)) => (o.to_string(), Some(l.replace("\\s", " "))),
        None => (observation.to_string(), None),
    };
    let glob = glob.to_string();
    let reason = reason.trim().to_string();
    Some(Entry {
        glob,
        observation,
        line,
        reason,
    })
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, tail)) => {
            let Some(rest) = s.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// (the lines `e` does not take, the lines it takes) of `text`; whole text when no LINE.
fn split(text: &str, e: &Entry) -> (String, String) {
    let (mut keep, mut taken) = (String::new(), String::new());
    for l in text.lines() {
        let to = if e.takes(l) { &mut taken } else { &mut keep };
        to.push_str(l);
        to.push('\n');
    }
    (keep, taken)
}

/// `text` with the lines `e` takes replaced by a marker: where they stand, not what they say.
fn marked(text: &str, e: &Entry) -> String {
    let lines = text.lines().map(|l| if e.takes(l) { "<taken>" } else { l });
    lines.collect::<Vec<_>>().join("\n")
}

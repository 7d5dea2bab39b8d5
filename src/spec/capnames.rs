//! Capability names oci-spec does not know (newer than this build, or misspelt) are dropped
//! with a warning before the config is deserialised, as runc ignores them ("ignoring unknown
//! or unavailable capabilities"): an image or engine listing a newer capability still runs.

use serde_json::Value;

const SETS: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

fn known(name: &str) -> bool {
    serde_json::from_value::<oci_spec::runtime::Capability>(Value::String(name.into())).is_ok()
}

/// The config without unknown capability names, or None when it names none (the common
/// case, decided by a scan of the bytes, so the config is parsed once as before).
/// The filtered document is re-serialised: line:column of a later error then refer to it.
pub fn without_unknown(data: &[u8]) -> Option<Vec<u8>> {
    if !names_in(data).any(|n| !known(n)) {
        return None;
    }
    let mut doc: Value = serde_json::from_slice(data).ok()?;
    let caps = doc.pointer_mut("/process/capabilities")?.as_object_mut()?;
    for set in SETS {
        let Some(list) = caps.get_mut(set).and_then(Value::as_array_mut) else {
            continue;
        };
        let mut dropped = Vec::new();
        list.retain(|c| match c.as_str() {
            Some(n) if !known(n) => {
                dropped.push(n.to_string());
                false
            }
            _ => true,
        });
        if !dropped.is_empty() {
            crate::logging::warn(&format!(
                "process.capabilities.{set}: ignoring unknown or unavailable capabilities: {}",
                dropped.join(", ")
            ));
        }
    }
    serde_json::to_vec(&doc).ok()
}

/// Every `"CAP_…"` string token in the bytes.
fn names_in(data: &[u8]) -> impl Iterator<Item = &str> {
    let text = std::str::from_utf8(data).unwrap_or("");
    text.match_indices("\"CAP_").filter_map(move |(i, _)| {
        let rest = &text[i + 1..];
        rest.find('"').map(|end| &rest[..end])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_dropped_known_ones_kept() {
        let doc = br#"{"process": {"capabilities": {"bounding": ["CAP_KILL", "CAP_FLY"],
            "effective": ["CAP_KILL"]}}}"#;
        let out = without_unknown(doc).expect("CAP_FLY is unknown");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_KILL"])
        );
        assert_eq!(
            v["process"]["capabilities"]["effective"],
            serde_json::json!(["CAP_KILL"])
        );
    }

    #[test]
    fn a_config_with_known_names_is_left_alone() {
        let doc = br#"{"process": {"capabilities": {"bounding": ["CAP_KILL", "CAP_BPF"]}}}"#;
        assert!(without_unknown(doc).is_none());
        assert!(without_unknown(b"{}").is_none());
    }
}

//! Interim stats reader (memory and pids only); replaced by the full reader in progress.

use std::path::PathBuf;

fn num(dirs: &[PathBuf], file: &str) -> Option<u64> {
    dirs.iter().find_map(|d| {
        std::fs::read_to_string(d.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    })
}

pub fn read(dirs: &[PathBuf]) -> serde_json::Value {
    serde_json::json!({
        "memory": {"usage": {"usage": num(dirs, "memory.usage_in_bytes").unwrap_or(0), "limit": num(dirs, "memory.limit_in_bytes").unwrap_or(0)}},
        "pids": {"current": num(dirs, "pids.current").unwrap_or(0), "limit": num(dirs, "pids.max").unwrap_or(0)},
    })
}

pub fn event(id: &str, dirs: &[PathBuf]) -> serde_json::Value {
    serde_json::json!({"type": "stats", "id": id, "data": read(dirs)})
}

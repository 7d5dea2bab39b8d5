use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth::container::Error;
use berth::state::{self, ContainerDir, StateError, Status};
use serde_json::Value;

use super::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only the container ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, Error> {
    let mut rows = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(root)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for name in names {
        let Ok(dir) = ContainerDir::new(root, &name) else {
            continue;
        };
        // A directory without a readable state is a create in progress, or the remains of
        // one that was killed: listed, so that it can be seen and deleted.
        let mut row = match dir.load() {
            Ok(st) => state::oci_state_json(&st, state::status(&dir, &st)),
            Err(StateError::NotFound(_)) => continue,
            Err(StateError::Creating(_)) => state::placeholder_json(&name, Status::Creating),
            Err(_) => state::placeholder_json(&name, Status::Stopped),
        };
        runc_list_row(&mut row, &root.join(&name));
        rows.push(row);
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or(""));
        }
    } else if a.format == Format::Json {
        println!("{}", serde_json::to_string(&rows).unwrap_or_default());
    } else {
        print!("{}", table(&rows));
    }
    Ok(0)
}

/// runc's list row: the owner named after the user owning the container's state
/// directory (runc's `state` leaves it empty).
fn runc_list_row(row: &mut Value, dir: &Path) {
    if let Some(o) = row.as_object_mut() {
        let owner = dir
            .metadata()
            .map(|m| user_name(m.uid()))
            .unwrap_or_default();
        o.insert("owner".into(), Value::String(owner));
    }
}

/// A uid's name from the host's /etc/passwd, or `#uid` as runc prints an unknown one.
fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    berth::init::user::field_of(&passwd, uid, 0)
        .map(str::to_string)
        .unwrap_or_else(|| format!("#{uid}"))
}

/// The table as runc's tabwriter lays it out: every column but the last padded to its
/// widest cell plus three spaces, at least twelve wide.
fn table(rows: &[Value]) -> String {
    let head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|h| h.to_string()).collect()];
    for r in rows {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        cells.push(vec![
            s("id"),
            r["pid"].to_string(),
            s("status"),
            s("bundle"),
            s("created"),
            s("owner"),
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        let last = row.len() - 1;
        for (c, cell) in row.iter().enumerate() {
            if c == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

use berth::container::Error;
use berth::state::{self, ContainerDir, StateError, Status};

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
        rows.push(match dir.load() {
            Ok(st) => state::oci_state_json(&st, state::status(&dir, &st)),
            Err(StateError::NotFound(_)) => continue,
            Err(StateError::Creating(_)) => state::placeholder_json(&name, Status::Creating),
            Err(_) => state::placeholder_json(&name, Status::Stopped),
        });
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or(""));
        }
    } else if a.format == Format::Json {
        println!("{}", serde_json::to_string(&rows).unwrap_or_default());
    } else {
        println!(
            "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        for r in &rows {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} root",
                s("id"),
                r["pid"],
                s("status"),
                s("bundle"),
                s("created")
            );
        }
    }
    Ok(0)
}

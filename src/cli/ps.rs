use berth::container::Error;

use super::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: ps(1) rows or a JSON list of pids
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Container id
    pub id: String,
    /// Arguments for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, Error> {
    // A stopped container has no processes: runc prints the bare header (or no pids).
    let pids = match berth::control::pids(root, &a.id) {
        Err(Error::NotRunning(_)) => None,
        other => Some(other?),
    };
    match a.format {
        Format::Json => println!("{}", serde_json::to_string(&pids).unwrap_or_default()),
        Format::Table => print!(
            "{}",
            berth::control::ps_table(pids.as_deref().unwrap_or_default(), &a.ps_args)?
        ),
    }
    Ok(0)
}

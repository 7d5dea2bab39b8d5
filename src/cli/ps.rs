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
    let pids = berth::control::pids(root, &a.id)?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string(&pids).unwrap_or_default()),
        Format::Table => print!("{}", berth::control::ps_table(&pids, &a.ps_args)?),
    }
    Ok(0)
}

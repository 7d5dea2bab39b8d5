use berth::container::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one stats object and exit
    #[arg(long)]
    pub stats: bool,
    /// Time between stats (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Container id
    pub id: String,
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, Error> {
    let interval = berth::control::parse_interval(&a.interval).map_err(Error::Msg)?;
    berth::control::events(root, &a.id, a.stats, interval, &mut std::io::stdout())?;
    Ok(0)
}

use berth::container;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signal every process in the container's cgroup, not only its init
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal name (KILL, SIGKILL, RTMIN+1) or number; default SIGTERM
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, container::Error> {
    let sig = berth::signals::parse(&a.signal).map_err(container::Error::Msg)?;
    container::kill(root, &a.id, sig, a.all)?;
    Ok(0)
}

use berth::container;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill a running container first
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, container::Error> {
    container::delete(root, &a.id, a.force)?;
    Ok(0)
}

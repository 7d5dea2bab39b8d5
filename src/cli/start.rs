use berth::container;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, container::Error> {
    container::start(root, &a.id)?;
    Ok(0)
}

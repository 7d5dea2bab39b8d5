use berth::container::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn pause(root: &std::path::Path, a: &Args) -> Result<i32, Error> {
    berth::control::pause(root, &a.id)?;
    Ok(0)
}

pub fn resume(root: &std::path::Path, a: &Args) -> Result<i32, Error> {
    berth::control::resume(root, &a.id)?;
    Ok(0)
}

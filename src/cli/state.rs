use berth::container;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn exec(root: &std::path::Path, a: &Args) -> Result<i32, container::Error> {
    let v = container::state(root, &a.id)?;
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(0)
}

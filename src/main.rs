//! berth: global flags, logging, dispatch, and error → exit code (1, as runc).

mod cli;

use cli::{Command, LogFormat};

fn main() {
    // go-runc (containerd's shim) gives restore's flag with one dash, which runc's
    // urfave/cli accepts: `-no-subreaper`.
    let args = std::env::args_os().map(|a| {
        if a == "-no-subreaper" {
            "--no-subreaper".into()
        } else {
            a
        }
    });
    let cli = match cli::parse(args.collect()) {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            // One line, as every berth error: clap's message without its usage block
            // (engines and logs keep only the last line of a runtime's stderr).
            let text = e.render().to_string();
            let msg: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let msg = msg.join("; ");
            berth::logging::error(&format!(
                "{} (see berth --help)",
                msg.strip_prefix("error: ").unwrap_or(&msg)
            ));
            std::process::exit(1);
        }
        Err(e) => {
            let _ = e.print();
            std::process::exit(0);
        }
    };
    berth::logging::init(
        cli.global.log.as_deref(),
        cli.global.log_format == LogFormat::Json,
        cli.global.debug,
    );
    berth::logging::step("main: arguments parsed");
    #[cfg(feature = "failpoints")]
    if let Err(e) = berth::failpoints::setup() {
        berth::logging::error(&e);
        std::process::exit(1);
    }
    if cli.global.version {
        // runc's layout: version, commit, spec.
        println!("berth version {}", env!("CARGO_PKG_VERSION"));
        println!("commit: {}", env!("BERTH_COMMIT"));
        println!("spec: {}", berth::spec::SPEC_VERSION);
        return;
    }
    let Some(cmd) = &cli.command else {
        berth::logging::error("no command given (see berth --help)");
        std::process::exit(1);
    };
    // As runc 1.2: the flag picks the driver at create; later verbs follow the state.
    if cli.global.systemd_cgroup && matches!(cmd, Command::Create(_) | Command::Run(_)) {
        if let Err(e) = berth::cgroups::systemd::enable() {
            berth::logging::error(&e);
            std::process::exit(1);
        }
    }
    let root = &match &cli.global.root {
        Some(r) => r.clone(),
        None => berth::state::default_root(),
    };
    let result = match cmd {
        Command::Create(a) => cli::create::exec(root, a),
        Command::Start(a) => cli::start::exec(root, a),
        Command::State(a) => cli::state::exec(root, a),
        Command::Kill(a) => cli::kill::exec(root, a),
        Command::Delete(a) => cli::delete::exec(root, a),
        Command::Run(a) => cli::run::exec(root, a),
        Command::Update(a) => cli::update::exec(root, a),
        Command::Exec(a) => cli::exec::exec(root, a),
        Command::List(a) => cli::list::exec(root, a),
        Command::Spec(a) => cli::spec::exec(a),
        Command::Features => cli::features::exec(),
        Command::Pause(a) => cli::pause::pause(root, a),
        Command::Resume(a) => cli::pause::resume(root, a),
        Command::Ps(a) => cli::ps::exec(root, a),
        Command::Events(a) => cli::events::exec(root, a),
        Command::Checkpoint(a) => cli::checkpoint::exec(root, &cli.global.criu, a),
        Command::Restore(a) => cli::restore::exec(root, &cli.global.criu, a),
        Command::Completion(a) => cli::docs::completion(a),
        Command::ManPages(a) => cli::docs::man_pages(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            berth::logging::error(&e.to_string());
            // As runc: an exec that fails exits 255, apart from any code the exec'd
            // process itself can return; every other verb exits 1.
            let code = if matches!(cmd, Command::Exec(_)) {
                255
            } else {
                1
            };
            std::process::exit(code);
        }
    }
}

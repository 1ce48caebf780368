//! `loglens dashboard`: starts the Streamlit dashboard (`dashboard/app.py`) over a data
//! directory, with the project's Python environment; outside a checkout, the one of the
//! installed Python package (`python -m loglens dashboard`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::cmd::DataDirArgs;

/// Options of `loglens dashboard`.
#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Port to serve on.
    #[arg(long, default_value_t = 8501)]
    pub port: u16,
    /// The dashboard entry point [default: dashboard/app.py of the checkout the binary was
    /// built in, else of the current directory].
    #[arg(long)]
    pub app: Option<PathBuf>,
    /// Python with streamlit installed [default: $LOGLENS_PYTHON, else the checkout's
    /// .venv/bin/python, else python3].
    #[arg(long)]
    pub python: Option<PathBuf>,
}

/// Runs `loglens dashboard` until the server stops.
pub fn run(args: DashboardArgs) -> anyhow::Result<()> {
    let data_dir = args.data.resolve()?;
    let root = checkout_root();
    let app = args.app.or_else(|| {
        root.iter()
            .map(|r| r.join("dashboard/app.py"))
            .chain([PathBuf::from("dashboard/app.py")])
            .find(|p| p.is_file())
    });
    let python = args
        .python
        .or_else(|| std::env::var_os("LOGLENS_PYTHON").map(PathBuf::from))
        .or_else(|| root.map(|r| r.join(".venv/bin/python")).filter(|p| p.is_file()))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let mut command = Command::new(&python);
    match &app {
        Some(app) => {
            println!(
                "dashboard: http://localhost:{} (data: {}; Ctrl-C stops it)",
                args.port,
                data_dir.display()
            );
            command
                .args(["-m", "streamlit", "run"])
                .arg(app)
                .args(["--server.headless", "true", "--browser.gatherUsageStats", "false"])
                .arg("--server.port")
                .arg(args.port.to_string())
                .arg("--")
        }
        // Not in a checkout: the pip-installed package carries the app (`pip install loglens`).
        None => command
            .args(["-m", "loglens", "dashboard", "--port"])
            .arg(args.port.to_string()),
    };
    command.arg("--data-dir").arg(&data_dir);
    let (module, hint) = match app {
        Some(_) => ("streamlit", "streamlit"),
        None => ("loglens", "python -m loglens dashboard"),
    };
    require_module(&python, module, hint)?;
    serve(command).with_context(|| {
        format!(
            "starting {} -m {module} (set --python or LOGLENS_PYTHON)",
            python.display()
        )
    })
}

/// Fails with what to install when `python` cannot import `module` (checked before the server
/// takes this process's place, when its own error would no longer say what to do).
fn require_module(python: &Path, module: &str, runs: &str) -> anyhow::Result<()> {
    let check = format!("import importlib.util, sys; sys.exit(importlib.util.find_spec('{module}') is None)");
    let found = Command::new(python)
        .args(["-c", &check])
        .status()
        .with_context(|| format!("running {} (set --python or LOGLENS_PYTHON)", python.display()))?;
    if !found.success() {
        bail!(
            "{} cannot import {module}, which {runs} needs (make venv in a checkout, else pip \
             install 'loglens[dashboard]'; or pass --python, or --app dashboard/app.py)",
            python.display()
        );
    }
    Ok(())
}

/// Runs the server in this process's place on Unix, so a signal to `loglens dashboard`
/// (Ctrl-C, SIGTERM from a supervisor or a test) reaches Streamlit itself: run as a child, it
/// outlived a SIGTERM as an orphan still holding the port. Elsewhere, waits for it.
fn serve(mut command: Command) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        Err(command.exec().into())
    }
    #[cfg(not(unix))]
    {
        let status = command.status()?;
        if !status.success() {
            bail!("the dashboard exited with {status}");
        }
        Ok(())
    }
}

/// The checkout the binary sits in (`<root>/target/<profile>/loglens`), if it does.
fn checkout_root() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let root: &Path = exe.parent()?.parent()?.parent()?;
    root.join("dashboard/app.py").is_file().then(|| root.to_owned())
}

//! The `taskyard-gateway` command.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use taskyard_gateway::backend::local::LocalBackend;
use taskyard_gateway::settings::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    taskyard_runner::install_crypto_provider();
    let settings = Settings::parse();
    if !settings.local {
        eprintln!(
            "error: cluster mode is not available yet; run `taskyard-gateway --local [--store DIR]` to serve the APIs with tasks run on this machine"
        );
        return ExitCode::from(2);
    }
    let backend = match LocalBackend::start(&settings) {
        Ok(backend) => Arc::new(backend),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match backend.restore().await {
        Ok(0) => {}
        Ok(n) => tracing::info!("took back {n} tasks recorded in {}", settings.store.display()),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let listener = match tokio::net::TcpListener::bind(settings.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: cannot listen on {}: {e}; stop what uses it or choose another address with --listen",
                settings.listen
            );
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().expect("a bound listener has an address");
    // Tests and scripts read this line to learn the port (with --listen 127.0.0.1:0).
    println!(
        "taskyard-gateway listening on http://{addr} (local mode, store {})",
        settings.store.display()
    );
    let app = taskyard_gateway::app::router(backend, settings.limits());
    // Ctrl-C, or SIGTERM as a container runtime sends it.
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    match axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the server stopped: {e}");
            ExitCode::from(1)
        }
    }
}

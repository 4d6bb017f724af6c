//! The `taskyard-gateway` command.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use taskyard_common::store::{S3Settings, S3Store, Store};
use taskyard_gateway::backend::Backend;
use taskyard_gateway::backend::cluster::ClusterBackend;
use taskyard_gateway::backend::local::LocalBackend;
use taskyard_gateway::plugin_api::authorizer::{Authorizer, KubeAuthorizer};
use taskyard_gateway::settings::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a container's log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    taskyard_runner::install_crypto_provider();
    let settings = Settings::parse();
    if let Err(e) = settings.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let started = if settings.local {
        local(&settings).await
    } else {
        cluster(&settings).await
    };
    let (backend, authorizer, mode) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
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
    println!("taskyard-gateway listening on http://{addr} ({mode})");
    let app = taskyard_gateway::app::router(backend, settings.limits(), authorizer);
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

/// A started backend, the checker of plugin users (cluster mode), and a line saying which.
type Started = (Arc<dyn Backend>, Option<Arc<dyn Authorizer>>, String);

/// Local mode: tasks run in this process against a directory store.
async fn local(settings: &Settings) -> Result<Started, String> {
    let backend = LocalBackend::start(settings)?;
    match backend.restore().await? {
        0 => {}
        n => tracing::info!("took back {n} tasks recorded in {}", settings.store.display()),
    }
    Ok((
        Arc::new(backend),
        None,
        format!("local mode, store {}", settings.store.display()),
    ))
}

/// Cluster mode: tasks are resources in `--namespace`, run by the operator; uploads go to
/// the operator's bucket.
async fn cluster(settings: &Settings) -> Result<Started, String> {
    let client = kube::Client::try_default().await.map_err(|e| {
        format!(
            "cannot reach the Kubernetes API ({e}); run in a Pod with a ServiceAccount, set KUBECONFIG, or use --local"
        )
    })?;
    let store = Store::S3(
        S3Store::connect(&S3Settings {
            endpoint: (!settings.store_endpoint.is_empty()).then(|| settings.store_endpoint.clone()),
            region: settings.store_region.clone(),
            bucket: settings.store_bucket.clone(),
            force_path_style: settings.store_force_path_style,
            credentials: None,
            stall_timeout: std::time::Duration::from_secs(settings.store_stall_timeout_seconds),
        })
        .await,
    );
    let mode = format!(
        "cluster mode, namespace {}, store {}",
        settings.namespace,
        store.describe()
    );
    Ok((
        Arc::new(ClusterBackend::new(client.clone(), store, settings.namespace.clone())),
        Some(Arc::new(KubeAuthorizer::new(client))),
        mode,
    ))
}

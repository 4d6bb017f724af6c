//! The `taskyard-operator` command.

use std::sync::Arc;

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use taskyard_api::{HashTask, ImageTask, TextTask};
use taskyard_common::netpolicy::NetworkPolicy;
use taskyard_common::store::{S3Settings, S3Store, Store};
use taskyard_operator::logwriter::LogWriter;
use taskyard_operator::reconcile::{Context, error_policy, reconcile};
use taskyard_operator::settings::Settings;
use taskyard_operator::task::TaskResource;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = Settings::parse();
    init_logging(settings.log_json);
    if let Err(e) = settings.validate() {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match run(settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("operator stopped: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let client = kube::Client::try_default().await?;
    let store = Store::S3(
        S3Store::connect(&S3Settings {
            endpoint: (!settings.store_endpoint.is_empty()).then(|| settings.store_endpoint.clone()),
            region: settings.store_region.clone(),
            bucket: settings.store_bucket.clone(),
            force_path_style: settings.store_force_path_style,
            credentials: None,
        })
        .await,
    );
    let reporter = Reporter {
        controller: "taskyard-operator".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        policy: NetworkPolicy::new(settings.allowed_networks.clone()),
        log: LogWriter::spawn(store.clone()),
        store,
        settings,
        client: client.clone(),
    });
    tracing::info!(store = %ctx.store.describe(), "taskyard operator starting");
    tokio::join!(
        controller::<HashTask>(&client, ctx.clone(), "hashtask"),
        controller::<ImageTask>(&client, ctx.clone(), "imagetask"),
        controller::<TextTask>(&client, ctx.clone(), "texttask"),
    );
    tracing::info!("taskyard operator stopped");
    Ok(())
}

/// Runs the controller of one task kind until a shutdown signal.
async fn controller<K: TaskResource>(client: &kube::Client, ctx: Arc<Context>, kind_label: &str) {
    let jobs = Api::<Job>::all(client.clone());
    let job_selector = format!("app.kubernetes.io/managed-by=taskyard,taskyard.dev/kind={kind_label}");
    Controller::new(Api::<K>::all(client.clone()), watcher::Config::default())
        .owns(jobs, watcher::Config::default().labels(&job_selector))
        .shutdown_on_signal()
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|outcome| async move {
            if let Err(e) = outcome {
                tracing::debug!("reconcile: {e}");
            }
        })
        .await;
}

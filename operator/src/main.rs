//! The `taskyard-operator` command.

use std::sync::Arc;

use clap::Parser;
use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use taskyard_api::{HashTask, ImageTask, TaskKind, TextTask};
use taskyard_common::netpolicy::NetworkPolicy;
use taskyard_common::store::{S3Store, Store};
use taskyard_operator::cache::{TaskCache, watch_tasks};
use taskyard_operator::events::Events;
use taskyard_operator::health::{self, Readiness};
use taskyard_operator::jobindex::{self, JobIndex};
use taskyard_operator::leader::{Fence, LeaderElection};
use taskyard_operator::logwriter::LogWriter;
use taskyard_operator::memory;
use taskyard_operator::metrics::Metrics;
use taskyard_operator::pacing::Pacing;
use taskyard_operator::queue::{Admission, Caches};
use taskyard_operator::reaper;
use taskyard_operator::reconcile::{Context, error_policy, reconcile};
use taskyard_operator::settings::Settings;
use taskyard_operator::task::TaskResource;

fn main() -> std::process::ExitCode {
    memory::limit_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts")
        .block_on(operator_main())
}

async fn operator_main() -> std::process::ExitCode {
    let settings = Settings::parse();
    init_logging(settings.log_json);
    if let Err(e) = settings.validate() {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    if settings.check_settings {
        println!(
            "{}",
            serde_json::to_string_pretty(&settings).expect("settings serialise")
        );
        return std::process::ExitCode::SUCCESS;
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if settings.check_store {
        return check_store(&settings).await;
    }
    match run(settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("operator stopped: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--check-store`: one listing of the bucket, with the store connection the operator runs
/// with, so its credentials are checked before a Pod depends on them.
async fn check_store(settings: &Settings) -> std::process::ExitCode {
    let store = Store::S3(S3Store::connect(&settings.s3_settings()).await);
    match store.first_with_prefix("").await {
        Ok(_) => {
            println!(
                "the object store answered: bucket {} is reachable",
                settings.store_bucket
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: the object store refused or did not answer: {e}\n\
                 check store.endpoint and store.bucket, and the credentials: store.credentialsSecret, \
                 or for the default chain AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_ROLE_ARN \
                 and AWS_WEB_IDENTITY_TOKEN_FILE (Helm: store.webIdentity)"
            );
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into());
    // Colour codes only for a person at a terminal, not in a container's log.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let client = kube::Client::try_default().await?;
    let store = Store::S3(S3Store::connect(&settings.s3_settings()).await);
    let reporter = Reporter {
        controller: "taskyard-operator".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let metrics = Arc::new(Metrics::default());
    let readiness = Arc::new(Readiness::default());
    let listener = tokio::net::TcpListener::bind(settings.metrics_address).await?;
    tokio::spawn(health::serve(listener, metrics.clone(), readiness.clone()));
    // Each controller also reconciles the waiting tasks it is told about (a runner slot freed).
    let (hash_wake, hash_woken) = tokio::sync::mpsc::unbounded_channel();
    let (image_wake, image_woken) = tokio::sync::mpsc::unbounded_channel();
    let (text_wake, text_woken) = tokio::sync::mpsc::unbounded_channel();
    // Built now, run once leading: admission reads every kind's cache.
    let (gone_tx, gone) = tokio::sync::mpsc::unbounded_channel();
    let (hash_cache, hash_changed) = watch_tasks::<HashTask>(client.clone(), gone_tx.clone());
    let (image_cache, image_changed) = watch_tasks::<ImageTask>(client.clone(), gone_tx.clone());
    let (text_cache, text_changed) = watch_tasks::<TextTask>(client.clone(), gone_tx);
    let hash = controller(hash_changed, &hash_cache, hash_woken);
    let image = controller(image_changed, &image_cache, image_woken);
    let text = controller(text_changed, &text_cache, text_woken);
    let caches = Caches {
        hash: hash_cache,
        image: image_cache,
        text: text_cache,
    };
    let wake = [
        (TaskKind::HashTask, hash_wake),
        (TaskKind::ImageTask, image_wake),
        (TaskKind::TextTask, text_wake),
    ];
    let job_index = Arc::new(JobIndex::default());
    let admission = Admission::new(
        caches,
        job_index.clone(),
        wake.into_iter().collect(),
        settings.max_running_jobs as usize,
        settings.max_tasks_per_job as usize,
        Pacing::default(),
    );
    let election = settings.leader_election.then(|| {
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()))
            .unwrap_or_else(|_| "taskyard-operator".into());
        LeaderElection::new(client.clone(), &settings.namespace, &settings.lease_name, &identity)
    });
    let fence = election.as_ref().map_or_else(Fence::unfenced, LeaderElection::fence);
    let ctx = Arc::new(Context {
        admission,
        job_index,
        events: Events::spawn(client.clone(), reporter),
        policy: NetworkPolicy::new(settings.allowed_networks.0.clone()),
        log: LogWriter::spawn(store.clone(), fence),
        metrics,
        store,
        settings,
        client: client.clone(),
    });
    tracing::info!(store = %ctx.store.describe(), "taskyard operator starting");
    if let Some(election) = &election {
        // A standby replica is healthy and ready; it leads once the lease is free.
        readiness.set_ready();
        tracing::info!(identity = election.identity(), "waiting for the leader lease");
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = election.acquire() => tracing::info!(identity = election.identity(), "leading"),
            _ = terminate.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
    // Ready once every task kind is served (the CRDs are installed) and its cache holds the
    // first listing.
    let caches = ctx.admission.caches.clone();
    tokio::spawn(async move {
        if !caches.synced().await {
            return;
        }
        readiness.set_ready();
        tracing::info!("task kinds served and cached; ready");
    });
    tokio::spawn(reaper::run(ctx.clone(), gone));
    tokio::spawn(jobindex::watch(ctx.clone()));
    tokio::spawn(jobindex::poll(ctx.clone()));
    tokio::spawn(jobindex::wake_on_free_slots(ctx.clone()));
    let refresher = ctx.clone();
    tokio::spawn(async move { refresher.admission.refresh().await });
    tokio::spawn(gauge_queue_length(ctx.clone()));
    tokio::spawn(memory::trim_periodically(memory::TRIM_EVERY));
    let controllers = async {
        tokio::join!(
            run_controller(hash, &ctx),
            run_controller(image, &ctx),
            run_controller(text, &ctx)
        );
    };
    match &election {
        Some(election) => tokio::select! {
            _ = controllers => election.release().await,
            _ = election.hold() => {
                tracing::error!("lost the leader lease; stopping so that only one replica leads");
                std::process::exit(1);
            }
        },
        None => controllers.await,
    }
    tracing::info!("taskyard operator stopped");
    Ok(())
}

/// The controller of one task kind: its tasks, and the tasks it is told about: those of a
/// runner Job that changed (by the Job index's watch), a task reported done in a batch, and
/// waiting tasks when a runner slot freed.
fn controller<K: TaskResource>(
    changed: impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    cache: &TaskCache<K>,
    woken: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) -> Controller<K> {
    Controller::for_stream(changed, cache.store.clone()).reconcile_on(futures::stream::unfold(
        woken,
        |mut rx| async move {
            let (namespace, name) = rx.recv().await?;
            Some((ObjectRef::<K>::new(&name).within(&namespace), rx))
        },
    ))
}

/// Runs one controller until a shutdown signal.
async fn run_controller<K: TaskResource>(controller: Controller<K>, ctx: &Arc<Context>) {
    controller
        .shutdown_on_signal()
        .run(reconcile::<K>, error_policy::<K>, ctx.clone())
        .for_each(|outcome| async move {
            if let Err(e) = outcome {
                tracing::debug!("reconcile: {e}");
            }
        })
        .await
}

/// Keeps the queue-length gauge current. Counting passes over every cached task, which is
/// too dear for every reconcile with thousands of tasks.
async fn gauge_queue_length(ctx: Arc<Context>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tick.tick().await;
        ctx.metrics.set_queue_length(ctx.admission.caches.queued());
    }
}

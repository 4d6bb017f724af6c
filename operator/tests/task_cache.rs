//! The operator's task cache against the local cluster's API server: every waiter learns that
//! the cache synced, however many wait at once (kube-runtime's own store readiness wakes only
//! one), and the synced cache holds the tasks that existed before the watch started.

use std::time::Duration;

use futures::StreamExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Config, ResourceExt};
use taskyard_api::HashTask;
use taskyard_operator::cache::watch_tasks;
use taskyard_tests::cluster::ClusterEnv;
use taskyard_tests::e2e::hash_task;
use taskyard_tests::kubectl::Kubectl;

const NAMESPACE: &str = "task-cache";

async fn client(env: &ClusterEnv) -> kube::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kubeconfig = Kubeconfig::read_from(env.get("KUBECONFIG")).expect("the cluster's kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a client configuration");
    kube::Client::try_from(config).expect("a client")
}

#[tokio::test]
async fn every_waiter_sees_the_cache_synced_with_the_existing_tasks() {
    let env = ClusterEnv::load();
    let kubectl = Kubectl::new(&env);
    // This may run before any test has installed the chart on a new cluster.
    kubectl.apply_crds();
    kubectl.namespace(NAMESPACE);
    // Sources outside the allowed networks: the operator rejects them without starting a Job.
    let names = ["cached-1", "cached-2"];
    for name in names {
        kubectl.apply(&hash_task(NAMESPACE, name, "http://192.0.2.1/never-fetched"));
    }

    let (gone_tx, mut gone) = tokio::sync::mpsc::unbounded_channel();
    let (cache, changed) = watch_tasks::<HashTask>(client(&env).await, gone_tx);
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.synced().await })
        })
        .collect();
    // Every waiter is waiting before the watch starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let watch = tokio::spawn(changed.for_each(|_| async {}));
    for (i, waiter) in waiters.into_iter().enumerate() {
        tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .unwrap_or_else(|_| panic!("waiter {i} was never told that the cache synced"))
            .unwrap();
    }
    let cached: Vec<String> = cache
        .store
        .state()
        .iter()
        .filter(|t| t.namespace().as_deref() == Some(NAMESPACE))
        .map(|t| t.name_any())
        .collect();
    for name in names {
        assert!(
            cached.iter().any(|c| c == name),
            "{name} is not in the synced cache: {cached:?}"
        );
    }
    // A deleted task is reported, so the reaper can remove its Jobs in another namespace.
    kubectl.run(&["delete", "hashtask", "cached-1", "-n", NAMESPACE]);
    let reported = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let task = gone.recv().await.expect("the watch runs");
            if task.identity.namespace == NAMESPACE && task.identity.name == "cached-1" {
                return task;
            }
        }
    })
    .await
    .expect("the deletion was not reported within 10 s");
    assert_eq!(reported.kind, taskyard_api::TaskKind::HashTask);
    assert!(!reported.identity.uid.is_empty());
    watch.abort();
}

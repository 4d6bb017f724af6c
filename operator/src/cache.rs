//! The watch of one task kind, cached for its controller and for admission, with a "synced"
//! flag that any number of tasks may wait on.
//!
//! Why not `Store::wait_until_ready`: in kube-runtime 5 it keeps a single waker per store, and
//! each controller already waits on its own store before it starts, so a second waiter may
//! never be woken, or may take the controller's wake-up away from it.

use futures::{Stream, StreamExt};
use kube::Api;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use taskyard_api::{TaskIdentity, TaskSpecCommon};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

use crate::reaper::GoneTask;
use crate::task::TaskResource;

/// The cached tasks of one kind.
#[derive(Clone)]
pub struct TaskCache<K: TaskResource> {
    pub store: reflector::Store<K>,
    synced: watch::Receiver<bool>,
}

impl<K: TaskResource> TaskCache<K> {
    /// A cache filled by hand, already synced.
    #[cfg(test)]
    pub(crate) fn synced_from(store: reflector::Store<K>) -> Self {
        TaskCache {
            store,
            synced: watch::channel(true).1,
        }
    }

    /// Ends when the first listing is in the cache, which also means the API server serves
    /// the kind (its CRD is installed): true. False when the watch is gone first (the operator
    /// is stopping), so nothing may take the cache for complete.
    pub async fn synced(&self) -> bool {
        self.synced.clone().wait_for(|synced| *synced).await.is_ok()
    }
}

/// The annotation `kubectl apply` writes: the whole spec again.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what reconcile never reads and what would double the cache: managed fields and
/// `kubectl apply`'s copy of the object. Status writes replace only the status, so nothing
/// dropped here is written back.
fn keep_what_reconcile_needs<K: TaskResource>(task: &mut K) {
    let meta = task.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// Watches every task of kind `K`: the cache, and the stream of changed tasks that drives its
/// controller; deleted tasks are sent to `gone`. Nothing happens until the stream is polled.
pub fn watch_tasks<K: TaskResource>(
    client: kube::Client,
    gone: UnboundedSender<GoneTask>,
) -> (
    TaskCache<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
) {
    let (store, writer) = reflector::store();
    let (synced_tx, synced) = watch::channel(false);
    let changed = watcher(Api::<K>::all(client), watcher::Config::default())
        .modify(keep_what_reconcile_needs)
        .reflect(writer)
        .inspect(move |event| match event {
            Ok(watcher::Event::InitDone) => {
                synced_tx.send_replace(true);
            }
            Ok(watcher::Event::Delete(task)) => {
                let _ = gone.send(GoneTask {
                    kind: <K::Spec as TaskSpecCommon>::KIND,
                    identity: TaskIdentity {
                        namespace: task.namespace().unwrap_or_default(),
                        name: task.name_any(),
                        uid: task.uid().unwrap_or_default(),
                        generation: task.meta().generation.unwrap_or(1),
                    },
                });
            }
            Err(e) => tracing::warn!("cannot watch {}: {e}; is the CRD installed?", K::plural(&())),
            Ok(_) => {}
        })
        .applied_objects();
    (TaskCache { store, synced }, changed)
}

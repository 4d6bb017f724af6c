//! Kubernetes Events about tasks, for people (`kubectl describe`, `kubectl get events`),
//! published off the reconcile's path and without kube's `Recorder` cache.
//!
//! The `Recorder` keeps every event it sent for six minutes, to count repeats as a series,
//! and scans them all under one write lock on each publish. With 10,000 tasks finishing in a
//! burst (one or two events each) it held tens of MB, and every reconcile that published
//! waited for that lock and for the event's create. A task's events differ in reason or
//! note, so a series would rarely form anyway. Here the reconcile queues the event and goes
//! on; a few creates run at a time in the background. Events are best effort, as in
//! client-go: when the queue is full an event is dropped (and counted in the log) rather
//! than making the reconcile wait.

use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, Recorder, Reporter};
use tokio::sync::mpsc;

/// Events waiting to be created; a burst's events fit, a stuck API server's do not.
const QUEUE: usize = 2048;
/// Creates in flight at once.
const CONCURRENT: usize = 4;

type Queued = (Event, ObjectReference);

/// Where the reconciles publish their events.
pub struct Events {
    mode: Mode,
    dropped: AtomicU64,
}

enum Mode {
    /// Created by `publish` itself before it returns.
    Inline { client: Client, reporter: Reporter },
    /// Handed to the background task that creates them.
    Queued(mpsc::Sender<Queued>),
}

impl Events {
    /// Events created in the background, `CONCURRENT` at a time.
    pub fn spawn(client: Client, reporter: Reporter) -> Self {
        let (queue, queued) = mpsc::channel(QUEUE);
        tokio::spawn(create_queued(client, reporter, queued));
        Events {
            mode: Mode::Queued(queue),
            dropped: AtomicU64::new(0),
        }
    }

    /// Events created before `publish` returns: for tests that look at them right after.
    pub fn inline(client: Client, reporter: Reporter) -> Self {
        Events {
            mode: Mode::Inline { client, reporter },
            dropped: AtomicU64::new(0),
        }
    }

    pub async fn publish(&self, event: Event, regarding: ObjectReference) {
        let queue = match &self.mode {
            Mode::Inline { client, reporter } => return create(client, reporter, &event, &regarding).await,
            Mode::Queued(queue) => queue,
        };
        if let Err(mpsc::error::TrySendError::Full((event, _))) = queue.try_send((event, regarding)) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped.is_multiple_of(100) {
                tracing::warn!(
                    reason = %event.reason,
                    "events are made faster than the API server takes them: {dropped} dropped so far"
                );
            }
        }
    }
}

async fn create_queued(client: Client, reporter: Reporter, queued: mpsc::Receiver<Queued>) {
    futures::stream::unfold(queued, |mut queued| async move {
        queued.recv().await.map(|next| (next, queued))
    })
    .for_each_concurrent(CONCURRENT, |(event, regarding)| {
        let (client, reporter) = (&client, &reporter);
        async move { create(client, reporter, &event, &regarding).await }
    })
    .await
}

/// Creates one event. A `Recorder` of its own, used once, keeps nothing.
async fn create(client: &Client, reporter: &Reporter, event: &Event, regarding: &ObjectReference) {
    let recorder = Recorder::new(client.clone(), reporter.clone());
    if let Err(e) = recorder.publish(event, regarding).await {
        tracing::warn!("cannot publish event {}: {e}", event.reason);
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use http::{Request, Response};
    use http_body_util::BodyExt;
    use kube::client::Body;
    use kube::runtime::events::EventType;
    use tokio::sync::Semaphore;

    use super::*;

    /// A fake API server that records the reason of each event created, after waiting for a
    /// permit from `gate` (so a test can hold the creates back).
    fn client(created: Arc<Mutex<Vec<String>>>, gate: Arc<Semaphore>) -> Client {
        let service = tower::service_fn(move |request: Request<Body>| {
            let (created, gate) = (created.clone(), gate.clone());
            async move {
                gate.acquire().await.unwrap().forget();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
                created
                    .lock()
                    .unwrap()
                    .push(event["reason"].as_str().unwrap().to_string());
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(201)
                        .header("content-type", "application/json")
                        .body(Body::from(body.to_vec()))
                        .unwrap(),
                )
            }
        });
        Client::new(service, "default")
    }

    fn event(reason: &str) -> (Event, ObjectReference) {
        let event = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some("a note".into()),
            action: "Test".into(),
            secondary: None,
        };
        let regarding = ObjectReference {
            kind: Some("HashTask".into()),
            namespace: Some("team-a".into()),
            name: Some("t".into()),
            ..Default::default()
        };
        (event, regarding)
    }

    fn reporter() -> Reporter {
        Reporter {
            controller: "taskyard-operator".into(),
            instance: None,
        }
    }

    #[tokio::test]
    async fn publishing_does_not_wait_for_the_api_server_and_every_event_arrives() {
        let created = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Semaphore::new(0));
        let events = Events::spawn(client(created.clone(), gate.clone()), reporter());
        for i in 0..10 {
            let (event, regarding) = event(&format!("R{i}"));
            // The API server answers nothing yet: a publish that waited would never return.
            tokio::time::timeout(Duration::from_secs(1), events.publish(event, regarding))
                .await
                .expect("publish returns at once");
        }
        gate.add_permits(10);
        for _ in 0..100 {
            if created.lock().unwrap().len() == 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut reasons = created.lock().unwrap().clone();
        reasons.sort();
        let mut want: Vec<String> = (0..10).map(|i| format!("R{i}")).collect();
        want.sort();
        assert_eq!(reasons, want);
    }

    #[tokio::test]
    async fn a_full_queue_drops_events_instead_of_blocking() {
        let created = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Semaphore::new(0));
        let events = Events::spawn(client(created.clone(), gate.clone()), reporter());
        let many = QUEUE + CONCURRENT + 20;
        tokio::time::timeout(Duration::from_secs(5), async {
            for i in 0..many {
                let (event, regarding) = event(&format!("R{i}"));
                events.publish(event, regarding).await;
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("publishing never blocks");
        assert!(events.dropped.load(Ordering::Relaxed) >= 10);
        gate.add_permits(many);
    }

    #[tokio::test]
    async fn inline_events_are_created_before_publish_returns() {
        let created = Arc::new(Mutex::new(Vec::new()));
        let events = Events::inline(client(created.clone(), Arc::new(Semaphore::new(1))), reporter());
        let (event, regarding) = event("Now");
        events.publish(event, regarding).await;
        assert_eq!(*created.lock().unwrap(), ["Now"]);
    }
}

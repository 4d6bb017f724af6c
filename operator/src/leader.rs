//! Leader election with a coordination.k8s.io Lease, so that several replicas can run and
//! exactly one reconciles (and writes the results log) at a time. A replica that cannot renew
//! its lease in time stops, rather than risk two leaders.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

/// How long a lease holds without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the leader renews.
const RENEW_EVERY: Duration = Duration::from_secs(4);
/// How often a standby replica tries to take the lease: a takeover comes at most this long
/// after the lease expires.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Whether `identity` may hold the lease at `now`: it is free, ours, or expired.
pub fn can_take(spec: Option<&LeaseSpec>, identity: &str, now: jiff::Timestamp) -> bool {
    let Some(spec) = spec else { return true };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == identity {
        return true;
    }
    let duration = spec
        .lease_duration_seconds
        .map_or(LEASE_DURATION.as_secs() as i64, i64::from);
    match &spec.renew_time {
        Some(MicroTime(renewed)) => now.duration_since(*renewed) >= jiff::SignedDuration::from_secs(duration),
        None => true,
    }
}

/// Whether this replica still holds the lease by its own clock: renewed so recently that no
/// other replica can have taken it. Checked right before a write that two leaders must never
/// make at once (the results log); a leader frozen past its lease fails the check when it
/// wakes, before it learns from the API server that the lease is gone.
#[derive(Clone, Debug)]
pub struct Fence(Option<Arc<Mutex<Option<Instant>>>>);

impl Fence {
    /// No election: the only replica always holds.
    pub fn unfenced() -> Self {
        Fence(None)
    }

    /// Elected, and not holding until the first renewal.
    pub(crate) fn elected() -> Self {
        Fence(Some(Arc::new(Mutex::new(None))))
    }

    /// Records a renewal that began at `at` (before the request, so the lease is never
    /// thought to last longer than it does).
    fn renewed(&self, at: Instant) {
        if let Some(renewed) = &self.0 {
            *renewed.lock().unwrap() = Some(at);
        }
    }

    pub fn holds(&self) -> bool {
        self.holds_at(Instant::now())
    }

    fn holds_at(&self, now: Instant) -> bool {
        let Some(renewed) = &self.0 else { return true };
        renewed
            .lock()
            .unwrap()
            .is_some_and(|at| still_leading(now.saturating_duration_since(at)))
    }

    /// How much longer it holds without another renewal (zero once it does not; the most a
    /// `Duration` holds when there is no election).
    fn left_at(&self, now: Instant) -> Duration {
        let Some(renewed) = &self.0 else { return Duration::MAX };
        let Some(at) = *renewed.lock().unwrap() else {
            return Duration::ZERO;
        };
        (LEASE_DURATION - RENEW_EVERY).saturating_sub(now.saturating_duration_since(at))
    }
}

/// A leader stops acting once its last renewal is this old: a renewal is due every
/// `RENEW_EVERY`, and another replica may take the lease at `LEASE_DURATION`.
fn still_leading(since_renewal: Duration) -> bool {
    since_renewal + RENEW_EVERY < LEASE_DURATION
}

pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    fence: Fence,
}

impl LeaderElection {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            fence: Fence::elected(),
        }
    }

    /// The fence that holds while this replica's lease does.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn spec(&self, previous: Option<&LeaseSpec>, now: jiff::Timestamp) -> LeaseSpec {
        let ours = previous.and_then(|s| s.holder_identity.as_deref()) == Some(self.identity.as_str());
        let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: if ours {
                previous.and_then(|s| s.acquire_time.clone())
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
            ..Default::default()
        }
    }

    /// Takes or renews the lease if it may; `Ok(false)` when another replica holds it.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = jiff::Timestamp::now();
        let result = match self.api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.spec(None, now)),
                };
                self.api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            Some(lease) if can_take(lease.spec.as_ref(), &self.identity, now) => {
                let spec = self.spec(lease.spec.as_ref(), now);
                // The resourceVersion read makes this a compare-and-swap: of two replicas
                // taking an expired lease, one wins.
                let updated = Lease {
                    spec: Some(spec),
                    ..lease
                };
                self.api
                    .replace(&self.name, &PostParams::default(), &updated)
                    .await
                    .map(|_| ())
            }
            Some(_) => return Ok(false),
        };
        match result {
            Ok(()) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica leads.
    pub async fn acquire(&self) {
        loop {
            let attempt = Instant::now();
            match self.try_acquire().await {
                Ok(true) => {
                    self.fence.renewed(attempt);
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("cannot take lease {}: {e}", self.name),
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// Renews the lease until it is lost; returns then, at the latest when the fence lapses,
    /// before another replica may take the lease. A renewal is given only the time the fence
    /// has left: cut off from the API server (a partition drops packets, so no error comes
    /// back and the client has no read timeout), a request would hang, and the replica would
    /// go on reconciling from stale caches, its writes queued to land when the network heals,
    /// next to the new leader's.
    pub async fn hold(&self) {
        loop {
            tokio::time::sleep(RENEW_EVERY.min(self.fence.left_at(Instant::now()))).await;
            if !self.fence.holds() {
                return;
            }
            let attempt = Instant::now();
            let left = self.fence.left_at(attempt);
            match tokio::time::timeout(RENEW_EVERY.min(left), self.try_acquire()).await {
                Ok(Ok(true)) => self.fence.renewed(attempt),
                Ok(Ok(false)) => return,
                Ok(Err(e)) => tracing::warn!("cannot renew lease {}: {e}", self.name),
                Err(_) => tracing::warn!(
                    "cannot renew lease {}: no answer from the API server within {:?}",
                    self.name,
                    RENEW_EVERY.min(left)
                ),
            }
        }
    }

    /// Gives the lease up (on shutdown), so a standby takes over at once.
    pub async fn release(&self) {
        if let Ok(Some(lease)) = self.api.get_opt(&self.name).await
            && lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(self.identity.as_str())
        {
            let spec = LeaseSpec {
                holder_identity: Some(String::new()),
                ..lease.spec.clone().unwrap_or_default()
            };
            let _ = self
                .api
                .replace(
                    &self.name,
                    &PostParams::default(),
                    &Lease {
                        spec: Some(spec),
                        ..lease
                    },
                )
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(by: &str, renewed: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(by.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed.parse().unwrap())),
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_is_taken_when_free_ours_or_expired() {
        let now: jiff::Timestamp = "2026-01-01T00:00:20Z".parse().unwrap();
        assert!(can_take(None, "a", now));
        assert!(can_take(Some(&held("", "2026-01-01T00:00:19Z")), "a", now));
        assert!(can_take(Some(&held("a", "2026-01-01T00:00:19Z")), "a", now));
        assert!(!can_take(Some(&held("b", "2026-01-01T00:00:10Z")), "a", now));
        assert!(can_take(Some(&held("b", "2026-01-01T00:00:05Z")), "a", now));
        // Around the boundary: renewed 14.8 s ago is held, 15.1 s ago is expired.
        assert!(!can_take(Some(&held("b", "2026-01-01T00:00:05.2Z")), "a", now));
        assert!(can_take(Some(&held("b", "2026-01-01T00:00:04.9Z")), "a", now));
    }

    #[test]
    fn the_fence_says_how_long_it_holds() {
        let fence = Fence::elected();
        let start = Instant::now();
        assert_eq!(fence.left_at(start), Duration::ZERO, "never renewed");
        fence.renewed(start);
        assert_eq!(fence.left_at(start), LEASE_DURATION - RENEW_EVERY);
        assert_eq!(fence.left_at(start + Duration::from_secs(10)), Duration::from_secs(1));
        assert_eq!(fence.left_at(start + Duration::from_secs(60)), Duration::ZERO);
        assert_eq!(Fence::unfenced().left_at(start), Duration::MAX);
    }

    /// An API server that takes every request and never answers, as one behind a network
    /// partition that drops packets.
    fn unanswering_client() -> kube::Client {
        let service = tower::service_fn(|_request: http::Request<kube::client::Body>| async {
            std::future::pending::<Result<http::Response<kube::client::Body>, std::convert::Infallible>>().await
        });
        kube::Client::new(service, "taskyard-system")
    }

    #[tokio::test]
    async fn a_leader_cut_off_from_the_api_server_stops_before_its_lease_may_be_taken() {
        let election = LeaderElection::new(unanswering_client(), "taskyard-system", "taskyard-operator", "a");
        // Renewed 9 s ago: 2 s left before another replica may soon take the lease.
        election.fence.renewed(Instant::now() - Duration::from_secs(9));
        let started = Instant::now();
        let held = tokio::time::timeout(Duration::from_secs(10), election.hold()).await;
        assert!(held.is_ok(), "still holding while every renewal hangs");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(4),
            "stopped after {took:?}, not when the fence lapsed"
        );
        assert!(!election.fence().holds());
    }

    #[test]
    fn the_fence_holds_only_while_the_lease_is_safely_ours() {
        let fence = Fence::elected();
        let start = Instant::now();
        assert!(!fence.holds_at(start), "never renewed");
        fence.renewed(start);
        assert!(fence.holds_at(start + Duration::from_secs(10)));
        // Past the lease minus one renewal period, another replica may soon take it.
        assert!(!fence.holds_at(start + LEASE_DURATION - RENEW_EVERY));
        assert!(
            !fence.holds_at(start + Duration::from_secs(60)),
            "woken from a long freeze"
        );
        assert!(Fence::unfenced().holds_at(start + Duration::from_secs(60)));
    }
}

//! HTTP fetching behind the SSRF guard: every resolved address of every connection and
//! every redirect hop is checked against the network policy, with size and time limits.

use std::error::Error as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use taskyard_common::netpolicy::{BlockedAddress, NetworkPolicy, ResolveError};
use tokio::time::Instant;
use url::Url;

use crate::error::RunnerError;
use crate::settings::RunnerArgs;

const MAX_REDIRECTS: usize = 5;

/// Resolves names through the network policy, so a blocked address is never connected to.
struct GuardedResolver {
    policy: NetworkPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            // reqwest puts the URL's port on the addresses it gets back.
            let addrs = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The redirect policy's refusal past `MAX_REDIRECTS`, found again in the error's sources.
#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_REDIRECTS} redirects")]
struct RedirectLimit;

/// An HTTP client that only reaches admitted addresses.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: NetworkPolicy,
    /// The whole-download deadline of one GET, headers and body.
    download_timeout: Duration,
}

/// A response whose status was 2xx, ready to stream.
pub struct Fetched {
    pub url: Url,
    pub content_length: Option<u64>,
    pub content_type: Option<String>,
    response: reqwest::Response,
    download_timeout: Duration,
}

/// The error of a download that passed its whole-download deadline.
fn deadline_passed(url: &str, limit: Duration) -> RunnerError {
    RunnerError::FetchTimeout {
        url: url.to_string(),
        message: format!(
            "the download did not finish within {} s (the whole-download deadline); raise it with the runner setting TASKYARD_DOWNLOAD_TIMEOUT_SECONDS (--download-timeout-seconds) if the server is slow but working",
            limit.as_secs()
        ),
    }
}

impl Fetcher {
    pub fn new(args: &RunnerArgs) -> Result<Self, RunnerError> {
        let policy = args.network_policy();
        let redirect_policy = policy.clone();
        let client = reqwest::Client::builder()
            .user_agent(concat!("taskyard-runner/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .redirect(redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(RedirectLimit);
                }
                match check_literal(&redirect_policy, attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            }))
            .connect_timeout(args.connect_timeout())
            .read_timeout(args.read_timeout())
            .build()
            .map_err(|e| RunnerError::InvalidSpec(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            policy,
            download_timeout: args.download_timeout(),
        })
    }

    /// GETs `url`, failing unless the final answer is a 2xx. The whole download, headers
    /// and body, must finish within the download deadline.
    pub async fn get(&self, url: &str) -> Result<Fetched, RunnerError> {
        let parsed = parse_http_url(url)?;
        check_literal(&self.policy, &parsed)?;
        let deadline = Instant::now() + self.download_timeout;
        let response = tokio::time::timeout_at(deadline, self.client.get(parsed.clone()).send())
            .await
            .map_err(|_| deadline_passed(url, self.download_timeout))?
            .map_err(|e| classify(url, e))?;
        let status = response.status();
        // A redirect the client did not follow: its Location is not an http(s) URL.
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            return Err(RunnerError::InvalidUrl {
                url: location.to_string(),
                why: format!(
                    "{} redirects there, a redirect to a scheme other than http or https, which runners do not follow",
                    response.url()
                ),
            });
        }
        if !status.is_success() {
            return Err(RunnerError::HttpStatus {
                url: response.url().to_string(),
                status: status.as_u16(),
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Fetched {
            url: response.url().clone(),
            content_length: response.content_length(),
            content_type,
            response,
            download_timeout: self.download_timeout,
        })
    }
}

impl Fetched {
    /// The body as a stream of chunks without the whole-download deadline: for HashTask's
    /// files (up to 10 GiB, streamed in constant memory), which the task's own
    /// `timeoutSeconds` bounds. The per-read timeout still applies.
    pub fn chunks_unhurried(self) -> impl Stream<Item = Result<Bytes, RunnerError>> + Send + Unpin + 'static {
        let url = self.url.to_string();
        self.response
            .bytes_stream()
            .map(move |r| r.map_err(|e| classify(&url, e)))
    }

    /// The body as a stream of chunks; the caller enforces its size limit while reading. The
    /// whole body must arrive within the download deadline from now (the headers had their
    /// own), so time spent waiting for room in a memory budget does not count.
    pub fn chunks(self) -> impl Stream<Item = Result<Bytes, RunnerError>> + Send + Unpin + 'static {
        let url = self.url.to_string();
        let limit = self.download_timeout;
        let deadline = Instant::now() + limit;
        let body = self
            .response
            .bytes_stream()
            .map(move |r| r.map_err(|e| classify(&url, e)));
        let url = self.url.to_string();
        // The read timeout bounds each read; this bounds the sum, against a server that
        // sends a byte every few seconds.
        Box::pin(futures::stream::unfold(Some(body), move |body| {
            let url = url.clone();
            async move {
                let mut body = body?;
                match tokio::time::timeout_at(deadline, body.next()).await {
                    Ok(Some(item)) => Some((item, Some(body))),
                    Ok(None) => None,
                    Err(_) => Some((Err(deadline_passed(&url, limit)), None)),
                }
            }
        }))
    }
}

/// Parses a URL a task may fetch: absolute, http or https, with a host.
pub fn parse_http_url(url: &str) -> Result<Url, RunnerError> {
    let invalid = |why: &str| RunnerError::InvalidUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let parsed = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("only http and https URLs are fetched"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    Ok(parsed)
}

/// IP-literal hosts skip DNS, so they are checked here; names are checked when resolved.
fn check_literal(policy: &NetworkPolicy, url: &Url) -> Result<(), RunnerError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RunnerError::InvalidUrl {
            url: url.to_string(),
            why: "redirect to a scheme other than http or https".into(),
        });
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    policy.check(url.host_str().unwrap_or_default(), ip)?;
    Ok(())
}

/// Turns a reqwest error into the runner error that explains it best, looking through its
/// sources for a refused address or a redirect refusal.
fn classify(url: &str, e: reqwest::Error) -> RunnerError {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(b) = s.downcast_ref::<BlockedAddress>() {
            return RunnerError::Blocked(b.clone());
        }
        if let Some(ResolveError::Blocked(b)) = s.downcast_ref::<ResolveError>() {
            return RunnerError::Blocked(b.clone());
        }
        match s.downcast_ref::<RunnerError>() {
            Some(RunnerError::Blocked(b)) => return RunnerError::Blocked(b.clone()),
            Some(RunnerError::InvalidUrl { url, why }) => {
                return RunnerError::InvalidUrl {
                    url: url.clone(),
                    why: why.clone(),
                };
            }
            _ => {}
        }
        if s.downcast_ref::<RedirectLimit>().is_some() {
            return RunnerError::TooManyRedirects {
                url: url.to_string(),
                max: MAX_REDIRECTS,
            };
        }
        source = s.source();
    }
    let mut message = error_chain(&e);
    if e.is_timeout() {
        message.push_str(
            "; if the server is slow but working, raise the runner setting TASKYARD_READ_TIMEOUT_SECONDS (--read-timeout-seconds) or TASKYARD_CONNECT_TIMEOUT_SECONDS (--connect-timeout-seconds)",
        );
        RunnerError::FetchTimeout {
            url: url.to_string(),
            message,
        }
    } else {
        RunnerError::Fetch {
            url: url.to_string(),
            message,
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        assert!(parse_http_url("https://example.com/a").is_ok());
        for bad in ["ftp://example.com/a", "file:///etc/passwd", "/relative", "http://"] {
            assert!(
                matches!(parse_http_url(bad), Err(RunnerError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn literal_internal_addresses_are_refused_before_connecting() {
        let fetcher = Fetcher::new(&RunnerArgs::default()).unwrap();
        for url in [
            "http://127.0.0.1:9/",
            "http://[::1]:9/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
        ] {
            let err = fetcher.get(url).await.err().unwrap();
            assert_eq!(err.reason().as_str(), "BlockedAddress", "{url}: {err}");
        }
        let err = fetcher.get("http://localhost:9/").await.err().unwrap();
        assert_eq!(err.reason().as_str(), "BlockedAddress", "{err}");
    }
}

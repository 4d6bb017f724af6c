//! The runner's errors. Each has a stable reason for the result and the task condition, and
//! a message that says what is wrong and how to fix it.

use taskyard_api::Reason;
use taskyard_common::netpolicy::BlockedAddress;
use taskyard_common::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("invalid URL {url:?}: {why}")]
    InvalidUrl { url: String, why: String },
    #[error("{0}")]
    Blocked(#[from] BlockedAddress),
    #[error("GET {url} answered HTTP {status}; check that the URL is right and publicly readable")]
    HttpStatus { url: String, status: u16 },
    #[error("{what} is larger than the {limit}-byte limit; raise it with {setting} if this input is expected")]
    TooLarge {
        what: String,
        limit: u64,
        setting: &'static str,
    },
    #[error("GET {url} failed: {message}; check that the server is up and answers over HTTP(S)")]
    Fetch { url: String, message: String },
    #[error("GET {url} timed out: {message}")]
    FetchTimeout { url: String, message: String },
    #[error("source object {key:?} does not exist in the store; upload it first or fix spec.source.object")]
    ObjectNotFound { key: String },
    #[error("{0}")]
    Store(StoreError),
    #[error("the task did not finish within timeoutSeconds ({0} s); raise spec.timeoutSeconds if it needs longer")]
    TimedOut(i64),
    #[error("{0}")]
    InvalidSpec(String),
    /// A limit other than a byte count (pixels, elements, memory).
    #[error("{what}, more than the {limit} limit; raise it with {setting} if this input is expected")]
    Limit {
        what: String,
        limit: String,
        setting: &'static str,
    },
    #[error("GET {url} was redirected more than {max} times; fix the URL to point at the final location")]
    TooManyRedirects { url: String, max: usize },
    #[error(
        "{what} nests HTML elements more than {limit} deep, past the runner's fixed nesting cap (browsers cap nesting too); flatten the page's markup"
    )]
    TooDeep { what: String, limit: u32 },
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("invalid image: {0}; the file is damaged or incomplete: fix or replace it at its source")]
    InvalidImage(String),
    #[error("all {count} images failed; the first: {first}")]
    AllImagesFailed {
        count: u32,
        first: String,
        /// Whether every image failed in a way a retry cannot change.
        permanent: bool,
    },
}

impl From<StoreError> for RunnerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { key } => RunnerError::ObjectNotFound { key },
            other => RunnerError::Store(other),
        }
    }
}

impl RunnerError {
    /// The stable reason used in results, conditions and metrics.
    pub fn reason(&self) -> Reason {
        match self {
            RunnerError::InvalidUrl { .. } | RunnerError::InvalidSpec(_) => Reason::InvalidSpec,
            RunnerError::Blocked(_) => Reason::BlockedAddress,
            RunnerError::HttpStatus { .. } | RunnerError::Fetch { .. } => Reason::FetchFailed,
            RunnerError::FetchTimeout { .. } => Reason::FetchTimeout,
            RunnerError::TooLarge { .. } => Reason::LimitExceeded,
            RunnerError::ObjectNotFound { .. } => Reason::ObjectNotFound,
            RunnerError::Store(_) => Reason::StoreError,
            RunnerError::TimedOut(_) => Reason::TimedOut,
            RunnerError::AllImagesFailed { .. } => Reason::AllImagesFailed,
            RunnerError::Limit { .. } | RunnerError::TooDeep { .. } => Reason::LimitExceeded,
            RunnerError::TooManyRedirects { .. } => Reason::TooManyRedirects,
            RunnerError::NotAnImage(_) => Reason::NotAnImage,
            RunnerError::InvalidImage(_) => Reason::InvalidImage,
        }
    }

    /// Whether running the task again can only fail the same way (a 4xx, a blocked address,
    /// an invalid or too-large input), so the Job must not retry it. Server errors, network
    /// failures, timeouts and store errors are transient.
    pub fn is_permanent(&self) -> bool {
        match self {
            RunnerError::HttpStatus { status, .. } => (400..500).contains(status) && !matches!(status, 408 | 425 | 429),
            RunnerError::Fetch { .. }
            | RunnerError::FetchTimeout { .. }
            | RunnerError::Store(_)
            | RunnerError::TimedOut(_) => false,
            RunnerError::AllImagesFailed { permanent, .. } => *permanent,
            RunnerError::InvalidUrl { .. }
            | RunnerError::Blocked(_)
            | RunnerError::TooLarge { .. }
            | RunnerError::ObjectNotFound { .. }
            | RunnerError::InvalidSpec(_)
            | RunnerError::Limit { .. }
            | RunnerError::TooDeep { .. }
            | RunnerError::TooManyRedirects { .. }
            | RunnerError::NotAnImage(_)
            | RunnerError::InvalidImage(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_a_retry_can_change_are_transient() {
        let status = |status| RunnerError::HttpStatus {
            url: "u".into(),
            status,
        };
        assert!(status(404).is_permanent());
        assert!(status(403).is_permanent());
        assert!(!status(429).is_permanent(), "rate limits pass");
        assert!(!status(408).is_permanent());
        assert!(!status(500).is_permanent());
        assert!(!status(503).is_permanent());
        let timeout = RunnerError::FetchTimeout {
            url: "u".into(),
            message: "m".into(),
        };
        assert!(!timeout.is_permanent());
        assert!(RunnerError::NotAnImage("x".into()).is_permanent());
        assert!(RunnerError::ObjectNotFound { key: "k".into() }.is_permanent());
        let limit = RunnerError::TooLarge {
            what: "w".into(),
            limit: 1,
            setting: "S",
        };
        assert!(limit.is_permanent());
        let all = |permanent| RunnerError::AllImagesFailed {
            count: 2,
            first: "f".into(),
            permanent,
        };
        assert!(all(true).is_permanent() && !all(false).is_permanent());
    }
}

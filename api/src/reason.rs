//! The closed set of condition reasons: what a task's `Succeeded` condition, its runner result,
//! the operator's metrics and the README's troubleshooting all name.

use serde::{Deserialize, Serialize};

macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// Why a task is where it is. Serialised as its name (`FetchFailed`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Reason {
            $($(#[doc = $doc])* $name,)*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)*
                }
            }
        }

        impl std::str::FromStr for Reason {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $(stringify!($name) => Ok(Reason::$name),)*
                    other => Err(format!("{other:?} is not a Taskyard condition reason")),
                }
            }
        }
    };
}

reasons! {
    /// Waiting for a runner slot.
    Queued,
    /// The runner Job runs.
    Running,
    /// The task succeeded.
    Completed,
    /// The spec cannot run: the message says what to fix. No Job was created.
    InvalidSpec,
    /// A URL (or a redirect) points into a network runners may not fetch from.
    BlockedAddress,
    /// The server refused or the connection failed.
    FetchFailed,
    /// The server stopped sending, or a download took too long.
    FetchTimeout,
    /// More redirects than allowed, or a loop.
    TooManyRedirects,
    /// The bytes are not an image.
    NotAnImage,
    /// An image that cannot be decoded (truncated, corrupt).
    InvalidImage,
    /// A safety limit; the message names the setting that raises it.
    LimitExceeded,
    /// The store object does not exist.
    ObjectNotFound,
    /// The task ran longer than spec.timeoutSeconds.
    TimedOut,
    /// Every image of the page failed.
    AllImagesFailed,
    /// The store could not be read or written.
    StoreError,
    /// The runner failed without a result; the message is its last word.
    Failed,
    /// The runner Job could not be created, after retries.
    JobCreationFailed,
    /// The runner's result.json cannot be a runner's (too large, not a result).
    InvalidResult,
    /// The API server refused the task's status.
    StatusRejected,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_back_from_their_names() {
        for reason in Reason::ALL {
            assert_eq!(reason.as_str().parse::<Reason>(), Ok(*reason));
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        assert!("Oops".parse::<Reason>().unwrap_err().contains("Oops"));
    }
}

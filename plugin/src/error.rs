//! Every way the plugin fails, each with a message that says what to do.

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read your kubeconfig: {0}")]
    Kubeconfig(String),
    #[error(
        "your kubeconfig user has no bearer token (a client certificate cannot be passed on to the gateway): \
         use a user with a token, or pass --token / TASKYARD_TOKEN"
    )]
    NoToken,
    #[error("cannot read {path}: {error}")]
    File { path: String, error: String },
    #[error(
        "cannot reach the Taskyard gateway at {url}: {error}. Is the chart installed with gateway.enabled=true? \
         Set --gateway / TASKYARD_GATEWAY to its URL (its Ingress, or http://127.0.0.1:9000 after \
         `kubectl port-forward -n taskyard-system svc/taskyard-gateway 9000`)"
    )]
    NoGateway { url: String, error: String },
    #[error("the gateway refused your token (401): {0}")]
    Unauthorized(String),
    #[error("not allowed (403): {0}")]
    Forbidden(String),
    #[error("the file is too large for the gateway (413): {0}")]
    TooLarge(String),
    #[error("the gateway answered {status}: {message}")]
    Gateway { status: u16, message: String },
    #[error("{0}")]
    Kube(String),
    #[error("{0}")]
    TaskFailed(String),
    #[error("{0}")]
    NotFinished(String),
    #[error("timed out after {0:?} waiting for {1}; `kubectl taskyard wait {1}` to keep waiting")]
    Timeout(std::time::Duration, String),
}

impl PluginError {
    /// 1 for a failed task or a refused request, 2 for usage errors (as kubectl).
    pub fn exit_code(&self) -> u8 {
        match self {
            PluginError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// A Kubernetes API error in words, naming what was tried.
pub fn kube(what: &str, e: kube::Error) -> PluginError {
    match e {
        kube::Error::Api(s) if s.code == 403 => PluginError::Forbidden(format!("{what}: {}", s.message)),
        kube::Error::Api(s) if s.code == 401 => PluginError::Unauthorized(format!(
            "the API server refused your credentials when trying to {what}: {}",
            s.message
        )),
        e => PluginError::Kube(format!("cannot {what}: {e}")),
    }
}

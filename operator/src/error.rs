//! The operator's errors. Each has a stable reason, used in logs and metrics.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("object store: {0}")]
    Store(String),
    #[error("{0}")]
    ResultsLog(String),
    #[error("store credentials: {0}")]
    Credentials(String),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeError",
            Error::Store(_) => "StoreError",
            Error::ResultsLog(_) => "ResultsLogError",
            Error::Credentials(_) => "CredentialsError",
        }
    }
}

//! Who the user is: their kubeconfig (context, namespace, API server) and the bearer token
//! the gateway checks. Tasks are created with the kubeconfig's own credentials, whatever
//! they are; the gateway needs a token (a client certificate cannot be forwarded).

use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use secrecy::ExposeSecret;

use crate::cli::Global;
use crate::error::PluginError;

pub struct User {
    pub client: kube::Client,
    pub config: kube::Config,
    pub namespace: String,
    /// From --token / TASKYARD_TOKEN, else the kubeconfig user's (token, token file or
    /// exec plugin); None when the user has only a client certificate.
    pub token: Option<String>,
}

pub async fn load(global: &Global) -> Result<User, PluginError> {
    let config = config(global).await?;
    let namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let token = match &global.token {
        Some(t) => Some(t.clone()),
        None => token_of(&config.auth_info).await?,
    };
    let client = kube::Client::try_from(config.clone())
        .map_err(|e| PluginError::Kubeconfig(format!("cannot make a Kubernetes client: {e}")))?;
    Ok(User {
        client,
        config,
        namespace,
        token,
    })
}

async fn config(global: &Global) -> Result<kube::Config, PluginError> {
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..Default::default()
    };
    let unreadable = |e: kube::config::KubeconfigError| PluginError::Kubeconfig(e.to_string());
    match (&global.kubeconfig, &global.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(unreadable)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(unreadable)
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options).await.map_err(unreadable),
        // Like kubectl: $KUBECONFIG, ~/.kube/config, or in a Pod its ServiceAccount.
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| PluginError::Kubeconfig(e.to_string())),
    }
}

/// The kubeconfig user's bearer token: written in, in a file, or from its exec plugin.
async fn token_of(auth: &AuthInfo) -> Result<Option<String>, PluginError> {
    if let Some(token) = &auth.token {
        return Ok(Some(token.expose_secret().to_string()));
    }
    if let Some(file) = &auth.token_file {
        let token = tokio::fs::read_to_string(file)
            .await
            .map_err(|e| PluginError::Kubeconfig(format!("cannot read the token file {file}: {e}")))?;
        return Ok(Some(token.trim().to_string()));
    }
    let Some(exec) = &auth.exec else {
        return Ok(None);
    };
    let command = exec
        .command
        .as_deref()
        .ok_or_else(|| PluginError::Kubeconfig("the kubeconfig user's exec plugin names no command".into()))?;
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(exec.args.iter().flatten());
    for pair in exec.env.iter().flatten() {
        if let (Some(name), Some(value)) = (pair.get("name"), pair.get("value")) {
            cmd.env(name, value);
        }
    }
    let out = cmd
        .output()
        .await
        .map_err(|e| PluginError::Kubeconfig(format!("cannot run the kubeconfig's exec plugin {command}: {e}")))?;
    if !out.status.success() {
        return Err(PluginError::Kubeconfig(format!(
            "the kubeconfig's exec plugin {command} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let credential: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    Ok(credential["status"]["token"].as_str().map(str::to_string))
}

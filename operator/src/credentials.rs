//! Runner Pods can only read Secrets in their own namespace, so the operator keeps a copy of
//! the store credentials Secret (`taskyard-store-credentials`) in each namespace that runs tasks.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::FIELD_MANAGER;
use crate::error::Error;
use crate::job::{LABEL_MANAGED_BY, MANAGED_BY, RUNNER_CREDENTIALS_SECRET, credentials_secret_for};
use crate::settings::Settings;

const KEYS: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

/// Makes sure runner Pods in `namespace` can read the store credentials.
pub async fn ensure(client: &kube::Client, settings: &Settings, namespace: &str) -> Result<(), Error> {
    if credentials_secret_for(settings, namespace).as_deref() != Some(RUNNER_CREDENTIALS_SECRET) {
        return Ok(());
    }
    let source_name = &settings.store_credentials_secret;
    let source = Api::<Secret>::namespaced(client.clone(), &settings.namespace)
        .get_opt(source_name)
        .await?
        .ok_or_else(|| {
            Error::Credentials(format!(
                "Secret {}/{source_name} does not exist; create it with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (Helm: store.credentialsSecret)",
                settings.namespace
            ))
        })?;
    let data = source.data.unwrap_or_default();
    let mut copied = BTreeMap::new();
    for key in KEYS {
        let value = data.get(key).ok_or_else(|| {
            Error::Credentials(format!("Secret {}/{source_name} has no key {key}", settings.namespace))
        })?;
        copied.insert(key, value.clone());
    }
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": RUNNER_CREDENTIALS_SECRET,
            "namespace": namespace,
            "labels": { LABEL_MANAGED_BY: MANAGED_BY },
        },
        "type": "Opaque",
        "data": copied,
    });
    Api::<Secret>::namespaced(client.clone(), namespace)
        .patch(
            RUNNER_CREDENTIALS_SECRET,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await?;
    Ok(())
}

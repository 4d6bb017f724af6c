//! The upload: a local file streamed to the gateway with the user's token, into the upload
//! area of the user's namespace. The gateway checks the token and the user's right to create
//! the task kind there before it stores a byte.

use std::path::Path;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::cli::Global;
use crate::error::PluginError;
use crate::user::User;

/// The header the gateway reads the token from when `Authorization` cannot carry it: the
/// API server's service proxy authenticates with `Authorization` and does not pass it on.
const TOKEN_HEADER: &str = "X-Taskyard-Token";

/// What the gateway stored.
#[derive(Debug, Deserialize)]
pub struct Uploaded {
    /// The task's `spec.source.object`.
    pub object: String,
    /// The full store key.
    pub key: String,
    pub size: u64,
}

/// Where the gateway is, and whether it is reached through the API server (whose CA and
/// TLS settings then apply).
#[derive(Debug, PartialEq)]
pub struct Endpoint {
    pub base: String,
    pub through_api_server: bool,
}

/// --gateway as given, else the gateway Service through the API server's service proxy: it
/// works wherever kubectl does, over the API server's TLS, for users granted
/// `services/proxy` on the gateway Service.
pub fn endpoint(global: &Global, api_server: &str) -> Result<Endpoint, PluginError> {
    if let Some(url) = global.gateway.as_deref().filter(|u| !u.is_empty()) {
        return Ok(Endpoint {
            base: url.trim_end_matches('/').to_string(),
            through_api_server: false,
        });
    }
    let Some((namespace, service)) = global.gateway_service.split_once('/') else {
        return Err(PluginError::Usage(format!(
            "--gateway-service {:?}: write NAMESPACE/NAME, e.g. taskyard-system/taskyard-gateway",
            global.gateway_service
        )));
    };
    Ok(Endpoint {
        base: format!(
            "{}/api/v1/namespaces/{namespace}/services/{service}:http/proxy",
            api_server.trim_end_matches('/')
        ),
        through_api_server: true,
    })
}

/// The upload URL of a file for a task kind's resource (`hashtasks`) in `namespace`.
pub fn upload_url(base: &str, namespace: &str, resource: &str, file_name: &str) -> Result<url::Url, PluginError> {
    let mut url = url::Url::parse(&format!("{base}/v1/namespaces/{namespace}/uploads"))
        .map_err(|e| PluginError::Usage(format!("the gateway URL {base:?} is not a URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("for", resource)
        .append_pair("filename", file_name);
    Ok(url)
}

pub async fn upload(user: &User, global: &Global, path: &Path, resource: &str) -> Result<Uploaded, PluginError> {
    let token = user.token.as_deref().ok_or(PluginError::NoToken)?;
    let endpoint = endpoint(global, &user.config.cluster_url.to_string())?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("upload");
    let url = upload_url(&endpoint.base, &user.namespace, resource, file_name)?;
    let unreadable = |e: std::io::Error| PluginError::File {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
    let length = file.metadata().await.map_err(unreadable)?.len();
    // Streamed: a file of any size never sits in memory.
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let request = client(user, endpoint.through_api_server)?
        .post(url)
        .header(reqwest::header::CONTENT_LENGTH, length)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body);
    match send(request, token, &endpoint, StatusCode::CREATED).await? {
        Answer::Expected(response) => {
            let text = response.text().await.unwrap_or_default();
            serde_json::from_str(&text).map_err(|e| PluginError::Gateway {
                status: StatusCode::CREATED.as_u16(),
                message: format!("an answer the plugin cannot read ({e}): {text:.200}"),
            })
        }
        Answer::Refused { status, message } => Err(refusal(status, &message, &endpoint)),
    }
}

/// The URL of one of a task's stored outputs: `.../v1/namespaces/<ns>/<resource>/<name>/outputs/<key>`,
/// each segment percent-encoded.
pub fn output_url(base: &str, namespace: &str, resource: &str, name: &str, key: &str) -> Result<url::Url, PluginError> {
    let mut url = url::Url::parse(&format!("{base}/"))
        .map_err(|e| PluginError::Usage(format!("the gateway URL {base:?} is not a URL: {e}")))?;
    url.path_segments_mut()
        .map_err(|_| PluginError::Usage(format!("the gateway URL {base:?} cannot have a path")))?
        .pop_if_empty()
        .extend(["v1", "namespaces", namespace, resource, name, "outputs"])
        .extend(key.split('/'));
    Ok(url)
}

/// One of a task's stored outputs, as an answer whose body is still to be read (streamed by
/// the caller); Ok(None) when the store has no such object.
pub async fn output(
    user: &User,
    global: &Global,
    resource: &str,
    name: &str,
    key: &str,
) -> Result<Option<reqwest::Response>, PluginError> {
    let token = user.token.as_deref().ok_or(PluginError::NoToken)?;
    let endpoint = endpoint(global, &user.config.cluster_url.to_string())?;
    let url = output_url(&endpoint.base, &user.namespace, resource, name, key)?;
    let request = client(user, endpoint.through_api_server)?.get(url);
    match send(request, token, &endpoint, StatusCode::OK).await? {
        Answer::Expected(response) => Ok(Some(response)),
        // The gateway's own 404 (the API server's proxy has its own, for a missing gateway).
        Answer::Refused { status, message }
            if status == StatusCode::NOT_FOUND && message.contains("not in the store") =>
        {
            Ok(None)
        }
        Answer::Refused { status, message } => Err(refusal(status, &message, &endpoint)),
    }
}

/// What the gateway answered a request.
enum Answer {
    /// The status the caller expects, its body still to be read.
    Expected(reqwest::Response),
    /// Any other status, with the gateway's message.
    Refused { status: StatusCode, message: String },
}

/// Sends `request` to the gateway with the user's `token`: the answer, or `NoGateway` when
/// the gateway cannot be reached.
async fn send(
    request: reqwest::RequestBuilder,
    token: &str,
    endpoint: &Endpoint,
    expected: StatusCode,
) -> Result<Answer, PluginError> {
    let response = request
        .bearer_auth(token)
        .header(TOKEN_HEADER, token)
        .send()
        .await
        .map_err(|e| PluginError::NoGateway {
            url: endpoint.base.clone(),
            error: error_chain(&e),
        })?;
    let status = response.status();
    if status == expected {
        return Ok(Answer::Expected(response));
    }
    let text = response.text().await.unwrap_or_default();
    Ok(Answer::Refused {
        status,
        message: message_of(&text),
    })
}

/// The error for a refused request, by status.
pub fn refusal(status: StatusCode, message: &str, endpoint: &Endpoint) -> PluginError {
    let message = message.to_string();
    match status {
        StatusCode::UNAUTHORIZED => PluginError::Unauthorized(message),
        StatusCode::FORBIDDEN if endpoint.through_api_server && !message.contains("taskyard.dev") => {
            PluginError::Forbidden(format!(
                "{message}; reaching the gateway through the API server needs `create` (uploads) and `get` (fetch) on services/proxy of the gateway Service (or set --gateway to its URL)"
            ))
        }
        StatusCode::FORBIDDEN => PluginError::Forbidden(message),
        StatusCode::PAYLOAD_TOO_LARGE => PluginError::TooLarge(message),
        // The API server's proxy: no such Service, or no ready gateway behind it.
        StatusCode::NOT_FOUND | StatusCode::SERVICE_UNAVAILABLE if endpoint.through_api_server => {
            PluginError::NoGateway {
                url: endpoint.base.clone(),
                error: format!("{} {message}", status.as_u16()),
            }
        }
        status => PluginError::Gateway {
            status: status.as_u16(),
            message,
        },
    }
}

/// The `message` (or FastAPI-style `detail`) of a JSON error, else the text itself.
pub fn message_of(text: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    json["message"]
        .as_str()
        .or(json["detail"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| text.trim().chars().take(300).collect())
}

/// An HTTP client that trusts the API server's CA when the gateway is reached through it.
fn client(user: &User, through_api_server: bool) -> Result<reqwest::Client, PluginError> {
    let mut builder = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10));
    if through_api_server {
        for der in user.config.root_cert.iter().flatten() {
            let cert = reqwest::Certificate::from_der(der)
                .map_err(|e| PluginError::Kubeconfig(format!("the cluster's CA certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        builder = builder.danger_accept_invalid_certs(user.config.accept_invalid_certs);
    }
    builder
        .build()
        .map_err(|e| PluginError::Kube(format!("cannot make an HTTP client: {e}")))
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(gateway: Option<&str>) -> Global {
        Global {
            namespace: None,
            context: None,
            kubeconfig: None,
            gateway: gateway.map(str::to_string),
            gateway_service: "taskyard-system/taskyard-gateway".into(),
            token: None,
        }
    }

    #[test]
    fn the_default_gateway_is_its_service_through_the_api_server() {
        let e = endpoint(&global(None), "https://10.0.0.1:6443/").unwrap();
        assert_eq!(
            e.base,
            "https://10.0.0.1:6443/api/v1/namespaces/taskyard-system/services/taskyard-gateway:http/proxy"
        );
        assert!(e.through_api_server);
        let e = endpoint(&global(Some("http://127.0.0.1:9000/")), "https://x").unwrap();
        assert_eq!(e.base, "http://127.0.0.1:9000");
        assert!(!e.through_api_server);
    }

    #[test]
    fn the_upload_url_names_namespace_kind_and_file() {
        let u = upload_url("http://gw:9000", "team-a", "hashtasks", "my report.pdf").unwrap();
        assert_eq!(
            u.as_str(),
            "http://gw:9000/v1/namespaces/team-a/uploads?for=hashtasks&filename=my+report.pdf"
        );
    }

    #[test]
    fn the_output_url_names_the_task_and_the_key() {
        let u = output_url(
            "http://gw:9000",
            "team-a",
            "hashtasks",
            "r",
            "tasks/team-a/hashtask/r/u-1/1/result.json",
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "http://gw:9000/v1/namespaces/team-a/hashtasks/r/outputs/tasks/team-a/hashtask/r/u-1/1/result.json"
        );
        let proxied = "https://api:6443/api/v1/namespaces/taskyard-system/services/taskyard-gateway:http/proxy";
        let u = output_url(proxied, "a", "imagetasks", "g", "images/ab/a b?.png").unwrap();
        assert_eq!(
            u.as_str(),
            format!("{proxied}/v1/namespaces/a/imagetasks/g/outputs/images/ab/a%20b%3F.png")
        );
    }

    #[test]
    fn refusals_say_what_went_wrong() {
        let direct = endpoint(&global(Some("http://gw")), "").unwrap();
        let e = refusal(
            StatusCode::FORBIDDEN,
            "u may not create hashtasks.taskyard.dev in namespace b",
            &direct,
        );
        assert!(
            e.to_string().contains("403") && e.to_string().contains("namespace b"),
            "{e}"
        );
        assert!(matches!(
            refusal(StatusCode::UNAUTHORIZED, "bad", &direct),
            PluginError::Unauthorized(_)
        ));
        assert!(matches!(
            refusal(StatusCode::PAYLOAD_TOO_LARGE, "big", &direct),
            PluginError::TooLarge(_)
        ));
        let proxied = endpoint(&global(None), "https://api").unwrap();
        let e = refusal(
            StatusCode::FORBIDDEN,
            "services \"taskyard-gateway\" is forbidden",
            &proxied,
        );
        assert!(e.to_string().contains("services/proxy"), "{e}");
        assert!(matches!(
            refusal(StatusCode::NOT_FOUND, "services not found", &proxied),
            PluginError::NoGateway { .. }
        ));
    }

    #[test]
    fn messages_from_json_or_text() {
        assert_eq!(message_of(r#"{"message":"m"}"#), "m");
        assert_eq!(message_of(r#"{"detail":"d"}"#), "d");
        assert_eq!(message_of(" plain \n"), "plain");
    }
}

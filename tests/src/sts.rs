//! A loopback stand-in for AWS STS that answers `AssumeRoleWithWebIdentity`, as EKS's pods
//! call it with their projected ServiceAccount token. It hands out the keys it was given (the
//! test store's), and records each call's role and token so a test can check which token a
//! process sent. Point the SDK at it with `AWS_ENDPOINT_URL_STS`.
//!
//! It speaks just enough HTTP/1.1 for the SDK: one request per connection, a body with a
//! Content-Length, form-encoded as the STS query protocol sends it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The claims of a JWT (a projected ServiceAccount token), unverified: enough for a test to
/// see whose token it is and for which audience. `None` when `token` is not a JWT.
pub fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&base64url_decode(payload)?).ok()
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// Leaves a child process only the credential sources a test then gives it: no AWS variable
/// of the test's own environment (not even a region: a Pod has none), no profile files (under
/// `home`), no instance metadata.
pub fn clear_aws_environment(command: &mut tokio::process::Command, home: &Path) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

/// Where the default chain is to find the keys, as a test sets it for a child process.
pub enum ChainSource<'a> {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment { id: &'a str, secret: &'a str },
    /// `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE`, exchanged at the STS at `sts`.
    WebIdentity {
        role_arn: &'a str,
        token_file: &'a Path,
        sts: &'a str,
    },
}

impl ChainSource<'_> {
    pub fn apply(&self, command: &mut tokio::process::Command) {
        match self {
            ChainSource::Environment { id, secret } => {
                command
                    .env("AWS_ACCESS_KEY_ID", id)
                    .env("AWS_SECRET_ACCESS_KEY", secret);
            }
            ChainSource::WebIdentity {
                role_arn,
                token_file,
                sts,
            } => {
                command
                    .env("AWS_ROLE_ARN", role_arn)
                    .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
                    .env("AWS_ENDPOINT_URL_STS", sts);
            }
        }
    }
}

/// One `AssumeRoleWithWebIdentity` call as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebIdentityCall {
    pub role_arn: String,
    pub token: String,
    pub session_name: String,
}

/// The keys the server answers with.
#[derive(Clone, Debug)]
pub struct IssuedKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

pub struct StsServer {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<WebIdentityCall>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StsServer {
    /// Serves on `ip`, on a free port, until dropped.
    pub async fn start(ip: IpAddr, keys: IssuedKeys) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind the STS stand-in");
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let keys = keys.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &keys, &recorded).await;
                });
            }
        });
        Self { addr, calls, task }
    }

    /// The value for `AWS_ENDPOINT_URL_STS`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every `AssumeRoleWithWebIdentity` call so far, in order.
    pub fn calls(&self) -> Vec<WebIdentityCall> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for StsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: TcpStream, keys: &IssuedKeys, calls: &Mutex<Vec<WebIdentityCall>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    // STS bodies are a few hundred bytes plus the token; refuse anything absurd.
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body).await?;
    let form = parse_form(&String::from_utf8_lossy(&body));
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let (status, answer) = if field("Action") == "AssumeRoleWithWebIdentity" {
        let call = WebIdentityCall {
            role_arn: field("RoleArn"),
            token: field("WebIdentityToken"),
            session_name: field("RoleSessionName"),
        };
        let answer = assumed_role(&call, keys);
        calls.lock().unwrap().push(call);
        ("200 OK", answer)
    } else {
        ("400 Bad Request", error_answer(&field("Action")))
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    );
    let mut stream = reader.into_inner();
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

fn assumed_role(call: &WebIdentityCall, keys: &IssuedKeys) -> String {
    // An hour from now, as STS's default session lasts.
    let expiration = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600);
    format!(
        r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>{id}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{session}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>{role}/{name}</Arn>
      <AssumedRoleId>AROATEST:{name}</AssumedRoleId>
    </AssumedRoleUser>
    <SubjectFromWebIdentityToken>system:serviceaccount:test:runner</SubjectFromWebIdentityToken>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>taskyard-test</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#,
        id = keys.access_key_id,
        secret = keys.secret_access_key,
        session = keys.session_token,
        expiration = expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        role = xml_escape(&call.role_arn),
        name = xml_escape(&call.session_name),
    )
}

fn error_answer(action: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>the test STS answers only AssumeRoleWithWebIdentity, not {}</Message></Error><RequestId>taskyard-test</RequestId></ErrorResponse>"#,
        xml_escape(action)
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `application/x-www-form-urlencoded` into its fields.
fn parse_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_form_as_the_sdk_encodes_it() {
        let form = parse_form(
            "Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&WebIdentityToken=a.b-c_d%2B%3D&X=%ZZ",
        );
        assert_eq!(form["Action"], "AssumeRoleWithWebIdentity");
        assert_eq!(form["RoleArn"], "arn:aws:iam::1:role/r");
        assert_eq!(form["WebIdentityToken"], "a.b-c_d+=");
        assert_eq!(form["X"], "%ZZ");
    }

    #[test]
    fn reads_the_claims_of_a_jwt() {
        // {"aud":["sts.amazonaws.com"],"sub":"system:serviceaccount:ns:sa"}, unpadded.
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsic3RzLmFtYXpvbmF3cy5jb20iXSwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50Om5zOnNhIn0.c2ln";
        let claims = jwt_claims(token).unwrap();
        assert_eq!(claims["aud"][0], "sts.amazonaws.com");
        assert_eq!(claims["sub"], "system:serviceaccount:ns:sa");
        assert_eq!(jwt_claims("not a token"), None);
    }
}

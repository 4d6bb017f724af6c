//! End to end on the local cluster: `kubectl taskyard` run on the host by a user whose only
//! rights are a Role allowing HashTasks, ImageTasks and TextTasks in namespace A (a ServiceAccount token
//! in a kubeconfig of its own). The chart-installed gateway checks the token (TokenReview) and
//! the right to create the task kind in the target namespace (SubjectAccessReview) before it
//! stores a byte; the plugin then creates the task with the user's own credentials. `fetch`
//! reads the task as the user and its outputs through the gateway, which checks the right to
//! get that task and serves only that task's keys.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;
use taskyard_tests::cluster::ClusterEnv;
use taskyard_tests::e2e::{OPERATOR_NAMESPACE, Setup, file, setup_with};
use taskyard_tests::files::coreutils_digest;
use taskyard_tests::kubectl::Kubectl;
use taskyard_tests::plugin::{self, Outcome};

const GATEWAY: &str = "taskyard-gateway";

fn gw() -> &'static Setup {
    let env = ClusterEnv::load();
    setup_with(json!({"gateway": {
        "enabled": true,
        "image": env.get("TASKYARD_GATEWAY_IMAGE"),
        "replicas": 1,
    }}))
}

/// The user: namespaces A (allowed) and B (not), and a kubeconfig whose context is A.
struct Tenant {
    a: String,
    b: String,
    kubeconfig: PathBuf,
    /// The same cluster with a token the cluster never issued.
    bad_kubeconfig: PathBuf,
    /// The user's token, for asking the gateway directly.
    token: String,
}

fn tenant() -> &'static Tenant {
    static TENANT: OnceLock<Tenant> = OnceLock::new();
    TENANT.get_or_init(|| {
        let s = gw();
        let pid = std::process::id();
        let (a, b) = (format!("e2e-plugin-a-{pid}"), format!("e2e-plugin-b-{pid}"));
        s.kubectl.namespace(&a);
        s.kubectl.namespace(&b);
        s.kubectl.apply(&rbac(&a));
        let token = token(&s.kubectl, &a);
        let (server, ca) = cluster_of(&s.env);
        let kubeconfig = s.files.join("user.kubeconfig");
        plugin::token_kubeconfig(&kubeconfig, &server, &ca, &token, &a);
        let bad_kubeconfig = s.files.join("bad.kubeconfig");
        plugin::token_kubeconfig(&bad_kubeconfig, &server, &ca, "not-a-token-of-this-cluster", &a);
        Tenant {
            a,
            b,
            kubeconfig,
            bad_kubeconfig,
            token,
        }
    })
}

/// The ServiceAccount `uploader` in `ns`: HashTasks, ImageTasks and TextTasks there, and the gateway Service through
/// the API server's proxy (what the plugin uses when no --gateway is given).
fn rbac(ns: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: uploader, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: hashtask-user, namespace: {ns}}}
rules:
- apiGroups: [taskyard.dev]
  resources: [hashtasks, imagetasks, texttasks]
  verbs: [create, get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: uploader, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: hashtask-user}}
subjects: [{{kind: ServiceAccount, name: uploader, namespace: {ns}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: gateway-proxy-{ns}, namespace: {OPERATOR_NAMESPACE}}}
rules:
- apiGroups: [""]
  resources: [services/proxy]
  resourceNames: [{GATEWAY}, "{GATEWAY}:http"]
  verbs: [create, get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: gateway-proxy-{ns}, namespace: {OPERATOR_NAMESPACE}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: gateway-proxy-{ns}}}
subjects: [{{kind: ServiceAccount, name: uploader, namespace: {ns}}}]
"#
    )
}

/// A token of `uploader`: a TokenRequest, else (older kubectl) its token Secret.
fn token(kubectl: &Kubectl, ns: &str) -> String {
    let (ok, out, _) = kubectl.try_run(&["create", "token", "uploader", "-n", ns, "--duration=3600s"]);
    if ok && !out.trim().is_empty() {
        return out.trim().to_string();
    }
    kubectl.eventually("uploader's token Secret", std::time::Duration::from_secs(30), || {
        let sa = kubectl.get_json(&["serviceaccount", "uploader", "-n", ns]);
        let secret = sa["secrets"][0]["name"].as_str()?.to_string();
        let s = kubectl.get_json(&["secret", &secret, "-n", ns]);
        let encoded = s["data"]["token"].as_str()?;
        let out = std::process::Command::new("base64").arg("-d").stdin_bytes(encoded);
        Some(out)
    })
}

/// `Command` with bytes on stdin, returning stdout.
trait StdinBytes {
    fn stdin_bytes(&mut self, input: &str) -> String;
}

impl StdinBytes for std::process::Command {
    fn stdin_bytes(&mut self, input: &str) -> String {
        use std::io::Write;
        let mut child = self
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    }
}

/// The API server's URL and CA file, from the admin kubeconfig.
fn cluster_of(env: &ClusterEnv) -> (String, String) {
    let config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(env.get("KUBECONFIG")).unwrap()).unwrap();
    let cluster = &config["clusters"][0]["cluster"];
    (
        cluster["server"].as_str().unwrap().to_string(),
        cluster["certificate-authority"].as_str().unwrap().to_string(),
    )
}

/// The gateway's Service, reached directly (the host routes to ClusterIPs), once it takes
/// connections: the install waits for the gateway's Pod to be ready, and kube-proxy writes
/// the Service's rules a moment later (until then a connection is refused).
fn direct(s: &Setup) -> String {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    let address = ADDRESS.get_or_init(|| {
        let svc = s.kubectl.get_json(&["service", GATEWAY, "-n", OPERATOR_NAMESPACE]);
        let address = format!("{}:9000", svc["spec"]["clusterIP"].as_str().unwrap());
        let socket: std::net::SocketAddr = address.parse().unwrap();
        s.kubectl.eventually(
            "the gateway's Service to take connections",
            Duration::from_secs(60),
            || std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(2)).ok(),
        );
        address
    });
    format!("http://{address}")
}

fn run(kubeconfig: &std::path::Path, args: &[&str]) -> Outcome {
    let out = plugin::run(kubeconfig, args);
    eprintln!("kubectl taskyard {}\n{}{}", args.join(" "), out.stdout, out.stderr);
    out
}

/// The name of the task the plugin created, from its `hashtask/<name> created` line.
fn created(out: &Outcome) -> String {
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(" created in namespace "))
        .unwrap_or_else(|| panic!("no created line in {out:?}"));
    line.split_whitespace()
        .next()
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn a_user_md5s_a_local_file_in_their_namespace_through_the_api_server() {
    let (s, t) = (gw(), tenant());
    let path = file("plugin-report.bin", 300_000, 41);
    let md5 = coreutils_digest("md5", &path);
    // No --gateway, no -n: the gateway Service through the API server, the context's namespace.
    let out = run(
        &t.kubeconfig,
        &["md5", path.to_str().unwrap(), "--wait", "--timeout", "3m"],
    );
    assert!(out.success, "{out:?}");
    assert!(out.stdout.contains(&format!("md5: {md5}")), "{out:?}");
    let name = created(&out);
    let task = s.kubectl.get_json(&["hashtask", &name, "-n", &t.a]);
    assert_eq!(task["status"]["phase"], "Succeeded");
    assert_eq!(task["status"]["digests"]["md5"], md5.as_str());
    // The upload is in A's upload area, under the name the task reads.
    let object = task["spec"]["source"]["object"].as_str().unwrap();
    assert!(
        object.starts_with("plugin/") && object.ends_with("/plugin-report.bin"),
        "{object}"
    );
    let store = s.runtime.block_on(s.env.store());
    let size = s
        .runtime
        .block_on(store.size(&format!("uploads/{}/{object}", t.a)))
        .unwrap();
    assert_eq!(size, Some(300_000));

    // `get` prints it again, found by its bare name.
    let out = run(&t.kubeconfig, &["get", &name]);
    assert!(out.success && out.stdout.contains(&md5), "{out:?}");
}

#[test]
fn a_user_hashes_with_several_algorithms_through_the_gateway_url() {
    let (s, t) = (gw(), tenant());
    let path = file("plugin-direct.bin", 70_000, 42);
    let gateway = direct(s);
    let out = run(
        &t.kubeconfig,
        &[
            "hash",
            path.to_str().unwrap(),
            "-n",
            &t.a,
            "--gateway",
            &gateway,
            "--algorithms",
            "md5,sha256",
            "--name",
            "direct",
            "--wait",
        ],
    );
    assert!(out.success, "{out:?}");
    assert!(out.stdout.contains(&coreutils_digest("sha256", &path)), "{out:?}");
    assert_eq!(created(&out), "direct");
}

#[test]
fn another_namespace_is_refused_with_the_missing_permission_and_nothing_is_stored() {
    let (s, t) = (gw(), tenant());
    let path = file("plugin-denied.bin", 10_000, 43);
    let gateway = direct(s);
    for via in [vec!["--gateway", gateway.as_str()], vec![]] {
        let mut args = vec!["md5", path.to_str().unwrap(), "-n", &t.b];
        args.extend(via);
        let out = run(&t.kubeconfig, &args);
        assert!(!out.success, "{out:?}");
        assert!(out.stderr.contains("403"), "{out:?}");
        assert!(
            out.stderr
                .contains(&format!("may not create hashtasks.taskyard.dev in namespace {}", t.b)),
            "{out:?}"
        );
    }
    let store = s.runtime.block_on(s.env.store());
    let stored = s
        .runtime
        .block_on(store.first_with_prefix(&format!("uploads/{}/", t.b)))
        .unwrap();
    assert_eq!(stored, None, "something was stored in {}'s upload area", t.b);
    let tasks = s.kubectl.get_json(&["hashtasks", "-n", &t.b]);
    assert_eq!(tasks["items"], json!([]));
}

#[test]
fn a_bad_token_is_a_401_and_a_certificate_user_is_told_to_use_a_token() {
    let (s, t) = (gw(), tenant());
    let path = file("plugin-unauthorised.bin", 1_000, 44);
    let gateway = direct(s);
    for via in [vec!["--gateway", gateway.as_str()], vec![]] {
        let mut args = vec!["md5", path.to_str().unwrap()];
        args.extend(via);
        let out = run(&t.bad_kubeconfig, &args);
        assert!(!out.success, "{out:?}");
        assert!(out.stderr.contains("401"), "{out:?}");
    }
    // The admin kubeconfig authenticates with a client certificate.
    let admin = PathBuf::from(s.env.get("KUBECONFIG"));
    let out = run(&admin, &["md5", path.to_str().unwrap(), "--gateway", &gateway]);
    assert!(!out.success && out.stderr.contains("no bearer token"), "{out:?}");
}

#[test]
fn no_gateway_at_the_address_is_a_clear_error() {
    let t = tenant();
    let path = file("plugin-nogateway.bin", 1_000, 45);
    let out = run(
        &t.kubeconfig,
        &["md5", path.to_str().unwrap(), "--gateway", "http://127.0.0.1:9"],
    );
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr
            .contains("cannot reach the Taskyard gateway at http://127.0.0.1:9"),
        "{out:?}"
    );
}

/// The files `kubectl taskyard` wrote, from its `wrote PATH (N bytes)` lines.
fn written(out: &Outcome) -> Vec<PathBuf> {
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("wrote "))
        .map(|l| PathBuf::from(l.rsplit_once(" (").unwrap().0))
        .collect()
}

#[test]
fn upload_then_fetch_gives_the_result_with_the_md5() {
    let (s, t) = (gw(), tenant());
    let path = file("plugin-upload.bin", 200_000, 46);
    let md5 = coreutils_digest("md5", &path);
    // No task flag: --hash md5.
    let out = run(
        &t.kubeconfig,
        &["upload", path.to_str().unwrap(), "--wait", "--timeout", "3m"],
    );
    assert!(out.success, "{out:?}");
    assert!(out.stdout.contains(&format!("md5: {md5}")), "{out:?}");
    let name = created(&out);
    assert!(name.starts_with("hash-"), "{name}");

    let dir = s.files.join(format!("fetched-{name}"));
    let out = run(&t.kubeconfig, &["fetch", &name, "-o", dir.to_str().unwrap()]);
    assert!(out.success, "{out:?}");
    let files = written(&out);
    assert_eq!(files, [dir.join("result.json"), dir.join("digests.json")], "{out:?}");
    let result = std::fs::read_to_string(dir.join("result.json")).unwrap();
    assert!(result.contains(&md5), "{result}");
    let digests: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("digests.json")).unwrap()).unwrap();
    assert_eq!(digests["digests"]["md5"], md5.as_str());
    assert_eq!(digests["size"], 200_000);

    // Again: the files are there, so nothing is overwritten without --force ...
    std::fs::write(dir.join("result.json"), "mine").unwrap();
    let out = run(
        &t.kubeconfig,
        &["fetch", &format!("hashtask/{name}"), "-o", dir.to_str().unwrap()],
    );
    assert!(!out.success && out.stderr.contains("--force"), "{out:?}");
    assert_eq!(std::fs::read_to_string(dir.join("result.json")).unwrap(), "mine");
    // ... and `get -o` with --force does the same as fetch.
    let out = run(&t.kubeconfig, &["get", &name, "-o", dir.to_str().unwrap(), "--force"]);
    assert!(out.success, "{out:?}");
    assert!(std::fs::read_to_string(dir.join("result.json")).unwrap().contains(&md5));
}

#[test]
fn upload_resize_then_fetch_gives_an_image_of_the_size() {
    let (s, t) = (gw(), tenant());
    let path = s.files.join("plugin-photo.png");
    let png = taskyard_tests::images::encoded(&taskyard_tests::images::gradient(64, 48), image::ImageFormat::Png);
    std::fs::write(&path, png).unwrap();
    let out = run(
        &t.kubeconfig,
        &[
            "upload",
            path.to_str().unwrap(),
            "--resize",
            "40x30:fill",
            "--name",
            "photo",
            "--wait",
            "--timeout",
            "3m",
        ],
    );
    assert!(out.success, "{out:?}");
    assert_eq!(created(&out), "photo");
    let task = s.kubectl.get_json(&["imagetask", "photo", "-n", &t.a]);
    let resize = &task["spec"]["resize"];
    assert_eq!(
        (&resize["width"], &resize["height"], &resize["fit"]),
        (&json!(40), &json!(30), &json!("fill"))
    );

    // Through the API server's proxy this time, into ./photo by default.
    let cwd = s.files.join("fetch-cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let out = plugin::run_in(&cwd, &t.kubeconfig, &["fetch", "imagetask/photo"]);
    eprintln!("{}{}", out.stdout, out.stderr);
    assert!(out.success, "{out:?}");
    let images: Vec<PathBuf> = written(&out)
        .into_iter()
        .filter(|p| p.starts_with("photo/images"))
        .collect();
    assert_eq!(images, [PathBuf::from("photo/images/001-plugin-photo.png")], "{out:?}");
    let fetched = image::open(cwd.join(&images[0])).unwrap();
    assert_eq!((fetched.width(), fetched.height()), (40, 30));
    assert!(cwd.join("photo/manifest.json").exists() && cwd.join("photo/result.json").exists());
}

#[test]
fn upload_text_then_fetch_gives_the_extracted_text_and_the_result() {
    let (s, t) = (gw(), tenant());
    let path = s.files.join("plugin-page.html");
    std::fs::write(
        &path,
        "<html><head><title>Harbour notes</title><style>p{}</style></head><body>\
         <script>var hidden = 1;</script><h1>Lighthouse keeper</h1><p>quiet   evening tide</p></body></html>",
    )
    .unwrap();
    let out = run(
        &t.kubeconfig,
        &[
            "upload",
            path.to_str().unwrap(),
            "--text",
            "--name",
            "page",
            "--wait",
            "--timeout",
            "3m",
        ],
    );
    assert!(out.success, "{out:?}");
    assert_eq!(created(&out), "page");
    let task = s.kubectl.get_json(&["texttask", "page", "-n", &t.a]);
    assert_eq!(task["status"]["phase"], "Succeeded", "{}", task["status"]);

    let dir = s.files.join("fetched-page");
    let out = run(&t.kubeconfig, &["fetch", "texttask/page", "-o", dir.to_str().unwrap()]);
    assert!(out.success, "{out:?}");
    assert_eq!(
        written(&out),
        [dir.join("result.json"), dir.join("text.txt"), dir.join("manifest.json")],
        "{out:?}"
    );
    let text = std::fs::read_to_string(dir.join("text.txt")).unwrap();
    assert!(
        text.contains("Lighthouse keeper") && text.contains("quiet evening tide"),
        "{text:?}"
    );
    assert!(!text.contains("hidden") && !text.contains("p{}"), "{text:?}");
    // The result names the stored text the file is a copy of, and the title.
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
    let output = &result["output"];
    assert_eq!(
        (&result["outcome"], &output["type"], &output["title"]),
        (&json!("Succeeded"), &json!("text"), &json!("Harbour notes")),
        "{result}"
    );
    assert_eq!(output["text"]["key"], task["status"]["text"]["key"], "{result}");
    assert_eq!(
        output["text"]["sha256"].as_str(),
        Some(coreutils_digest("sha256", &dir.join("text.txt")).as_str()),
        "{result}"
    );
}

#[test]
fn a_user_without_get_rights_is_refused_their_outputs() {
    let (s, t) = (gw(), tenant());
    // A task of namespace C, which the user may not read (B stays empty for the test above).
    let c = format!("e2e-plugin-c-{}", std::process::id());
    s.kubectl.namespace(&c);
    let path = file("plugin-secret.bin", 5_000, 47);
    let url = s
        .server
        .url(&format!("/files/{}", path.file_name().unwrap().to_str().unwrap()));
    s.kubectl.apply(&format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: secret, namespace: {}}}\nspec: {{source: {{url: \"{url}\"}}}}\n",
        c
    ));
    taskyard_tests::e2e::wait_succeeded(s, &c, &["hashtask/secret"]);
    let task = s.kubectl.get_json(&["hashtask", "secret", "-n", &c]);
    let uid = task["metadata"]["uid"].as_str().unwrap();
    let key = format!("tasks/{c}/hashtask/secret/{uid}/1/result.json");

    // The plugin: the API server refuses to show the task.
    let dir = s.files.join("fetched-secret");
    let out = run(
        &t.kubeconfig,
        &["fetch", "secret", "-n", &c, "-o", dir.to_str().unwrap()],
    );
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("403") && out.stderr.contains("forbidden"),
        "{out:?}"
    );
    assert!(!dir.exists(), "something was written");

    // The gateway, asked directly with the user's token: no `get` on that task.
    let gateway = direct(s);
    let ask = |path: String| {
        s.runtime.block_on(async {
            let r = reqwest::Client::new()
                .get(format!("{gateway}{path}"))
                .bearer_auth(&t.token)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let (status, body) = ask(format!("/v1/namespaces/{c}/hashtasks/secret/outputs/{key}"));
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!(
            "may not get hashtasks.taskyard.dev \\\"secret\\\" in namespace {c}"
        )),
        "{body}"
    );
    // Nor under a task of its own namespace: C's key is no output of it.
    let (status, body) = ask(format!("/v1/namespaces/{}/hashtasks/secret/outputs/{key}", t.a));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("is not an output of"), "{body}");
    assert!(!body.contains("\"digests\""), "{body}");
}

//! End to end on the local cluster: the gateway installed by the chart (`gateway.enabled`)
//! in cluster mode, two replicas, as the MD5 service's clients use it: a file POSTed to
//! `/hashes/` becomes a HashTask run by the operator, its id answered at once, its MD5 read
//! back by polling; uploads stream into the namespace's upload area of the bucket.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use taskyard_tests::e2e::{OPERATOR_NAMESPACE, WAIT, file};
use taskyard_tests::files::coreutils_digest;
use taskyard_tests::gateway::{GATEWAY, LIMIT, REPLICAS, base, gateway_namespace, gw};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// POSTs a file to `/hashes/` the way the MD5 service's client does; returns the task id.
async fn post_hash(base: &str, path: &std::path::Path) -> u64 {
    let bytes = tokio::fs::read(path).await.unwrap();
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name("report.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let response = client()
        .post(format!("{base}/hashes/"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["task_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer task_id in {body}"))
}

/// Polls `/hashes/<id>` until it is no longer PENDING.
async fn poll(base: &str, id: u64) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let body: Value = client()
            .get(format!("{base}/hashes/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["status"] != "PENDING" || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[test]
fn the_md5_client_flow_through_the_chart_installed_gateway() {
    let s = gw();
    let base = base(s);
    let path = file("gateway-report.pdf", 1_500_000, 13);
    let id = s.runtime.block_on(post_hash(&base, &path));
    assert!(id >= 1);
    let body = s.runtime.block_on(poll(&base, id));
    assert_eq!(
        body,
        json!({"status": "SUCCESS", "result": coreutils_digest("md5", &path)}),
        "task {id}"
    );

    // A HashTask resource the operator ran, in the configured namespace, reading the upload
    // from that namespace's upload area.
    let ns = gateway_namespace();
    let task = s.kubectl.get_json(&["hashtask", &format!("md5-{id}"), "-n", &ns]);
    assert_eq!(task["metadata"]["labels"]["taskyard.dev/gateway-api"], "md5");
    assert_eq!(task["status"]["phase"], "Succeeded");
    let object = task["spec"]["source"]["object"].as_str().unwrap();
    let store = s.runtime.block_on(s.env.store());
    let size = s
        .runtime
        .block_on(store.size(&format!("uploads/{ns}/{object}")))
        .unwrap();
    assert_eq!(size, Some(1_500_000));

    // An id never handed out is a JSON 404.
    let (status, body) = s.runtime.block_on(async {
        let r = client()
            .get(format!("{base}/hashes/{}", id + 1_000_000))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    });
    assert_eq!(status, 404, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("was not found"), "{body}");
}

#[test]
fn concurrent_uploads_through_two_replicas_get_distinct_ids_and_right_digests() {
    let s = gw();
    let base = base(s);
    let ready = s.kubectl.get_json(&["deployment", GATEWAY, "-n", OPERATOR_NAMESPACE]);
    assert_eq!(ready["status"]["readyReplicas"].as_u64(), Some(REPLICAS));
    let paths: Vec<_> = (0..12)
        .map(|i| file(&format!("gateway-burst-{i}.bin"), 20_000 + i * 777, 100 + i))
        .collect();
    let ids: Vec<u64> = s.runtime.block_on(async {
        let posts = paths.iter().map(|p| post_hash(&base, p));
        futures::future::join_all(posts).await
    });
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids handed out twice: {ids:?}");
    for (id, path) in ids.iter().zip(&paths) {
        let body = s.runtime.block_on(poll(&base, *id));
        assert_eq!(body["status"], "SUCCESS", "task {id}: {body}");
        assert_eq!(body["result"].as_str(), Some(coreutils_digest("md5", path).as_str()));
    }
}

#[test]
fn an_upload_larger_than_a_part_streams_into_the_bucket_and_one_over_the_limit_is_refused() {
    let s = gw();
    let base = base(s);
    // 20 MiB: several multipart parts.
    let path = file("gateway-large.bin", 20 << 20, 7);
    let id = s.runtime.block_on(post_hash(&base, &path));
    let body = s.runtime.block_on(poll(&base, id));
    assert_eq!(
        body["result"].as_str(),
        Some(coreutils_digest("md5", &path).as_str()),
        "{body}"
    );

    // One byte over gateway.maxUploadBytes: a JSON 413 saying what to do (the gateway has
    // read the body to its last chunk when it answers).
    let (status, body) = s.runtime.block_on(async {
        let big = vec![0u8; LIMIT + 1];
        let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(big).file_name("big"));
        let r = client()
            .post(format!("{base}/hashes/"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    });
    assert_eq!(status, 413, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("limit"), "{body}");
}

#[test]
fn the_gateway_may_create_and_read_tasks_in_its_namespace_and_nothing_more() {
    let s = gw();
    let ns = gateway_namespace();
    let who = format!("--as=system:serviceaccount:{OPERATOR_NAMESPACE}:{GATEWAY}");
    let can = |args: &[&str]| {
        let mut all = vec!["auth", "can-i", who.as_str()];
        all.extend_from_slice(args);
        let (_, out, _) = s.kubectl.try_run(&all);
        out.trim() == "yes"
    };
    for verb in ["create", "get", "list", "watch"] {
        for kind in ["hashtasks", "imagetasks", "texttasks"] {
            assert!(
                can(&[verb, &format!("{kind}.taskyard.dev"), "-n", &ns]),
                "{verb} {kind}"
            );
        }
    }
    let ns = ns.as_str();
    for args in [
        vec!["delete", "hashtasks.taskyard.dev", "-n", ns],
        vec!["update", "imagetasks.taskyard.dev", "-n", ns],
        vec!["patch", "hashtasks.taskyard.dev", "--subresource=status", "-n", ns],
        vec!["create", "hashtasks.taskyard.dev", "-n", "default"],
        vec!["list", "texttasks.taskyard.dev", "-n", OPERATOR_NAMESPACE],
        vec!["get", "secrets", "-n", ns],
        vec!["get", "secrets", "-n", OPERATOR_NAMESPACE],
        vec!["create", "jobs.batch", "-n", OPERATOR_NAMESPACE],
        vec!["list", "configmaps", "-n", ns],
        vec!["create", "pods", "-n", ns],
    ] {
        assert!(!can(&args), "the gateway may {args:?}");
    }
    // The two reviews behind kubectl taskyard, and nothing else cluster-wide.
    assert!(can(&["create", "tokenreviews.authentication.k8s.io"]));
    assert!(can(&["create", "subjectaccessreviews.authorization.k8s.io"]));
    assert!(!can(&["create", "hashtasks.taskyard.dev", "--all-namespaces"]));
}

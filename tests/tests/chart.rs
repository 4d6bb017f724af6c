//! The Helm chart as a user meets it: lint and render for several value combinations, every
//! rendered object accepted by the API server, bad values rejected with clear messages,
//! least-privilege RBAC, install/upgrade/uninstall, the CRD upgrade path, `kubectl explain`,
//! and the examples.

use std::sync::Mutex;

use serde_json::{Value, json};
use taskyard_tests::cluster::{ClusterEnv, repo_root};
use taskyard_tests::e2e::{helm_apply, helm_values};
use taskyard_tests::helm::{chart, helm, of_kind as kind, render};
use taskyard_tests::kubectl::Kubectl;

/// Tests that install, upgrade or uninstall the release take this, so the others see a
/// steady installation.
static RELEASE: Mutex<()> = Mutex::new(());

#[test]
fn the_chart_lints_renders_and_dry_runs_for_every_value_combination() {
    let k = Kubectl::new(&ClusterEnv::load());
    let combos = [
        json!({"store": {"bucket": "b"}}),
        json!({"store": {"bucket": "b", "endpoint": "http://minio.storage:9000", "forcePathStyle": true, "credentialsSecret": "s3-creds",
               "stallTimeoutSeconds": 90}}),
        json!({"store": {"bucket": "b"}, "networkPolicy": {"enabled": true}, "operator": {"logJson": true, "logLevel": "debug"},
               "runner": {"allowedNetworks": ["10.0.0.0/8"], "readTimeoutSeconds": 30}, "maxRunningJobs": 3}),
    ];
    for values in combos {
        let (ok, report, stderr) = helm(&["lint", &chart()], &values);
        assert!(ok, "lint failed for {values}: {report} {stderr}");
        let objects = render(&values);
        let deployment = kind(&objects, "Deployment")[0];
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
        let container = &pod["containers"][0];
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(container["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert!(container["resources"]["limits"]["memory"].is_string());
        let secret = values["store"]["credentialsSecret"].as_str().unwrap_or("");
        // No Secret rule in any role: the kubelet reads the credentials for the Pods.
        for role in kind(&objects, "Role").into_iter().chain(kind(&objects, "ClusterRole")) {
            let rules = role["rules"].as_array().unwrap();
            assert!(
                !rules.iter().any(|r| r["resources"].to_string().contains("secrets")),
                "{values}: {role}"
            );
        }
        assert_eq!(
            kind(&objects, "NetworkPolicy").len(),
            usize::from(values["networkPolicy"]["enabled"] == true)
        );
        let env: Vec<&str> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            env.contains(&"AWS_ACCESS_KEY_ID"),
            !secret.is_empty(),
            "credentials from the Secret, else the chain"
        );
        let stall = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "TASKYARD_STORE_STALL_TIMEOUT_SECONDS")
            .map(|e| e["value"].clone());
        let want = values["store"]["stallTimeoutSeconds"]
            .as_u64()
            .unwrap_or(30)
            .to_string();
        assert_eq!(stall, Some(json!(want)), "{values}");
        let log_level = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "RUST_LOG")
            .map(|e| e["value"].clone());
        assert_eq!(log_level, values["operator"].get("logLevel").cloned(), "{values}");

        // Every rendered object is accepted by the API server.
        let manifest: String = objects
            .iter()
            .map(|o| format!("---\n{}", serde_yaml::to_string(o).unwrap()))
            .collect();
        let path = std::env::temp_dir().join(format!("taskyard-render-{}.yaml", std::process::id()));
        std::fs::write(&path, manifest).unwrap();
        let (ok, _, stderr) = k.try_run(&["apply", "--dry-run=server", "-f", path.to_str().unwrap()]);
        assert!(ok, "server-side dry run rejected {values}: {stderr}");
    }
}

#[test]
fn bad_values_are_rejected_with_messages_that_name_the_value() {
    for (values, needle) in [
        (
            json!({"store": {"bucket": "b"}, "maxRunningJobs": 0}),
            "/maxRunningJobs",
        ),
        (
            json!({"store": {"bucket": "b"}, "imagePullPolicy": "Sometimes"}),
            "/imagePullPolicy",
        ),
        (
            json!({"store": {"bucket": "b"}, "runner": {"allowedNetworks": ["not-a-cidr"]}}),
            "/runner/allowedNetworks/0",
        ),
        (
            json!({"store": {"bucket": "b", "endpoint": "minio:9000"}}),
            "/store/endpoint",
        ),
        (
            json!({"store": {"bucket": "b", "stallTimeoutSeconds": 0}}),
            "/store/stallTimeoutSeconds",
        ),
        (json!({"store": {"bucket": "b"}, "surprise": 1}), "surprise"),
        (json!({"store": {"endpoint": ""}}), "/store/bucket"),
    ] {
        let (ok, report, stderr) = helm(&["lint", &chart()], &values);
        assert!(!ok, "{values} was accepted");
        assert!(
            report.contains(needle) || stderr.contains(needle),
            "{values}: {report} {stderr}"
        );
    }
}

#[test]
fn the_gateway_renders_only_when_enabled_locked_down_on_port_9000() {
    let off = render(&json!({"store": {"bucket": "b"}}));
    assert!(
        off.iter().all(|o| o["metadata"]["name"] != "taskyard-gateway"),
        "gateway.enabled defaults to false"
    );
    let values = json!({"store": {"bucket": "b", "credentialsSecret": "s3-creds"},
        "gateway": {"enabled": true, "namespace": "legacy", "maxUploadBytes": 1048576,
                    "ingress": {"enabled": true, "host": "gw.example", "tlsSecret": "gw-tls"}}});
    let (ok, report, stderr) = helm(&["lint", &chart()], &values);
    assert!(ok, "lint failed: {report} {stderr}");
    let objects = render(&values);
    let named = |k: &str| {
        kind(&objects, k)
            .into_iter()
            .find(|o| o["metadata"]["name"] == "taskyard-gateway")
            .unwrap_or_else(|| panic!("no gateway {k}"))
    };
    let pod = &named("Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "taskyard-gateway");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert!(container["resources"]["limits"]["memory"].is_string());
    let env: std::collections::BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(env["TASKYARD_GATEWAY_NAMESPACE"]["value"], "legacy");
    assert_eq!(env["TASKYARD_GATEWAY_MAX_UPLOAD_BYTES"]["value"], "1048576");
    assert_eq!(env["TASKYARD_STORE_BUCKET"]["value"], "b");
    assert_eq!(
        env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"],
        "s3-creds"
    );
    assert_eq!(named("Service")["spec"]["ports"][0]["port"], 9000);
    assert_eq!(named("Ingress")["spec"]["tls"][0]["secretName"], "gw-tls");
    // Its only rights: tasks in its one namespace.
    let role = named("Role");
    assert_eq!(role["metadata"]["namespace"], "legacy");
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["taskyard.dev"], "resources": ["hashtasks", "imagetasks", "texttasks"],
                "verbs": ["create", "get", "list", "watch"]}])
    );
    // Cluster-wide, only the two reviews that check kubectl taskyard's users.
    let reviews = kind(&objects, "ClusterRole")
        .into_iter()
        .find(|o| o["metadata"]["name"] == "taskyard-gateway-reviews")
        .expect("the gateway's review ClusterRole");
    assert_eq!(
        reviews["rules"],
        json!([{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
               {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}])
    );
    let cluster_bindings: Vec<_> = kind(&objects, "ClusterRoleBinding")
        .into_iter()
        .filter(|b| b["subjects"].to_string().contains("taskyard-gateway"))
        .collect();
    assert_eq!(cluster_bindings.len(), 1, "{cluster_bindings:?}");
    assert_eq!(cluster_bindings[0]["roleRef"]["name"], "taskyard-gateway-reviews");
    assert!(
        !kind(&render(&json!({"store": {"bucket": "b"}})), "ClusterRole")
            .iter()
            .any(|r| r["metadata"]["name"] == "taskyard-gateway-reviews"),
        "no review rights without the gateway"
    );
    for (bad, needle) in [
        (json!({"namespace": "Legacy_NS"}), "/gateway/namespace"),
        (json!({"service": {"port": 0}}), "/gateway/service/port"),
        (json!({"surprise": true}), "surprise"),
    ] {
        let values = json!({"store": {"bucket": "b"}, "gateway": bad});
        let (ok, report, stderr) = helm(&["lint", &chart()], &values);
        assert!(!ok, "{values} was accepted");
        assert!(
            report.contains(needle) || stderr.contains(needle),
            "{values}: {report} {stderr}"
        );
    }
}

#[test]
fn the_operator_may_do_what_it_needs_and_nothing_more() {
    let _release = RELEASE.lock().unwrap_or_else(|e| e.into_inner());
    let env = ClusterEnv::load();
    helm_apply(&env);
    let k = Kubectl::new(&env);
    // "RESOURCE/status" asks about the status subresource; "RESOURCE/NAME" about one object.
    let can = |verb: &str, resource: &str, ns: &str| {
        let mut args = vec![
            "auth",
            "can-i",
            verb,
            "-n",
            ns,
            "--as",
            "system:serviceaccount:taskyard-system:taskyard-operator",
        ];
        match resource.strip_suffix("/status") {
            Some(r) => args.extend([r, "--subresource=status"]),
            None => args.push(resource),
        }
        let (_, out, _) = k.try_run(&args);
        out.trim() == "yes"
    };
    // Cluster-wide: the tasks, their status, Events.
    for (verb, resource, ns) in [
        ("watch", "hashtasks.taskyard.dev", "default"),
        ("patch", "texttasks.taskyard.dev", "team-a"),
        ("update", "imagetasks.taskyard.dev/status", "team-a"),
        ("create", "events.events.k8s.io", "team-a"),
        // Its own namespace: runner Jobs, their Pods' messages, its Lease.
        ("create", "jobs.batch", "taskyard-system"),
        ("watch", "jobs.batch", "taskyard-system"),
        ("delete", "jobs.batch", "taskyard-system"),
        ("list", "pods", "taskyard-system"),
        (
            "update",
            "leases.coordination.k8s.io/taskyard-operator",
            "taskyard-system",
        ),
    ] {
        assert!(
            can(verb, resource, ns),
            "the operator needs to {verb} {resource} in {ns}"
        );
    }
    for (verb, resource, ns) in [
        // No Jobs, Pods or Secrets in tenants' namespaces.
        ("create", "jobs.batch", "default"),
        ("list", "jobs.batch", "team-a"),
        ("delete", "jobs.batch", "team-a"),
        ("list", "pods", "team-a"),
        ("create", "pods", "taskyard-system"),
        ("create", "pods", "default"),
        ("create", "pods/exec", "taskyard-system"),
        // No Secret verbs anywhere: the escalation of earlier versions (create a
        // service-account-token Secret of a readable name in kube-system) is gone.
        ("create", "secrets", "kube-system"),
        ("get", "secrets/taskyard-store-credentials", "kube-system"),
        ("get", "secrets/taskyard-store-credentials", "default"),
        ("get", "secrets/taskyard-s3", "default"),
        ("list", "secrets", "taskyard-system"),
        ("get", "secrets/other", "taskyard-system"),
        ("get", "secrets/taskyard-s3", "taskyard-system"),
        ("update", "leases.coordination.k8s.io/other", "taskyard-system"),
        ("update", "jobs.batch", "taskyard-system"),
        ("delete", "hashtasks.taskyard.dev", "default"),
        ("update", "hashtasks.taskyard.dev", "default"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", "default"),
        ("delete", "namespaces", "default"),
        ("get", "configmaps", "kube-system"),
    ] {
        assert!(
            !can(verb, resource, ns),
            "the operator must not {verb} {resource} in {ns}"
        );
    }
}

#[test]
fn install_upgrade_uninstall_and_the_crd_upgrade_path() {
    let _release = RELEASE.lock().unwrap_or_else(|e| e.into_inner());
    let env = ClusterEnv::load();
    let k = Kubectl::new(&env);
    helm_apply(&env);
    let operator_pod = || k.operator_pods();
    let before = operator_pod()[0]["metadata"]["name"].as_str().unwrap().to_string();

    // A changed value rolls the operator.
    let mut values = helm_values(&env);
    values["operator"] = json!({"logJson": true});
    let (ok, _, stderr) = helm(
        &["upgrade", &chart(), "taskyard", "--namespace", "taskyard-system"],
        &values,
    );
    assert!(ok, "upgrade failed: {stderr}");
    let rolled = k.eventually("the operator to roll", std::time::Duration::from_secs(120), || {
        let pods = operator_pod();
        (pods.len() == 1 && pods[0]["metadata"]["name"] != before.as_str() && pods[0]["status"]["phase"] == "Running")
            .then(|| pods[0].clone())
    });
    let env_vars = rolled["spec"]["containers"][0]["env"].as_array().unwrap();
    assert!(
        env_vars
            .iter()
            .any(|e| e["name"] == "TASKYARD_LOG_JSON" && e["value"] == "true")
    );

    // CRDs: Helm installs crds/ but never upgrades them; the documented path is kubectl.
    k.apply_crds();

    // Uninstall removes the operator and its RBAC, and keeps the CRDs (and so users' tasks),
    // which stay deletable: nothing holds them once the operator is gone.
    k.namespace("chart-uninstall");
    k.apply("apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {name: left-behind, namespace: chart-uninstall}\nspec:\n  source: {object: x.bin}\n");
    let (ok, _, stderr) = helm(&["uninstall", "taskyard", "--namespace", "taskyard-system"], &json!({}));
    assert!(ok, "uninstall failed: {stderr}");
    k.eventually("the operator to be gone", std::time::Duration::from_secs(120), || {
        operator_pod().is_empty().then_some(())
    });
    let (exists, _, _) = k.try_run(&["get", "clusterrole", "taskyard-operator"]);
    assert!(!exists, "the ClusterRole outlived the release");
    k.run(&[
        "delete",
        "hashtask",
        "left-behind",
        "-n",
        "chart-uninstall",
        "--timeout=30s",
    ]);
    // And the CRDs, with every task left anywhere: no finalizer holds them.
    let crds = repo_root().join("crds/taskyard.yaml");
    k.run(&["delete", "-f", crds.to_str().unwrap(), "--wait=true", "--timeout=120s"]);

    // And back, for the tests that follow (a new install brings the CRDs again).
    helm_apply(&env);
    k.eventually("the operator to run again", std::time::Duration::from_secs(120), || {
        operator_pod()
            .iter()
            .any(|p| p["status"]["phase"] == "Running")
            .then_some(())
    });
}

/// Installs the chart (and so the CRDs) if this binary's tests run first on a new cluster.
fn installed() -> (std::sync::MutexGuard<'static, ()>, Kubectl) {
    let release = RELEASE.lock().unwrap_or_else(|e| e.into_inner());
    let env = ClusterEnv::load();
    helm_apply(&env);
    (release, Kubectl::new(&env))
}

#[test]
fn kubectl_explain_describes_the_fields() {
    let (_release, k) = installed();
    for (field, needles) in [
        ("imagetask.spec.resize.fit", &["contain", "fill", "cover", "aspect"][..]),
        ("imagetask.spec.maxImages", &["maxImages", "more"][..]),
        ("hashtask.spec.algorithms", &["md5", "sha512"][..]),
        ("hashtask.status.digests", &["hex"][..]),
        ("texttask.spec.source.page", &["http or https"][..]),
        ("hashtask", &["digests", "results log"][..]),
    ] {
        // The API server publishes a new CRD's schema a moment after it is created.
        let out = k.eventually(
            &format!("kubectl explain {field}"),
            std::time::Duration::from_secs(60),
            || {
                let (ok, out, _) = k.try_run(&["explain", field]);
                ok.then_some(out)
            },
        );
        for needle in needles {
            assert!(out.contains(needle), "kubectl explain {field} lacks {needle:?}:\n{out}");
        }
    }
}

#[test]
fn every_example_is_accepted_by_the_api_server() {
    let (_release, k) = installed();
    let examples = repo_root().join("examples");
    let out = k.run(&[
        "apply",
        "--dry-run=server",
        "-n",
        "default",
        "-f",
        examples.to_str().unwrap(),
    ]);
    for kind in ["hashtask", "imagetask", "texttask"] {
        assert!(out.contains(&format!("{kind}.taskyard.dev/")), "{out}");
    }
    assert_eq!(
        out.lines().count(),
        std::fs::read_dir(&examples).unwrap().count(),
        "{out}"
    );
}

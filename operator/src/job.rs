//! The runner Job of a task generation: its name, labels and spec. Pure functions.
//!
//! Runner Jobs run in the operator's own namespace, never in the task's: the store
//! credentials exist only there, and a tenant cannot read them, create Pods with them, or
//! label Jobs that count against the cluster's runner slots. Owner references cannot cross
//! namespaces, so the task is named in labels and annotations and the operator deletes a
//! task's Jobs itself (see `reaper`).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements,
    SeccompProfile, SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};
use taskyard_api::{RunnerInput, RunnerTask, TaskIdentity, TaskKind};

use crate::settings::Settings;

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "taskyard";
pub const LABEL_KIND: &str = "taskyard.dev/kind";
pub const LABEL_NAMESPACE: &str = "taskyard.dev/namespace";
pub const LABEL_TASK: &str = "taskyard.dev/task";
pub const LABEL_UID: &str = "taskyard.dev/uid";
pub const LABEL_GENERATION: &str = "taskyard.dev/generation";
/// The task's full name (a label value holds at most 63 characters; a name up to 253).
pub const ANNOTATION_TASK: &str = "taskyard.dev/task";

/// Seconds a runner Pod being deleted gets before it is killed.
const RUNNER_GRACE_SECONDS: i64 = 2;

/// The runner runs as this unprivileged user.
const RUNNER_UID: i64 = 65532;

/// `<namespace>-<name>-<generation>-<8 hex>`: the same for a task generation every time it is
/// computed, so a restarted operator finds the Job it created instead of creating another, and
/// distinct for tasks of the same name in different namespaces (the hash covers namespace and
/// uid). At most 63 characters, because Kubernetes copies it into a Pod label.
pub fn job_name(id: &TaskIdentity) -> String {
    let hash = Sha256::digest(format!("{}/{}/{}", id.namespace, id.uid, id.generation));
    let tail = format!("-{}-{}", id.generation, &hex::encode(hash)[..8]);
    let keep = 63 - tail.len();
    let mut head: String = format!("{}-{}", id.namespace, id.name).chars().take(keep).collect();
    while head.ends_with(['-', '.']) {
        head.pop();
    }
    format!("{head}{tail}")
}

/// A label value: at most 63 characters, starting and ending alphanumeric.
fn label_value(value: &str) -> String {
    let mut v: String = value.chars().take(63).collect();
    while v.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        v.pop();
    }
    v
}

/// The labels of a task generation's Job and Pods.
pub fn labels(kind: TaskKind, task: &RunnerTask) -> BTreeMap<String, String> {
    let id = &task.identity;
    BTreeMap::from([
        (LABEL_MANAGED_BY.into(), MANAGED_BY.into()),
        ("app.kubernetes.io/name".into(), "taskyard-runner".into()),
        ("app.kubernetes.io/component".into(), "runner".into()),
        (LABEL_KIND.into(), kind.lower().into()),
        (LABEL_NAMESPACE.into(), id.namespace.clone()),
        (LABEL_TASK.into(), label_value(&id.name)),
        (LABEL_UID.into(), id.uid.clone()),
        (LABEL_GENERATION.into(), id.generation.to_string()),
    ])
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn secret_env(name: &str, secret: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: name.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The task a runner Job belongs to, from its labels and annotations: kind, namespace, name
/// and uid.
pub fn task_of(job: &Job) -> Option<(TaskKind, String, String, String)> {
    let labels = job.metadata.labels.as_ref()?;
    let kind = match labels.get(LABEL_KIND)?.as_str() {
        "hashtask" => TaskKind::HashTask,
        "imagetask" => TaskKind::ImageTask,
        "texttask" => TaskKind::TextTask,
        _ => return None,
    };
    let name = job.metadata.annotations.as_ref()?.get(ANNOTATION_TASK)?;
    Some((
        kind,
        labels.get(LABEL_NAMESPACE)?.clone(),
        name.clone(),
        labels.get(LABEL_UID)?.clone(),
    ))
}

/// Builds the runner Job of one task generation, in the operator's namespace.
pub fn build_job(kind: TaskKind, task: &RunnerTask, retries: i32, timeout_seconds: i64, settings: &Settings) -> Job {
    let id = &task.identity;
    let labels = labels(kind, task);
    let input = RunnerInput {
        tasks: vec![task.clone()],
    };
    let mut env = vec![
        env(
            "TASKYARD_TASKS",
            serde_json::to_string(&input).expect("a task always serialises"),
        ),
        env("TASKYARD_S3_ENDPOINT", settings.store_endpoint.clone()),
        env("TASKYARD_S3_REGION", settings.store_region.clone()),
        env("TASKYARD_S3_BUCKET", settings.store_bucket.clone()),
        env(
            "TASKYARD_S3_FORCE_PATH_STYLE",
            settings.store_force_path_style.to_string(),
        ),
        env(
            "TASKYARD_ALLOWED_NETWORKS",
            settings
                .allowed_networks
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        env(
            "TASKYARD_READ_TIMEOUT_SECONDS",
            settings.runner_read_timeout_seconds.to_string(),
        ),
        env("TASKYARD_IMAGE_SHARING", settings.image_sharing.clone()),
    ];
    // Empty: the default credential chain (IRSA, instance roles).
    let secret = &settings.store_credentials_secret;
    if !secret.is_empty() {
        env.push(secret_env("AWS_ACCESS_KEY_ID", secret));
        env.push(secret_env("AWS_SECRET_ACCESS_KEY", secret));
    }
    let quantity = |s: &str| Quantity(s.to_string());
    let container = Container {
        name: "runner".into(),
        image: Some(settings.runner_image.clone()),
        image_pull_policy: Some(settings.image_pull_policy.clone()),
        args: Some(vec!["exec".into()]),
        env: Some(env),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), quantity(&settings.runner_cpu_request)),
                ("memory".into(), quantity(&settings.runner_memory_request)),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".into(), quantity(&settings.runner_cpu_limit)),
                ("memory".into(), quantity(&settings.runner_memory_limit)),
            ])),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..Default::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(id)),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(ANNOTATION_TASK.into(), id.name.clone())])),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(retries),
            active_deadline_seconds: Some(timeout_seconds),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    // The runner is PID 1, which ignores SIGTERM, and has nothing to save: a
                    // deleted task's Pod goes in seconds, not the default 30.
                    termination_grace_period_seconds: Some(RUNNER_GRACE_SECONDS),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUNNER_UID),
                        run_as_group: Some(RUNNER_UID),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: "tmp".into(),
                        empty_dir: Some(Default::default()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use taskyard_api::{HashSource, HashTaskSpec, TaskIdentity, TaskSpec};

    use super::*;

    fn settings(extra: &[&str]) -> Settings {
        let mut args = vec![
            "op",
            "--store-bucket",
            "b",
            "--runner-image",
            "runner:1",
            "--store-credentials-secret",
            "creds",
        ];
        args.extend_from_slice(extra);
        Settings::parse_from(args)
    }

    fn task(name: &str, namespace: &str) -> RunnerTask {
        RunnerTask {
            identity: TaskIdentity {
                namespace: namespace.into(),
                name: name.into(),
                uid: "0a1b-uid".into(),
                generation: 7,
            },
            spec: TaskSpec::HashTask(HashTaskSpec {
                source: HashSource {
                    url: Some("https://example.com/f".into()),
                    object: None,
                },
                algorithms: vec![taskyard_api::HashAlgorithm::Md5],
                retries: 3,
                timeout_seconds: 42,
            }),
        }
    }

    fn id(namespace: &str, name: &str, uid: &str, generation: i64) -> TaskIdentity {
        TaskIdentity {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            generation,
        }
    }

    #[test]
    fn job_names_are_deterministic_short_and_distinct_across_namespaces() {
        let a = job_name(&id("team-a", "report", "0a1b-uid", 7));
        assert_eq!(a, job_name(&id("team-a", "report", "0a1b-uid", 7)));
        assert!(
            a.starts_with("team-a-report-7-") && a.len() == "team-a-report-7-".len() + 8,
            "{a}"
        );
        assert_ne!(a, job_name(&id("team-a", "report", "0a1b-uid", 8)));
        assert_ne!(a, job_name(&id("team-a", "report", "other-uid", 7)));
        assert_ne!(a, job_name(&id("team-b", "report", "0a1b-uid", 7)));
        let long = job_name(&id("ns", &"x".repeat(250), "u", 123456));
        assert!(long.len() <= 63 && long.contains("-123456-"), "{long}");
        assert!(!job_name(&id("n", &format!("{}-y", "a".repeat(48)), "u", 1)).contains("--"));
    }

    #[test]
    fn builds_a_locked_down_job_in_the_operators_namespace() {
        let job = build_job(
            TaskKind::HashTask,
            &task("report", "team-a"),
            3,
            42,
            &settings(&["--allowed-networks", "10.0.0.0/8,192.168.0.0/16"]),
        );
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.backoff_limit, Some(3));
        assert_eq!(spec.active_deadline_seconds, Some(42));
        let meta = &job.metadata;
        assert_eq!(meta.namespace.as_deref(), Some("taskyard-system"));
        assert_eq!(meta.owner_references, None, "owner references cannot cross namespaces");
        assert_eq!(
            task_of(&job),
            Some((TaskKind::HashTask, "team-a".into(), "report".into(), "0a1b-uid".into()))
        );
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_MANAGED_BY], "taskyard");
        assert_eq!(labels[LABEL_KIND], "hashtask");
        assert_eq!(labels[LABEL_GENERATION], "7");
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.termination_grace_period_seconds, Some(2));
        assert_eq!(
            pod.security_context
                .as_ref()
                .unwrap()
                .seccomp_profile
                .as_ref()
                .unwrap()
                .type_,
            "RuntimeDefault"
        );
        let c = &pod.containers[0];
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(
            (
                sc.read_only_root_filesystem,
                sc.run_as_non_root,
                sc.allow_privilege_escalation
            ),
            (Some(true), Some(true), Some(false))
        );
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        let resources = c.resources.as_ref().unwrap();
        assert!(resources.limits.as_ref().unwrap().contains_key("memory"));
        let env: BTreeMap<_, _> = c.env.as_ref().unwrap().iter().map(|e| (e.name.as_str(), e)).collect();
        assert_eq!(
            env["TASKYARD_ALLOWED_NETWORKS"].value.as_deref(),
            Some("10.0.0.0/8,192.168.0.0/16")
        );
        assert_eq!(env["TASKYARD_IMAGE_SHARING"].value.as_deref(), Some("cluster"));
        let input: RunnerInput = serde_json::from_str(env["TASKYARD_TASKS"].value.as_deref().unwrap()).unwrap();
        assert_eq!(input.tasks, vec![task("report", "team-a")]);
        // The runner reads the configured Secret itself, which exists only in this namespace.
        let key_ref = env["AWS_ACCESS_KEY_ID"]
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(key_ref.name, "creds");
    }

    #[test]
    fn without_a_credentials_secret_the_runner_uses_the_default_chain() {
        let mut chain = settings(&[]);
        chain.store_credentials_secret.clear();
        let job = build_job(TaskKind::HashTask, &task("r", "x"), 0, 1, &chain);
        let c = &job.spec.unwrap().template.spec.unwrap().containers[0];
        assert!(!c.env.as_ref().unwrap().iter().any(|e| e.name.starts_with("AWS_")));
    }
}

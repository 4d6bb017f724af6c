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
    Capabilities, Container, EnvVar, EnvVarSource, PodSecurityContext, PodSpec, PodTemplateSpec, ProjectedVolumeSource,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
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
/// A batch Job's tasks, as a JSON list of identities (labels name only one task).
pub const ANNOTATION_TASKS: &str = "taskyard.dev/tasks";
pub const LABEL_BATCH: &str = "taskyard.dev/batch";

/// Tasks of a batch the runner runs at once (its `--batch-concurrency` default); only
/// bounds the batch Job's deadline.
const RUNNER_BATCH_CONCURRENCY: i64 = 4;

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

/// Where a runner finds its web-identity token (the SDK reads `AWS_WEB_IDENTITY_TOKEN_FILE`).
pub const WEB_IDENTITY_DIR: &str = "/var/run/secrets/taskyard/web-identity";
const WEB_IDENTITY_VOLUME: &str = "web-identity-token";
/// The kubelet renews a projected token at 80 % of its life; an hour is what STS accepts
/// at least and what EKS uses too.
const WEB_IDENTITY_TOKEN_SECONDS: i64 = 3600;

/// The Pod's ServiceAccount token for `audience` only: STS accepts it, the API server does not.
fn web_identity_volume(audience: &str) -> Volume {
    Volume {
        name: WEB_IDENTITY_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(audience.into()),
                    expiration_seconds: Some(WEB_IDENTITY_TOKEN_SECONDS),
                    path: "token".into(),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
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

/// A task as a Job carries it: what the runner is given, and its own limits.
#[derive(Clone, Debug)]
pub struct Carried {
    pub task: RunnerTask,
    pub retries: i32,
    pub timeout_seconds: i64,
}

/// `taskyard-batch-<16 hex>`, from the tasks it carries: the same batch is the same name.
pub fn batch_job_name(tasks: &[Carried]) -> String {
    let mut ids: Vec<String> = tasks
        .iter()
        .map(|c| {
            format!(
                "{}/{}/{}",
                c.task.identity.namespace, c.task.identity.uid, c.task.identity.generation
            )
        })
        .collect();
    ids.sort();
    let hash = Sha256::digest(ids.join("\n"));
    format!("taskyard-batch-{}", &hex::encode(hash)[..16])
}

/// The tasks a runner Job carries, with their generations: its batch annotation, or the
/// labels of a Job of one task.
pub fn members(job: &Job) -> Vec<(TaskKind, TaskIdentity)> {
    let Some(labels) = job.metadata.labels.as_ref() else {
        return Vec::new();
    };
    let Some(kind) = labels.get(LABEL_KIND).and_then(|k| kind_of(k)) else {
        return Vec::new();
    };
    let annotations = job.metadata.annotations.as_ref();
    if let Some(list) = annotations.and_then(|a| a.get(ANNOTATION_TASKS)) {
        let ids: Vec<TaskIdentity> = serde_json::from_str(list).unwrap_or_default();
        return ids.into_iter().map(|id| (kind, id)).collect();
    }
    let single = || {
        Some(TaskIdentity {
            namespace: labels.get(LABEL_NAMESPACE)?.clone(),
            name: annotations?.get(ANNOTATION_TASK)?.clone(),
            uid: labels.get(LABEL_UID)?.clone(),
            generation: labels.get(LABEL_GENERATION)?.parse().ok()?,
        })
    };
    single().map(|id| (kind, id)).into_iter().collect()
}

/// Whether a runner Job carries a batch.
pub fn is_batch(job: &Job) -> bool {
    job.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.get(LABEL_BATCH).is_some_and(|b| b == "true"))
}

fn kind_of(label: &str) -> Option<TaskKind> {
    match label {
        "hashtask" => Some(TaskKind::HashTask),
        "imagetask" => Some(TaskKind::ImageTask),
        "texttask" => Some(TaskKind::TextTask),
        _ => None,
    }
}

/// Builds the runner Job of one task generation, in the operator's namespace.
pub fn build_job(kind: TaskKind, task: &RunnerTask, retries: i32, timeout_seconds: i64, settings: &Settings) -> Job {
    let id = &task.identity;
    let input = RunnerInput {
        tasks: vec![task.clone()],
        batch: None,
    };
    let meta = ObjectMeta {
        name: Some(job_name(id)),
        namespace: Some(settings.namespace.clone()),
        labels: Some(labels(kind, task)),
        annotations: Some(BTreeMap::from([(ANNOTATION_TASK.into(), id.name.clone())])),
        ..Default::default()
    };
    runner_job(meta, &input, retries, timeout_seconds, settings)
}

/// Builds the runner Job of a batch of tasks of one kind. Its Pod is not retried: the runner
/// retries each task itself, and the operator runs a task left without a result (the Pod
/// crashed, or the Job's deadline passed) again alone, so that it fails with its own reason
/// and no other task of the batch does.
pub fn build_batch_job(kind: TaskKind, tasks: &[Carried], settings: &Settings) -> Job {
    let name = batch_job_name(tasks);
    let input = RunnerInput {
        tasks: tasks.iter().map(|c| c.task.clone()).collect(),
        batch: Some(taskyard_api::Batch {
            report_key: taskyard_common::keys::batch_report_key(&name),
        }),
    };
    let labels = BTreeMap::from([
        (LABEL_MANAGED_BY.into(), MANAGED_BY.into()),
        ("app.kubernetes.io/name".into(), "taskyard-runner".into()),
        ("app.kubernetes.io/component".into(), "runner".into()),
        (LABEL_KIND.into(), kind.lower().into()),
        (LABEL_BATCH.into(), "true".into()),
    ]);
    let ids: Vec<&TaskIdentity> = tasks.iter().map(|c| &c.task.identity).collect();
    let meta = ObjectMeta {
        name: Some(name),
        namespace: Some(settings.namespace.clone()),
        labels: Some(labels),
        annotations: Some(BTreeMap::from([(
            ANNOTATION_TASKS.into(),
            serde_json::to_string(&ids).expect("identities serialise"),
        )])),
        ..Default::default()
    };
    // A safety net only: each run of each task has its own timeout inside the runner.
    let longest = tasks
        .iter()
        .map(|c| c.timeout_seconds * (i64::from(c.retries.max(0)) + 1) + 30 * i64::from(c.retries.max(0)))
        .max()
        .unwrap_or(60);
    let rounds = (tasks.len() as i64 + RUNNER_BATCH_CONCURRENCY - 1) / RUNNER_BATCH_CONCURRENCY;
    runner_job(meta, &input, 0, longest * rounds + 60, settings)
}

/// A runner Job: `input` in the environment, the store settings, and the runner's
/// locked-down Pod.
fn runner_job(
    meta: ObjectMeta,
    input: &RunnerInput,
    backoff_limit: i32,
    deadline_seconds: i64,
    settings: &Settings,
) -> Job {
    let labels = meta.labels.clone().unwrap_or_default();
    let mut env = vec![
        env(
            "TASKYARD_TASKS",
            serde_json::to_string(input).expect("a task always serialises"),
        ),
        env("TASKYARD_S3_ENDPOINT", settings.store_endpoint.clone()),
        env("TASKYARD_S3_REGION", settings.store_region.clone()),
        env("TASKYARD_S3_BUCKET", settings.store_bucket.clone()),
        env(
            "TASKYARD_S3_FORCE_PATH_STYLE",
            settings.store_force_path_style.to_string(),
        ),
        env(
            "TASKYARD_S3_STALL_TIMEOUT_SECONDS",
            settings.store_stall_timeout_seconds.to_string(),
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
    // Empty: the default credential chain (a web-identity token below, instance roles).
    let secret = &settings.store_credentials_secret;
    if !secret.is_empty() {
        env.push(secret_env("AWS_ACCESS_KEY_ID", secret));
        env.push(secret_env("AWS_SECRET_ACCESS_KEY", secret));
    }
    let web_identity = secret.is_empty() && !settings.store_web_identity_role_arn.is_empty();
    if web_identity {
        env.push(self::env("AWS_ROLE_ARN", settings.store_web_identity_role_arn.clone()));
        env.push(self::env(
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            format!("{WEB_IDENTITY_DIR}/token"),
        ));
        if !settings.store_sts_endpoint.is_empty() {
            env.push(self::env("AWS_ENDPOINT_URL_STS", settings.store_sts_endpoint.clone()));
        }
    }
    let mut mounts = vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    }];
    let mut volumes = vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(Default::default()),
        ..Default::default()
    }];
    if web_identity {
        mounts.push(VolumeMount {
            name: WEB_IDENTITY_VOLUME.into(),
            mount_path: WEB_IDENTITY_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(web_identity_volume(&settings.store_web_identity_audience));
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
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    Job {
        metadata: meta,
        spec: Some(JobSpec {
            backoff_limit: Some(backoff_limit),
            active_deadline_seconds: Some(deadline_seconds),
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
                    // The runner never talks to the API server: no API token is mounted,
                    // and its ServiceAccount (the chart's) has no RBAC permission.
                    automount_service_account_token: Some(false),
                    service_account_name: (!settings.runner_service_account.is_empty())
                        .then(|| settings.runner_service_account.clone()),
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
                    volumes: Some(volumes),
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

    #[test]
    fn with_a_web_identity_role_the_runner_gets_a_token_for_sts_only() {
        let mut s = settings(&[
            "--store-web-identity-role-arn",
            "arn:aws:iam::1:role/runner",
            "--store-sts-endpoint",
            "http://10.0.0.1:8000",
            "--runner-service-account",
            "taskyard-runner",
        ]);
        s.store_credentials_secret.clear();
        let job = build_job(TaskKind::HashTask, &task("r", "x"), 0, 1, &s);
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("taskyard-runner"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        let c = &pod.containers[0];
        let env: BTreeMap<_, _> = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref()))
            .collect();
        assert_eq!(env["AWS_ROLE_ARN"], Some("arn:aws:iam::1:role/runner"));
        assert_eq!(
            env["AWS_WEB_IDENTITY_TOKEN_FILE"],
            Some("/var/run/secrets/taskyard/web-identity/token")
        );
        assert_eq!(env["AWS_ENDPOINT_URL_STS"], Some("http://10.0.0.1:8000"));
        assert!(!env.contains_key("AWS_ACCESS_KEY_ID"));
        let mount = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "web-identity-token")
            .expect("the token is mounted");
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only),
            ("/var/run/secrets/taskyard/web-identity", Some(true))
        );
        let volume = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "web-identity-token")
            .unwrap();
        let sources = volume.projected.as_ref().unwrap().sources.as_ref().unwrap();
        assert_eq!(sources.len(), 1, "only the token, no API CA or namespace");
        let token = sources[0].service_account_token.as_ref().unwrap();
        assert_eq!(
            (token.audience.as_deref(), token.path.as_str(), token.expiration_seconds),
            (Some("sts.amazonaws.com"), "token", Some(3600))
        );
    }

    #[test]
    fn the_audience_is_the_configured_one() {
        let mut s = settings(&[
            "--store-web-identity-role-arn",
            "arn:aws:iam::1:role/runner",
            "--store-web-identity-audience",
            "sts.example",
        ]);
        s.store_credentials_secret.clear();
        let job = build_job(TaskKind::HashTask, &task("r", "x"), 0, 1, &s);
        let pod = job.spec.unwrap().template.spec.unwrap();
        let volume = &pod.volumes.as_ref().unwrap()[1];
        let token = volume.projected.as_ref().unwrap().sources.as_ref().unwrap()[0]
            .service_account_token
            .as_ref()
            .unwrap();
        assert_eq!(token.audience.as_deref(), Some("sts.example"));
        let env = pod.containers[0].env.as_ref().unwrap();
        assert!(
            !env.iter().any(|e| e.name == "AWS_ENDPOINT_URL_STS"),
            "no STS endpoint set"
        );
    }

    #[test]
    fn without_a_web_identity_role_there_is_no_token_and_the_default_service_account() {
        let job = build_job(TaskKind::HashTask, &task("r", "x"), 0, 1, &settings(&[]));
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.service_account_name, None);
        assert_eq!(pod.volumes.as_ref().unwrap().len(), 1, "only /tmp");
        let env = pod.containers[0].env.as_ref().unwrap();
        assert!(
            !env.iter()
                .any(|e| e.name == "AWS_ROLE_ARN" || e.name == "AWS_WEB_IDENTITY_TOKEN_FILE")
        );
    }

    #[test]
    fn a_batch_job_carries_every_task_and_names_them_in_an_annotation() {
        let s = settings(&[]);
        let carried: Vec<Carried> = ["a", "b", "c"]
            .iter()
            .map(|n| Carried {
                task: task(n, "ns"),
                retries: 2,
                timeout_seconds: 10,
            })
            .collect();
        let job = build_batch_job(TaskKind::HashTask, &carried, &s);
        let name = job.metadata.name.clone().unwrap();
        assert!(name.starts_with("taskyard-batch-") && name.len() <= 63, "{name}");
        let mut reversed = carried.clone();
        reversed.reverse();
        assert_eq!(batch_job_name(&reversed), name, "the same tasks, the same name");
        assert!(is_batch(&job));
        let ids: Vec<String> = members(&job).into_iter().map(|(_, id)| id.name).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(0), "the runner retries each task itself");
        // 3 tasks in one round of 4: one task's runs (10 s x 3 + 30 s x 2) and a minute.
        assert_eq!(spec.active_deadline_seconds, Some(10 * 3 + 60 + 60));
        let env = spec.template.spec.unwrap().containers[0].env.clone().unwrap();
        let tasks = env.iter().find(|e| e.name == "TASKYARD_TASKS").unwrap();
        let input: RunnerInput = serde_json::from_str(tasks.value.as_deref().unwrap()).unwrap();
        assert_eq!(input.tasks.len(), 3);
        assert_eq!(input.batch.unwrap().report_key, format!("batches/{name}/done.json"));
    }

    #[test]
    fn a_job_of_one_task_names_it_in_its_labels() {
        let s = settings(&[]);
        let job = build_job(TaskKind::HashTask, &task("solo", "ns"), 3, 42, &s);
        assert!(!is_batch(&job));
        let carried = members(&job);
        assert_eq!(carried.len(), 1);
        assert_eq!(carried[0].1, task("solo", "ns").identity);
    }
}

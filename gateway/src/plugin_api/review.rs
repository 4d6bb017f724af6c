//! Who is calling and what they may do, asked of the API server: a TokenReview says whose
//! token it is, a SubjectAccessReview whether that user may create a task kind in a namespace
//! (an upload) or get one task (its outputs).
//! The reviews are built and read here as pure functions; `kube.rs` sends them.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus, UserInfo};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};

/// The API group of the task kinds.
pub const GROUP: &str = "taskyard.dev";

/// The access a request needs: `create` on a task kind's resource in a namespace (an
/// upload), or `get` on one task (its outputs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub namespace: String,
    /// `hashtasks`, `imagetasks` or `texttasks`.
    pub resource: String,
    /// `create` or `get`.
    pub verb: &'static str,
    /// The task's name for `get`; None for `create` (any name).
    pub name: Option<String>,
}

impl Access {
    /// `create` of a task kind in a namespace: what an upload for that kind needs.
    pub fn create(namespace: &str, resource: &str) -> Self {
        Self {
            namespace: namespace.into(),
            resource: resource.into(),
            verb: "create",
            name: None,
        }
    }

    /// `get` of one task: what reading its outputs needs.
    pub fn get(namespace: &str, resource: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            resource: resource.into(),
            verb: "get",
            name: Some(name.into()),
        }
    }

    /// As RBAC and `kubectl auth can-i` name it.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!(
                "{} {}.{GROUP} {name:?} in namespace {}",
                self.verb, self.resource, self.namespace
            ),
            None => format!(
                "{} {}.{GROUP} in namespace {}",
                self.verb, self.resource, self.namespace
            ),
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Why a caller may not upload.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Denied {
    #[error("the bearer token was not accepted by the cluster ({0}); log in again or use a valid token")]
    Unauthenticated(String),
    #[error("{user} may not {what}: ask a cluster admin for a Role granting it{why}")]
    Forbidden { user: String, what: String, why: String },
    #[error("cannot check the caller with the Kubernetes API: {0}; try again")]
    Unavailable(String),
}

pub fn token_review(token: &str) -> TokenReview {
    TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The user a TokenReview's status names, or why the token was refused.
pub fn authenticated(status: Option<TokenReviewStatus>) -> Result<User, Denied> {
    let status = status.unwrap_or_default();
    let user = status.user.clone().unwrap_or_default();
    match (status.authenticated, user) {
        (
            Some(true),
            UserInfo {
                username: Some(username),
                uid,
                groups,
                extra,
            },
        ) => Ok(User {
            username,
            uid: uid.unwrap_or_default(),
            groups: groups.unwrap_or_default(),
            extra: extra.unwrap_or_default(),
        }),
        _ => Err(Denied::Unauthenticated(
            status
                .error
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "unknown token".into()),
        )),
    }
}

pub fn access_review(user: &User, access: &Access) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.username.clone()),
            uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
            groups: Some(user.groups.clone()),
            extra: Some(user.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.into()),
                resource: Some(access.resource.clone()),
                verb: Some(access.verb.into()),
                namespace: Some(access.namespace.clone()),
                name: access.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Allowed, or Forbidden naming the user and the missing permission.
pub fn allowed(user: &User, access: &Access, status: Option<SubjectAccessReviewStatus>) -> Result<(), Denied> {
    let status = status.unwrap_or_default();
    if status.allowed && !status.denied.unwrap_or(false) {
        return Ok(());
    }
    let why = status
        .reason
        .or(status.evaluation_error)
        .filter(|r| !r.is_empty())
        .map(|r| format!(" (the cluster says: {r})"))
        .unwrap_or_default();
    Err(Denied::Forbidden {
        user: user.username.clone(),
        what: access.describe(),
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> User {
        User {
            username: "system:serviceaccount:a:alice".into(),
            uid: "u1".into(),
            groups: vec!["system:serviceaccounts".into()],
            extra: BTreeMap::new(),
        }
    }

    fn access() -> Access {
        Access::create("b", "hashtasks")
    }

    #[test]
    fn an_authenticated_review_gives_the_user() {
        let status = TokenReviewStatus {
            authenticated: Some(true),
            user: Some(UserInfo {
                username: Some("system:serviceaccount:a:alice".into()),
                uid: Some("u1".into()),
                groups: Some(vec!["system:serviceaccounts".into()]),
                extra: None,
            }),
            ..Default::default()
        };
        assert_eq!(authenticated(Some(status)).unwrap(), alice());
    }

    #[test]
    fn a_refused_token_says_why() {
        let status = TokenReviewStatus {
            authenticated: Some(false),
            error: Some("invalid bearer token".into()),
            ..Default::default()
        };
        let e = authenticated(Some(status)).unwrap_err();
        assert!(e.to_string().contains("invalid bearer token"), "{e}");
        assert!(matches!(authenticated(None), Err(Denied::Unauthenticated(_))));
    }

    #[test]
    fn the_access_review_asks_for_create_of_the_kind_in_the_namespace() {
        let review = access_review(&alice(), &access());
        let attrs = review.spec.resource_attributes.unwrap();
        assert_eq!(attrs.verb.as_deref(), Some("create"));
        assert_eq!(attrs.group.as_deref(), Some("taskyard.dev"));
        assert_eq!(attrs.resource.as_deref(), Some("hashtasks"));
        assert_eq!(attrs.namespace.as_deref(), Some("b"));
        assert_eq!(review.spec.user.as_deref(), Some("system:serviceaccount:a:alice"));
        assert_eq!(review.spec.groups.unwrap(), vec!["system:serviceaccounts".to_string()]);
        assert_eq!(attrs.name, None);
    }

    #[test]
    fn the_outputs_review_asks_for_get_of_the_one_task() {
        let review = access_review(&alice(), &Access::get("b", "imagetasks", "gallery"));
        let attrs = review.spec.resource_attributes.unwrap();
        assert_eq!(attrs.verb.as_deref(), Some("get"));
        assert_eq!(attrs.resource.as_deref(), Some("imagetasks"));
        assert_eq!(attrs.name.as_deref(), Some("gallery"));
        assert_eq!(attrs.namespace.as_deref(), Some("b"));
        let no = SubjectAccessReviewStatus::default();
        let e = allowed(&alice(), &Access::get("b", "imagetasks", "gallery"), Some(no))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("alice may not get imagetasks.taskyard.dev \"gallery\" in namespace b"),
            "{e}"
        );
    }

    #[test]
    fn a_denial_names_the_user_and_the_missing_permission() {
        let status = SubjectAccessReviewStatus {
            allowed: false,
            reason: Some(String::new()),
            ..Default::default()
        };
        let e = allowed(&alice(), &access(), Some(status)).unwrap_err().to_string();
        assert!(
            e.contains("system:serviceaccount:a:alice may not create hashtasks.taskyard.dev in namespace b"),
            "{e}"
        );
        let yes = SubjectAccessReviewStatus {
            allowed: true,
            ..Default::default()
        };
        assert!(allowed(&alice(), &access(), Some(yes)).is_ok());
    }
}

//! The check behind every plugin upload: whose token, and may they create the task kind in
//! the namespace. `KubeAuthorizer` asks the API server (the gateway's ServiceAccount needs
//! `create` on tokenreviews and subjectaccessreviews); tests use a fake.

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::api::{Api, PostParams};

use super::review::{self, Access, Denied, User};

pub trait Authorizer: Send + Sync + 'static {
    /// The caller of `token`, if they may have `access`.
    fn authorize<'a>(&'a self, token: &'a str, access: &'a Access) -> BoxFuture<'a, Result<User, Denied>>;
}

pub struct KubeAuthorizer {
    client: kube::Client,
}

impl KubeAuthorizer {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

fn unavailable(what: &str, e: kube::Error) -> Denied {
    Denied::Unavailable(format!("{what}: {e}"))
}

impl Authorizer for KubeAuthorizer {
    fn authorize<'a>(&'a self, token: &'a str, access: &'a Access) -> BoxFuture<'a, Result<User, Denied>> {
        async move {
            let tokens: Api<TokenReview> = Api::all(self.client.clone());
            let reviewed = tokens
                .create(&PostParams::default(), &review::token_review(token))
                .await
                .map_err(|e| unavailable("TokenReview", e))?;
            let user = review::authenticated(reviewed.status)?;
            let reviews: Api<SubjectAccessReview> = Api::all(self.client.clone());
            let decided = reviews
                .create(&PostParams::default(), &review::access_review(&user, access))
                .await
                .map_err(|e| unavailable("SubjectAccessReview", e))?;
            review::allowed(&user, access, decided.status)?;
            Ok(user)
        }
        .boxed()
    }
}

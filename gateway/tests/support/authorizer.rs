//! A stand-in for the API server's TokenReview and SubjectAccessReview: token `good` is the
//! user alice, any other token is unknown, and what alice may do is the test's policy.

#![allow(dead_code)] // each test binary uses part of this

use futures::FutureExt;
use futures::future::BoxFuture;
use taskyard_gateway::plugin_api::authorizer::Authorizer;
use taskyard_gateway::plugin_api::review::{Access, Denied, User};

pub struct FakeAuthorizer {
    /// Whether alice may have an access.
    allows: fn(&Access) -> bool,
}

impl FakeAuthorizer {
    pub fn allowing(allows: fn(&Access) -> bool) -> Self {
        Self { allows }
    }
}

impl Authorizer for FakeAuthorizer {
    fn authorize<'a>(&'a self, token: &'a str, access: &'a Access) -> BoxFuture<'a, Result<User, Denied>> {
        async move {
            if token != "good" {
                return Err(Denied::Unauthenticated("invalid bearer token".into()));
            }
            let user = User {
                username: "alice".into(),
                ..Default::default()
            };
            if (self.allows)(access) {
                Ok(user)
            } else {
                Err(Denied::Forbidden {
                    user: user.username,
                    what: access.describe(),
                    why: String::new(),
                })
            }
        }
        .boxed()
    }
}

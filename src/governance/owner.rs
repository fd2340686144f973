//! Who owns what the gateway keeps for a caller: stored responses, cache entries, and whatever else
//! is kept per caller. Every kind of caller has one owner id, derived here and nowhere else, and a
//! caller reads (continues, deletes, hits in the cache) only what its own id owns, unless it is the
//! gateway's administrator, who sees everything.
//!
//! | caller | owner id | sees all |
//! |---|---|---|
//! | master key, admin console session | `master` | yes |
//! | virtual key | `key:<key id>` | no |
//! | JWT caller | `jwt:<digest of issuer and subject>` | no |
//! | viewer console session | `console:viewer` | no |
//! | anyone, on a gateway without a master key | `anonymous` | no |

use super::{Caller, Role};

/// The administrator's owner id.
pub const MASTER: &str = "master";

/// The owner id of what the gateway keeps for one caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    id: String,
    sees_all: bool,
}

impl Owner {
    /// The gateway's administrator: the master key or an admin's console session.
    pub fn master() -> Owner {
        Owner {
            id: MASTER.into(),
            sees_all: true,
        }
    }

    pub fn of(caller: &Caller) -> Owner {
        let id = match caller {
            Caller::Master | Caller::Session(Role::Admin) => return Owner::master(),
            Caller::Session(Role::Viewer) => "console:viewer".to_string(),
            Caller::Anonymous => "anonymous".to_string(),
            Caller::Key(key) => format!("key:{}", key.id),
            Caller::Jwt(jwt) => format!("jwt:{}", jwt.principal),
        };
        Owner {
            id,
            sees_all: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The administrator, who reads everyone's and may name ids the gateway does not hold.
    pub fn sees_all(&self) -> bool {
        self.sees_all
    }

    /// Whether this caller may read, continue or delete what `owner` keeps.
    pub fn may_use(&self, owner: &str) -> bool {
        self.sees_all || self.id == owner
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::governance::jwt::JwtCaller;

    fn jwt(principal: &str) -> Caller {
        Caller::Jwt(Arc::new(JwtCaller {
            user: "same-name".into(),
            principal: principal.into(),
            team: None,
            role: None,
        }))
    }

    #[test]
    fn every_caller_kind_has_its_own_owner() {
        let a = Owner::of(&jwt("p1"));
        let b = Owner::of(&jwt("p2"));
        assert_ne!(a, b, "two JWT users with the same display name");
        assert!(!a.may_use(b.id()) && !b.may_use(a.id()));
        assert!(a.may_use(a.id()));
        let anonymous = Owner::of(&Caller::Anonymous);
        let viewer = Owner::of(&Caller::Session(Role::Viewer));
        for o in [&a, &b, &anonymous, &viewer] {
            assert!(!o.sees_all());
            assert!(!o.may_use("master"));
            assert!(Owner::master().may_use(o.id()));
        }
        assert_eq!(Owner::of(&Caller::Session(Role::Admin)), Owner::master());
        assert_eq!(Owner::of(&Caller::Master), Owner::master());
    }
}

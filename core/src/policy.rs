//! Access policy: who may do what, to which collections, fields and keyrings, for which
//! purpose — default deny, least privilege, with break-the-glass for emergencies.
//!
//! Callers act as a [`Caller`]: a principal named in the policy (whose roles the policy
//! assigns — callers cannot claim roles) and a stated purpose. The vault's owner (whoever holds
//! the root key, and the CLI unless told otherwise) is the built-in principal `owner` with
//! every right. The policy is stored in the vault sealed under a key derived from the vault
//! master key, so editing the store cannot widen access; changing it is audited.
//!
//! ```toml
//! [[principal]]
//! name = "dr-house"
//! roles = ["clinician"]
//!
//! [[rule]]
//! roles = ["clinician"]
//! purposes = ["treatment"]          # omitted: any purpose
//! actions = ["get", "decrypt", "detokenize"]
//! collections = ["notes"]           # records; "*" for all
//! fields = ["ssn", "mrn"]           # tokenization fields
//! keyrings = ["default"]            # envelope encrypt/decrypt
//! view = "masked"                   # the most a detokenize may reveal
//!
//! [[break_glass]]
//! roles = ["clinician"]
//! ```

use crate::audit::{Action, AuditLog, Outcome};
use crate::cache::SharedCache;
use crate::keys::Keys;
use crate::store::{Space, Store, WriteOp};
use crate::tokens::View;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The built-in principal with every right: the holder of the root key (the name its audit
/// entries carry).
pub use crate::audit::OWNER;
pub(crate) const POLICY_KEY: &[u8] = b"policy";
/// Detail of the audit entry of a caller that is not the owner but uses its name.
pub const IMPERSONATION: &str = "caller named 'owner' is not the vault owner";

/// Who is calling, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The principal's name, as the policy knows it.
    pub principal: String,
    /// The stated purpose (treatment, research, billing, ...).
    pub purpose: String,
    /// Break-the-glass: the stated reason for an emergency override.
    pub break_glass: Option<String>,
    /// Set only by [`Caller::owner`]: a principal *named* "owner" gets no rights from its name.
    owner: bool,
}

impl Caller {
    /// A principal acting for a purpose.
    pub fn new(principal: impl Into<String>, purpose: impl Into<String>) -> Self {
        Caller {
            principal: principal.into(),
            purpose: purpose.into(),
            break_glass: None,
            owner: false,
        }
    }

    /// The vault owner (every right).
    pub fn owner() -> Self {
        Caller {
            owner: true,
            ..Caller::new(OWNER, "administration")
        }
    }

    /// The same caller with another stated purpose.
    #[must_use]
    pub fn with_purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = purpose.into();
        self
    }

    /// Whether this is the vault owner (created by [`Caller::owner`], never by a name).
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// Invokes break-the-glass with a stated reason: succeeds for principals whose roles the
    /// policy permits to break the glass, and is flagged in the audit log for review. The
    /// reason is stored encrypted; keep it free of PHI anyway.
    #[must_use]
    pub fn break_glass(mut self, reason: impl Into<String>) -> Self {
        self.break_glass = Some(reason.into());
        self
    }
}

/// A principal and the roles the policy gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSpec {
    /// Name.
    pub name: String,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// One grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Roles it applies to.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Principals it applies to (in addition to roles).
    #[serde(default)]
    pub principals: Vec<String>,
    /// Purposes it applies to; empty: any.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Actions granted: encrypt, decrypt, put, get, delete, tokenize, detokenize.
    pub actions: Vec<String>,
    /// Record collections ("*" for all).
    #[serde(default)]
    pub collections: Vec<String>,
    /// Tokenization fields ("*" for all).
    #[serde(default)]
    pub fields: Vec<String>,
    /// Keyrings for envelope encrypt/decrypt ("*" for all).
    #[serde(default)]
    pub keyrings: Vec<String>,
    /// The most a detokenize may reveal: plaintext, masked or redacted (default plaintext).
    #[serde(default)]
    pub view: View,
}

/// Who may break the glass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlass {
    /// Roles permitted.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Principals permitted.
    #[serde(default)]
    pub principals: Vec<String>,
}

/// The whole policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Principals and their roles.
    #[serde(default, rename = "principal")]
    pub principals: Vec<PrincipalSpec>,
    /// Grants.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    /// Break-the-glass permissions.
    #[serde(default, rename = "break_glass")]
    pub break_glass: Vec<BreakGlass>,
}

/// What an access is aimed at, for the decision.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Resource<'a> {
    Collection(&'a str),
    Field(&'a str),
    Keyring(&'a str),
}

const ACTIONS: [&str; 7] = [
    "encrypt",
    "decrypt",
    "put",
    "get",
    "delete",
    "tokenize",
    "detokenize",
];

fn view_rank(v: View) -> u8 {
    match v {
        View::Plaintext => 2,
        View::Masked => 1,
        _ => 0,
    }
}

fn matches(list: &[String], name: &str) -> bool {
    list.iter().any(|x| x == "*" || x == name)
}

impl Policy {
    /// Parses and checks a policy from TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        let p: Policy = toml::from_str(text)
            .map_err(|_| Error::invalid("policy", "is not valid policy TOML (see docs)"))?;
        p.validate()?;
        Ok(p)
    }

    /// The policy as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|_| Error::invalid("policy", "cannot be written as TOML"))
    }

    /// Checks names and actions.
    pub fn validate(&self) -> Result<()> {
        for p in &self.principals {
            if p.name.is_empty() || p.name == OWNER {
                return Err(Error::invalid(
                    "policy",
                    "principal names must be non-empty and not 'owner'",
                ));
            }
        }
        for r in &self.rules {
            if r.roles.is_empty() && r.principals.is_empty() {
                return Err(Error::invalid(
                    "policy",
                    "every rule names roles or principals",
                ));
            }
            if r.actions.is_empty() || r.actions.iter().any(|a| !ACTIONS.contains(&a.as_str())) {
                return Err(Error::invalid(
                    "policy",
                    "rule actions must be among encrypt, decrypt, put, get, delete, tokenize, detokenize",
                ));
            }
        }
        Ok(())
    }

    fn roles_of(&self, principal: &str) -> &[String] {
        self.principals
            .iter()
            .find(|p| p.name == principal)
            .map_or(&[], |p| p.roles.as_slice())
    }

    /// The decision for `caller` doing `action` on `resource`.
    pub(crate) fn decide(
        &self,
        caller: &Caller,
        action: Action,
        resource: Resource<'_>,
    ) -> Outcome {
        if caller.owner {
            return Outcome::Allowed;
        }
        let roles = self.roles_of(&caller.principal);
        let applies = |roles_list: &[String], principals: &[String]| {
            principals.iter().any(|p| p == &caller.principal)
                || roles_list.iter().any(|r| roles.contains(r))
        };
        let (name, wanted_view) = match action {
            Action::Detokenize => ("detokenize", Some(View::Plaintext)),
            Action::DetokenizeMasked => ("detokenize", Some(View::Masked)),
            Action::DetokenizeRedacted => ("detokenize", Some(View::Redacted)),
            other => (other.as_str(), None),
        };
        let granted = self.rules.iter().any(|r| {
            applies(&r.roles, &r.principals)
                && (r.purposes.is_empty() || r.purposes.contains(&caller.purpose))
                && r.actions.iter().any(|a| a == name)
                && match resource {
                    Resource::Collection(c) => matches(&r.collections, c),
                    Resource::Field(f) => matches(&r.fields, f),
                    Resource::Keyring(k) => matches(&r.keyrings, k),
                }
                && wanted_view.is_none_or(|v| view_rank(v) <= view_rank(r.view))
        });
        if granted {
            return Outcome::Allowed;
        }
        if let Some(reason) = &caller.break_glass
            && !reason.trim().is_empty()
            && self
                .break_glass
                .iter()
                .any(|b| applies(&b.roles, &b.principals))
        {
            return Outcome::BreakGlass;
        }
        Outcome::Denied
    }
}

/// The one decision point of a vault: the stored policy (cached), the decision, and its audit
/// entry.
pub(crate) struct Guard {
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    audit: Arc<AuditLog>,
    /// The policy, under the name `""`; re-read after [`crate::cache::CACHE_TTL_SECS`].
    cache: SharedCache<Arc<Policy>>,
}

impl Guard {
    /// The guard of the vault with these keys and this log, over `store`.
    pub(crate) fn new(store: Arc<dyn Store>, keys: Arc<Keys>, audit: Arc<AuditLog>) -> Self {
        Guard {
            store,
            keys,
            audit,
            cache: SharedCache::new(),
        }
    }

    /// The stored policy (empty — only the owner may act — if none was set).
    pub(crate) fn policy(&self) -> Result<Policy> {
        Ok(Policy::clone(
            &*self.current_policy(crate::keyring::now_unix())?,
        ))
    }

    /// The policy from the cache, or read from the store (another process may change it: the
    /// cache is re-read after [`crate::cache::CACHE_TTL_SECS`]).
    /// The policy, cached; `now` is the time in Unix seconds.
    fn current_policy(&self, now: u64) -> Result<Arc<Policy>> {
        if let Some(p) = self.cache.get_at("", now)? {
            return Ok(p);
        }
        let policy = Arc::new(match self.store.get(Space::Meta, POLICY_KEY)? {
            None => Policy::default(),
            Some(sealed) => {
                let plain = self.keys.unseal_meta(&[b"policy"], &sealed).map_err(|_| {
                    Error::CorruptMetadata {
                        what: "policy (authentication failed)",
                    }
                })?;
                crate::codec::decode_exact(plain.expose(), "policy")?
            }
        });
        self.cache.insert("", policy.clone())?;
        Ok(policy)
    }

    /// Replaces the policy (owner only), atomically with its audit entry.
    pub(crate) fn set_policy(&self, policy: &Policy) -> Result<()> {
        policy.validate()?;
        let bytes = Zeroizing::new(
            postcard::to_allocvec(policy).map_err(|_| Error::Crypto("policy encoding"))?,
        );
        let sealed = self.keys.seal_meta(&[b"policy"], &bytes)?;
        let put = WriteOp::Put {
            space: Space::Meta,
            key: POLICY_KEY.to_vec(),
            value: sealed,
        };
        self.audit.append(
            crate::audit::Record {
                principal: OWNER,
                purpose: "administration",
                action: Action::PolicySet,
                target: crate::audit::TargetRef {
                    name: "policy",
                    item: None,
                    count: (policy.rules.len()) as u64,
                    detail: Some(format!(
                        "{} principals, {} rules",
                        policy.principals.len(),
                        policy.rules.len()
                    )),
                },
                outcome: Outcome::Allowed,
                reason: None,
            },
            vec![put],
        )?;
        self.store.sync()?;
        self.cache.insert("", Arc::new(policy.clone()))?;
        Ok(())
    }

    /// The one decision point: decides, writes the audit entry (fail closed), and returns the
    /// outcome — or [`Error::AccessDenied`], also audited.
    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        resource: Resource<'_>,
        mut target: crate::audit::TargetRef<'_>,
    ) -> Result<Outcome> {
        // The policy is loaded for the owner too: one that fails to unseal blocks every data
        // call (fail closed); the owner repairs it with `set_policy`, which needs no decision.
        // One clock read for the cache's staleness bound and the audit entry.
        let now_ms = crate::audit::now_ms();
        let policy = self.current_policy(now_ms / 1000)?;
        let outcome = if caller.is_owner() {
            Outcome::Allowed
        } else if caller.principal == OWNER {
            // The owner's name with none of its rights: refused, and marked in the log so
            // its entries never pass for the owner's.
            target.detail = Some(IMPERSONATION.to_owned());
            Outcome::Denied
        } else {
            policy.decide(caller, action, resource)
        };
        self.audit.append_at(
            crate::audit::Record {
                principal: &caller.principal,
                purpose: &caller.purpose,
                action,
                target,
                outcome,
                reason: if outcome == Outcome::BreakGlass {
                    caller.break_glass.as_deref()
                } else {
                    None
                },
            },
            Vec::new(),
            now_ms,
        )?;
        match outcome {
            Outcome::Denied => Err(Error::AccessDenied {
                principal: caller.principal.clone(),
                action: action.as_str(),
            }),
            o => Ok(o),
        }
    }

    /// Logs a call refused before any decision (a reserved context key, say) as a denial with
    /// `why` as its detail; returns `err` (or the audit failure).
    pub(crate) fn refuse(
        &self,
        caller: &Caller,
        action: Action,
        mut target: crate::audit::TargetRef<'_>,
        why: &str,
        err: Error,
    ) -> Error {
        target.detail = Some(why.to_owned());
        let logged = self.audit.append(
            crate::audit::Record {
                principal: &caller.principal,
                purpose: &caller.purpose,
                action,
                target,
                outcome: Outcome::Denied,
                reason: None,
            },
            Vec::new(),
        );
        match logged {
            Ok(()) => err,
            Err(e) => e,
        }
    }
}

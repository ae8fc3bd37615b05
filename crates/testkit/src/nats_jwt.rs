//! Decentralised NATS auth for tests: an operator, its system account and one application
//! account with JetStream, as signed JWTs, and `.creds` files for users of that account. What
//! `nsc` would make, minted here so a test can run a `nats-server` in operator mode (users
//! present a `.creds` file: the user's JWT, and the seed that signs the server's nonce).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde_json::{Value, json};

/// An operator with a system account and an application account whose users may use
/// JetStream without limits.
pub struct Operator {
    operator: KeyPair,
    system: KeyPair,
    account: KeyPair,
}

/// Test keys are not secret, but keep the habit: never print seeds.
impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("operator", &self.operator.public_key())
            .field("account", &self.account.public_key())
            .finish_non_exhaustive()
    }
}

impl Default for Operator {
    fn default() -> Self {
        Self::new()
    }
}

impl Operator {
    /// Fresh keys for the operator and both accounts.
    pub fn new() -> Operator {
        Operator {
            operator: KeyPair::new_operator(),
            system: KeyPair::new_account(),
            account: KeyPair::new_account(),
        }
    }

    /// The server's configuration for this operator: trust it, and preload both accounts
    /// into a memory resolver.
    pub fn server_config(&self) -> String {
        let system = self.system.public_key();
        let account = self.account.public_key();
        let operator_jwt = sign(
            &self.operator,
            &self.operator.public_key(),
            "test-operator",
            json!({ "system_account": system, "type": "operator", "version": 2 }),
        );
        let system_jwt = sign(
            &self.operator,
            &system,
            "SYS",
            json!({ "limits": unlimited(false), "type": "account", "version": 2 }),
        );
        let account_jwt = sign(
            &self.operator,
            &account,
            "mend",
            json!({ "limits": unlimited(true), "type": "account", "version": 2 }),
        );
        format!(
            "operator: \"{operator_jwt}\"\nsystem_account: {system}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {system}: \"{system_jwt}\"\n  {account}: \"{account_jwt}\"\n}}\n"
        )
    }

    /// A `.creds` file's text for a new user of the application account.
    pub fn user_creds(&self, name: &str) -> String {
        let user = KeyPair::new_user();
        let jwt = sign(
            &self.account,
            &user.public_key(),
            name,
            json!({
                "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                "type": "user", "version": 2
            }),
        );
        let seed = user.seed().unwrap_or_default();
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        )
    }
}

/// Account limits: everything unlimited, and JetStream on when `jetstream`.
fn unlimited(jetstream: bool) -> Value {
    let mut limits = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1
    });
    if jetstream && let Some(map) = limits.as_object_mut() {
        for key in ["mem_storage", "disk_storage", "streams", "consumer"] {
            map.insert(key.to_owned(), json!(-1));
        }
    }
    limits
}

/// A JWT for `subject`, issued and signed by `issuer` (header `ed25519-nkey`, as nats-server
/// expects).
fn sign(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let claims = json!({
        "jti": format!("{:x}", rand_id(subject, issued_at)),
        "iat": issued_at,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let signature = issuer.sign(signing_input.as_bytes()).unwrap_or_default();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A JWT id: unique per subject and time (nats-server does not check how it was made).
fn rand_id(subject: &str, issued_at: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (subject, issued_at).hash(&mut hasher);
    hasher.finish()
}

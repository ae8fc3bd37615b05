//! The real registry (`mend_testkit::registry::TestRegistry`: `mend_registry::run` on SQLite)
//! in process on a loopback port, for tests of the client against it, with the settings a
//! deployment gives it (`MEND_*` variables: the write token, TLS).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use mend_bus::Bus;
use mend_proto::registry::v1 as pb;
use mend_runtime::MendConfig;
use mend_testkit::registry::TestRegistry;

/// The registry's write token in these tests.
pub const TOKEN: &str = "client-test-token";

/// One of the runtime's checked-in test certificates (see its README).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../runtime/tests/fixtures/tls")
        .join(name)
}

/// A configuration from `MEND_*` variables, as a service or the CLI reads its environment.
pub fn config(vars: &[(&str, String)]) -> MendConfig {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    MendConfig::from_map(&vars).unwrap()
}

/// A registry whose writes need [`TOKEN`]; champion moves and retrain requests go out on
/// `bus`, if any.
pub async fn start_registry(bus: Option<Arc<dyn Bus>>) -> TestRegistry {
    TestRegistry::setup().token(TOKEN).bus(bus).start().await
}

/// A registry with these `MEND_*` variables (e.g. `MEND_TLS_*`), and only these.
pub async fn start_registry_with(
    vars: &[(&str, String)],
    bus: Option<Arc<dyn Bus>>,
) -> TestRegistry {
    TestRegistry::setup().vars(vars).bus(bus).start().await
}

/// A registration header as a trainer sends it (size and sha256 left to the client).
pub fn header(model: &str) -> pb::RegisterVersionHeader {
    pb::RegisterVersionHeader {
        model: model.to_owned(),
        schema_hash: "schema-1".to_owned(),
        trigger: Some(pb::Trigger {
            event_id: String::new(),
            kind: pb::TriggerKind::Manual.into(),
        }),
        actor: "test".to_owned(),
        reason: "testing".to_owned(),
        ..Default::default()
    }
}

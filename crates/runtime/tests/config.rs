//! Configuration: defaults, environment over file, a named error for every bad value,
//! secrets kept out of `Debug`, and the extension points services use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mend_runtime::config::vars::*;
use mend_runtime::config::{
    ConfigError, Env, LogFormat, MendConfig, NatsAuth, Origin, ServiceAddr, defaults,
};

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<MendConfig, ConfigError> {
    MendConfig::load(env(pairs))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn empty_environment_gives_the_documented_defaults() {
    let config = MendConfig::from_map(&HashMap::new()).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("./mend-data"));
    assert!(
        config.nats.is_none(),
        "unset NATS URL means the embedded bus"
    );
    assert_eq!(config.server_addr.to_string(), "127.0.0.1:8001");
    assert_eq!(config.registry_addr.to_string(), "127.0.0.1:8002");
    assert_eq!(config.ingest_addr.to_string(), "127.0.0.1:8003");
    assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(config.log.format, LogFormat::Pretty);
    assert_eq!(config.log.filter, "info");
    assert_eq!(config.shutdown_grace, defaults::SHUTDOWN_GRACE);
    assert!(config.registry_token.is_none());
    assert!(config.otel.is_none());
    assert!(!config.tls.server_enabled() && !config.tls.client_enabled());
}

#[test]
fn every_variable_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let creds = write(dir.path(), "user.creds", "creds");
    let cert = write(dir.path(), "cert.pem", "cert");
    let key = write(dir.path(), "key.pem", "key");
    let ca = write(dir.path(), "ca.pem", "ca");
    let config = load(&[
        (MEND_DATA_DIR, "/var/lib/mend"),
        (MEND_NATS_URL, "nats://nats:4222"),
        (MEND_NATS_CREDS, creds.to_str().unwrap()),
        (MEND_SERVER_ADDR, "0.0.0.0:9001"),
        (MEND_REGISTRY_ADDR, "mend-registry:8002"),
        (MEND_INGEST_ADDR, "[::]:9003"),
        (MEND_HTTP_ADDR, "0.0.0.0:0"),
        (MEND_LOG_FORMAT, "json"),
        (MEND_LOG, "warn,mend_server=debug"),
        (MEND_REGISTRY_TOKEN, "tok"),
        (MEND_SHUTDOWN_GRACE_MS, "1500"),
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://otel-collector:4317"),
        (OTEL_SERVICE_NAME, "mend-canary"),
        (MEND_TLS_CERT, cert.to_str().unwrap()),
        (MEND_TLS_KEY, key.to_str().unwrap()),
        (MEND_TLS_CA, ca.to_str().unwrap()),
    ])
    .unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/mend"));
    let nats = config.nats.as_ref().unwrap();
    assert_eq!(nats.url, "nats://nats:4222");
    assert_eq!(nats.auth, NatsAuth::Credentials(creds));
    assert_eq!(config.server_addr, ServiceAddr::new("0.0.0.0", 9001));
    assert_eq!(
        config.registry_addr,
        ServiceAddr::new("mend-registry", 8002)
    );
    assert_eq!(config.ingest_addr, ServiceAddr::new("::", 9003));
    assert_eq!(config.http_addr.port(), 0);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.filter, "warn,mend_server=debug");
    assert_eq!(config.registry_token.as_ref().unwrap().expose(), "tok");
    assert_eq!(config.shutdown_grace, Duration::from_millis(1500));
    let otel = config.otel.as_ref().unwrap();
    assert_eq!(otel.endpoint, "http://otel-collector:4317");
    assert_eq!(otel.service_name.as_deref(), Some("mend-canary"));
    assert_eq!(config.tls.identity.as_ref().unwrap().cert, cert);
    assert_eq!(config.tls.identity.as_ref().unwrap().key, key);
    assert_eq!(config.tls.ca.as_ref(), Some(&ca));
}

#[test]
fn environment_overrides_the_file_and_the_file_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mend.toml",
        r#"
            data_dir = "/from/file"
            server_addr = "0.0.0.0:7001"
            log_format = "json"
            shutdown_grace_ms = 2000

            [nats]
            url = "nats://file-nats:4222"
            user = "mend"
            password = "from-file"

            [monitor]
            window = 500
        "#,
    );
    let config = load(&[
        (MEND_CONFIG, file.to_str().unwrap()),
        (MEND_SERVER_ADDR, "0.0.0.0:9001"),
        (MEND_NATS_URL, "nats://env-nats:4222"),
    ])
    .unwrap();
    assert_eq!(config.server_addr.to_string(), "0.0.0.0:9001", "env wins");
    assert_eq!(config.nats.as_ref().unwrap().url, "nats://env-nats:4222");
    assert_eq!(
        config.data_dir,
        PathBuf::from("/from/file"),
        "file beats default"
    );
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.shutdown_grace, Duration::from_millis(2000));
    assert_eq!(
        config.registry_addr.to_string(),
        "127.0.0.1:8002",
        "default"
    );
    match &config.nats.as_ref().unwrap().auth {
        NatsAuth::UserPassword { user, password } => {
            assert_eq!(user, "mend");
            assert_eq!(password.expose(), "from-file");
        }
        other => panic!("expected user/password auth, got {other:?}"),
    }
}

/// Variables to set, the variable the error must name, text the message must contain.
type BadCase<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);

#[test]
fn every_bad_value_is_named_in_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let a_dir = dir.path().to_str().unwrap();
    let cases: &[BadCase] = &[
        (
            &[(MEND_SERVER_ADDR, "localhost")],
            MEND_SERVER_ADDR,
            "localhost",
        ),
        (
            &[(MEND_REGISTRY_ADDR, "registry:99999")],
            MEND_REGISTRY_ADDR,
            "registry:99999",
        ),
        (
            &[(MEND_INGEST_ADDR, "http://ingest:8003")],
            MEND_INGEST_ADDR,
            "http://ingest:8003",
        ),
        (
            &[(MEND_HTTP_ADDR, "my host:8080")],
            MEND_HTTP_ADDR,
            "my host:8080",
        ),
        (&[(MEND_LOG_FORMAT, "xml")], MEND_LOG_FORMAT, "xml"),
        (&[(MEND_LOG, "info,mend=loud")], MEND_LOG, "info,mend=loud"),
        (
            &[(MEND_SHUTDOWN_GRACE_MS, "soon")],
            MEND_SHUTDOWN_GRACE_MS,
            "soon",
        ),
        (
            &[(MEND_SHUTDOWN_GRACE_MS, "-5")],
            MEND_SHUTDOWN_GRACE_MS,
            "-5",
        ),
        (
            &[(MEND_SHUTDOWN_GRACE_MS, "30000000")],
            MEND_SHUTDOWN_GRACE_MS,
            "one hour",
        ),
        (
            &[(MEND_NATS_URL, "http://nats:4222")],
            MEND_NATS_URL,
            "http://nats:4222",
        ),
        (
            &[(MEND_NATS_URL, "nats://a:4222,")],
            MEND_NATS_URL,
            "empty entry",
        ),
        (
            &[(OTEL_EXPORTER_OTLP_ENDPOINT, "otel-collector:4317")],
            OTEL_EXPORTER_OTLP_ENDPOINT,
            "otel-collector:4317",
        ),
        (
            &[(OTEL_EXPORTER_OTLP_ENDPOINT, "https://otel:4317")],
            OTEL_EXPORTER_OTLP_ENDPOINT,
            MEND_TLS_CA,
        ),
        (&[(MEND_TLS_CERT, missing)], MEND_TLS_CERT, missing),
        (&[(MEND_TLS_KEY, a_dir)], MEND_TLS_KEY, a_dir),
        (&[(MEND_TLS_CA, missing)], MEND_TLS_CA, missing),
        (&[(MEND_NATS_CREDS, missing)], MEND_NATS_CREDS, missing),
        (&[(MEND_CONFIG, missing)], MEND_CONFIG, missing),
        (
            &[(MEND_NATS_USER, "mend"), (MEND_NATS_URL, "nats://n:4222")],
            MEND_NATS_USER,
            MEND_NATS_PASSWORD,
        ),
        (&[(MEND_NATS_TOKEN, "t")], MEND_NATS_TOKEN, MEND_NATS_URL),
        (
            &[
                (MEND_NATS_URL, "nats://n:4222"),
                (MEND_NATS_TOKEN, "t"),
                (MEND_NATS_USER, "u"),
                (MEND_NATS_PASSWORD, "p"),
            ],
            "MEND_NATS_TOKEN and MEND_NATS_USER",
            "one NATS authentication method",
        ),
    ];
    for (vars, named, mentioned) in cases {
        let err = load(vars).expect_err(&format!("{vars:?} should be rejected"));
        let message = err.to_string();
        assert_eq!(err.var(), *named, "{message}");
        assert!(message.contains(named), "{message} should name {named}");
        assert!(
            message.contains(mentioned),
            "{message} should mention {mentioned}"
        );
    }
}

#[test]
fn tls_cert_without_key_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write(dir.path(), "cert.pem", "cert");
    let err = load(&[(MEND_TLS_CERT, cert.to_str().unwrap())]).unwrap_err();
    assert_eq!(err.var(), MEND_TLS_CERT);
    assert!(err.to_string().contains(MEND_TLS_KEY), "{err}");
}

#[test]
fn a_bad_file_value_names_the_variable_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "mend.toml", "http_addr = \"nowhere\"\n");
    let err = load(&[(MEND_CONFIG, file.to_str().unwrap())]).unwrap_err();
    let ConfigError::Invalid {
        var, value, origin, ..
    } = &err
    else {
        panic!("expected Invalid, got {err:?}");
    };
    assert_eq!(var, MEND_HTTP_ADDR);
    assert_eq!(value, "nowhere");
    assert_eq!(
        origin,
        &Origin::File {
            path: file.clone(),
            key: "http_addr".to_owned()
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("http_addr") && message.contains("mend.toml"),
        "{message}"
    );
}

#[test]
fn malformed_toml_and_unknown_keys_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.toml", "server_addr = \n");
    let err = load(&[(MEND_CONFIG, broken.to_str().unwrap())]).unwrap_err();
    assert!(matches!(err, ConfigError::FileSyntax { .. }), "{err:?}");
    assert_eq!(err.var(), MEND_CONFIG);

    let typo = write(dir.path(), "typo.toml", "sever_addr = \"0.0.0.0:1\"\n");
    let err = load(&[(MEND_CONFIG, typo.to_str().unwrap())]).unwrap_err();
    assert!(err.to_string().contains("sever_addr"), "{err}");

    let nested = write(
        dir.path(),
        "nested.toml",
        "[nats]\nurll = \"nats://n:4222\"\n",
    );
    let err = load(&[(MEND_CONFIG, nested.to_str().unwrap())]).unwrap_err();
    assert!(err.to_string().contains("nats.urll"), "{err}");

    let table = write(dir.path(), "table.toml", "log_format = [\"json\"]\n");
    let err = load(&[(MEND_CONFIG, table.to_str().unwrap())]).unwrap_err();
    assert_eq!(err.var(), MEND_LOG_FORMAT, "{err}");
}

#[test]
fn secrets_never_appear_in_debug_output_or_errors() {
    let config = load(&[
        (MEND_NATS_URL, "nats://admin:url-pass@nats:4222"),
        (MEND_NATS_USER, "mend"),
        (MEND_NATS_PASSWORD, "nats-pass"),
        (MEND_REGISTRY_TOKEN, "registry-tok"),
    ])
    .unwrap();
    let debug = format!("{config:?}");
    for secret in ["url-pass", "nats-pass", "registry-tok"] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    assert!(debug.contains("nats://***@nats:4222"), "{debug}");
    assert!(debug.contains("Secret(***)"), "{debug}");

    let err = load(&[(MEND_NATS_URL, "http://admin:url-pass@nats:4222")]).unwrap_err();
    assert!(!err.to_string().contains("url-pass"), "{err}");
    assert!(!format!("{err:?}").contains("url-pass"), "{err:?}");
}

#[derive(Debug, Default, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MonitorSection {
    window: u32,
    threshold: f64,
}

#[test]
fn services_read_their_own_sections_and_variables() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mend.toml",
        "[monitor]\nwindow = 500\n\n[trainer]\ncooldown = \"ten\"\n",
    );
    let config = load(&[
        (MEND_CONFIG, file.to_str().unwrap()),
        ("MEND_MONITOR_WINDOW", "800"),
        ("MEND_TRAINER_MAX_ROWS", "lots"),
    ])
    .unwrap();

    let monitor: MonitorSection = config.section("monitor").unwrap();
    assert_eq!(
        monitor,
        MonitorSection {
            window: 500,
            threshold: 0.0
        }
    );
    let absent: MonitorSection = config.section("server").unwrap();
    assert_eq!(absent, MonitorSection::default());

    #[derive(Debug, Default, serde::Deserialize)]
    #[allow(dead_code)]
    struct TrainerSection {
        cooldown: u64,
    }
    let err = config.section::<TrainerSection>("trainer").unwrap_err();
    assert!(err.to_string().contains("[trainer]"), "{err}");

    let window: u32 = config
        .source()
        .parse_or("MEND_MONITOR_WINDOW", "monitor.window", 100)
        .unwrap();
    assert_eq!(window, 800, "env over file for a service's own setting");
    let from_file: u32 = config
        .source()
        .parse_or("MEND_MONITOR_UNSET", "monitor.window", 100)
        .unwrap();
    assert_eq!(from_file, 500);
    let err = config
        .env()
        .parse::<u64>("MEND_TRAINER_MAX_ROWS")
        .unwrap_err();
    assert_eq!(err.var(), "MEND_TRAINER_MAX_ROWS");
    assert!(err.to_string().contains("\"lots\""), "{err}");
}

#[test]
fn empty_values_count_as_unset() {
    let config = load(&[(MEND_NATS_URL, ""), (MEND_SERVER_ADDR, "")]).unwrap();
    assert!(config.nats.is_none());
    assert_eq!(config.server_addr.to_string(), "127.0.0.1:8001");
}

#[test]
fn nats_tls_and_replicas_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "nats-ca.pem", "ca");
    let cert = write(dir.path(), "nats-cert.pem", "cert");
    let key = write(dir.path(), "nats-key.pem", "key");
    let (ca, cert, key) = (
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    let config = load(&[
        (MEND_NATS_URL, "tls://nats:4222"),
        (MEND_NATS_TOKEN, "t0ken"),
        (MEND_NATS_TLS_CA, ca),
        (MEND_NATS_TLS_CERT, cert),
        (MEND_NATS_TLS_KEY, key),
        (MEND_NATS_TLS_REQUIRED, "true"),
        (MEND_NATS_REPLICAS, "3"),
    ])
    .unwrap();
    let nats = config.nats.as_ref().unwrap();
    assert_eq!(nats.replicas, 3);
    assert_eq!(nats.tls.ca.as_deref(), Some(Path::new(ca)));
    assert_eq!(
        nats.tls.identity.as_ref().map(|id| id.cert.as_path()),
        Some(Path::new(cert))
    );
    assert!(nats.tls.required);
    assert!(
        !format!("{config:?}").contains("t0ken"),
        "secrets stay out of Debug"
    );

    let plain = load(&[(MEND_NATS_URL, "nats://nats:4222")]).unwrap();
    let plain = plain.nats.unwrap();
    assert_eq!(plain.replicas, 1, "one replica by default");
    assert!(!plain.tls.is_configured());

    let url = (MEND_NATS_URL, "nats://nats:4222");
    let cases: &[BadCase] = &[
        (
            &[url, (MEND_NATS_REPLICAS, "0")],
            MEND_NATS_REPLICAS,
            "1 to 5",
        ),
        (
            &[url, (MEND_NATS_REPLICAS, "6")],
            MEND_NATS_REPLICAS,
            "1 to 5",
        ),
        (
            &[url, (MEND_NATS_REPLICAS, "three")],
            MEND_NATS_REPLICAS,
            "three",
        ),
        (
            &[(MEND_NATS_REPLICAS, "3")],
            MEND_NATS_REPLICAS,
            MEND_NATS_URL,
        ),
        (&[(MEND_NATS_TLS_CA, ca)], MEND_NATS_TLS_CA, MEND_NATS_URL),
        (
            &[url, (MEND_NATS_TLS_CERT, cert)],
            MEND_NATS_TLS_CERT,
            MEND_NATS_TLS_KEY,
        ),
        (
            &[url, (MEND_NATS_TLS_REQUIRED, "yes")],
            MEND_NATS_TLS_REQUIRED,
            "yes",
        ),
        (
            &[url, (MEND_NATS_TLS_CA, "/no/such/ca.pem")],
            MEND_NATS_TLS_CA,
            "/no/such/ca.pem",
        ),
    ];
    for (vars, named, mentioned) in cases {
        let err = load(vars).expect_err(&format!("{vars:?} should be rejected"));
        let message = err.to_string();
        assert_eq!(err.var(), *named, "{message}");
        assert!(message.contains(named), "{message} should name {named}");
        assert!(
            message.contains(mentioned),
            "{message} should mention {mentioned}"
        );
    }
}

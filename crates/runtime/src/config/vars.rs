//! Every environment variable the shared runtime reads, named once.
//!
//! Services that add their own variables should follow the same habit: one `pub const`
//! per name, prefixed `MEND_`, in the service crate's own config module.

/// Directory for embedded stores (SQLite) and reports. Default `./mend-data`.
pub const MEND_DATA_DIR: &str = "MEND_DATA_DIR";
/// NATS server URL(s), comma separated. Unset: the embedded in-process bus.
pub const MEND_NATS_URL: &str = "MEND_NATS_URL";
/// Path to a NATS `.creds` file (JWT + nkey seed).
pub const MEND_NATS_CREDS: &str = "MEND_NATS_CREDS";
/// A file holding an nkey user seed (`SU...`), for servers that list nkey users.
pub const MEND_NATS_NKEY: &str = "MEND_NATS_NKEY";
/// NATS token authentication. A secret.
pub const MEND_NATS_TOKEN: &str = "MEND_NATS_TOKEN";
/// NATS user for user/password authentication; needs `MEND_NATS_PASSWORD`.
pub const MEND_NATS_USER: &str = "MEND_NATS_USER";
/// NATS password for user/password authentication. A secret.
pub const MEND_NATS_PASSWORD: &str = "MEND_NATS_PASSWORD";
/// PEM CA bundle that signs the NATS server's certificate; set: the connection uses TLS.
pub const MEND_NATS_TLS_CA: &str = "MEND_NATS_TLS_CA";
/// PEM client certificate for NATS TLS (servers with `verify: true`); needs `MEND_NATS_TLS_KEY`.
pub const MEND_NATS_TLS_CERT: &str = "MEND_NATS_TLS_CERT";
/// PEM private key of `MEND_NATS_TLS_CERT`.
pub const MEND_NATS_TLS_KEY: &str = "MEND_NATS_TLS_KEY";
/// `true`: refuse to talk to NATS without TLS. Default `false` (TLS when the server asks or a
/// `tls://` URL or `MEND_NATS_TLS_CA` is given).
pub const MEND_NATS_TLS_REQUIRED: &str = "MEND_NATS_TLS_REQUIRED";
/// Copies of each JetStream stream and registry bucket, 1 to 5. Default 1; 3 in a cluster.
pub const MEND_NATS_REPLICAS: &str = "MEND_NATS_REPLICAS";
/// Open Inference Protocol gRPC address (`host:port`). Default `127.0.0.1:8001`.
pub const MEND_SERVER_ADDR: &str = "MEND_SERVER_ADDR";
/// Registry gRPC address (`host:port`). Default `127.0.0.1:8002`.
pub const MEND_REGISTRY_ADDR: &str = "MEND_REGISTRY_ADDR";
/// Ingest gRPC address (`host:port`). Default `127.0.0.1:8003`.
pub const MEND_INGEST_ADDR: &str = "MEND_INGEST_ADDR";
/// HTTP address for `/metrics`, `/healthz` and reports. Default `127.0.0.1:8080`.
pub const MEND_HTTP_ADDR: &str = "MEND_HTTP_ADDR";
/// Log output: `pretty` (default) or `json`.
pub const MEND_LOG_FORMAT: &str = "MEND_LOG_FORMAT";
/// Log filter in `tracing_subscriber::EnvFilter` syntax. Default `info`.
pub const MEND_LOG: &str = "MEND_LOG";
/// Optional path of a TOML config file; environment variables override it.
pub const MEND_CONFIG: &str = "MEND_CONFIG";
/// Bearer token that registry writes must carry. A secret.
pub const MEND_REGISTRY_TOKEN: &str = "MEND_REGISTRY_TOKEN";
/// How long a service may drain after SIGTERM before it stops anyway. Default 25000.
pub const MEND_SHUTDOWN_GRACE_MS: &str = "MEND_SHUTDOWN_GRACE_MS";
/// PEM certificate chain a gRPC server presents; needs `MEND_TLS_KEY`.
pub const MEND_TLS_CERT: &str = "MEND_TLS_CERT";
/// PEM private key for `MEND_TLS_CERT`.
pub const MEND_TLS_KEY: &str = "MEND_TLS_KEY";
/// PEM CA bundle: servers require client certificates signed by it (mTLS);
/// clients trust servers signed by it.
pub const MEND_TLS_CA: &str = "MEND_TLS_CA";
/// OTLP gRPC endpoint (`http://collector:4317`). Set: spans are exported.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `service.name` resource attribute. Default: the binary's own name.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";

/// Every variable above, so tools (and `mend up --help`) can list them.
pub const ALL: &[&str] = &[
    MEND_DATA_DIR,
    MEND_NATS_URL,
    MEND_NATS_CREDS,
    MEND_NATS_NKEY,
    MEND_NATS_TOKEN,
    MEND_NATS_USER,
    MEND_NATS_PASSWORD,
    MEND_NATS_TLS_CA,
    MEND_NATS_TLS_CERT,
    MEND_NATS_TLS_KEY,
    MEND_NATS_TLS_REQUIRED,
    MEND_NATS_REPLICAS,
    MEND_SERVER_ADDR,
    MEND_REGISTRY_ADDR,
    MEND_INGEST_ADDR,
    MEND_HTTP_ADDR,
    MEND_LOG_FORMAT,
    MEND_LOG,
    MEND_CONFIG,
    MEND_REGISTRY_TOKEN,
    MEND_SHUTDOWN_GRACE_MS,
    MEND_TLS_CERT,
    MEND_TLS_KEY,
    MEND_TLS_CA,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_SERVICE_NAME,
];

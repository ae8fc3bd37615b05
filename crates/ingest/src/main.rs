//! `mend-ingest`: the ingest service as its own process, hosted by `mend_runtime::host`
//! (config → telemetry → bind → open → signals → serve within the shutdown grace).

fn main() -> std::process::ExitCode {
    mend_runtime::host::main::<mend_ingest::MendIngest>()
}

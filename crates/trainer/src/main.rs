//! `mend-trainer`: the trainer as its own process, hosted by `mend_runtime::host` (config, which
//! needs `MEND_NATS_URL` → telemetry → bind → connect to NATS → signals → serve within the
//! shutdown grace).

fn main() -> std::process::ExitCode {
    mend_runtime::host::main::<mend_trainer::MendTrainer>()
}

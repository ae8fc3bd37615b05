//! `mend-registry`: the model registry as its own process, hosted by `mend_runtime::host`
//! (config → telemetry → bind → open the store → signals → serve within the shutdown grace).

fn main() -> std::process::ExitCode {
    mend_runtime::host::main::<mend_registry::MendRegistry>()
}

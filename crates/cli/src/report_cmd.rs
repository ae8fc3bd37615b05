//! `mend report MODEL [ID] [--open]`: fetches a drift report from the monitor over HTTP and
//! writes its self-contained HTML page to a file (`--open` shows it with `xdg-open`).
//!
//! Finds the monitor through `MEND_HTTP_ADDR` (default `127.0.0.1:8080`) or `--addr`. Without
//! an ID the newest report is fetched; `--list` lists the model's reports instead. The HTTP
//! client is a small HTTP/1.1 one over `TcpStream`: three GETs do not justify an HTTP stack.
//!
//! The summary prints the report's verdicts ([`MonitorReport::verdicts`]): the monitor's alarm,
//! dataset drift, feature drift, prediction drift and performance drift, one line each, the
//! very lines the page opens with; the listing's columns carry the same names.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use mend_monitor::{MonitorReport, ReportSummary};
use mend_runtime::config::{Env, MendConfig};
use serde_json::Value;

use crate::output::{f4, table};

/// Connect, read and write timeout of each request.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response accepted (a report page with many features is a few MB at most).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// Arguments of `mend report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The model whose report to fetch.
    model: String,
    /// The report id (default: the newest report).
    id: Option<String>,
    /// Where to write the HTML page (default: `mend-report-<model>-<id>.html`).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Open the page with `xdg-open` once written.
    #[arg(long)]
    open: bool,
    /// List the model's reports instead of fetching one.
    #[arg(long)]
    list: bool,
    /// The monitor's HTTP address (default: `MEND_HTTP_ADDR`).
    #[arg(long)]
    addr: Option<String>,
}

pub fn run(args: ReportArgs, json: bool) -> anyhow::Result<()> {
    let addr = match &args.addr {
        Some(addr) => addr.clone(),
        None => {
            let config = MendConfig::load(Env::from_process()).context("invalid configuration")?;
            format!("{}:{}", config.http_addr.host(), config.http_addr.port())
        }
    };
    let model = &args.model;
    if args.list {
        let body = get(&addr, &format!("/reports/{model}"))?;
        let reports: Value =
            serde_json::from_slice(&body).context("the report list is not JSON")?;
        if json {
            println!("{}", serde_json::to_string_pretty(&reports)?);
        } else {
            let reports: Vec<ReportSummary> = serde_json::from_value(reports)
                .context("the report list is not a list of reports")?;
            print!("{}", list_text(&reports));
        }
        return Ok(());
    }
    let id = args.id.as_deref().unwrap_or("latest");
    let body = get(&addr, &format!("/reports/{model}/{id}"))?;
    let report: Value = serde_json::from_slice(&body).context("the report is not JSON")?;
    let id = report["id"].as_str().unwrap_or(id).to_owned();
    let page = get(&addr, &format!("/reports/{model}/{id}.html"))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("mend-report-{model}-{id}.html")));
    std::fs::write(&out, &page).with_context(|| format!("failed to write {}", out.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let mut typed: MonitorReport =
            serde_json::from_value(report).context("the monitor's answer is not a report")?;
        typed.name_verdicts();
        print!("{}", summary_text(&typed, &out));
    }
    if args.open {
        open(&out);
    }
    Ok(())
}

/// The listing: one row per report, its verdicts in the columns, named as on its page.
fn list_text(reports: &[ReportSummary]) -> String {
    if reports.is_empty() {
        return "no reports yet\n".to_owned();
    }
    let yes_no = |flag: bool| String::from(if flag { "yes" } else { "no" });
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            // A monitor older than the named verdicts sent only these.
            let mut alarm = r.alarm;
            alarm.data |= r.data_drift;
            let features = if r.feature_drift.is_empty() {
                &r.drifted_features
            } else {
                &r.feature_drift
            };
            vec![
                r.id.clone(),
                format!("v{}", r.champion_version),
                r.rows.to_string(),
                alarm.kinds(),
                yes_no(r.dataset_drift),
                f4(r.drift_share),
                if features.is_empty() {
                    "no".to_owned()
                } else {
                    features.join(", ")
                },
                yes_no(r.prediction_drift),
                r.performance_drift.map_or_else(|| "-".to_owned(), yes_no),
                r.accuracy.map(f4).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "id",
            "champion",
            "rows",
            "alarm",
            "dataset drift",
            "share",
            "feature drift",
            "prediction drift",
            "performance drift",
            "accuracy",
        ],
        &rows,
    );
    out.push('\n');
    out
}

/// A report's verdicts, each line exactly as the first lines of its page say it.
fn summary_text(report: &MonitorReport, out: &std::path::Path) -> String {
    let mut text = format!(
        "report {} of {}: champion v{}, {} rows\n",
        report.id, report.model, report.champion_version, report.drift.current_rows
    );
    for verdict in report.verdicts() {
        text.push_str(&verdict.line());
        text.push('\n');
    }
    text.push_str(&format!("wrote {}\n", out.display()));
    text
}

/// Opens a file with `xdg-open` when there is one; otherwise says where the file is.
fn open(path: &std::path::Path) {
    match std::process::Command::new("xdg-open").arg(path).spawn() {
        Ok(_) => {}
        Err(_) => eprintln!(
            "xdg-open is not available; open {} yourself",
            path.display()
        ),
    }
}

/// GETs `path` from `addr` and returns the body of a 200 response.
fn get(addr: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    let socket = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve the monitor address {addr}"))?
        .next()
        .with_context(|| format!("no address for {addr}"))?;
    let mut stream = TcpStream::connect_timeout(&socket, TIMEOUT).with_context(|| {
        format!("cannot reach the monitor at {addr} (is it running? set MEND_HTTP_ADDR)")
    })?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json, */*\r\nConnection: close\r\nUser-Agent: mend\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut raw)
        .context("failed to read the monitor's response")?;
    let (status, body) = parse_response(&raw)?;
    match status {
        200 => Ok(body),
        404 => bail!("not found: {path}"),
        _ => bail!(
            "the monitor answered {status} for {path}: {}",
            String::from_utf8_lossy(&body).trim()
        ),
    }
}

/// Splits an HTTP/1.1 response into status and body (plain, or chunked).
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the monitor's response has no header end")?;
    let head = std::str::from_utf8(&raw[..end]).context("the response head is not text")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .context("the response has no status")?;
    let chunked = lines.any(|line| {
        let lower = line.to_ascii_lowercase();
        lower.starts_with("transfer-encoding:") && lower.contains("chunked")
    });
    let body = &raw[end + 4..];
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk has no size line")?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).context("a chunk size is not hex")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        if rest.len() < size {
            bail!("the response ended inside a chunk");
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_response(plain).unwrap(), (200, b"hello".to_vec()));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (404, b"abcde".to_vec()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}

//! The benchmark's summary: throughput, exact latency percentiles, errors, versions seen.

use std::time::Duration;

use serde_json::json;

use super::load::{LoadResult, LoadSpec};
use super::self_serve::Promotions;

/// The latency at quantile `q` (0..=1) of sorted latencies, nearest rank.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn print(
    spec: &LoadSpec,
    result: &LoadResult,
    promotions: Option<Promotions>,
    json_out: bool,
) -> anyhow::Result<()> {
    let answered = result.latencies.len() as u64;
    let failed: u64 = result.errors.values().sum();
    let seconds = result.elapsed.as_secs_f64().max(f64::EPSILON);
    let requests_per_s = answered as f64 / seconds;
    let rows_per_s = requests_per_s * spec.rows as f64;
    let mean = if answered == 0 {
        Duration::ZERO
    } else {
        result.latencies.iter().sum::<Duration>() / u32::try_from(answered).unwrap_or(u32::MAX)
    };
    let p = |q| percentile(&result.latencies, q);
    let max = result.latencies.last().copied().unwrap_or_default();
    if json_out {
        let out = json!({
            "model": spec.model,
            "shape": result.shape,
            "concurrency": spec.concurrency,
            "connections": spec.connections,
            "rows_per_request": spec.rows,
            "seconds": seconds,
            "requests": answered,
            "requests_per_s": requests_per_s,
            "rows_per_s": rows_per_s,
            "latency_ms": {
                "mean": ms(mean), "p50": ms(p(0.5)), "p90": ms(p(0.9)), "p99": ms(p(0.99)),
                "p99_9": ms(p(0.999)), "max": ms(max),
            },
            "errors": result.errors,
            "versions": result.versions,
            "promotions": promotions.as_ref().map(|p| p.versions.len()),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "mend bench: model `{}`, {} clients over {} connections, {:.1} s measured, {} row(s)/request ({})",
        spec.model, spec.concurrency, spec.connections, seconds, spec.rows, result.shape
    );
    println!("requests   {answered:>12}   {requests_per_s:>12.0}/s");
    println!(
        "rows       {:>12}   {rows_per_s:>12.0}/s",
        answered * spec.rows as u64
    );
    println!(
        "latency    mean {:.3} ms   p50 {:.3} ms   p90 {:.3} ms   p99 {:.3} ms   p99.9 {:.3} ms   max {:.3} ms",
        ms(mean),
        ms(p(0.5)),
        ms(p(0.9)),
        ms(p(0.99)),
        ms(p(0.999)),
        ms(max)
    );
    if failed == 0 {
        println!("errors     0");
    } else {
        let by_code: Vec<String> = result
            .errors
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        println!("errors     {failed} ({})", by_code.join(", "));
    }
    let versions: Vec<String> = result
        .versions
        .iter()
        // mend answers `1`; other servers may answer `v1` already.
        .map(|(version, n)| match version.strip_prefix('v') {
            Some(_) => format!("{version}: {n}"),
            None => format!("v{version}: {n}"),
        })
        .collect();
    if versions.len() <= 8 {
        println!("versions   {}", versions.join(", "));
    } else {
        println!("versions   {} distinct versions answered", versions.len());
    }
    if let Some(promotions) = promotions {
        println!(
            "promotions {} during the run (to v{})",
            promotions.versions.len(),
            promotions.versions.last().copied().unwrap_or(0)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        assert_eq!(percentile(&sorted, 0.5), Duration::from_micros(500));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_micros(990));
        assert_eq!(percentile(&sorted, 0.999), Duration::from_micros(999));
        assert_eq!(percentile(&sorted, 1.0), Duration::from_micros(1000));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}

//! A replica's name, as it appears in its durable consumer names (`mend-<service>-<name>`), so
//! every replica of a service has its own consumer and a restarted one finds its own again.

use super::error::ConfigError;
use super::source::ConfigSource;

/// Characters a replica name may hold.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// This replica's name, at most `max_len` characters of `[A-Za-z0-9_-]`:
/// - `var` (or `file_key`) when set, refused by name unless it is such a name: an operator who
///   typed it is told, rather than given another name than the one they chose;
/// - else `HOSTNAME` (Kubernetes sets it to the pod name), other characters turned into `-`
///   and, when too long, its tail kept (pod names differ in their random suffix);
/// - else 12 random characters (a new consumer each start).
pub fn replica_instance(
    source: &ConfigSource,
    var: &str,
    file_key: &str,
    max_len: usize,
) -> Result<String, ConfigError> {
    if let Some(raw) = source.raw(var, file_key)? {
        let name = raw.text.trim();
        if name.is_empty() || name.len() > max_len || !name.chars().all(allowed) {
            return Err(source.invalid(
                var,
                file_key,
                &format!("must be 1 to {max_len} characters of [A-Za-z0-9_-]"),
            ));
        }
        return Ok(name.to_owned());
    }
    if let Some(host) = source.env().get("HOSTNAME") {
        let cleaned: String = host
            .trim()
            .chars()
            .map(|c| if allowed(c) { c } else { '-' })
            .collect();
        if !cleaned.is_empty() {
            // Only ASCII is left, so any byte offset is a character boundary.
            let start = cleaned.len().saturating_sub(max_len);
            return Ok(cleaned[start..].to_owned());
        }
    }
    Ok(random_instance())
}

/// 12 random lowercase characters: a NUID's tail (its head is the same for the whole process).
pub fn random_instance() -> String {
    let id = nuid::next().to_string().to_ascii_lowercase();
    id[id.len().saturating_sub(12)..].to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::config::Env;

    fn source(vars: &[(&str, &str)]) -> ConfigSource {
        ConfigSource::new(vars.iter().copied().collect::<Env>(), None)
    }

    fn instance(vars: &[(&str, &str)]) -> Result<String, ConfigError> {
        replica_instance(&source(vars), "MEND_X_INSTANCE", "x.instance", 10)
    }

    #[test]
    fn a_set_name_is_taken_as_given_or_refused_by_name() {
        // (An empty variable counts as unset, as for every setting.)
        assert_eq!(
            instance(&[("MEND_X_INSTANCE", "pod-a_1")]).unwrap(),
            "pod-a_1"
        );
        assert_eq!(
            instance(&[("MEND_X_INSTANCE", " pod-a "), ("HOSTNAME", "host")]).unwrap(),
            "pod-a",
            "the variable wins over HOSTNAME"
        );
        for bad in ["pod.a/b", "0123456789a", "pod a"] {
            let error = instance(&[("MEND_X_INSTANCE", bad)]).unwrap_err();
            assert_eq!(error.var(), "MEND_X_INSTANCE", "{bad:?}: {error}");
            assert!(error.to_string().contains("1 to 10 characters"), "{error}");
        }
    }

    #[test]
    fn the_hostname_is_cleaned_and_its_tail_kept() {
        assert_eq!(instance(&[("HOSTNAME", "pod.a/b")]).unwrap(), "pod-a-b");
        assert_eq!(
            instance(&[("HOSTNAME", "mend-monitor-7d9f8c6b5-x2k4p")]).unwrap(),
            "c6b5-x2k4p"
        );
    }

    #[test]
    fn without_either_the_name_is_random() {
        let (a, b) = (instance(&[]).unwrap(), instance(&[]).unwrap());
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(allowed), "{a}");
        assert_ne!(a, b);
    }
}

//! Which model and alias names the registry accepts.
//!
//! Names end up as NATS subject tokens (`model.promoted.<model>`) and as KV keys, where dots,
//! wildcards and spaces would change meaning, so only `[A-Za-z0-9_-]` is allowed.

use crate::StoreError;

/// Longest accepted model or alias name.
pub const MAX_NAME_LEN: usize = 64;

/// The alias the serving path follows.
pub const CHAMPION: &str = "champion";

/// Checks a model or alias name; `field` names the offending field in the error.
pub fn validate(field: &'static str, name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        "must not be empty".to_owned()
    } else if name.len() > MAX_NAME_LEN {
        format!("must be at most {MAX_NAME_LEN} characters")
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        format!("must use only letters, digits, '_' and '-' (found {bad:?})")
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidArgument { field, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_refuses_subject_syntax() {
        assert!(validate("model", "churn-v2_eu").is_ok());
        for bad in ["", "a.b", "a*", "a>", "a b", "ü", &"x".repeat(65)] {
            let error = validate("model", bad).err();
            assert!(
                matches!(
                    error,
                    Some(StoreError::InvalidArgument { field: "model", .. })
                ),
                "{bad:?} was accepted"
            );
        }
    }
}

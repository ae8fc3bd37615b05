//! Page tokens: the cursor of the last item of a page, as text (a model name, a version
//! number or an audit seq). Clients pass them back unchanged; an empty token starts at
//! the beginning, an empty `next_page_token` means the last page.

use tonic::Status;

use super::status::invalid_argument;

/// The model-name cursor of a `ListModels` token.
pub fn name_cursor(token: &str) -> Option<String> {
    (!token.is_empty()).then(|| token.to_owned())
}

/// The numeric cursor of a `ListVersions` or `GetAudit` token.
pub fn number_cursor(token: &str) -> Result<Option<u64>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    token.parse().map(Some).map_err(|_| {
        invalid_argument(
            "page_token",
            "is not a token this registry returned (pass next_page_token back unchanged)",
        )
    })
}

/// The page size to ask the store for; 0 asks for the store's default (its maximum).
pub fn limit(page_size: u32) -> usize {
    usize::try_from(page_size).unwrap_or(usize::MAX)
}

/// The token of the next page.
pub fn next_token<C: ToString>(next: Option<C>) -> String {
    next.map(|cursor| cursor.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_names_the_field() {
        assert_eq!(number_cursor("").unwrap(), None);
        assert_eq!(number_cursor(&next_token(Some(42u64))).unwrap(), Some(42));
        let status = number_cursor("x1").unwrap_err();
        assert!(status.message().contains("page_token"));
        assert_eq!(name_cursor(""), None);
        assert_eq!(next_token::<u64>(None), "");
    }
}

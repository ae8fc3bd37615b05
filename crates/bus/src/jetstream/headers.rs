//! Conversion between mend's [`Headers`] and NATS header maps.

use async_nats::HeaderMap;

use crate::message::Headers;

pub(crate) fn to_nats_headers(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers.iter() {
        map.insert(name, value);
    }
    map
}

/// Keeps the last value of each header; mend never writes more than one.
pub(crate) fn from_nats_headers(map: &HeaderMap) -> Headers {
    map.iter()
        .filter_map(|(name, values)| {
            let value = values.last()?;
            Some((name.to_string(), value.as_str().to_owned()))
        })
        .collect()
}

//! Cursor pagination: every list is ordered deterministically and a page ends with an opaque
//! `next_cursor` (base64url of the last row's sort key) to pass back as `cursor`.

use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 500;

/// `limit` and `cursor` of a list request.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::field(
                "limit",
                format!("{n} is not between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The decoded sort key of the cursor.
    pub fn after<K: DeserializeOwned>(&self) -> Result<Option<K>, ApiError> {
        let Some(c) = &self.cursor else {
            return Ok(None);
        };
        let bad = || ApiError::field("cursor", "not a cursor returned by this list");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
    }
}

/// Encodes a sort key as a cursor.
pub fn cursor<K: serde::Serialize>(key: &K) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(key).unwrap_or_default())
}

/// The next cursor when the page is full.
pub fn next<T, K: serde::Serialize>(
    items: &[T],
    limit: u64,
    key: impl Fn(&T) -> K,
) -> Option<String> {
    if items.len() as u64 == limit {
        items.last().map(|last| cursor(&key(last)))
    } else {
        None
    }
}

/// Declares a page type for the OpenAPI document.
macro_rules! page_of {
    ($name:ident, $item:ty) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `cursor` for the next page; absent on the last page.
            pub next_cursor: Option<String>,
        }
    };
}
pub(crate) use page_of;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_field_error() {
        let q = PageQuery {
            limit: None,
            cursor: Some(cursor(&(3i16, 20400i32, 17i64))),
        };
        assert_eq!(
            q.after::<(i16, i32, i64)>().ok().flatten(),
            Some((3, 20400, 17))
        );
        let bad = PageQuery {
            limit: Some(0),
            cursor: Some("!!".into()),
        };
        assert!(bad.after::<i64>().is_err());
        assert!(bad.limit().is_err());
    }
}

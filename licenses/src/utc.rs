//! Timestamps as every file of this crate writes them: RFC 3339 in UTC with
//! whole seconds and a `Z` suffix (`2027-11-22T00:00:00Z`), nothing else.

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// `t` in UTC with the sub-second part dropped (the precision of the files).
pub fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Formats `t` as `YYYY-MM-DDTHH:MM:SSZ` (in UTC, sub-seconds dropped).
pub fn format(t: OffsetDateTime) -> String {
    let t = whole_seconds(t);
    t.format(FORMAT).unwrap_or_else(|_| t.to_string())
}

/// Parses exactly the form [`format()`] writes; anything else (another offset,
/// fractional seconds, lowercase `t`/`z`, a 5-digit year) is `None`.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    if text.len() != 20 {
        return None;
    }
    let t = PrimitiveDateTime::parse(text, FORMAT).ok()?.assume_utc();
    (format(t) == text).then_some(t)
}

/// Serde adapter for timestamp fields (`#[serde(with = "crate::utc::serde")]`).
pub(crate) mod serde {
    use serde::{de, Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid timestamp {:?}: expected RFC 3339 in UTC with whole seconds, like 2027-11-22T00:00:00Z",
                crate::error::quote(&text)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn round_trip_and_strictness() {
        let t = datetime!(2027-11-22 00:00:00 UTC);
        assert_eq!(format(t), "2027-11-22T00:00:00Z");
        assert_eq!(parse("2027-11-22T00:00:00Z"), Some(t));
        assert_eq!(
            format(datetime!(2027-11-22 01:00:00.75 +01:00)),
            "2027-11-22T00:00:00Z"
        );
        for bad in [
            "2027-11-22T00:00:00+00:00",
            "2027-11-22T00:00:00.5Z",
            "2027-11-22t00:00:00Z",
            "2027-11-22T00:00:00z",
            "2027-11-22 00:00:00Z",
            "2027-13-22T00:00:00Z",
            "2027-02-30T00:00:00Z",
            "+027-11-22T00:00:00Z",
            "",
            "2027-11-22",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}

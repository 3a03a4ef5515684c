//! Reading JSON no more leniently than serde_json's own `Value` does.
//!
//! serde's `IgnoredAny` skips a string without checking it: bytes that are not UTF-8 and
//! lone surrogate escapes (`"\ud800"`) pass a skip that `serde_json::from_slice::<Value>`
//! refuses. A layer that skips members of a body its service then reads must not accept a
//! body the service's parser would refuse, so it skips with [`Checked`] instead.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Any JSON value, skipped, with every string in it checked as serde_json checks strings it
/// keeps (UTF-8, escapes, surrogate pairs). Builds nothing: a string without escapes is
/// borrowed from the input.
pub(crate) struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// A JSON string, borrowed from the input when it has no escapes (serde's own `Cow<str>`
/// always copies).
pub(crate) struct Text<'a>(pub(crate) std::borrow::Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Borrowed(value)))
            }

            fn visit_str<E>(self, value: &str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(value.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Read an object's members in one pass: `member` reads the value of each member it
/// knows and answers `Ok(false)` for the rest, which are skipped [`Checked`]. A member
/// `member` knows, named twice, is an error (which copy a reader keeps differs between
/// parsers).
pub(crate) fn read_object<'de, A: MapAccess<'de>>(
    mut map: A,
    known: &[&str],
    mut member: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
) -> Result<(), A::Error> {
    let mut seen = 0u32;
    while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
        match known.iter().position(|k| *k == key) {
            Some(index) if seen & (1 << index) != 0 => {
                return Err(serde::de::Error::custom("a member named twice"));
            }
            Some(index) => {
                seen |= 1 << index;
                if !member(&key, &mut map)? {
                    map.next_value::<Checked>()?;
                }
            }
            None => {
                map.next_value::<Checked>()?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_refuses_what_value_refuses_and_accepts_what_it_accepts() {
        let cases: [&[u8]; 6] = [
            br#"{"x":"\ud800","y":1}"#,
            b"{\"x\":\"a\x8a\"}",
            br#"{"x":["\udc00\ud800"]}"#,
            br#"{"x":"\ud83d\ude00","y":[1,2.5,-3,true,null,{"z":"a\"b"}]}"#,
            br#"[1, {"a": {}}]"#,
            br#"{"a":NaN}"#,
        ];
        for body in cases {
            assert_eq!(
                serde_json::from_slice::<Checked>(body).is_ok(),
                serde_json::from_slice::<serde_json::Value>(body).is_ok(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

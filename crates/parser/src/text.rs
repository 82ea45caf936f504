//! Text decoding shared by the XML and JSON readers: character sets, XML entities and
//! control characters, each repair reported to the caller.

use std::borrow::Cow;

/// Windows-1252 code points for bytes 0x80–0x9F (the rest of the range is Latin-1).
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{FFFD}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{FFFD}', '\u{017D}', '\u{FFFD}',
    '\u{FFFD}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{FFFD}', '\u{017E}', '\u{0178}',
];

/// How bytes were turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoded {
    Utf8,
    Utf16,
    Windows1252,
}

/// Decodes a document: UTF-8 (with or without BOM), UTF-16 with BOM, and otherwise
/// Windows-1252 (a superset of Latin-1 that real reporters use by mistake).
pub(crate) fn decode_document(bytes: &[u8]) -> (Cow<'_, str>, Decoded) {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(body) {
        return (Cow::Borrowed(s), Decoded::Utf8);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return (
            Cow::Owned(decode_utf16(rest, u16::from_le_bytes)),
            Decoded::Utf16,
        );
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return (
            Cow::Owned(decode_utf16(rest, u16::from_be_bytes)),
            Decoded::Utf16,
        );
    }
    let text = body
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => CP1252_HIGH[usize::from(b.saturating_sub(0x80))],
            _ => char::from(b),
        })
        .collect();
    (Cow::Owned(text), Decoded::Windows1252)
}

fn decode_utf16(bytes: &[u8], f: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|c| f([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Repairs found while cleaning one text value.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextRepairs {
    pub control_chars: bool,
    pub unknown_entity: bool,
}

#[inline]
fn is_bad_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r') || b == 0x7F
}

/// Unescapes XML entities (`&lt;` … `&#x1F;`), drops control characters and trims.
/// Unknown entities are kept literally: nothing is ever expanded from a DTD.
pub(crate) fn clean_xml_text<'a>(raw: &'a str, repairs: &mut TextRepairs) -> Cow<'a, str> {
    let bytes = raw.as_bytes();
    let needs_work = bytes.iter().any(|&b| b == b'&' || is_bad_control(b));
    if !needs_work {
        return Cow::Borrowed(raw.trim());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) =
        rest.find(|c: char| c == '&' || (c.is_control() && !matches!(c, '\t' | '\n' | '\r')))
    {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with('&') {
            let (decoded, used) = decode_entity(tail);
            match decoded {
                Some(c) => {
                    if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                        repairs.control_chars = true;
                    } else {
                        out.push(c);
                    }
                }
                None => {
                    repairs.unknown_entity = true;
                    out.push('&');
                }
            }
            rest = &tail[used..];
        } else {
            repairs.control_chars = true;
            let c_len = tail.chars().next().map_or(1, char::len_utf8);
            rest = &tail[c_len..];
        }
    }
    out.push_str(rest);
    let trimmed = out.trim();
    if trimmed.len() == out.len() {
        Cow::Owned(out)
    } else {
        Cow::Owned(trimmed.to_owned())
    }
}

/// Decodes one entity at the start of `s` (which starts with `&`). Returns the character
/// and how many bytes were consumed; `None` and 1 byte for an unknown entity.
fn decode_entity(s: &str) -> (Option<char>, usize) {
    // Search bytes, not a `str` slice: the 12-byte window may end inside a character.
    let Some(end) = memchr::memchr(b';', &s.as_bytes()[..s.len().min(12)]) else {
        return (None, 1);
    };
    let name = &s[1..end];
    let c = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse::<u32>().ok().and_then(char::from_u32)
            } else {
                None
            }
        }
    };
    match c {
        Some(c) => (Some(c), end.saturating_add(1)),
        None => (None, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_are_decoded_and_controls_dropped() {
        let mut r = TextRepairs::default();
        assert_eq!(
            clean_xml_text(" a &lt;b&gt; &amp; &#65;&#x42; \u{7} c ", &mut r),
            "a <b> & AB  c"
        );
        assert!(r.control_chars);
        assert!(!r.unknown_entity);
    }

    #[test]
    fn unknown_entities_stay_literal() {
        let mut r = TextRepairs::default();
        assert_eq!(clean_xml_text("&lol9; &", &mut r), "&lol9; &");
        assert!(r.unknown_entity);
    }

    #[test]
    fn a_bare_ampersand_before_multibyte_text_is_kept() {
        let mut r = TextRepairs::default();
        assert_eq!(
            clean_xml_text(
                "&amp;\u{10761}\u{1263}; &x\u{1F162}\u{1F162}\u{1F162};",
                &mut r
            ),
            "&\u{10761}\u{1263}; &x\u{1F162}\u{1F162}\u{1F162};"
        );
        assert!(r.unknown_entity);
    }

    #[test]
    fn windows_1252_is_decoded() {
        let (s, how) = decode_document(b"caf\xe9 \x91q\x92");
        assert_eq!(how, Decoded::Windows1252);
        assert_eq!(s, "caf\u{e9} \u{2018}q\u{2019}");
    }

    #[test]
    fn utf16_with_bom_is_decoded() {
        let (s, how) = decode_document(b"\xFF\xFE<\x00a\x00>\x00");
        assert_eq!(how, Decoded::Utf16);
        assert_eq!(s, "<a>");
    }
}

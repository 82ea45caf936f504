//! Fuzz input wrapped in valid containers before parsing — gzip, zip (deflated, stored,
//! several members), zlib, gzip-in-gzip, and emails: base64 attachment (raw, gzip, zip),
//! forwarded message/rfc822 (around a gzip attachment, or the payload itself as the
//! forwarded email, 7bit or base64), TLS-RPT report email, ARF feedback-report part,
//! plain-text failure notice, quoted-printable XML part, binary mislabelled as text — so
//! mutations reach the XML / JSON / ARF / MIME readers behind every container path.
//!
//! Wrapper choice: an input whose first byte is a control byte other than TAB/LF/CR
//! (0x00–0x08, 0x0B, 0x0C, 0x0E–0x1F) uses that byte as the selector and the rest as the
//! payload; any other input (plain XML, JSON, email seeds) is used whole and the wrapper is
//! chosen by its length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealwatch_fuzz::{WRAPPERS, check_both, wrap};

fuzz_target!(init: sealwatch_fuzz::install_overflow_handler(), |data: &[u8]| {
    let (which, payload) = match data.split_first() {
        Some((&b, rest)) if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') => (b, rest),
        _ => ((data.len() % usize::from(WRAPPERS)) as u8, data),
    };
    let (input, name) = wrap(which, payload);
    check_both(&input, name.as_deref());
});

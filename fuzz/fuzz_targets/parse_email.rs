//! Arbitrary bytes straight into `Parser::parse`: as a whole input without a name under the
//! default limits, and with a report-style file name under small limits (1 MiB of
//! decompression, 64 records, MIME depth 3, …) so bombs and every limit are reachable.
//! Both run on a 256 KiB stack. Invariants are checked by `sealwatch_fuzz::check`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealwatch_fuzz::{REPORT_NAME, check, on_small_stack, small_limits};
use sealwatch_parser::Parser;

fuzz_target!(init: sealwatch_fuzz::install_overflow_handler(), |data: &[u8]| {
    on_small_stack(|| {
        check(&Parser::default(), data, None);
        check(
            &Parser::new(small_limits()),
            data,
            Some(&format!("{REPORT_NAME}.xml")),
        );
    });
});

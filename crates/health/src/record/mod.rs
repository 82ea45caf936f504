//! Pure parsers of the DNS records and files the checks read. No IO: each takes the text as
//! published and returns a typed value plus every problem as a plain-English sentence.

pub mod bimi;
pub mod dkim;
pub mod dmarc;
pub mod mtasts;
pub mod spf;
pub mod tags;
pub mod tlsrpt;
pub mod uri;

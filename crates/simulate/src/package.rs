//! Compression and archive packaging of report payloads, and report file names.

use std::io::{Cursor, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use flate2::Compression;
use flate2::write::ZlibEncoder;

use crate::SimError;

/// How a reporter packages the XML of an aggregate report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Packaging {
    /// `name.xml.gz`, a standard gzip stream.
    Gzip,
    /// `name.xml.gz` whose body is a zlib stream behind a gzip header (Mimecast).
    GzipZlibBody,
    /// `name.zip` holding `name.xml` (Google).
    Zip,
    /// `name.xml.zip` holding `name.xml` (Seznam, older Yahoo).
    XmlZip,
    /// `name.xml`, uncompressed.
    PlainXml,
}

impl Packaging {
    /// The file extension, without the leading dot.
    pub fn extension(self) -> &'static str {
        match self {
            Packaging::Gzip | Packaging::GzipZlibBody => "xml.gz",
            Packaging::Zip => "zip",
            Packaging::XmlZip => "xml.zip",
            Packaging::PlainXml => "xml",
        }
    }

    /// True for the zip variants.
    pub fn is_zip(self) -> bool {
        matches!(self, Packaging::Zip | Packaging::XmlZip)
    }

    /// True for the gzip variants.
    pub fn is_gzip(self) -> bool {
        matches!(self, Packaging::Gzip | Packaging::GzipZlibBody)
    }

    /// Packs `xml` for a report whose file name without extension is `stem`; returns the
    /// file name and the bytes. `time` is stored as the gzip or zip modification time.
    pub fn pack(
        self,
        stem: &str,
        xml: &[u8],
        time: DateTime<Utc>,
    ) -> Result<(String, Vec<u8>), SimError> {
        let xml_name = format!("{stem}.xml");
        let file_name = format!("{stem}.{}", self.extension());
        let bytes = match self {
            Packaging::Gzip => gzip(xml, Some(&xml_name), time)?,
            Packaging::GzipZlibBody => gzip_zlib_body(xml, time)?,
            Packaging::Zip | Packaging::XmlZip => zip_single(&xml_name, xml, time)?,
            Packaging::PlainXml => xml.to_vec(),
        };
        Ok((file_name, bytes))
    }
}

fn mtime(time: DateTime<Utc>) -> u32 {
    u32::try_from(time.timestamp()).unwrap_or(0)
}

/// A gzip stream of `data`, with the original file name in the header when given.
pub fn gzip(data: &[u8], name: Option<&str>, time: DateTime<Utc>) -> Result<Vec<u8>, SimError> {
    let mut builder = flate2::GzBuilder::new().mtime(mtime(time));
    if let Some(name) = name {
        builder = builder.filename(name);
    }
    let mut enc = builder.write(
        Vec::with_capacity(data.len() / 6 + 64),
        Compression::default(),
    );
    enc.write_all(data).map_err(SimError::io("gzip"))?;
    enc.finish().map_err(SimError::io("gzip"))
}

/// A gzip header and trailer around a zlib stream instead of raw deflate: what one large
/// gateway vendor sends. Strict gzip readers reject it.
pub fn gzip_zlib_body(data: &[u8], time: DateTime<Utc>) -> Result<Vec<u8>, SimError> {
    let mut out = Vec::with_capacity(data.len() / 6 + 64);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0]);
    out.extend_from_slice(&mtime(time).to_le_bytes());
    out.extend_from_slice(&[0, 3]);
    let mut enc = ZlibEncoder::new(out, Compression::default());
    enc.write_all(data).map_err(SimError::io("zlib"))?;
    let mut out = enc.finish().map_err(SimError::io("zlib"))?;
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(out)
}

/// A zip archive with the single deflated member `member`.
pub fn zip_single(member: &str, data: &[u8], time: DateTime<Utc>) -> Result<Vec<u8>, SimError> {
    let modified = zip::DateTime::from_date_and_time(
        u16::try_from(time.year()).unwrap_or(1980),
        time.month() as u8,
        time.day() as u8,
        time.hour() as u8,
        time.minute() as u8,
        time.second() as u8,
    )
    .unwrap_or_default();
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(modified)
        .unix_permissions(0o644);
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(data.len() / 6 + 256)));
    writer.start_file(member, options)?;
    writer.write_all(data).map_err(SimError::io("zip"))?;
    Ok(writer.finish()?.into_inner())
}

/// The RFC 7489 / 8460 report file name without extension:
/// `receiver!policy-domain!begin!end[!unique-id]`.
pub fn report_stem(
    receiver: &str,
    policy_domain: &str,
    begin: i64,
    end: i64,
    unique_id: Option<&str>,
) -> String {
    match unique_id {
        Some(id) => format!("{receiver}!{policy_domain}!{begin}!{end}!{id}"),
        None => format!("{receiver}!{policy_domain}!{begin}!{end}"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use chrono::TimeZone;
    use flate2::read::{GzDecoder, ZlibDecoder};

    use super::*;

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 3, 4, 5, 6)
            .single()
            .expect("valid")
    }

    #[test]
    fn gzip_round_trips() {
        let data = b"<feedback/>".repeat(50);
        let gz = gzip(&data, Some("a.xml"), t()).expect("gzip");
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let mut back = Vec::new();
        GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .expect("gunzip");
        assert_eq!(back, data);
    }

    #[test]
    fn zlib_body_has_gzip_header_and_zlib_inside() {
        let data = b"<feedback/>".repeat(50);
        let gz = gzip_zlib_body(&data, t()).expect("pack");
        assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0]);
        let mut back = Vec::new();
        ZlibDecoder::new(&gz[10..gz.len() - 8])
            .read_to_end(&mut back)
            .expect("zlib");
        assert_eq!(back, data);
        assert!(
            GzDecoder::new(&gz[..])
                .read_to_end(&mut Vec::new())
                .is_err()
        );
    }

    #[test]
    fn zip_has_one_member_and_is_deterministic() {
        let data = b"<feedback/>".repeat(50);
        let a = zip_single("x.xml", &data, t()).expect("zip");
        let b = zip_single("x.xml", &data, t()).expect("zip");
        assert_eq!(a, b);
        let mut archive = zip::ZipArchive::new(Cursor::new(a)).expect("archive");
        assert_eq!(archive.len(), 1);
        let mut member = archive.by_index(0).expect("member");
        assert_eq!(member.name(), "x.xml");
        let mut back = Vec::new();
        member.read_to_end(&mut back).expect("read");
        assert_eq!(back, data);
    }

    #[test]
    fn names_follow_the_rfc_pattern() {
        let stem = report_stem("google.com", "example.com", 1, 2, None);
        let (name, _) = Packaging::Zip.pack(&stem, b"<x/>", t()).expect("pack");
        assert_eq!(name, "google.com!example.com!1!2.zip");
        let stem = report_stem("fastmail.com", "example.com", 1, 2, Some("99"));
        assert_eq!(
            format!("{stem}.{}", Packaging::Gzip.extension()),
            "fastmail.com!example.com!1!2!99.xml.gz"
        );
    }
}

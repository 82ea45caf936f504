//! Small report and email builders for ingest tests. Include with
//! `#[path = "../common/reports.rs"] mod reports;`.

#![allow(dead_code)]

use std::io::Write as _;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;

/// A DMARC aggregate report with the given records `(source_ip, count)`.
pub fn aggregate_xml(
    org: &str,
    report_id: &str,
    domain: &str,
    begin: i64,
    end: i64,
    records: &[(&str, u64)],
) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\"?>\n<feedback>\n<report_metadata><org_name>{org}</org_name><email>dmarc@{org}</email>\
<report_id>{report_id}</report_id><date_range><begin>{begin}</begin><end>{end}</end></date_range></report_metadata>\n\
<policy_published><domain>{domain}</domain><p>none</p><pct>100</pct></policy_published>\n"
    );
    for (ip, count) in records {
        xml.push_str(&format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated><disposition>none</disposition>\
<dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>{domain}</header_from></identifiers>\
<auth_results><dkim><domain>{domain}</domain><selector>s1</selector><result>pass</result></dkim>\
<spf><domain>{domain}</domain><result>pass</result></spf></auth_results></record>\n"
        ));
    }
    xml.push_str("</feedback>\n");
    xml
}

/// A TLS-RPT report for one STS policy.
pub fn tls_json(
    org: &str,
    report_id: &str,
    domain: &str,
    day: &str,
    ok: u64,
    failed: u64,
) -> String {
    serde_json::json!({
        "organization-name": org,
        "date-range": {"start-datetime": format!("{day}T00:00:00Z"), "end-datetime": format!("{day}T23:59:59Z")},
        "contact-info": format!("tls@{org}"),
        "report-id": report_id,
        "policies": [{
            "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce", format!("mx: mx.{domain}")],
                       "policy-domain": domain, "mx-host": [format!("mx.{domain}")]},
            "summary": {"total-successful-session-count": ok, "total-failure-session-count": failed},
            "failure-details": if failed > 0 { serde_json::json!([{"result-type": "certificate-expired",
                "sending-mta-ip": "198.51.100.9", "receiving-mx-hostname": format!("mx.{domain}"), "failed-session-count": failed}]) }
                else { serde_json::json!([]) }
        }]
    })
    .to_string()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

/// A report email: a text part and one base64 attachment.
pub fn report_email(
    from: &str,
    subject: &str,
    message_id: &str,
    filename: &str,
    content_type: &str,
    attachment: &[u8],
) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(attachment);
    let mut body = String::new();
    for chunk in b64.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        body.push_str("\r\n");
    }
    format!(
        "From: {from}\r\nTo: reports@sealwatch.test\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
Date: Mon, 02 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThis is a report.\r\n\
--b1\r\nContent-Type: {content_type}; name=\"{filename}\"\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{body}--b1--\r\n"
    )
    .into_bytes()
}

/// A gzip'd aggregate report email for `domain`, as a big receiver would send it.
pub fn aggregate_email(
    org: &str,
    report_id: &str,
    domain: &str,
    begin: i64,
    records: &[(&str, u64)],
) -> Vec<u8> {
    let xml = aggregate_xml(org, report_id, domain, begin, begin + 86_399, records);
    let name = format!("{org}!{domain}!{begin}!{}.xml.gz", begin + 86_399);
    report_email(
        &format!("noreply-dmarc@{org}"),
        &format!("Report Domain: {domain} Submitter: {org} Report-ID: <{report_id}>"),
        &format!("{report_id}.{domain}@{org}"),
        &name,
        "application/gzip",
        &gzip(xml.as_bytes()),
    )
}

/// A gzip'd TLS report email for `domain`.
pub fn tls_email(
    org: &str,
    report_id: &str,
    domain: &str,
    day: &str,
    ok: u64,
    failed: u64,
) -> Vec<u8> {
    let json = tls_json(org, report_id, domain, day, ok, failed);
    let mut email = report_email(
        &format!("tlsrpt@{org}"),
        &format!("Report Domain: {domain} Submitter: {org} Report-ID: <{report_id}>"),
        &format!("{report_id}@{org}"),
        &format!("{org}!{domain}!0!0.json.gz"),
        "application/tlsrpt+gzip",
        &gzip(json.as_bytes()),
    );
    let header = format!("TLS-Report-Domain: {domain}\r\nTLS-Report-Submitter: {org}\r\n");
    email.splice(0..0, header.into_bytes());
    email
}

/// The gzip'd report that [`aggregate_email`] attaches.
pub fn aggregate_gzip(
    org: &str,
    report_id: &str,
    domain: &str,
    begin: i64,
    records: &[(&str, u64)],
) -> Vec<u8> {
    gzip(aggregate_xml(org, report_id, domain, begin, begin + 86_399, records).as_bytes())
}

/// An email like [`aggregate_email`] whose attachment is `gz` as given (cut short, say).
pub fn aggregate_email_carrying(
    org: &str,
    report_id: &str,
    domain: &str,
    begin: i64,
    gz: &[u8],
) -> Vec<u8> {
    let name = format!("{org}!{domain}!{begin}!{}.xml.gz", begin + 86_399);
    report_email(
        &format!("noreply-dmarc@{org}"),
        &format!("Report Domain: {domain} Submitter: {org} Report-ID: <{report_id}>"),
        &format!("{report_id}.{domain}@{org}"),
        &name,
        "application/gzip",
        gz,
    )
}

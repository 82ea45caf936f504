//! SPF records (RFC 7208): terms, syntax errors, and the rewrites the advice needs.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// `+`, `-`, `~` or `?` in front of a mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    fn from_char(c: char) -> Option<Self> {
        match c {
            '+' => Some(Self::Pass),
            '-' => Some(Self::Fail),
            '~' => Some(Self::SoftFail),
            '?' => Some(Self::Neutral),
            _ => None,
        }
    }

    /// The prefix character.
    pub fn symbol(self) -> char {
        match self {
            Self::Pass => '+',
            Self::Fail => '-',
            Self::SoftFail => '~',
            Self::Neutral => '?',
        }
    }

    /// Strictness for merging: fail > softfail > neutral > pass.
    fn strictness(self) -> u8 {
        match self {
            Self::Fail => 3,
            Self::SoftFail => 2,
            Self::Neutral => 1,
            Self::Pass => 0,
        }
    }
}

/// A mechanism and its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    /// `include:domain`
    Include(String),
    /// `a[:domain][/cidr]`
    A(Option<String>),
    /// `mx[:domain][/cidr]`
    Mx(Option<String>),
    /// `ptr[:domain]` (deprecated)
    Ptr(Option<String>),
    Ip4,
    Ip6,
    /// `exists:domain`
    Exists(String),
}

impl Mechanism {
    /// True for the mechanisms that cost a DNS lookup (RFC 7208 §4.6.4).
    pub fn does_lookup(&self) -> bool {
        matches!(
            self,
            Self::Include(_) | Self::A(_) | Self::Mx(_) | Self::Ptr(_) | Self::Exists(_)
        )
    }
}

/// What a term is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermKind {
    Mechanism(Qualifier, Mechanism),
    /// `redirect=domain`
    Redirect(String),
    /// `exp=domain`
    Exp(String),
    /// An unknown modifier (allowed and ignored).
    Modifier(String, String),
    /// A term that does not parse; the string says why.
    Invalid(String),
}

/// One term as written and as understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub raw: String,
    pub kind: TermKind,
}

/// A parsed SPF record. Parsing never fails: problems are listed in [`SpfRecord::errors`],
/// and invalid terms are kept as [`TermKind::Invalid`] so the record can be re-rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfRecord {
    pub terms: Vec<Term>,
    /// Syntax errors, each a sentence. Any error makes receivers return `permerror`.
    pub errors: Vec<String>,
}

/// True when a TXT record is an SPF record: `v=spf1` followed by a space or the end.
pub fn is_spf(txt: &str) -> bool {
    let t = txt.trim_start();
    t.len() >= 6
        && t[..6].eq_ignore_ascii_case("v=spf1")
        && t[6..].chars().next().is_none_or(|c| c == ' ')
}

impl SpfRecord {
    /// Parses a record (which should pass [`is_spf`]).
    pub fn parse(txt: &str) -> Self {
        let mut errors = Vec::new();
        let mut words = txt.split_ascii_whitespace();
        match words.next() {
            Some(v) if v.eq_ignore_ascii_case("v=spf1") => {}
            _ => errors.push("the record does not start with \"v=spf1\"".to_owned()),
        }
        let mut terms = Vec::new();
        let (mut redirects, mut exps) = (0, 0);
        for word in words {
            let kind = parse_term(word);
            match &kind {
                TermKind::Invalid(why) => errors.push(format!("{word:?}: {why}")),
                TermKind::Redirect(_) => redirects += 1,
                TermKind::Exp(_) => exps += 1,
                _ => {}
            }
            terms.push(Term {
                raw: word.to_owned(),
                kind,
            });
        }
        if redirects > 1 {
            errors.push("\"redirect=\" appears more than once".to_owned());
        }
        if exps > 1 {
            errors.push("\"exp=\" appears more than once".to_owned());
        }
        Self { terms, errors }
    }

    /// The qualifier of the `all` mechanism, if there is one.
    pub fn all(&self) -> Option<Qualifier> {
        self.terms.iter().find_map(|t| match t.kind {
            TermKind::Mechanism(q, Mechanism::All) => Some(q),
            _ => None,
        })
    }

    /// The `redirect=` target, if any.
    pub fn redirect(&self) -> Option<&str> {
        self.terms.iter().find_map(|t| match &t.kind {
            TermKind::Redirect(d) => Some(d.as_str()),
            _ => None,
        })
    }

    /// Mechanisms in order.
    pub fn mechanisms(&self) -> impl Iterator<Item = (Qualifier, &Mechanism)> {
        self.terms.iter().filter_map(|t| match &t.kind {
            TermKind::Mechanism(q, m) => Some((*q, m)),
            _ => None,
        })
    }

    /// True when the record uses the deprecated `ptr` mechanism.
    pub fn uses_ptr(&self) -> bool {
        self.mechanisms()
            .any(|(_, m)| matches!(m, Mechanism::Ptr(_)))
    }

    /// The record with every `all` replaced by `qualifier` + `all` (appended at the end when
    /// missing; a `redirect=` is dropped then, as `all` would override it anyway).
    pub fn with_all(&self, qualifier: Qualifier) -> String {
        let mut out: Vec<String> = Vec::new();
        for t in &self.terms {
            match &t.kind {
                TermKind::Mechanism(_, Mechanism::All) | TermKind::Redirect(_) => {}
                _ => out.push(t.raw.clone()),
            }
        }
        out.push(all_term(qualifier));
        render(&out)
    }

    /// The record without `ptr` mechanisms and without invalid terms.
    pub fn cleaned(&self) -> String {
        let out: Vec<String> = self
            .terms
            .iter()
            .filter(|t| {
                !matches!(
                    t.kind,
                    TermKind::Invalid(_) | TermKind::Mechanism(_, Mechanism::Ptr(_))
                )
            })
            .map(|t| t.raw.clone())
            .collect();
        render(&out)
    }
}

impl fmt::Display for SpfRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raws: Vec<String> = self.terms.iter().map(|t| t.raw.clone()).collect();
        f.write_str(&render(&raws))
    }
}

fn all_term(q: Qualifier) -> String {
    match q {
        Qualifier::Pass => "+all".to_owned(),
        other => format!("{}all", other.symbol()),
    }
}

fn render(terms: &[String]) -> String {
    let mut s = String::from("v=spf1");
    for t in terms {
        s.push(' ');
        s.push_str(t);
    }
    s
}

/// Merges several SPF records published side by side (a `permerror`) into one: every
/// mechanism once, in order, then the strictest `all` found (`~all` when there is none).
/// A `redirect=` is kept only when no record has an `all`.
pub fn merge(records: &[SpfRecord]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut strictest: Option<Qualifier> = None;
    let mut redirect: Option<String> = None;
    for r in records {
        for t in &r.terms {
            match &t.kind {
                TermKind::Mechanism(q, Mechanism::All) => {
                    if strictest.is_none_or(|s| q.strictness() > s.strictness()) {
                        strictest = Some(*q);
                    }
                }
                TermKind::Redirect(_) => {
                    if redirect.is_none() {
                        redirect = Some(t.raw.clone());
                    }
                }
                TermKind::Invalid(_) => {}
                _ => {
                    if !out.iter().any(|o| o.eq_ignore_ascii_case(&t.raw)) {
                        out.push(t.raw.clone());
                    }
                }
            }
        }
    }
    match (strictest, redirect) {
        (Some(q), _) => out.push(all_term(q)),
        (None, Some(r)) => out.push(r),
        (None, None) => out.push("~all".to_owned()),
    }
    render(&out)
}

fn parse_term(word: &str) -> TermKind {
    let (qualifier, body) = match word.chars().next().and_then(Qualifier::from_char) {
        Some(q) => (Some(q), &word[1..]),
        None => (None, word),
    };
    // A modifier is name=value where the name comes before any ':' or '/'.
    let name_end = body.find([':', '/', '=']).unwrap_or(body.len());
    if body[name_end..].starts_with('=') {
        if qualifier.is_some() {
            return TermKind::Invalid("a modifier cannot have a qualifier".to_owned());
        }
        let name = &body[..name_end];
        let value = &body[name_end + 1..];
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return TermKind::Invalid("not a valid modifier name".to_owned());
        }
        return match name.to_ascii_lowercase().as_str() {
            "redirect" => match check_domain_spec(value) {
                Ok(()) => TermKind::Redirect(value.to_owned()),
                Err(e) => TermKind::Invalid(e),
            },
            "exp" => match check_domain_spec(value) {
                Ok(()) => TermKind::Exp(value.to_owned()),
                Err(e) => TermKind::Invalid(e),
            },
            _ => TermKind::Modifier(name.to_owned(), value.to_owned()),
        };
    }
    let q = qualifier.unwrap_or(Qualifier::Pass);
    let name = body[..name_end].to_ascii_lowercase();
    let rest = &body[name_end..];
    let mech = match name.as_str() {
        "all" => {
            if !rest.is_empty() {
                return TermKind::Invalid("\"all\" takes no argument".to_owned());
            }
            Mechanism::All
        }
        "include" | "exists" => {
            let Some(domain) = rest.strip_prefix(':') else {
                return TermKind::Invalid(format!("\"{name}\" needs \":domain\""));
            };
            if let Err(e) = check_domain_spec(domain) {
                return TermKind::Invalid(e);
            }
            if name == "include" {
                Mechanism::Include(domain.to_owned())
            } else {
                Mechanism::Exists(domain.to_owned())
            }
        }
        "a" | "mx" => {
            let (domain, cidr) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let domain = match domain.strip_prefix(':') {
                Some(d) => {
                    if let Err(e) = check_domain_spec(d) {
                        return TermKind::Invalid(e);
                    }
                    Some(d.to_owned())
                }
                None if domain.is_empty() => None,
                None => return TermKind::Invalid(format!("unexpected {domain:?}")),
            };
            if let Err(e) = check_dual_cidr(cidr) {
                return TermKind::Invalid(e);
            }
            if name == "a" {
                Mechanism::A(domain)
            } else {
                Mechanism::Mx(domain)
            }
        }
        "ptr" => match rest.strip_prefix(':') {
            Some(d) => {
                if let Err(e) = check_domain_spec(d) {
                    return TermKind::Invalid(e);
                }
                Mechanism::Ptr(Some(d.to_owned()))
            }
            None if rest.is_empty() => Mechanism::Ptr(None),
            None => return TermKind::Invalid(format!("unexpected {rest:?}")),
        },
        "ip4" => {
            let Some(arg) = rest.strip_prefix(':') else {
                return TermKind::Invalid("\"ip4\" needs \":address\"".to_owned());
            };
            let (addr, len) = arg
                .split_once('/')
                .map_or((arg, None), |(a, l)| (a, Some(l)));
            if addr.parse::<Ipv4Addr>().is_err() {
                return TermKind::Invalid(format!("{addr:?} is not an IPv4 address"));
            }
            if let Some(l) = len
                && !l.parse::<u8>().is_ok_and(|n| n <= 32)
            {
                return TermKind::Invalid(format!("/{l} is not an IPv4 prefix length"));
            }
            Mechanism::Ip4
        }
        "ip6" => {
            let Some(arg) = rest.strip_prefix(':') else {
                return TermKind::Invalid("\"ip6\" needs \":address\"".to_owned());
            };
            let (addr, len) = arg
                .split_once('/')
                .map_or((arg, None), |(a, l)| (a, Some(l)));
            if addr.parse::<Ipv6Addr>().is_err() {
                return TermKind::Invalid(format!("{addr:?} is not an IPv6 address"));
            }
            if let Some(l) = len
                && !l.parse::<u8>().is_ok_and(|n| n <= 128)
            {
                return TermKind::Invalid(format!("/{l} is not an IPv6 prefix length"));
            }
            Mechanism::Ip6
        }
        "" => return TermKind::Invalid("empty mechanism".to_owned()),
        other => return TermKind::Invalid(format!("unknown mechanism \"{other}\"")),
    };
    TermKind::Mechanism(q, mech)
}

/// `/cidr4`, `//cidr6` or `/cidr4//cidr6` (or nothing).
fn check_dual_cidr(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    let (v4, v6) = match s.find("//") {
        Some(i) => (&s[..i], Some(&s[i + 2..])),
        None => (s, None),
    };
    if !v4.is_empty() {
        let n = v4.strip_prefix('/').unwrap_or(v4);
        if !n.parse::<u8>().is_ok_and(|n| n <= 32) {
            return Err(format!("{v4:?} is not an IPv4 prefix length"));
        }
    }
    if let Some(n) = v6
        && !n.parse::<u8>().is_ok_and(|n| n <= 128)
    {
        return Err(format!("//{n} is not an IPv6 prefix length"));
    }
    Ok(())
}

/// A domain-spec: a name, possibly with macros (`%{i}`, `%%`, `%_`, `%-`).
fn check_domain_spec(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("missing domain".to_owned());
    }
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('%' | '_' | '-') => {}
                Some('{') => {
                    let Some(letter) = chars.next() else {
                        return Err(format!("{s:?} has an unterminated macro"));
                    };
                    if !"slodiphcrtvSLODIPHCRTV".contains(letter) {
                        return Err(format!("{s:?} has an unknown macro letter {letter:?}"));
                    }
                    let mut closed = false;
                    for m in chars.by_ref() {
                        if m == '}' {
                            closed = true;
                            break;
                        }
                    }
                    if !closed {
                        return Err(format!("{s:?} has an unterminated macro"));
                    }
                }
                _ => return Err(format!("{s:?} has a stray '%'")),
            }
        } else if !(c.is_ascii_graphic() && c != '%') {
            return Err(format!("{s:?} is not a valid domain"));
        }
    }
    let plain = !s.contains('%');
    if plain && (!s.contains('.') || s.starts_with('.') || s.contains("..")) {
        return Err(format!("{s:?} is not a fully qualified domain name"));
    }
    Ok(())
}

/// True when a domain-spec contains macros (its target depends on the message).
pub fn has_macros(domain_spec: &str) -> bool {
    domain_spec.contains('%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_spf_records() {
        assert!(is_spf("v=spf1 -all"));
        assert!(is_spf("V=SPF1"));
        assert!(!is_spf("v=spf10 -all"));
        assert!(!is_spf("google-site-verification=x"));
    }

    #[test]
    fn parses_all_mechanisms() {
        let r = SpfRecord::parse(
            "v=spf1 a mx:mail.example.test/24 ip4:192.0.2.0/24 ip6:2001:db8::/32 \
             include:_spf.example.test exists:%{i}._spf.example.test ptr ~all exp=explain.example.test",
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.all(), Some(Qualifier::SoftFail));
        assert!(r.uses_ptr());
        let lookups = r.mechanisms().filter(|(_, m)| m.does_lookup()).count();
        assert_eq!(lookups, 5);
    }

    #[test]
    fn reports_syntax_errors() {
        let r = SpfRecord::parse("v=spf1 ip4:300.1.1.1 include foo:bar -all/24 +redirect=x.test");
        assert_eq!(r.errors.len(), 5, "{:?}", r.errors);
        assert_eq!(r.cleaned(), "v=spf1");
        let r = SpfRecord::parse("v=spf1 redirect=a.test redirect=b.test");
        assert!(r.errors.iter().any(|e| e.contains("more than once")));
        let r = SpfRecord::parse("v=spf1 a:%{z}.test");
        assert_eq!(r.errors.len(), 1);
    }

    #[test]
    fn rewrites_the_all_mechanism() {
        let r = SpfRecord::parse("v=spf1 mx +all");
        assert_eq!(r.all(), Some(Qualifier::Pass));
        assert_eq!(r.with_all(Qualifier::Fail), "v=spf1 mx -all");
        let r = SpfRecord::parse("v=spf1 ip4:192.0.2.1");
        assert_eq!(r.all(), None);
        assert_eq!(r.with_all(Qualifier::SoftFail), "v=spf1 ip4:192.0.2.1 ~all");
    }

    #[test]
    fn merges_duplicate_records() {
        let a = SpfRecord::parse("v=spf1 mx include:a.test ~all");
        let b = SpfRecord::parse("v=spf1 include:a.test ip4:192.0.2.1 -all");
        assert_eq!(
            merge(&[a, b]),
            "v=spf1 mx include:a.test ip4:192.0.2.1 -all"
        );
    }

    #[test]
    fn parse_never_panics_on_junk() {
        for junk in [
            "v=spf1 %",
            "v=spf1 a:%{",
            "v=spf1 ://",
            "v=spf1 =",
            "v=spf1 -",
            "v=spf1 a//",
        ] {
            let _ = SpfRecord::parse(junk);
        }
    }
}

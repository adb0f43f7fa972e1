//! Access control per listener (`[listener.access]`): allow and deny lists by calling AE
//! title, called AE title and source address (CIDR). Deny wins over allow; an empty allow
//! list allows everything of its kind. The decision is made on the A-ASSOCIATE-RQ (read
//! before anything is forwarded) and a refusal is answered with the A-ASSOCIATE-RJ of
//! PS3.8 9.3.4: result 1 (rejected-permanent), source 1 (DICOM UL service-user), reason 3
//! (calling AE title not recognized), 7 (called AE title not recognized) or, for a source
//! address and an RQ that could not be read, 1 (no-reason-given: the standard has no reason
//! for addresses, and "not recognized" would tell the caller which check failed).
//!
//! Only the policy lives here; the server reads the RQ and sends the answer.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

/// An address range: `10.0.0.0/8`, `192.168.1.7` (one host), `::1/128`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR range like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` is in the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr.to_canonical(), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let prefix = if self.addr.is_ipv6() {
                    // ::ffff:a.b.c.d/len: the last 32 bits.
                    self.prefix.saturating_sub(96)
                } else {
                    self.prefix
                };
                let mask = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            _ => false,
        }
    }
}

/// `[listener.access]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawAccess")]
pub struct AccessConfig {
    /// Calling AE titles allowed (empty: any).
    pub allow_calling_ae: Vec<String>,
    pub deny_calling_ae: Vec<String>,
    /// Called AE titles allowed (empty: any).
    pub allow_called_ae: Vec<String>,
    pub deny_called_ae: Vec<String>,
    /// Source addresses allowed (empty: any).
    pub allow_source: Vec<Cidr>,
    pub deny_source: Vec<Cidr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    #[serde(default)]
    allow_calling_ae: Vec<String>,
    #[serde(default)]
    deny_calling_ae: Vec<String>,
    #[serde(default)]
    allow_called_ae: Vec<String>,
    #[serde(default)]
    deny_called_ae: Vec<String>,
    #[serde(default)]
    allow_source: Vec<Cidr>,
    #[serde(default)]
    deny_source: Vec<Cidr>,
}

fn clean_aes(key: &str, list: Vec<String>) -> Result<Vec<String>, String> {
    list.into_iter()
        .map(|ae| {
            let t = ae.trim_matches(' ').to_string();
            if t.is_empty() || t.len() > 16 || t.chars().any(|c| c.is_control() || c == '\\') {
                Err(format!(
                    "{key}: {ae:?} is not an AE title (1 to 16 characters)"
                ))
            } else {
                Ok(t)
            }
        })
        .collect()
}

impl TryFrom<RawAccess> for AccessConfig {
    type Error = String;
    fn try_from(r: RawAccess) -> Result<Self, String> {
        Ok(AccessConfig {
            allow_calling_ae: clean_aes("allow_calling_ae", r.allow_calling_ae)?,
            deny_calling_ae: clean_aes("deny_calling_ae", r.deny_calling_ae)?,
            allow_called_ae: clean_aes("allow_called_ae", r.allow_called_ae)?,
            deny_called_ae: clean_aes("deny_called_ae", r.deny_called_ae)?,
            allow_source: r.allow_source,
            deny_source: r.deny_source,
        })
    }
}

/// Why an association was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// A-ASSOCIATE-RJ reason (result 1, source 1): 1, 3 or 7.
    pub reason: u8,
    /// Bounded label of `dicomtap_access_denied_total{reason}`: source, calling_ae,
    /// called_ae, unreadable_rq.
    pub label: &'static str,
    /// For people: which list refused what.
    pub detail: String,
}

impl AccessConfig {
    /// Whether any list is set (else nothing is checked and the RQ is not read for it).
    pub fn is_active(&self) -> bool {
        !(self.allow_calling_ae.is_empty()
            && self.deny_calling_ae.is_empty()
            && self.allow_called_ae.is_empty()
            && self.deny_called_ae.is_empty()
            && self.allow_source.is_empty()
            && self.deny_source.is_empty())
    }

    fn checks_aes(&self) -> bool {
        !(self.allow_calling_ae.is_empty()
            && self.deny_calling_ae.is_empty()
            && self.allow_called_ae.is_empty()
            && self.deny_called_ae.is_empty())
    }

    /// Decides on an association from `source`, whose first PDU is `rq` when it was a
    /// complete A-ASSOCIATE-RQ (`None`: not an RQ, oversized, or incomplete). Checked in
    /// order: source address, calling AE title, called AE title.
    pub fn check(&self, source: IpAddr, rq: Option<&[u8]>) -> Result<(), Denial> {
        if let Some(net) = self.deny_source.iter().find(|c| c.contains(source)) {
            return Err(Denial {
                reason: 1,
                label: "source",
                detail: format!("source address {source} is in deny_source {net}"),
            });
        }
        if !self.allow_source.is_empty() && !self.allow_source.iter().any(|c| c.contains(source)) {
            return Err(Denial {
                reason: 1,
                label: "source",
                detail: format!("source address {source} is not in allow_source"),
            });
        }
        if !self.checks_aes() {
            return Ok(());
        }
        let Some((called, calling)) = rq.and_then(ae_titles) else {
            return Err(Denial {
                reason: 1,
                label: "unreadable_rq",
                detail: "the first PDU is not a readable A-ASSOCIATE-RQ, so the AE titles cannot be checked".into(),
            });
        };
        if let Some(d) = list_check(&calling, &self.allow_calling_ae, &self.deny_calling_ae) {
            return Err(Denial {
                reason: 3,
                label: "calling_ae",
                detail: format!("calling AE title {calling:?} {d}"),
            });
        }
        if let Some(d) = list_check(&called, &self.allow_called_ae, &self.deny_called_ae) {
            return Err(Denial {
                reason: 7,
                label: "called_ae",
                detail: format!("called AE title {called:?} {d}"),
            });
        }
        Ok(())
    }

    /// [`AccessConfig::check`] with the client's socket address.
    pub fn check_addr(&self, source: SocketAddr, rq: Option<&[u8]>) -> Result<(), Denial> {
        self.check(source.ip(), rq)
    }
}

fn list_check(ae: &str, allow: &[String], deny: &[String]) -> Option<&'static str> {
    if deny.iter().any(|d| d == ae) {
        Some("is denied")
    } else if !allow.is_empty() && !allow.iter().any(|a| a == ae) {
        Some("is not allowed")
    } else {
        None
    }
}

/// The metrics endpoint's bearer token: `metrics_token`, or the contents of
/// `metrics_token_file` (surrounding whitespace ignored).
pub fn load_metrics_token(
    token: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<Option<std::sync::Arc<str>>, String> {
    let t = match (token, file) {
        (Some(t), _) => t.trim().to_string(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("metrics_token_file {}: {e}", path.display()))?
            .trim()
            .to_string(),
        (None, None) => return Ok(None),
    };
    if t.is_empty() {
        return Err("the metrics token is empty".into());
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the metrics token must not contain spaces or control characters".into());
    }
    Ok(Some(t.into()))
}

/// (called, calling) AE titles of a complete A-ASSOCIATE-RQ, spaces (and NULs) trimmed.
pub fn ae_titles(pdu: &[u8]) -> Option<(String, String)> {
    if pdu.first() != Some(&0x01) {
        return None;
    }
    let trim = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .trim_matches(|c| c == ' ' || c == '\0')
            .to_string()
    };
    Some((trim(pdu.get(10..26)?), trim(pdu.get(26..42)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rq(called: &str, calling: &str) -> Vec<u8> {
        let mut v = vec![0x01, 0, 0, 0, 0, 68, 0, 1, 0, 0];
        v.extend_from_slice(format!("{called:<16}").as_bytes());
        v.extend_from_slice(format!("{calling:<16}").as_bytes());
        v.extend_from_slice(&[0; 32]);
        v
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn cidr() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap_or(Cidr {
            addr: ip("0.0.0.0"),
            prefix: 32,
        });
        assert!(c.contains(ip("10.1.2.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.9.9")));
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .is_ok_and(|c| c.contains(ip("8.8.8.8")))
        );
        assert!("::1".parse::<Cidr>().is_ok_and(|c| c.contains(ip("::1"))));
        assert!(
            "::/0"
                .parse::<Cidr>()
                .is_ok_and(|c| !c.contains(ip("1.2.3.4")))
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("host".parse::<Cidr>().is_err());
    }

    #[test]
    fn deny_wins_and_reasons() {
        let a = AccessConfig {
            allow_calling_ae: vec!["MODALITY".into(), "CT1".into()],
            deny_calling_ae: vec!["CT1".into()],
            deny_called_ae: vec!["SECRET".into()],
            allow_source: vec!["127.0.0.0/8".parse().unwrap_or(Cidr {
                addr: ip("0.0.0.0"),
                prefix: 0,
            })],
            ..AccessConfig::default()
        };
        let lo = ip("127.0.0.1");
        assert_eq!(a.check(lo, Some(&rq("PACS", "MODALITY"))), Ok(()));
        assert_eq!(
            a.check(lo, Some(&rq("PACS", "CT1"))).map_err(|d| d.reason),
            Err(3)
        );
        assert_eq!(
            a.check(lo, Some(&rq("PACS", "OTHER")))
                .map_err(|d| d.reason),
            Err(3)
        );
        assert_eq!(
            a.check(lo, Some(&rq("SECRET", "MODALITY")))
                .map_err(|d| d.reason),
            Err(7)
        );
        assert_eq!(
            a.check(ip("10.0.0.1"), Some(&rq("PACS", "MODALITY")))
                .map_err(|d| (d.reason, d.label)),
            Err((1, "source"))
        );
        assert_eq!(a.check(lo, None).map_err(|d| d.label), Err("unreadable_rq"));
        // Source-only rules need no RQ.
        let s = AccessConfig {
            deny_source: vec!["10.0.0.0/8".parse().unwrap_or(Cidr {
                addr: ip("0.0.0.0"),
                prefix: 0,
            })],
            ..AccessConfig::default()
        };
        assert!(s.is_active());
        assert_eq!(s.check(lo, None), Ok(()));
        assert!(!AccessConfig::default().is_active());
    }
}

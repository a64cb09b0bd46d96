//! Zones and records: seeding (from a file or the example defaults) and the record semantics of
//! `updateDnsRecords` (only submitted records are touched).
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::protocol::{RECORD_TYPES, RecordInput, ZoneUpdate};
use crate::MockError;

/// A zone as given in a zones file or to `POST /_harness/zones`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSeed {
    pub name: String,
    #[serde(default = "default_ttl", deserialize_with = "number_as_string")]
    pub ttl: String,
    #[serde(default)]
    pub records: Vec<RecordSeed>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSeed {
    pub hostname: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub destination: String,
    #[serde(default, deserialize_with = "opt_number_as_string")]
    pub priority: Option<String>,
}

fn default_ttl() -> String {
    "86400".into()
}

fn number_as_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a number, got {other}"
        ))),
    }
}

fn opt_number_as_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(serde::de::Error::custom(format!(
            "expected a number, got {other}"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ZonesDoc {
    Wrapped { zones: Vec<ZoneSeed> },
    List(Vec<ZoneSeed>),
}

/// Parses a zones document: `{"zones":[...]}` or a bare list. The error names line and column.
pub fn parse_zones(bytes: &[u8]) -> Result<Vec<ZoneSeed>, String> {
    // Parse once as a Value so syntax errors carry line and column; then check the shape.
    let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let doc: ZonesDoc = serde_json::from_value(value).map_err(|e| {
        format!("expected {{\"zones\":[{{\"name\",\"ttl\"?,\"records\":[{{\"hostname\",\"type\",\"destination\",\"priority\"?}}]}}]}}: {e}")
    })?;
    let seeds = match doc {
        ZonesDoc::Wrapped { zones } | ZonesDoc::List(zones) => zones,
    };
    for (i, z) in seeds.iter().enumerate() {
        if !valid_domain(&z.name.to_ascii_lowercase()) {
            return Err(format!("zone {i}: {:?} is not a domain name", z.name));
        }
        for (j, r) in z.records.iter().enumerate() {
            if !RECORD_TYPES.contains(&r.record_type.to_ascii_uppercase().as_str()) {
                return Err(format!(
                    "zone {:?} record {j}: type {:?} is not one of {}",
                    z.name,
                    r.record_type,
                    RECORD_TYPES.join(", ")
                ));
            }
        }
    }
    Ok(seeds)
}

pub fn load_zones_file(path: &Path) -> Result<Vec<ZoneSeed>, MockError> {
    let bytes = std::fs::read(path).map_err(|source| MockError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    parse_zones(&bytes).map_err(|message| MockError::BadFile {
        path: path.to_path_buf(),
        message,
    })
}

pub fn valid_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[derive(Debug, Clone)]
pub struct ZoneInfo {
    pub name: String,
    pub ttl: String,
    pub serial: u64,
    pub refresh: String,
    pub retry: String,
    pub expire: String,
    pub dnssecstatus: bool,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub hostname: String,
    pub record_type: String,
    pub priority: String,
    pub destination: String,
}

#[derive(Debug, Clone)]
pub struct Zone {
    pub info: ZoneInfo,
    pub records: Vec<Record>,
}

fn info(name: &str, ttl: &str) -> ZoneInfo {
    ZoneInfo {
        name: name.to_string(),
        ttl: ttl.to_string(),
        serial: 2026010101,
        refresh: "28800".into(),
        retry: "7200".into(),
        expire: "1209600".into(),
        dnssecstatus: false,
    }
}

fn next_id(counter: &mut u64) -> String {
    let id = counter.to_string();
    *counter += 1;
    id
}

impl Zone {
    pub fn from_seed(seed: &ZoneSeed, ids: &mut u64) -> Zone {
        let name = seed.name.to_ascii_lowercase();
        Zone {
            info: info(&name, &seed.ttl),
            records: seed
                .records
                .iter()
                .map(|r| Record {
                    id: next_id(ids),
                    hostname: r.hostname.clone(),
                    record_type: r.record_type.to_ascii_uppercase(),
                    priority: r.priority.clone().unwrap_or_else(|| "0".into()),
                    destination: r.destination.clone(),
                })
                .collect(),
        }
    }

    /// A zone created on first use. Addresses come from the documentation ranges (RFC 5737,
    /// RFC 3849) so nothing a test does can point at a real host.
    pub fn example(name: &str, ids: &mut u64) -> Zone {
        let rec = |h: &str, t: &str, p: &str, d: String| RecordSeed {
            hostname: h.into(),
            record_type: t.into(),
            priority: Some(p.into()),
            destination: d,
        };
        let seed = ZoneSeed {
            name: name.into(),
            ttl: default_ttl(),
            records: vec![
                rec("@", "A", "0", "192.0.2.10".into()),
                rec("www", "A", "0", "192.0.2.10".into()),
                rec("@", "AAAA", "0", "2001:db8::10".into()),
                rec("mail", "A", "0", "198.51.100.25".into()),
                rec("@", "MX", "10", format!("mail.{name}")),
                rec("@", "TXT", "0", "v=spf1 mx -all".into()),
            ],
        };
        Zone::from_seed(&seed, ids)
    }

    pub fn info_json(&self) -> Value {
        json!({
            "name": self.info.name,
            "ttl": self.info.ttl,
            "serial": self.info.serial.to_string(),
            "refresh": self.info.refresh,
            "retry": self.info.retry,
            "expire": self.info.expire,
            "dnssecstatus": self.info.dnssecstatus,
        })
    }

    pub fn records_json(&self) -> Value {
        let list: Vec<Value> = self
            .records
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "hostname": r.hostname,
                    "type": r.record_type,
                    "priority": r.priority,
                    "destination": r.destination,
                    "deleterecord": false,
                    "state": "yes",
                })
            })
            .collect();
        json!({ "dnsrecords": list })
    }

    pub fn apply_zone_update(&mut self, u: &ZoneUpdate) {
        if let Some(v) = &u.ttl {
            self.info.ttl = v.clone();
        }
        if let Some(v) = &u.refresh {
            self.info.refresh = v.clone();
        }
        if let Some(v) = &u.retry {
            self.info.retry = v.clone();
        }
        if let Some(v) = &u.expire {
            self.info.expire = v.clone();
        }
        if let Some(v) = u.dnssecstatus {
            self.info.dnssecstatus = v;
        }
        self.info.serial += 1;
    }

    /// Applies a record set: all or nothing. Records that are not submitted stay untouched.
    pub fn apply_records(&mut self, inputs: &[RecordInput], ids: &mut u64) -> Result<(), String> {
        for input in inputs {
            if let Some(id) = &input.id
                && !self.records.iter().any(|r| &r.id == id)
            {
                return Err(format!(
                    "The record with id {id} does not exist in zone {}.",
                    self.info.name
                ));
            }
        }
        for input in inputs {
            match &input.id {
                Some(id) if input.delete => self.records.retain(|r| &r.id != id),
                Some(id) => {
                    let r = self
                        .records
                        .iter_mut()
                        .find(|r| &r.id == id)
                        .expect("checked above");
                    r.hostname = input.hostname.clone();
                    r.record_type = input.record_type.clone();
                    r.priority = input.priority.clone().unwrap_or_else(|| "0".into());
                    r.destination = input.destination.clone();
                }
                None => self.records.push(Record {
                    id: next_id(ids),
                    hostname: input.hostname.clone(),
                    record_type: input.record_type.clone(),
                    priority: input.priority.clone().unwrap_or_else(|| "0".into()),
                    destination: input.destination.clone(),
                }),
            }
        }
        self.info.serial += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(id: Option<&str>, host: &str, dest: &str, delete: bool) -> RecordInput {
        RecordInput {
            id: id.map(str::to_string),
            hostname: host.into(),
            record_type: "A".into(),
            priority: None,
            destination: dest.into(),
            delete,
        }
    }

    #[test]
    fn only_submitted_records_change() {
        let mut ids = 1;
        let mut z = Zone::example("example.com", &mut ids);
        let before = z.records.len();
        z.apply_records(&[input(None, "new", "192.0.2.99", false)], &mut ids)
            .unwrap();
        assert_eq!(z.records.len(), before + 1);
        let new_id = z.records.last().unwrap().id.clone();
        z.apply_records(
            &[input(Some(&new_id), "new", "192.0.2.100", false)],
            &mut ids,
        )
        .unwrap();
        assert_eq!(z.records.last().unwrap().destination, "192.0.2.100");
        assert_eq!(z.records.len(), before + 1);
        z.apply_records(&[input(Some(&new_id), "", "", true)], &mut ids)
            .unwrap();
        assert_eq!(z.records.len(), before);
        assert!(z.records.iter().any(|r| r.hostname == "www"));
    }

    #[test]
    fn an_unknown_id_changes_nothing() {
        let mut ids = 1;
        let mut z = Zone::example("example.com", &mut ids);
        let snapshot = z.records_json();
        let err = z
            .apply_records(
                &[
                    input(None, "a", "192.0.2.1", false),
                    input(Some("999999"), "b", "192.0.2.2", false),
                ],
                &mut ids,
            )
            .unwrap_err();
        assert!(err.contains("999999"));
        assert_eq!(z.records_json(), snapshot);
    }

    #[test]
    fn zones_file_errors_name_the_place() {
        let err = parse_zones(b"{\"zones\": [\n  {\"name\": \"x.org\",}\n]}").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = parse_zones(br#"{"zones":[{"name":"x.org","records":[{"hostname":"@","type":"BAD","destination":"d"}]}]}"#).unwrap_err();
        assert!(err.contains("BAD"), "{err}");
        let ok = parse_zones(br#"[{"name":"X.org","ttl":300,"records":[{"hostname":"@","type":"mx","destination":"m.x.org","priority":5}]}]"#).unwrap();
        assert_eq!(ok[0].ttl, "300");
        assert_eq!(ok[0].records[0].priority.as_deref(), Some("5"));
    }
}

//! The lookup table: built-in entries for a few well-known public addresses, entries from a
//! `--data` file, and the reserved ranges the real service refuses.
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::Deserialize;

use crate::MockError;

/// Where an address is, as far as the mock's table knows. Field names follow the data-file
/// format in mocks/README.md.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub continent_code: String,
    pub continent_geoname_id: u32,
    pub continent_name: String,
    pub country_iso_code: String,
    pub country_geoname_id: u32,
    pub country_name: String,
    #[serde(default)]
    pub is_in_european_union: bool,
    #[serde(default)]
    pub city_name: Option<String>,
    #[serde(default)]
    pub city_geoname_id: Option<u32>,
    #[serde(default)]
    pub subdivision_iso_code: Option<String>,
    #[serde(default)]
    pub subdivision_name: Option<String>,
    #[serde(default)]
    pub subdivision_geoname_id: Option<u32>,
    #[serde(default)]
    pub postal_code: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default = "default_radius")]
    pub accuracy_radius: u32,
    pub time_zone: String,
    #[serde(default)]
    pub autonomous_system_number: Option<u32>,
    #[serde(default)]
    pub autonomous_system_organization: Option<String>,
    #[serde(default)]
    pub isp: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
}

fn default_radius() -> u32 {
    100
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub network: IpNet,
    pub location: Location,
    /// From a --data file: such entries may cover private or reserved addresses on purpose.
    pub explicit: bool,
}

/// One row of a data file: `ip` or `network`, plus the location fields.
#[derive(Debug, Deserialize)]
struct FileEntry {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    network: Option<String>,
    #[serde(flatten)]
    location: Location,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DataDoc {
    Wrapped { entries: Vec<FileEntry> },
    List(Vec<FileEntry>),
}

/// Parses a data file's bytes. Errors name the entry or the line and column.
pub fn parse_data(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let doc: DataDoc = serde_json::from_value(value).map_err(|e| {
        format!("expected {{\"entries\":[{{\"ip\" or \"network\", ...location fields}}]}}: {e}")
    })?;
    let rows = match doc {
        DataDoc::Wrapped { entries } | DataDoc::List(entries) => entries,
    };
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            let network = match (&row.ip, &row.network) {
                (Some(ip), None) => ip
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|e| format!("entry {i}: ip {ip:?}: {e}"))?,
                (None, Some(net)) => net
                    .parse::<IpNet>()
                    .map(|n| n.trunc())
                    .map_err(|e| format!("entry {i}: network {net:?}: {e}"))?,
                _ => {
                    return Err(format!(
                        "entry {i}: give exactly one of \"ip\" or \"network\""
                    ));
                }
            };
            Ok(Entry {
                network,
                location: row.location,
                explicit: true,
            })
        })
        .collect()
}

pub fn load_data_file(path: &Path) -> Result<Vec<Entry>, MockError> {
    let bytes = std::fs::read(path).map_err(|source| MockError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    parse_data(&bytes).map_err(|message| MockError::BadFile {
        path: path.to_path_buf(),
        message,
    })
}

/// What the table says about an address.
#[derive(Debug, PartialEq)]
pub enum Lookup<'a> {
    Found(&'a Entry),
    Reserved,
    NotFound,
}

pub struct Table {
    entries: Vec<Entry>,
}

impl Table {
    /// The built-in entries plus `extra`; extra entries win over built-in ones of equal prefix.
    pub fn new(extra: Vec<Entry>) -> Table {
        let mut entries = builtin();
        entries.extend(extra);
        Table { entries }
    }

    /// Longest prefix wins; at equal length the later (file) entry wins. An explicit file entry
    /// beats the reserved check so a stack can give its own private addresses a location.
    pub fn lookup(&self, ip: IpAddr) -> Lookup<'_> {
        let ip = canonical(ip);
        let best = self
            .entries
            .iter()
            .filter(|e| e.network.contains(&ip))
            .fold(None::<&Entry>, |best, e| match best {
                Some(b) if b.network.prefix_len() > e.network.prefix_len() => Some(b),
                _ => Some(e),
            });
        match best {
            Some(e) if e.explicit => Lookup::Found(e),
            _ if is_reserved(ip) => Lookup::Reserved,
            Some(e) => Lookup::Found(e),
            None => Lookup::NotFound,
        }
    }
}

/// IPv4-mapped IPv6 addresses are looked up as the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Private, loopback, link-local, documentation, benchmarking, multicast and other special-use
/// ranges (IANA special-purpose registries). The real service answers IP_ADDRESS_RESERVED.
pub fn is_reserved(ip: IpAddr) -> bool {
    const V4: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    ];
    const V6: &[&str] = &[
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "3fff::/20",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ];
    let ranges = match canonical(ip) {
        IpAddr::V4(_) => V4,
        IpAddr::V6(_) => V6,
    };
    let ip = canonical(ip);
    ranges
        .iter()
        .any(|r| r.parse::<IpNet>().expect("static range").contains(&ip))
}

fn builtin() -> Vec<Entry> {
    #[allow(clippy::too_many_arguments)]
    fn loc(
        country: (&str, u32, &str, bool),
        continent: (&str, u32, &str),
        city: Option<(&str, u32, &str, &str, u32, &str)>,
        lat_lon: (f64, f64),
        radius: u32,
        tz: &str,
        asn: (u32, &str),
    ) -> Location {
        Location {
            continent_code: continent.0.into(),
            continent_geoname_id: continent.1,
            continent_name: continent.2.into(),
            country_iso_code: country.0.into(),
            country_geoname_id: country.1,
            country_name: country.2.into(),
            is_in_european_union: country.3,
            city_name: city.map(|c| c.0.into()),
            city_geoname_id: city.map(|c| c.1),
            subdivision_iso_code: city.map(|c| c.2.into()),
            subdivision_name: city.map(|c| c.3.into()),
            subdivision_geoname_id: city.map(|c| c.4),
            postal_code: city.map(|c| c.5.into()),
            latitude: lat_lon.0,
            longitude: lat_lon.1,
            accuracy_radius: radius,
            time_zone: tz.into(),
            autonomous_system_number: Some(asn.0),
            autonomous_system_organization: Some(asn.1.into()),
            isp: Some(asn.1.into()),
            organization: Some(asn.1.into()),
        }
    }
    let na = ("NA", 6255149, "North America");
    let eu = ("EU", 6255148, "Europe");
    let oc = ("OC", 6255151, "Oceania");
    let us = ("US", 6252001, "United States", false);
    let entry = |net: &str, location: Location| Entry {
        network: net.parse().expect("static network"),
        location,
        explicit: false,
    };
    vec![
        entry(
            "8.8.8.0/24",
            loc(
                us,
                na,
                None,
                (37.751, -97.822),
                1000,
                "America/Chicago",
                (15169, "Google LLC"),
            ),
        ),
        entry(
            "2001:4860:4860::/48",
            loc(
                us,
                na,
                None,
                (37.751, -97.822),
                1000,
                "America/Chicago",
                (15169, "Google LLC"),
            ),
        ),
        entry(
            "1.1.1.0/24",
            loc(
                ("AU", 2077456, "Australia", false),
                oc,
                None,
                (-33.494, 143.2104),
                1000,
                "Australia/Sydney",
                (13335, "Cloudflare, Inc."),
            ),
        ),
        entry(
            "81.2.69.160/27",
            loc(
                ("GB", 2635167, "United Kingdom", false),
                eu,
                Some(("London", 2643743, "ENG", "England", 6269131, "SW1A")),
                (51.5142, -0.0931),
                10,
                "Europe/London",
                (20712, "Andrews & Arnold Ltd"),
            ),
        ),
        entry(
            "89.160.20.112/28",
            loc(
                ("SE", 2661886, "Sweden", true),
                eu,
                Some((
                    "Linköping",
                    2694762,
                    "E",
                    "Östergötland County",
                    2685867,
                    "582 52",
                )),
                (58.4167, 15.6167),
                76,
                "Europe/Stockholm",
                (29518, "Bredband2 AB"),
            ),
        ),
        entry(
            "2001:67c:2e8::/48",
            loc(
                ("NL", 2750405, "Netherlands", true),
                eu,
                Some(("Amsterdam", 2759794, "NH", "North Holland", 2749879, "1012")),
                (52.3759, 4.8975),
                20,
                "Europe/Amsterdam",
                (
                    3333,
                    "Reseaux IP Europeens Network Coordination Centre (RIPE NCC)",
                ),
            ),
        ),
        entry(
            "46.4.0.0/16",
            loc(
                ("DE", 2921044, "Germany", true),
                eu,
                Some(("Falkenstein", 2927913, "SN", "Saxony", 2842566, "08223")),
                (50.4777, 12.3713),
                20,
                "Europe/Berlin",
                (24940, "Hetzner Online GmbH"),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn documentation_private_and_loopback_ranges_are_reserved() {
        for a in [
            "10.1.2.3",
            "127.0.0.1",
            "192.168.1.1",
            "172.20.0.5",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "::1",
            "fe80::1",
            "fd00::5",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_reserved(ip(a)), "{a} should be reserved");
        }
        for a in [
            "8.8.8.8",
            "81.2.69.160",
            "2001:4860:4860::8888",
            "2001:67c:2e8::1",
        ] {
            assert!(!is_reserved(ip(a)), "{a} should be public");
        }
    }

    #[test]
    fn lookups_prefer_longer_prefixes_and_file_entries() {
        let extra = parse_data(
            br#"{"entries":[
              {"ip":"8.8.8.8","continent_code":"EU","continent_geoname_id":6255148,"continent_name":"Europe",
               "country_iso_code":"DE","country_geoname_id":2921044,"country_name":"Germany",
               "latitude":1.0,"longitude":2.0,"time_zone":"Europe/Berlin"},
              {"network":"10.0.0.0/8","continent_code":"EU","continent_geoname_id":6255148,"continent_name":"Europe",
               "country_iso_code":"FR","country_geoname_id":3017382,"country_name":"France",
               "latitude":1.0,"longitude":2.0,"time_zone":"Europe/Paris"}
            ]}"#,
        )
        .unwrap();
        let t = Table::new(extra);
        let Lookup::Found(e) = t.lookup(ip("8.8.8.8")) else {
            panic!()
        };
        assert_eq!(e.location.country_iso_code, "DE");
        let Lookup::Found(e) = t.lookup(ip("8.8.8.9")) else {
            panic!()
        };
        assert_eq!(e.location.country_iso_code, "US");
        let Lookup::Found(e) = t.lookup(ip("10.9.9.9")) else {
            panic!()
        };
        assert_eq!(e.location.country_iso_code, "FR");
        assert_eq!(t.lookup(ip("192.168.0.1")), Lookup::Reserved);
        assert_eq!(t.lookup(ip("9.9.9.9")), Lookup::NotFound);
    }

    #[test]
    fn data_file_errors_name_the_entry() {
        let err = parse_data(br#"[{"ip":"1.2.3.999","continent_code":"EU","continent_geoname_id":1,"continent_name":"x","country_iso_code":"X","country_geoname_id":1,"country_name":"x","latitude":0,"longitude":0,"time_zone":"UTC"}]"#).unwrap_err();
        assert!(err.contains("entry 0"), "{err}");
        let err = parse_data(b"[\n{\"ip\": }]").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = parse_data(br#"[{"ip":"1.2.3.4","bogus":1}]"#).unwrap_err();
        assert!(err.contains("expected"), "{err}");
    }
}

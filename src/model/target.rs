//! The two places a package goes: the local stack and the webhosting server. Parsed once (from
//! harness.toml's `[targets.*]`, the command line or a stored record) and passed as this type;
//! its name is what files, the ledger and build_info.json store.
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The production-parity stack on this machine (`harness up`, `harness test`).
    Local,
    /// The Passenger host that `harness deploy webhosting` ships to.
    Webhosting,
}

impl Target {
    pub const ALL: [Target; 2] = [Target::Local, Target::Webhosting];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Local => "local",
            Target::Webhosting => "webhosting",
        }
    }

    pub fn parse(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl serde::Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Target::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown target {name:?} (targets are `local` and `webhosting`)"
            ))
        })
    }
}

impl PartialEq<&str> for Target {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Target> for &str {
    fn eq(&self, other: &Target) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for t in Target::ALL {
            assert_eq!(Target::parse(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<Target>(&json).unwrap(), t);
        }
        assert_eq!(Target::parse("staging"), None);
        let e = serde_json::from_str::<Target>("\"staging\"").unwrap_err();
        assert!(e.to_string().contains("unknown target \"staging\""), "{e}");
        assert_eq!(format!("[{:<11}]", Target::Local), "[local      ]");
    }
}

//! The wire format of the Netcup CCP API: decoding requests leniently (as the real endpoint does)
//! into typed values, and the response envelope. Pure functions, so they can be property-tested.
use serde::Serialize;
use serde_json::{Map, Value};

/// The actions the mock implements (contracts.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    Logout,
    InfoDnsZone,
    UpdateDnsZone,
    InfoDnsRecords,
    UpdateDnsRecords,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Login,
        Action::Logout,
        Action::InfoDnsZone,
        Action::UpdateDnsZone,
        Action::InfoDnsRecords,
        Action::UpdateDnsRecords,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Logout => "logout",
            Action::InfoDnsZone => "infoDnsZone",
            Action::UpdateDnsZone => "updateDnsZone",
            Action::InfoDnsRecords => "infoDnsRecords",
            Action::UpdateDnsRecords => "updateDnsRecords",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Why a request could not be decoded; each becomes a 4013 envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Json(String),
    NotAnObject,
    MissingAction,
    UnknownAction(String),
    MissingParam(&'static str),
    BadParam { name: &'static str, reason: String },
}

impl DecodeError {
    pub fn long_message(&self) -> String {
        match self {
            DecodeError::Json(e) => format!("The request body is not valid JSON: {e}."),
            DecodeError::NotAnObject => {
                "The request body must be a JSON object {\"action\":...,\"param\":{...}}.".into()
            }
            DecodeError::MissingAction => "The request has no \"action\".".into(),
            DecodeError::UnknownAction(a) => format!("The action \"{a}\" is unknown."),
            DecodeError::MissingParam(p) => format!("The parameter \"{p}\" is missing."),
            DecodeError::BadParam { name, reason } => {
                format!("The parameter \"{name}\" is invalid: {reason}.")
            }
        }
    }
}

/// A decoded request: a known action and its parameters, still untyped until the action asks.
#[derive(Debug, Clone)]
pub struct Request {
    pub action: Action,
    pub param: Map<String, Value>,
}

impl Request {
    pub fn client_request_id(&self) -> String {
        self.param
            .get("clientrequestid")
            .and_then(text)
            .unwrap_or_default()
    }
}

/// What a failed decode still knows, so the error envelope can echo it.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub action: String,
    pub client_request_id: String,
    pub error: DecodeError,
}

/// Decodes a request body. The content type is not consulted: the real endpoint accepts JSON
/// sent as form data or text, and so do the clients in the wild.
pub fn decode(body: &[u8]) -> Result<Request, Rejected> {
    let reject = |action: String, client_request_id: String, error| Rejected {
        action,
        client_request_id,
        error,
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        reject(
            String::new(),
            String::new(),
            DecodeError::Json(e.to_string()),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err(reject(
            String::new(),
            String::new(),
            DecodeError::NotAnObject,
        ));
    };
    let param = match obj.remove("param") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            let action = obj.get("action").and_then(text).unwrap_or_default();
            return Err(reject(
                action,
                String::new(),
                DecodeError::BadParam {
                    name: "param",
                    reason: "must be an object".into(),
                },
            ));
        }
    };
    let crid = param
        .get("clientrequestid")
        .and_then(text)
        .unwrap_or_default();
    let action_name = match obj.get("action") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(reject(String::new(), crid, DecodeError::MissingAction)),
    };
    match Action::parse(&action_name) {
        Some(action) => Ok(Request { action, param }),
        None => Err(reject(
            action_name.clone(),
            crid,
            DecodeError::UnknownAction(action_name),
        )),
    }
}

/// A string parameter; numbers are accepted and rendered (customer numbers arrive as either).
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A boolean parameter given as a bool, a string ("true", "yes", "1", ...) or 0/1.
pub fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

pub fn required_text(
    param: &Map<String, Value>,
    name: &'static str,
) -> Result<String, DecodeError> {
    match param.get(name) {
        None | Some(Value::Null) => Err(DecodeError::MissingParam(name)),
        Some(v) => match text(v) {
            Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(_) => Err(DecodeError::MissingParam(name)),
            None => Err(DecodeError::BadParam {
                name,
                reason: "must be a string".into(),
            }),
        },
    }
}

/// The credentials every action carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub customer_number: String,
    pub api_key: String,
}

pub fn credentials(param: &Map<String, Value>) -> Result<Credentials, DecodeError> {
    Ok(Credentials {
        customer_number: required_text(param, "customernumber")?,
        api_key: required_text(param, "apikey")?,
    })
}

pub const RECORD_TYPES: [&str; 12] = [
    "A",
    "AAAA",
    "MX",
    "CNAME",
    "CAA",
    "SRV",
    "TXT",
    "TLSA",
    "NS",
    "DS",
    "OPENPGPKEY",
    "SMIMEA",
];

/// One submitted record from `updateDnsRecords`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInput {
    pub id: Option<String>,
    pub hostname: String,
    pub record_type: String,
    pub priority: Option<String>,
    pub destination: String,
    pub delete: bool,
}

pub fn record_set(param: &Map<String, Value>) -> Result<Vec<RecordInput>, DecodeError> {
    let bad = |reason: String| DecodeError::BadParam {
        name: "dnsrecordset",
        reason,
    };
    let set = param
        .get("dnsrecordset")
        .ok_or(DecodeError::MissingParam("dnsrecordset"))?;
    let records = set
        .get("dnsrecords")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("needs a \"dnsrecords\" array".into()))?;
    records
        .iter()
        .enumerate()
        .map(|(i, r)| record(r).map_err(|reason| bad(format!("record {i}: {reason}"))))
        .collect()
}

fn record(v: &Value) -> Result<RecordInput, String> {
    let obj = v.as_object().ok_or("must be an object")?;
    let get_text = |name: &str| -> Result<Option<String>, String> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => text(v)
                .map(|s| Some(s.trim().to_string()))
                .ok_or_else(|| format!("\"{name}\" must be a string")),
        }
    };
    let id = get_text("id")?.filter(|s| !s.is_empty());
    let delete = match obj.get("deleterecord") {
        None | Some(Value::Null) => false,
        Some(v) => flag(v).ok_or("\"deleterecord\" must be a boolean")?,
    };
    if let Some(v) = obj.get("state")
        && !v.is_null()
        && flag(v).is_none()
        && v.as_str().is_none()
    {
        return Err("\"state\" must be a boolean or a string".into());
    }
    let hostname = get_text("hostname")?.unwrap_or_default();
    let record_type = get_text("type")?.unwrap_or_default().to_ascii_uppercase();
    let destination = get_text("destination")?.unwrap_or_default();
    let priority = get_text("priority")?.filter(|s| !s.is_empty());
    if !delete {
        if hostname.is_empty() {
            return Err("\"hostname\" is required".into());
        }
        if !RECORD_TYPES.contains(&record_type.as_str()) {
            return Err(format!(
                "\"type\" {record_type:?} is not a supported record type"
            ));
        }
        if destination.is_empty() {
            return Err("\"destination\" is required".into());
        }
        if let Some(p) = &priority
            && p.parse::<u32>().is_err()
        {
            return Err(format!("\"priority\" {p:?} is not a number"));
        }
    } else if id.is_none() {
        return Err("deleting a record needs its \"id\"".into());
    }
    Ok(RecordInput {
        id,
        hostname,
        record_type,
        priority,
        destination,
        delete,
    })
}

/// Changes to a zone from `updateDnsZone`; fields not given stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneUpdate {
    pub ttl: Option<String>,
    pub refresh: Option<String>,
    pub retry: Option<String>,
    pub expire: Option<String>,
    pub dnssecstatus: Option<bool>,
}

pub fn zone_update(param: &Map<String, Value>) -> Result<ZoneUpdate, DecodeError> {
    let zone = param
        .get("dnszone")
        .and_then(Value::as_object)
        .ok_or(DecodeError::MissingParam("dnszone"))?;
    let number = |name: &'static str| -> Result<Option<String>, DecodeError> {
        match zone.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match text(v) {
                Some(s) if s.trim().parse::<u32>().is_ok() => Ok(Some(s.trim().to_string())),
                _ => Err(DecodeError::BadParam {
                    name: "dnszone",
                    reason: format!("\"{name}\" must be a number"),
                }),
            },
        }
    };
    let dnssecstatus = match zone.get("dnssecstatus") {
        None | Some(Value::Null) => None,
        Some(v) => Some(flag(v).ok_or(DecodeError::BadParam {
            name: "dnszone",
            reason: "\"dnssecstatus\" must be a boolean".into(),
        })?),
    };
    Ok(ZoneUpdate {
        ttl: number("ttl")?,
        refresh: number("refresh")?,
        retry: number("retry")?,
        expire: number("expire")?,
        dnssecstatus,
    })
}

/// The response envelope: HTTP 200 for API errors too, with `responsedata` "" on error.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    pub serverrequestid: &'a str,
    pub clientrequestid: &'a str,
    pub action: &'a str,
    pub status: &'static str,
    pub statuscode: u16,
    pub shortmessage: &'a str,
    pub longmessage: &'a str,
    pub responsedata: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn decodes_a_login() {
        let r = decode(
            br#"{"action":"login","param":{"customernumber":123456,"apikey":"k","apipassword":"p","clientrequestid":"c1"}}"#,
        )
        .unwrap();
        assert_eq!(r.action, Action::Login);
        assert_eq!(r.client_request_id(), "c1");
        let c = credentials(&r.param).unwrap();
        assert_eq!(c.customer_number, "123456");
    }

    #[test]
    fn unknown_action_and_bad_json_are_rejected_with_what_is_known() {
        let e =
            decode(br#"{"action":"dropAllZones","param":{"clientrequestid":"x"}}"#).unwrap_err();
        assert_eq!(e.action, "dropAllZones");
        assert_eq!(e.client_request_id, "x");
        assert!(matches!(e.error, DecodeError::UnknownAction(_)));
        assert!(matches!(
            decode(b"{nope").unwrap_err().error,
            DecodeError::Json(_)
        ));
        assert_eq!(decode(b"[1]").unwrap_err().error, DecodeError::NotAnObject);
        assert_eq!(decode(b"{}").unwrap_err().error, DecodeError::MissingAction);
    }

    #[test]
    fn records_accept_state_as_bool_or_string_and_ids_as_numbers() {
        let p = json!({"dnsrecordset":{"dnsrecords":[
            {"id":null,"hostname":"a","type":"a","priority":null,"destination":"192.0.2.7","deleterecord":false,"state":true},
            {"id":17,"hostname":"b","type":"MX","priority":10,"destination":"mx.example.com","deleterecord":"false","state":"yes"},
            {"id":"18","deleterecord":true}
        ]}});
        let recs = record_set(p.as_object().unwrap()).unwrap();
        assert_eq!(recs[0].id, None);
        assert_eq!(recs[0].record_type, "A");
        assert_eq!(recs[1].id.as_deref(), Some("17"));
        assert_eq!(recs[1].priority.as_deref(), Some("10"));
        assert!(recs[2].delete);
    }

    #[test]
    fn invalid_records_say_which_and_why() {
        let p = json!({"dnsrecordset":{"dnsrecords":[{"hostname":"a","type":"BOGUS","destination":"x"}]}});
        let err = record_set(p.as_object().unwrap()).unwrap_err();
        assert!(err.long_message().contains("record 0"), "{err:?}");
        assert!(err.long_message().contains("BOGUS"));
        let p = json!({"dnsrecordset":{"dnsrecords":[{"deleterecord":true}]}});
        assert!(record_set(p.as_object().unwrap()).is_err());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("login"),
                Just("A"),
                Just("true"),
                Just("yes"),
                Just("dnsrecords")
            ]
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("action".to_string()),
                        Just("param".to_string()),
                        Just("dnsrecordset".to_string()),
                        Just("dnsrecords".to_string()),
                        Just("id".to_string()),
                        Just("state".to_string()),
                        Just("deleterecord".to_string()),
                        Just("hostname".to_string()),
                        Just("type".to_string()),
                        Just("destination".to_string()),
                        "[a-z]{1,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        // Arbitrary bytes never panic the decoder; they decode or come back as a DecodeError.
        #[test]
        fn decode_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&body);
        }

        // Arbitrary JSON shapes reach every typed accessor without panicking.
        #[test]
        fn typed_accessors_never_panic(v in arb_json()) {
            let body = serde_json::to_vec(&json!({"action":"updateDnsRecords","param":v})).unwrap();
            if let Ok(req) = decode(&body) {
                let _ = credentials(&req.param);
                let _ = record_set(&req.param);
                let _ = zone_update(&req.param);
            }
        }

        // A well-formed record decodes to exactly what was sent, whichever spelling `state` and
        // `deleterecord` use.
        #[test]
        fn valid_records_round_trip(
            host in "[a-z][a-z0-9-]{0,10}",
            ty in prop::sample::select(RECORD_TYPES.to_vec()),
            dest in "[a-z0-9.:]{1,20}",
            id in prop::option::of(1u32..100_000),
            prio in prop::option::of(0u32..100),
            state in prop_oneof![Just(json!(true)), Just(json!("yes")), Just(json!(false)), Just(Value::Null)],
            as_string in any::<bool>(),
        ) {
            let del = if as_string { json!("false") } else { json!(false) };
            let p = json!({"dnsrecordset":{"dnsrecords":[{
                "id": id.map(|i| if as_string { json!(i.to_string()) } else { json!(i) }),
                "hostname": host, "type": ty.to_lowercase(), "destination": dest,
                "priority": prio, "deleterecord": del, "state": state,
            }]}});
            let recs = record_set(p.as_object().unwrap()).unwrap();
            prop_assert_eq!(recs.len(), 1);
            let r = &recs[0];
            prop_assert_eq!(&r.hostname, &host);
            prop_assert_eq!(r.record_type.as_str(), ty);
            prop_assert_eq!(&r.destination, &dest);
            prop_assert_eq!(r.id.clone(), id.map(|i| i.to_string()));
            prop_assert_eq!(r.priority.clone(), prio.map(|i| i.to_string()));
            prop_assert!(!r.delete);
        }
    }
}

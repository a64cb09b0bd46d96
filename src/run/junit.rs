//! Reads pytest's junit.xml: one [`CaseResult`] per `<testcase>`.
use quick_xml::events::{BytesStart, Event};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Passed,
    Failed,
    Error,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaseResult {
    pub classname: String,
    pub name: String,
    pub seconds: f64,
    pub status: CaseStatus,
    /// The failure's one-line message (`message` attribute).
    pub message: Option<String>,
    /// The failure's full text (pytest puts the traceback there).
    pub details: Option<String>,
}

impl CaseResult {
    /// `classname::name`, the key the harness plugin's lines use too.
    pub fn key(&self) -> String {
        format!("{}::{}", self.classname, self.name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SuiteResult {
    pub cases: Vec<CaseResult>,
    /// pytest's own wall time for the session (the `<testsuite time>` attributes summed).
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
}

impl Counts {
    pub fn total(&self) -> u32 {
        self.passed + self.failed + self.errors + self.skipped
    }
}

impl SuiteResult {
    /// Each case as the ledger keeps it for the run history: its key, status and duration.
    pub fn ledger_rows(&self) -> Vec<crate::ledger::TestRow> {
        use crate::ledger::TestStatus;
        self.cases
            .iter()
            .map(|c| crate::ledger::TestRow {
                test: c.key(),
                status: match c.status {
                    CaseStatus::Passed => TestStatus::Passed,
                    CaseStatus::Failed => TestStatus::Failed,
                    CaseStatus::Error => TestStatus::Error,
                    CaseStatus::Skipped => TestStatus::Skipped,
                },
                duration_ms: (c.seconds.max(0.0) * 1000.0).round() as u64,
            })
            .collect()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for case in &self.cases {
            match case.status {
                CaseStatus::Passed => c.passed += 1,
                CaseStatus::Failed => c.failed += 1,
                CaseStatus::Error => c.errors += 1,
                CaseStatus::Skipped => c.skipped += 1,
            }
        }
        c
    }
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

fn push_details(current: &mut Option<CaseResult>, text: &str) {
    if let Some(case) = current.as_mut() {
        case.details.get_or_insert_with(String::new).push_str(text);
    }
}

/// Parses junit.xml text. Unknown elements are ignored; a document that is not XML is an error
/// naming the position.
pub fn parse(xml: &str) -> Result<SuiteResult, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut suite = SuiteResult::default();
    let mut current: Option<CaseResult> = None;
    // Text of the failure/error/skipped element being read, if any.
    let mut in_outcome = false;
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "junit.xml is not valid XML at byte {}: {e}",
                reader.error_position()
            )
        })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                match e.name().as_ref() {
                    "testsuite" => {
                        suite.seconds += attr(e, "time")
                            .and_then(|t| t.parse::<f64>().ok())
                            .unwrap_or(0.0);
                    }
                    "testcase" => {
                        let case = CaseResult {
                            classname: attr(e, "classname").unwrap_or_default(),
                            name: attr(e, "name").unwrap_or_default(),
                            seconds: attr(e, "time").and_then(|t| t.parse().ok()).unwrap_or(0.0),
                            status: CaseStatus::Passed,
                            message: None,
                            details: None,
                        };
                        if empty {
                            suite.cases.push(case);
                        } else {
                            current = Some(case);
                        }
                    }
                    tag @ ("failure" | "error" | "skipped") => {
                        if let Some(case) = current.as_mut() {
                            let status = match tag {
                                "failure" => CaseStatus::Failed,
                                "error" => CaseStatus::Error,
                                _ => CaseStatus::Skipped,
                            };
                            // A failure outranks an error in teardown, which outranks a skip.
                            let rank = |s: CaseStatus| match s {
                                CaseStatus::Passed => 0,
                                CaseStatus::Skipped => 1,
                                CaseStatus::Error => 2,
                                CaseStatus::Failed => 3,
                            };
                            if rank(status) > rank(case.status) {
                                case.status = status;
                                case.message = attr(e, "message");
                                case.details = None;
                                in_outcome = !empty;
                            }
                        }
                    }
                    _ => {}
                }
            }
            // Text arrives in pieces: plain runs, CDATA, and each entity (`&gt;`) on its own.
            Event::Text(t) if in_outcome => push_details(&mut current, &t.xml10_content()),
            Event::CData(t) if in_outcome => push_details(&mut current, &t.xml10_content()),
            Event::GeneralRef(r) if in_outcome => {
                let name = r.xml10_content();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&name)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("&{name};")),
                };
                push_details(&mut current, &resolved);
            }
            Event::End(ref e) => match e.name().as_ref() {
                "testcase" => {
                    if let Some(case) = current.take() {
                        suite.cases.push(case);
                    }
                }
                "failure" | "error" | "skipped" => in_outcome = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(suite)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shape pytest 8 writes (xunit2), trimmed.
    const SAMPLE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="12.345" timestamp="2026-11-26T09:00:00" hostname="x">
<testcase classname="test_admin" name="test_login" time="1.500" />
<testcase classname="test_admin" name="test_broken" time="2.000"><failure message="assert 'a' == 'b'">def test_broken():
&gt;       assert "a" == "b"
E       AssertionError</failure></testcase>
<testcase classname="sub.test_dns" name="test_skip" time="0.001"><skipped type="pytest.skip" message="no mocks">/tests/sub/test_dns.py:3: no mocks</skipped></testcase>
<testcase classname="test_mail" name="test_setup_fails" time="0.100"><error message="failed on setup with &quot;boom&quot;">setup text</error></testcase>
<testcase classname="test_mail" name="test_ok" time="0.200"><system-out>hello</system-out></testcase>
</testsuite></testsuites>"#;

    #[test]
    fn reads_every_case_with_status_message_and_details() {
        let s = parse(SAMPLE).unwrap();
        assert_eq!(s.cases.len(), 5);
        assert!((s.seconds - 12.345).abs() < 1e-9);
        assert_eq!(
            s.counts(),
            Counts {
                passed: 2,
                failed: 1,
                errors: 1,
                skipped: 1
            }
        );
        let broken = &s.cases[1];
        assert_eq!(broken.key(), "test_admin::test_broken");
        assert_eq!(broken.status, CaseStatus::Failed);
        assert_eq!(broken.message.as_deref(), Some("assert 'a' == 'b'"));
        assert!(
            broken
                .details
                .as_deref()
                .unwrap()
                .contains(">       assert \"a\" == \"b\""),
            "{:?}",
            broken.details
        );
        assert_eq!(
            s.cases[3].message.as_deref(),
            Some("failed on setup with \"boom\"")
        );
        assert_eq!(s.cases[4].status, CaseStatus::Passed);
        assert!(
            s.cases[4].details.is_none(),
            "system-out is not a failure text"
        );
    }

    #[test]
    fn ledger_rows_keep_key_status_and_milliseconds() {
        use crate::ledger::TestStatus;
        let rows = parse(SAMPLE).unwrap().ledger_rows();
        let got: Vec<(&str, TestStatus, u64)> = rows
            .iter()
            .map(|r| (r.test.as_str(), r.status, r.duration_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                ("test_admin::test_login", TestStatus::Passed, 1500),
                ("test_admin::test_broken", TestStatus::Failed, 2000),
                ("sub.test_dns::test_skip", TestStatus::Skipped, 1),
                ("test_mail::test_setup_fails", TestStatus::Error, 100),
                ("test_mail::test_ok", TestStatus::Passed, 200),
            ]
        );
    }

    #[test]
    fn a_failure_outranks_a_teardown_error_of_the_same_case() {
        let xml = r#"<testsuite time="1"><testcase classname="t" name="x"><failure message="f">F</failure><error message="e">E</error></testcase></testsuite>"#;
        let s = parse(xml).unwrap();
        assert_eq!(s.cases[0].status, CaseStatus::Failed);
        assert_eq!(s.cases[0].details.as_deref(), Some("F"));
    }

    #[test]
    fn broken_xml_is_an_error_with_a_position() {
        let e = parse("<testsuite><testcase></testsuite>").unwrap_err();
        assert!(e.contains("not valid XML"), "{e}");
    }
}

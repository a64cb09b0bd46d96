//! The pytest arguments a user adds (`[test] args`, `harness test -- ARGS`): which ones harness
//! refuses because the run could no longer be read or recorded. Whether the added arguments
//! narrowed the run (`-m`, `--deselect`, `--ignore`, `-x`) is for the plugin to say: it sees
//! the project's `addopts` too, which harness does not parse.

/// Flags whose job harness does itself, with the reason given when a user passes them.
const REFUSED: &[(&str, &str)] = &[
    (
        "--junitxml",
        "harness writes junit.xml itself and reads the results from it",
    ),
    (
        "--junit-xml",
        "harness writes junit.xml itself and reads the results from it",
    ),
    (
        "--output",
        "harness collects traces and screenshots from pytest-playwright's --output folder",
    ),
    (
        "--co",
        "a run that only collects cannot be recorded; run `pytest --co` in your checkout",
    ),
    (
        "--collect-only",
        "a run that only collects cannot be recorded; run `pytest --co` in your checkout",
    ),
    (
        "--collectonly",
        "a run that only collects cannot be recorded; run `pytest --co` in your checkout",
    ),
];

const PLUGIN: &str = "harness_pytest";

/// `Err(why)` for the first argument harness cannot allow.
pub fn check(args: &[String]) -> Result<(), String> {
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        let flag = arg.split_once('=').map_or(arg.as_str(), |(f, _)| f);
        if let Some((_, why)) = REFUSED.iter().find(|(f, _)| *f == flag) {
            return Err(format!("`{arg}` is not allowed: {why}"));
        }
        // `-p no:harness_pytest`, `-pno:harness_pytest`, `-p=no:...`.
        let plugin = match arg.as_str() {
            "-p" => iter.peek().map(|s| s.as_str()),
            other => other
                .strip_prefix("-p=")
                .or_else(|| other.strip_prefix("-p")),
        };
        if plugin.is_some_and(|p| p.trim() == format!("no:{PLUGIN}")) {
            return Err(format!(
                "`-p no:{PLUGIN}` is not allowed: the harness plugin records which tests ran, \
                 which the report and the deploy gate need"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn refuses_what_would_take_the_run_out_of_harness_hands() {
        for bad in [
            &["-p", "no:harness_pytest"][..],
            &["-pno:harness_pytest"],
            &["--junitxml=out.xml"],
            &["--junitxml", "out.xml"],
            &["--junit-xml=x"],
            &["-x", "--output", "somewhere"],
            &["--co"],
            &["--collect-only"],
        ] {
            let e = check(&v(bad)).unwrap_err();
            assert!(e.contains("not allowed"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn lets_everything_else_through() {
        for ok in [
            &["-p", "no:cov"][..],
            &["-m", "smoke", "-x"],
            &["-p", "no:cacheprovider"],
            &["--maxfail=2", "-vv", "--tb=short"],
            &["-o", "junit_family=xunit2"],
            &["--deselect", "ui_tests/test_a.py::test_b"],
        ] {
            assert!(check(&v(ok)).is_ok(), "{ok:?}");
        }
    }
}

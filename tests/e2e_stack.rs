//! End-to-end cases for the stack engine against the real Docker daemon and the real harness/*
//! images (app: Apache + mod_passenger, proxy: nginx, mocks: `harness mock ...`).
//!
//! Each case builds its own throwaway project (a pure-WSGI app zipped into
//! .harness/dist/local/deploy.zip, so `up --skip-build` needs no pip), and removes its runs at
//! the end, whether it passed or not. Docker is verified with the `docker` CLI, independently of
//! the code under test.
//!
//! Without a Docker daemon the cases are ignored, unless CI is set: then they fail.
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

mod support;

fn main() {
    support::run_docker_suite(
        "stack",
        vec![
            (
                "up_watch_follows_a_template_a_view_a_broken_import_and_its_fix",
                up_watch_follows_a_template_a_view_a_broken_import_and_its_fix,
            ),
            (
                "up_with_mocks_brings_every_service_to_ready_and_urls_answer",
                up_with_mocks_brings_every_service_to_ready_and_urls_answer,
            ),
            (
                "up_killed_with_sigkill_mid_start_then_next_command_sweeps_orphans",
                up_killed_with_sigkill_mid_start_then_next_command_sweeps_orphans,
            ),
            (
                "sigint_during_up_removes_the_run_and_exits_130",
                sigint_during_up_removes_the_run_and_exits_130,
            ),
            (
                "sigterm_during_up_removes_the_run_and_exits_130",
                sigterm_during_up_removes_the_run_and_exits_130,
            ),
            (
                "kept_stack_survives_a_later_status_until_down",
                kept_stack_survives_a_later_status_until_down,
            ),
            (
                "vendor_comes_from_a_compiled_read_only_cache_filled_once_then_reused",
                vendor_comes_from_a_compiled_read_only_cache_filled_once_then_reused,
            ),
            (
                "two_ups_at_once_both_ready_with_different_ports_and_package_copies",
                two_ups_at_once_both_ready_with_different_ports_and_package_copies,
            ),
            (
                "app_raising_on_import_fails_up_with_exit_3_and_its_log_lines",
                app_raising_on_import_fails_up_with_exit_3_and_its_log_lines,
            ),
            (
                "compose_override_with_unsupported_key_exits_2_with_file_and_line",
                compose_override_with_unsupported_key_exits_2_with_file_and_line,
            ),
            (
                "every_resource_carries_run_labels_and_cache_volumes_outlive_runs",
                every_resource_carries_run_labels_and_cache_volumes_outlive_runs,
            ),
            (
                "every_wait_kind_and_dependency_condition_on_the_real_engine",
                every_wait_kind_and_dependency_condition_on_the_real_engine,
            ),
            (
                "a_failing_job_stops_up_at_once_with_its_exit_code_and_logs",
                a_failing_job_stops_up_at_once_with_its_exit_code_and_logs,
            ),
            (
                "logs_and_status_need_run_when_several_are_up",
                logs_and_status_need_run_when_several_are_up,
            ),
            (
                "tls_proxy_is_trusted_in_the_stack_redirects_and_forwards_scheme_and_port",
                tls_proxy_is_trusted_in_the_stack_redirects_and_forwards_scheme_and_port,
            ),
            (
                "chromium_trusts_the_run_ca_and_rejects_a_foreign_one",
                chromium_trusts_the_run_ca_and_rejects_a_foreign_one,
            ),
            (
                "example_app_up_with_mocks_answers_over_tls_and_reaches_geoip_over_https",
                example_app_up_with_mocks_answers_over_tls_and_reaches_geoip_over_https,
            ),
        ],
        // Needs no daemon at all, so it always runs.
        vec![(
            "unreachable_daemon_exits_3_naming_socket_and_docker_host",
            unreachable_daemon_exits_3_naming_socket_and_docker_host,
        )],
    )
}

// ---- helpers --------------------------------------------------------------------------------

use support::{Outcome, describe, docker, ensure, resources_with, text};

const WSGI_OK: &str = r#"import json, os

def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    body = json.dumps({"status": "ok", "path": path,
                       "target": os.environ.get("DEPLOYMENT_TARGET"),
                       "mail_host": os.environ.get("MAIL_HOST")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"#;

/// Echoes what the proxy forwarded, so tests can see the headers the app receives.
const WSGI_ECHO: &str = r#"import json

def application(environ, start_response):
    seen = {k: v for k, v in environ.items() if k.startswith("HTTP_X_FORWARDED") or k == "HTTP_HOST"}
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"#;

const WSGI_404: &str = r#"def application(environ, start_response):
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]
"#;

const WSGI_RAISES: &str = r#"raise RuntimeError("boom at import: the app cannot start")
"#;

/// A throwaway app repository with a ready-made local package. Removes its runs when dropped.
struct Project {
    dir: tempfile::TempDir,
    /// Run `down --all` on drop; off where no daemon is reachable.
    cleanup: bool,
}

impl Project {
    fn new(wsgi: &str, extra_toml: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("harness-e2e-stack-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("passenger_wsgi.py"), wsgi).unwrap();
        std::fs::write(
            root.join("harness.toml"),
            format!(
                "[package]\nsources = [{{ from = \"src\", to = \"src\" }}]\n\
                 entry_point = {{ from = \"passenger_wsgi.py\", to = \"passenger_wsgi.py\" }}\n\n\
                 [targets.local]\nenv = {{ DEPLOYMENT_TARGET = \"local\" }}\n\n{extra_toml}"
            ),
        )
        .unwrap();
        let dist = root.join(".harness/dist/local");
        std::fs::create_dir_all(&dist).unwrap();
        let file = std::fs::File::create(dist.join("deploy.zip")).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("passenger_wsgi.py", opts).unwrap();
        std::io::Write::write_all(&mut zip, wsgi.as_bytes()).unwrap();
        zip.finish().unwrap();
        std::fs::write(
            root.join("deployment_state_local.json"),
            r#"{"target":"local","admin":{"username":"admin","password":"e2e-only"}}"#,
        )
        .unwrap();
        Project { dir, cleanup: true }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn harness(&self) -> Command {
        let mut c = Command::new(support::harness_bin());
        c.arg("--project").arg(self.dir.path());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.harness().args(args).output().expect("run harness")
    }

    fn spawn(&self, args: &[&str]) -> Spawned {
        Spawned(Some(
            self.harness()
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn harness"),
        ))
    }

    fn root_label(&self) -> String {
        format!("harness.root={}", self.root().display())
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if self.cleanup {
            let _ = self.run(&["down", "--all"]);
        }
    }
}

/// `up --json` outcome.
struct Up {
    run_id: String,
    run_dir: PathBuf,
    urls: Vec<(String, String)>,
}

fn parse_up(o: &Output) -> Result<Up, Failed> {
    ensure(o.status.success(), || format!("up failed: {}", describe(o)))?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .map_err(|e| format!("up --json is not JSON ({e}): {}", describe(o)))?;
    Ok(Up {
        run_id: v["run_id"].as_str().unwrap_or_default().to_string(),
        run_dir: PathBuf::from(v["run_dir"].as_str().unwrap_or_default()),
        urls: v["urls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| {
                (
                    u["service"].as_str().unwrap_or_default().to_string(),
                    u["url"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    })
}

fn url_of<'a>(up: &'a Up, service: &str) -> Result<&'a str, Failed> {
    up.urls
        .iter()
        .find(|(s, u)| s == service && u.starts_with("http://"))
        .map(|(_, u)| u.as_str())
        .ok_or_else(|| format!("no URL for {service} in {:?}", up.urls).into())
}

/// GET through the TLS proxy the way a browser would: our run's CA, the FQDN resolved to the
/// published 127.0.0.1 port, no `-k`.
fn proxy_get(up: &Up, path: &str) -> Result<(u16, String), Failed> {
    let url = up
        .urls
        .iter()
        .find(|(s, u)| s == "proxy" && u.starts_with("https://"))
        .map(|(_, u)| u.as_str())
        .ok_or_else(|| format!("no https URL for the proxy in {:?}", up.urls))?;
    let port = url
        .trim_start_matches("https://127.0.0.1:")
        .trim_end_matches('/');
    let fqdn = "app.localtest.me";
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(up.run_dir.join("tls/ca.pem"))
        .arg("--resolve")
        .arg(format!("{fqdn}:{port}:127.0.0.1"))
        .arg(format!("https://{fqdn}:{port}{path}"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure(out.status.success(), || {
        format!("curl failed: {}", String::from_utf8_lossy(&out.stderr))
    })?;
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Ok((code.trim().parse()?, body.to_string()))
}

/// Status code and body of a GET to 127.0.0.1 (the only address tests talk to).
fn get(url: &str) -> Result<(u16, String), Failed> {
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .ok_or_else(|| format!("not a loopback URL: {url}"))?;
    let (port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>()?))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP answer from {url}: {buf:?}"))?;
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Ok((status, body))
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Outcome {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("timed out waiting for {what}").into())
}

/// A harness process that is killed and reaped if a case returns early.
struct Spawned(Option<Child>);

impl Spawned {
    fn signal(&self, sig: i32) {
        if let Some(c) = &self.0 {
            // SAFETY: kill(2) on our own, not yet reaped child's pid.
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    fn output(mut self) -> std::io::Result<Output> {
        self.0.take().expect("not yet waited").wait_with_output()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---- cases ----------------------------------------------------------------------------------

/// An app whose view module reads its template at import (as Flask caches templates): both
/// need a restart to show an edit.
const WSGI_WATCHED: &str = r#"import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))
import view

def application(environ, start_response):
    body = view.render().encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

fn view_py(marker: &str) -> String {
    format!(
        "import os\nHERE = os.path.dirname(os.path.abspath(__file__))\n\
         with open(os.path.join(HERE, 'templates', 'page.html')) as f:\n    TEMPLATE = f.read()\n\n\
         def render():\n    return TEMPLATE.replace('{{{{view}}}}', '{marker}')\n"
    )
}

/// Lines a child writes, collected by a thread as they come.
fn collect_lines(
    r: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let out = seen.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(r).lines().map_while(Result::ok) {
            let mut s = out.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    seen
}

fn up_watch_follows_a_template_a_view_a_broken_import_and_its_fix() -> Outcome {
    let p = Project::new(WSGI_WATCHED, "");
    let src = p.root().join("src");
    std::fs::create_dir_all(src.join("templates"))?;
    std::fs::write(src.join("templates/page.html"), "template-v1 {{view}}")?;
    std::fs::write(src.join("view.py"), view_py("view-v1"))?;
    // No --skip-build: the prebuilt zip lacks src/, and watch starts from the sources.
    let mut child = p
        .harness()
        .args(["up", "--watch", "--no-tls"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = collect_lines(child.stdout.take().unwrap());
    let stderr = collect_lines(child.stderr.take().unwrap());
    let child = Spawned(Some(child));
    let said = |what: &str| stderr.lock().unwrap().contains(what);
    let mut proxy = String::new();
    wait_for("the proxy's URL", Duration::from_secs(180), || {
        let out = stdout.lock().unwrap();
        if let Some(line) = out.lines().find(|l| l.trim_start().starts_with("proxy")) {
            proxy = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
        }
        !proxy.is_empty()
    })
    .map_err(|e| {
        format!(
            "{e:?}; stdout {}; stderr {}",
            stdout.lock().unwrap(),
            stderr.lock().unwrap()
        )
    })?;
    wait_for("watch to start", Duration::from_secs(30), || {
        said("watching ")
    })?;
    ensure(said("stat throttle is 0"), || {
        "watch does not say the throttle is 0".into()
    })?;
    let page = || get(&proxy).map(|(code, body)| (code, body.trim().to_string()));
    let serves = |want: &str| page().is_ok_and(|(c, b)| c == 200 && b == want);
    let step = |what: &str, want: &str| -> Outcome {
        wait_for(what, Duration::from_secs(20), || serves(want)).map_err(|e| {
            Failed::from(format!(
                "{e:?}: the page is {:?}; stderr:\n{}",
                page().ok(),
                stderr.lock().unwrap()
            ))
        })
    };
    step("the first page", "template-v1 view-v1")?;

    std::fs::write(src.join("templates/page.html"), "template-v2 {{view}}")?;
    step("the edited template", "template-v2 view-v1")?;

    std::fs::write(src.join("view.py"), view_py("view-v2"))?;
    step("the edited view", "template-v2 view-v2")?;

    std::fs::write(
        src.join("view.py"),
        format!("import does_not_exist_watch_e2e\n{}", view_py("view-x")),
    )?;
    wait_for(
        "the import error's traceback",
        Duration::from_secs(20),
        || said("No module named 'does_not_exist_watch_e2e'"),
    )
    .map_err(|e| format!("{e:?}; stderr:\n{}", stderr.lock().unwrap()))?;
    ensure(page().is_ok_and(|(c, _)| c == 500), || {
        format!("a broken import answers {:?}", page().ok())
    })?;

    std::fs::write(src.join("view.py"), view_py("view-v3"))?;
    step("the fixed view", "template-v2 view-v3")?;

    std::fs::create_dir_all(src.join("static"))?;
    std::fs::write(src.join("static/site.css"), "body{}")?;
    wait_for("a static push", Duration::from_secs(20), || {
        said("static: no restart")
    })?;
    std::fs::write(p.root().join("harness.toml").as_path(), {
        let mut t = std::fs::read_to_string(p.root().join("harness.toml"))?;
        t.push_str("\n# touched\n");
        t
    })?;
    wait_for("the restart-up notice", Duration::from_secs(20), || {
        said("harness.toml changed: restart `harness up --watch`")
    })?;

    child.signal(libc::SIGINT);
    let o = child.output()?;
    ensure(o.status.code() == Some(0), || {
        format!(
            "Ctrl-C ends watch with {:?}; stderr:\n{}",
            o.status,
            stderr.lock().unwrap()
        )
    })?;
    let left = resources_with(&p.root_label());
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

fn up_with_mocks_brings_every_service_to_ready_and_urls_answer() -> Outcome {
    let p = Project::new(WSGI_OK, "");
    let o = p.run(&["--json", "up", "--with-mocks", "--skip-build"]);
    let up = parse_up(&o)?;
    for service in ["app", "proxy", "mailpit", "geoip", "netcup"] {
        ensure(up.urls.iter().any(|(s, _)| s == service), || {
            format!("no URL for {service} in {:?}", up.urls)
        })?;
    }
    let (code, body) = proxy_get(&up, "/health")?;
    ensure(code == 200 && body.contains("\"ok\""), || {
        format!("proxy /health: {code} {body}")
    })?;
    // The app got the target's env from harness.toml and the mocks' addresses from mocks.yml.
    let (code, body) = get(&format!("{}whoami", url_of(&up, "app")?))?;
    ensure(
        code == 200 && body.contains("\"target\": \"local\"") && body.contains("mailpit"),
        || format!("app env: {code} {body}"),
    )?;
    let (code, _) = get(&format!("{}readyz", url_of(&up, "mailpit")?))?;
    ensure(code == 200, || format!("mailpit readyz: {code}"))?;
    let (code, body) = get(&format!("{}health", url_of(&up, "netcup")?))?;
    ensure(code == 200, || format!("netcup /health: {code} {body}"))?;
    // The GeoIP mock speaks HTTPS with the run's leaf, which names `geoip`.
    let geoip = up
        .urls
        .iter()
        .find(|(s, _)| s == "geoip")
        .map(|(_, u)| u.clone())
        .unwrap_or_default();
    let port = geoip
        .trim_start_matches("https://127.0.0.1:")
        .trim_end_matches('/');
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(up.run_dir.join("tls/ca.pem"))
        .args(["--resolve", &format!("geoip:{port}:127.0.0.1")])
        .arg(format!("https://geoip:{port}/health"))
        .output()?;
    ensure(text(&out.stdout) == "200", || {
        format!("geoip over TLS: {}", describe(&out))
    })?;
    // The package went from the zip into the run's own volume, not through a host copy.
    let package = docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=harness.run={}", up.run_id),
        "--filter",
        "name=app-package",
    ]);
    ensure(package.ends_with("_app-package"), || {
        format!("the run has no package volume: {package:?}")
    })?;
    ensure(!up.run_dir.join("app").exists(), || {
        "the package was extracted on the host too".into()
    })?;
    let state = up.run_dir.join("state/deployment_state_local.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&state)?.permissions());
    ensure(mode & 0o777 == 0o600, || {
        format!("state copy mode {mode:o}")
    })?;

    let label = format!("harness.run={}", up.run_id);
    let before = resources_with(&label);
    ensure(before.len() >= 7, || {
        format!("expected 5 containers, a network and the keep marker: {before:?}")
    })?;
    let o = p.run(&["down", "--run", &up.run_id]);
    ensure(o.status.success(), || describe(&o))?;
    let left = resources_with(&label);
    ensure(left.is_empty(), || format!("left behind: {left:?}"))?;
    // Logs outlive the containers.
    let log = std::fs::read_to_string(up.run_dir.join("logs/proxy.log")).unwrap_or_default();
    ensure(log.contains("GET /health"), || {
        format!("proxy.log: {log:?}")
    })
}

fn up_killed_with_sigkill_mid_start_then_next_command_sweeps_orphans() -> Outcome {
    // A health path the app answers 404 on keeps `up` waiting, so it is killed mid-start.
    let p = Project::new(WSGI_404, "[stack]\nhealth_path = \"/never-ready\"\n");
    let child = p.spawn(&["up", "--skip-build"]);
    let label = p.root_label();
    wait_for("the app container", Duration::from_secs(20), || {
        resources_with(&label)
            .iter()
            .any(|r| r.starts_with("container"))
    })?;
    child.signal(libc::SIGKILL);
    child.output()?;
    let orphans = resources_with(&label);
    ensure(!orphans.is_empty(), || "nothing to sweep".into())?;

    // Another harness command running in parallel (other cases) may sweep first; either way the
    // orphans must be gone once this next command has run.
    let o = p.run(&["status"]);
    ensure(o.status.success(), || describe(&o))?;
    let left = resources_with(&label);
    ensure(left.is_empty(), || format!("orphans left: {left:?}"))
}

fn sigint_during_up_removes_the_run_and_exits_130() -> Outcome {
    interrupt_during_up(libc::SIGINT)
}

fn sigterm_during_up_removes_the_run_and_exits_130() -> Outcome {
    interrupt_during_up(libc::SIGTERM)
}

fn interrupt_during_up(sig: i32) -> Outcome {
    let p = Project::new(WSGI_404, "[stack]\nhealth_path = \"/never-ready\"\n");
    let child = p.spawn(&["up", "--skip-build"]);
    let label = p.root_label();
    wait_for("the first container", Duration::from_secs(20), || {
        resources_with(&label)
            .iter()
            .any(|r| r.starts_with("container"))
    })?;
    child.signal(sig);
    let out = child.output()?;
    let status = out.status;
    let stderr = text(&out.stderr);
    // `up` may have finished before the signal arrived; then it exits 0 and the kept stack stays.
    if status.code() == Some(0) {
        return Err(format!("up finished before the signal could interrupt it: {stderr}").into());
    }
    ensure(status.code() == Some(130), || {
        format!("exit {status:?}: {stderr}")
    })?;
    let left = resources_with(&label);
    ensure(left.is_empty(), || {
        format!("left behind after the signal: {left:?}")
    })
}

fn kept_stack_survives_a_later_status_until_down() -> Outcome {
    let p = Project::new(WSGI_OK, "");
    let up = parse_up(&p.run(&["--json", "up", "--skip-build"]))?;
    let label = format!("harness.run={}", up.run_id);
    // `up` has exited, so its owner is gone: only the keep marker protects the stack.
    for _ in 0..2 {
        let o = p.run(&["--json", "status"]);
        ensure(o.status.success(), || describe(&o))?;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
        ensure(v[0]["kept"] == true && v[0]["owner_alive"] == false, || {
            format!("status: {v}")
        })?;
    }
    let filter = format!("label={label}");
    let running = docker(&["ps", "--filter", &filter, "--format", "{{.Names}}"]);
    ensure(running.lines().count() == 2, || {
        format!("running: {running}")
    })?;
    let (code, _) = proxy_get(&up, "/health")?;
    ensure(code == 200, || format!("proxy after status: {code}"))?;
    let o = p.run(&["down"]);
    ensure(o.status.success(), || describe(&o))?;
    let left = resources_with(&label);
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

/// Reports where its vendored module came from: the value it holds, whether its bytecode
/// exists and matches the source (Python's own check: the source's mtime and size in the
/// header), and whether the app could write into vendor/.
const WSGI_VENDOR: &str = r#"import json, os, struct, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))
import e2evendor as v
if os.environ.get("E2E_WRITE_VENDOR"):
    # As some libraries do at import: write next to their own sources.
    open(os.path.join(os.path.dirname(v.__file__), "import-time.txt"), "w").close()

def application(environ, start_response):
    if environ.get("PATH_INFO") == "/vendor":
        try:
            open(os.path.join(os.path.dirname(v.__file__), "written.txt"), "w").close()
            writable = True
        except OSError:
            writable = False
        fresh = False
        if os.path.exists(v.__cached__):
            with open(v.__cached__, "rb") as f:
                head = f.read(16)
            st = os.stat(v.__file__)
            mtime, size = struct.unpack("<II", head[8:16])
            fresh = mtime == int(st.st_mtime) & 0xFFFFFFFF and size == st.st_size
        body = json.dumps({"value": v.VALUE, "pyc_fresh": fresh, "writable": writable}).encode()
    else:
        body = b'{"status": "ok"}'
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"#;

fn vendor_comes_from_a_compiled_read_only_cache_filled_once_then_reused() -> Outcome {
    let p = Project::new(WSGI_VENDOR, "");
    // A value no other run has, so this test owns its cache key; and a vendored file that is
    // not Python (wheels ship such test data), which must not fail the fill.
    let token = format!(
        "e2e-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let zip_path = p.dir.path().join(".harness/dist/local/deploy.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path)?);
    let opts = zip::write::SimpleFileOptions::default();
    for (name, text) in [
        ("passenger_wsgi.py", WSGI_VENDOR.to_string()),
        (
            "vendor/e2evendor/__init__.py",
            format!("VALUE = {token:?}\n"),
        ),
        (
            "vendor/e2evendor/testdata/broken.py",
            "def (:\n".to_string(),
        ),
    ] {
        zip.start_file(name, opts)?;
        std::io::Write::write_all(&mut zip, text.as_bytes())?;
    }
    zip.finish()?;

    let mut cache_volumes = Vec::new();
    let result = (|| {
        let o = p.run(&["--json", "up", "--skip-build"]);
        let first = text(&o.stderr);
        ensure(first.contains("compiled into a cache"), || {
            format!("the first run did not fill the cache: {}", describe(&o))
        })?;
        let up = parse_up(&o)?;
        let app = container_of(&up.run_id, "app")?;
        let mounts = docker(&["inspect", &app, "--format", "{{json .Mounts}}"]);
        let mounts: serde_json::Value = serde_json::from_str(&mounts)?;
        let vendor = mounts
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["Destination"] == "/srv/app/vendor")
            .ok_or_else(|| format!("no vendor mount: {mounts}"))?;
        ensure(vendor["RW"] == false, || {
            format!("vendor is writable: {vendor}")
        })?;
        let data = vendor["Name"].as_str().unwrap_or_default().to_string();
        cache_volumes.push(data.clone());
        // The index volume names the data volume; both outlive the run.
        let index = docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!(
                "label=harness.vendor.data={}",
                data.trim_start_matches("harness-cache-")
            ),
        ]);
        cache_volumes.push(index.clone());
        ensure(index.starts_with("harness-cache-vendor-"), || {
            format!("no index for {data}: {index:?}")
        })?;
        let (code, body) = get(&format!("{}vendor", url_of(&up, "app")?))?;
        let seen: serde_json::Value = serde_json::from_str(&body)?;
        ensure(
            code == 200
                && seen["value"] == token.as_str()
                && seen["pyc_fresh"] == true
                && seen["writable"] == false,
            || format!("first run /vendor: {code} {body}"),
        )?;
        let o = p.run(&["down"]);
        ensure(o.status.success(), || describe(&o))?;

        // The next run finds the cache: nothing is copied or compiled again.
        let o = p.run(&["--json", "up", "--skip-build"]);
        ensure(!text(&o.stderr).contains("compiled into a cache"), || {
            format!("the second run filled the cache again: {}", describe(&o))
        })?;
        let up = parse_up(&o)?;
        let (code, body) = get(&format!("{}vendor", url_of(&up, "app")?))?;
        let seen: serde_json::Value = serde_json::from_str(&body)?;
        ensure(
            code == 200 && seen["value"] == token.as_str() && seen["pyc_fresh"] == true,
            || format!("second run /vendor: {code} {body}"),
        )?;
        let o = p.run(&["down"]);
        ensure(o.status.success(), || describe(&o))?;
        let left = docker(&["volume", "ls", "-q", "--filter", &format!("name={data}")]);
        ensure(left == data, || {
            format!("the cache did not outlive `down`: {left:?}")
        })?;

        // HARNESS_VENDOR_CACHE=0: vendor/ is copied into the run's own package volume, as
        // before the cache, and the cache is neither used nor filled.
        let o = p
            .harness()
            .env("HARNESS_VENDOR_CACHE", "0")
            .args(["--json", "up", "--skip-build"])
            .output()?;
        ensure(!text(&o.stderr).contains("compiled into a cache"), || {
            format!("the opted-out run filled the cache: {}", describe(&o))
        })?;
        let up = parse_up(&o)?;
        let app = container_of(&up.run_id, "app")?;
        let mounts = docker(&["inspect", &app, "--format", "{{json .Mounts}}"]);
        ensure(!mounts.contains("/srv/app/vendor"), || {
            format!("the opted-out run mounts a vendor cache: {mounts}")
        })?;
        let (code, body) = get(&format!("{}vendor", url_of(&up, "app")?))?;
        let seen: serde_json::Value = serde_json::from_str(&body)?;
        ensure(
            code == 200 && seen["value"] == token.as_str() && seen["writable"] == true,
            || format!("opted-out run /vendor: {code} {body}"),
        )?;
        let o = p.run(&["down"]);
        ensure(o.status.success(), || describe(&o))?;

        // An app that writes into its vendor/ at import cannot start on the read-only cache:
        // the failure names the way out, and `[stack] vendor_cache = false` is that way.
        let toml = p.dir.path().join("harness.toml");
        let writes = std::fs::read_to_string(&toml)?.replace(
            "DEPLOYMENT_TARGET = \"local\"",
            "DEPLOYMENT_TARGET = \"local\", E2E_WRITE_VENDOR = \"1\"",
        );
        std::fs::write(&toml, &writes)?;
        let o = p
            .harness()
            .env("HARNESS_APP_TIMEOUT", "6s")
            .args(["up", "--skip-build"])
            .output()?;
        let err = text(&o.stderr);
        ensure(
            o.status.code() == Some(3)
                && err.contains("Read-only file system")
                && err.contains("vendor_cache = false"),
            || format!("an app writing into the cache: {}", describe(&o)),
        )?;
        std::fs::write(&toml, format!("{writes}\n[stack]\nvendor_cache = false\n"))?;
        let o = p.run(&["--json", "up", "--skip-build"]);
        let up = parse_up(&o)?;
        let (code, body) = get(&format!("{}vendor", url_of(&up, "app")?))?;
        ensure(code == 200 && body.contains("\"writable\": true"), || {
            format!("with vendor_cache = false: {code} {body}")
        })?;
        let o = p.run(&["down"]);
        ensure(o.status.success(), || describe(&o))
    })();
    for v in &cache_volumes {
        docker(&["volume", "rm", "-f", v]);
    }
    result
}

fn two_ups_at_once_both_ready_with_different_ports_and_package_copies() -> Outcome {
    let p = Project::new(WSGI_OK, "");
    let a = p.spawn(&["--json", "up", "--skip-build"]);
    let b = p.spawn(&["--json", "up", "--skip-build"]);
    let (a, b) = (a.output()?, b.output()?);
    let (a, b) = (parse_up(&a)?, parse_up(&b)?);
    ensure(a.run_id != b.run_id, || "same run id".into())?;
    ensure(a.run_dir != b.run_dir, || "same run dir".into())?;
    // Each run has its own copy of the package, in its own volume.
    for up in [&a, &b] {
        let app = container_of(&up.run_id, "app")?;
        let mounts = docker(&["inspect", &app, "--format", "{{json .Mounts}}"]);
        ensure(
            mounts.contains(&format!("harness-{}_app-package", up.run_id)),
            || format!("run {}: app mounts {mounts}", up.run_id),
        )?;
    }
    let (pa, pb) = (url_of(&a, "proxy")?, url_of(&b, "proxy")?);
    ensure(pa != pb, || format!("same proxy URL {pa}"))?;
    for up in [&a, &b] {
        let (code, _) = proxy_get(up, "/health")?;
        ensure(code == 200, || format!("run {}: {code}", up.run_id))?;
    }
    // With two runs up, a command that needs one asks which.
    let o = p.run(&["logs", "app"]);
    ensure(
        o.status.code() == Some(2) && text(&o.stderr).contains("--run"),
        || describe(&o),
    )?;
    let o = p.run(&["down", "--all"]);
    ensure(o.status.success(), || describe(&o))?;
    for id in [&a.run_id, &b.run_id] {
        let left = resources_with(&format!("harness.run={id}"));
        ensure(left.is_empty(), || format!("left behind: {left:?}"))?;
    }
    Ok(())
}

fn app_raising_on_import_fails_up_with_exit_3_and_its_log_lines() -> Outcome {
    let p = Project::new(WSGI_RAISES, "");
    let start = Instant::now();
    let o = p
        .harness()
        .args(["up", "--skip-build"])
        .env("HARNESS_APP_TIMEOUT", "15s")
        .output()?;
    let elapsed = start.elapsed();
    let err = text(&o.stderr);
    ensure(o.status.code() == Some(3), || describe(&o))?;
    // A 500 is never ready: the wait saw answers, just not 2xx.
    ensure(err.contains("answered 500"), || describe(&o))?;
    ensure(err.contains("within 15.0 s"), || describe(&o))?;
    ensure(err.contains("boom at import"), || {
        format!(
            "the app's traceback is not among the log lines: {}",
            describe(&o)
        )
    })?;
    // Generous bound: the wait's own timeout plus container start and teardown.
    ensure(elapsed < Duration::from_secs(45), || {
        format!("took {elapsed:?}")
    })?;
    let left = resources_with(&p.root_label());
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

fn compose_override_with_unsupported_key_exits_2_with_file_and_line() -> Outcome {
    let p = Project::new(
        WSGI_OK,
        "[stack]\ncompose_overrides = [\"compose.override.yml\"]\n",
    );
    std::fs::write(
        p.dir.path().join("compose.override.yml"),
        "services:\n  app:\n    environment: { X: \"1\" }\n    restart: always\n",
    )?;
    let o = p.run(&["up", "--skip-build"]);
    let err = text(&o.stderr);
    ensure(o.status.code() == Some(2), || describe(&o))?;
    ensure(err.contains("compose.override.yml:4:"), || describe(&o))?;
    ensure(err.contains("restart"), || describe(&o))?;
    let left = resources_with(&p.root_label());
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

fn every_resource_carries_run_labels_and_cache_volumes_outlive_runs() -> Outcome {
    let p = Project::new(
        WSGI_OK,
        "[stack]\ncompose_overrides = [\"compose.override.yml\"]\n",
    );
    // A unique cache name, so parallel runs of this suite do not share it.
    let cache = format!("e2e-{}", std::process::id());
    std::fs::write(
        p.dir.path().join("compose.override.yml"),
        format!(
            "services:\n  app:\n    volumes:\n      - {cache}:/cache\n      - scratch:/scratch\n\
             volumes:\n  {cache}:\n    x-harness: {{ cache: true }}\n  scratch: {{}}\n"
        ),
    )?;
    let up = parse_up(&p.run(&["--json", "up", "--skip-build"]))?;
    let cache_volume = format!("harness-cache-{cache}");
    let result = (|| {
        let label = format!("harness.run={}", up.run_id);
        let mine = resources_with(&label);
        ensure(
            mine.iter().any(|r| r.starts_with("network"))
                && mine.iter().filter(|r| r.starts_with("container")).count() == 2
                && mine.iter().any(|r| r.ends_with("_scratch")),
            || format!("resources with the run label: {mine:?}"),
        )?;
        for r in &mine {
            let (kind, name) = r.split_once(' ').unwrap_or_default();
            let format = if kind == "container" {
                "{{json .Config.Labels}}"
            } else {
                "{{json .Labels}}"
            };
            let labels = docker(&[kind, "inspect", name, "--format", format]);
            let v: serde_json::Value = serde_json::from_str(&labels)
                .map_err(|e| format!("labels of {r}: {e}: {labels}"))?;
            for key in ["harness.run", "harness.project", "harness.owner"] {
                ensure(v[key].is_string(), || format!("{r} lacks {key}: {labels}"))?;
            }
        }
        let cache_labels = docker(&[
            "volume",
            "inspect",
            &cache_volume,
            "--format",
            "{{json .Labels}}",
        ]);
        ensure(
            cache_labels.contains("harness.cache") && !cache_labels.contains("harness.run"),
            || format!("cache volume labels: {cache_labels}"),
        )?;
        let o = p.run(&["down"]);
        ensure(o.status.success(), || describe(&o))?;
        let left = resources_with(&label);
        ensure(left.is_empty(), || format!("left behind: {left:?}"))?;
        let still = docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name={cache_volume}"),
        ]);
        ensure(still == cache_volume, || {
            format!("the cache volume did not survive `down`: {still:?}")
        })
    })();
    docker(&["volume", "rm", "-f", &cache_volume]);
    result
}

/// An override that exercises the exit, log and healthcheck waits and every depends_on condition,
/// with small shell services on the app image (which has a shell).
const WAITS_OVERRIDE: &str = r#"
services:
  seed:
    image: ${HARNESS_IMAGE_APP}
    entrypoint: ["sh", "-c", "echo seeding; sleep 0.2; echo seeded; exit ${SEED_EXIT:-0}"]
    x-harness: { wait: { exit: 0 }, timeout: 20s }
  warm:
    image: ${HARNESS_IMAGE_APP}
    entrypoint: ["sh", "-c", "echo warming; sleep 0.3; echo READY to serve; exec sleep 600"]
    depends_on:
      seed: { condition: service_completed_successfully }
    x-harness: { wait: { log: "READY to serve" }, timeout: 20s }
  checked:
    image: ${HARNESS_IMAGE_APP}
    entrypoint: ["sh", "-c", "sleep 0.5; touch /tmp/ok; exec sleep 600"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ok"]
      interval: 200ms
      retries: 50
    depends_on:
      warm: { condition: service_healthy }
  app:
    depends_on:
      checked: { condition: service_healthy }
"#;

fn every_wait_kind_and_dependency_condition_on_the_real_engine() -> Outcome {
    let p = Project::new(
        WSGI_OK,
        "[stack]\ncompose_overrides = [\"compose.waits.yml\"]\n",
    );
    std::fs::write(p.dir.path().join("compose.waits.yml"), WAITS_OVERRIDE)?;
    let o = p.run(&["--json", "up", "--skip-build"]);
    let up = parse_up(&o)?;
    let err = text(&o.stderr);
    // Ready in dependency order: seed (exit 0), warm (log), checked (healthy), app, proxy.
    let order: Vec<&str> = err
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ready"))
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    // The proxy only needs the app started, so it may become ready just before or after it.
    let pos = |s: &str| order.iter().position(|o| *o == s);
    let (seed, warm, checked, app, proxy) = (
        pos("seed"),
        pos("warm"),
        pos("checked"),
        pos("app"),
        pos("proxy"),
    );
    ensure(
        order.len() == 5 && seed < warm && warm < checked && checked < app && checked < proxy,
        || format!("ready order {order:?}: {}", describe(&o)),
    )?;
    let seed_log = std::fs::read_to_string(up.run_dir.join("logs/seed.log")).unwrap_or_default();
    ensure(seed_log.contains("seeded"), || {
        format!("seed.log: {seed_log:?}")
    })?;
    let label = format!("label=harness.run={}", up.run_id);
    let health = docker(&[
        "ps",
        "--filter",
        &label,
        "--filter",
        "name=checked",
        "--format",
        "{{.Status}}",
    ]);
    ensure(health.contains("healthy"), || format!("checked: {health}"))?;
    let o = p.run(&["down"]);
    ensure(o.status.success(), || describe(&o))
}

fn a_failing_job_stops_up_at_once_with_its_exit_code_and_logs() -> Outcome {
    let p = Project::new(
        WSGI_OK,
        "[stack]\ncompose_overrides = [\"compose.waits.yml\"]\n",
    );
    std::fs::write(p.dir.path().join("compose.waits.yml"), WAITS_OVERRIDE)?;
    let o = p
        .harness()
        .args(["up", "--skip-build"])
        .env("SEED_EXIT", "3")
        .output()?;
    let err = text(&o.stderr);
    ensure(o.status.code() == Some(3), || describe(&o))?;
    ensure(
        err.contains("service `seed`")
            && err.contains("exited with code 3")
            && err.contains("| seeded"),
        || describe(&o),
    )?;
    // Nothing after the failed level was started, and the run is gone.
    ensure(
        !err.lines().any(|l| l.trim_start().starts_with("ready")),
        || describe(&o),
    )?;
    let left = resources_with(&p.root_label());
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

fn logs_and_status_need_run_when_several_are_up() -> Outcome {
    let p = Project::new(WSGI_OK, "");
    let a = parse_up(&p.run(&["--json", "up", "--skip-build"]))?;
    let b = parse_up(&p.run(&["--json", "up", "--skip-build"]))?;
    let o = p.run(&["down"]);
    ensure(o.status.code() == Some(2), || describe(&o))?;
    ensure(
        text(&o.stderr).contains(&a.run_id) && text(&o.stderr).contains(&b.run_id),
        || describe(&o),
    )?;
    let o = p.run(&["logs", "proxy", "--run", &a.run_id]);
    ensure(
        o.status.success() && text(&o.stdout).contains("GET /health"),
        || describe(&o),
    )?;
    let o = p.run(&["--json", "status", "--run", &b.run_id]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    ensure(
        v.as_array().map(Vec::len) == Some(1) && v[0]["id"] == b.run_id.as_str(),
        || describe(&o),
    )?;
    let o = p.run(&["down", "--all"]);
    ensure(o.status.success(), || describe(&o))
}

fn unreachable_daemon_exits_3_naming_socket_and_docker_host() -> Outcome {
    let mut p = Project::new(WSGI_OK, "");
    p.cleanup = false;
    let o = p
        .harness()
        .args(["status"])
        .env("DOCKER_HOST", "unix:///nonexistent")
        .output()?;
    let err = text(&o.stderr);
    ensure(o.status.code() == Some(3), || describe(&o))?;
    ensure(
        err.contains("unix:///nonexistent") && err.contains("DOCKER_HOST"),
        || describe(&o),
    )?;
    Ok(())
}

/// The container of one service of a run.
fn container_of(run_id: &str, service: &str) -> Result<String, Failed> {
    let name = docker(&[
        "ps",
        "--filter",
        &format!("label=harness.run={run_id}"),
        "--filter",
        &format!("label=harness.service={service}"),
        "--format",
        "{{.Names}}",
    ]);
    ensure(!name.is_empty(), || {
        format!("no {service} container in run {run_id}")
    })?;
    Ok(name.lines().next().unwrap_or_default().to_string())
}

fn tls_proxy_is_trusted_in_the_stack_redirects_and_forwards_scheme_and_port() -> Outcome {
    let p = Project::new(WSGI_ECHO, "");
    let up = parse_up(&p.run(&["--json", "up", "--skip-build"]))?;

    // From the host: verified with the run's CA, no -k; the app sees https and the public port.
    let (code, body) = proxy_get(&up, "/anything")?;
    ensure(code == 200, || {
        format!("https through the proxy: {code} {body}")
    })?;
    let seen: serde_json::Value = serde_json::from_str(&body)?;
    let https_port = up
        .urls
        .iter()
        .find(|(s, u)| s == "proxy" && u.starts_with("https://"))
        .map(|(_, u)| {
            u.trim_start_matches("https://127.0.0.1:")
                .trim_end_matches('/')
                .to_string()
        })
        .unwrap_or_default();
    ensure(seen["HTTP_X_FORWARDED_PROTO"] == "https", || {
        format!("{seen}")
    })?;
    ensure(seen["HTTP_X_FORWARDED_PORT"] == https_port.as_str(), || {
        format!("forwarded port should be the published {https_port}: {seen}")
    })?;
    ensure(seen["HTTP_X_FORWARDED_HOST"] == "app.localtest.me", || {
        format!("{seen}")
    })?;

    // Security headers, HSTS without includeSubDomains.
    let ca = up.run_dir.join("tls/ca.pem");
    let resolve = format!("app.localtest.me:{https_port}:127.0.0.1");
    let head = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-D", "-", "--cacert"])
        .arg(&ca)
        .args(["--resolve", &resolve])
        .arg(format!("https://app.localtest.me:{https_port}/health"))
        .output()?;
    let head = text(&head.stdout).to_lowercase();
    for h in [
        "strict-transport-security: max-age=31536000",
        "x-content-type-options: nosniff",
        "x-frame-options: sameorigin",
        "referrer-policy:",
    ] {
        ensure(head.contains(h), || format!("missing `{h}` in:\n{head}"))?;
    }
    ensure(!head.contains("includesubdomains"), || head.clone())?;

    // Plain HTTP answers 301 to https.
    let plain = url_of(&up, "proxy")?;
    let (code, _) = get(&format!("{plain}health"))?;
    ensure(code == 301, || format!("http:// answered {code}, not 301"))?;

    // A certificate for another name fails verification.
    let wrong = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "--cacert"])
        .arg(&ca)
        .args([
            "--resolve",
            &format!("wrong.localtest.me:{https_port}:127.0.0.1"),
        ])
        .arg(format!("https://wrong.localtest.me:{https_port}/health"))
        .output()?;
    ensure(wrong.status.code() == Some(60), || {
        format!(
            "curl to a wrong host name: {:?} {}",
            wrong.status.code(),
            text(&wrong.stderr)
        )
    })?;

    // Inside the stack: the FQDN resolves to the proxy, and the app's CA bundle trusts it.
    let app = container_of(&up.run_id, "app")?;
    let inside = Command::new("docker")
        .args([
            "exec",
            &app,
            "curl",
            "-sS",
            "--cacert",
            "/run/harness/tls/ca.pem",
        ])
        .args([
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "https://app.localtest.me/health",
        ])
        .output()?;
    ensure(text(&inside.stdout) == "200", || describe(&inside))?;
    let py = Command::new("docker")
        .args(["exec", &app, "python3", "-c"])
        .arg("import urllib.request as u; print(u.urlopen('https://app.localtest.me/health').status)")
        .output()?;
    ensure(text(&py.stdout).trim() == "200", || {
        format!(
            "python in the app container (SSL_CERT_FILE): {}",
            describe(&py)
        )
    })?;

    let o = p.run(&["down", "--run", &up.run_id]);
    ensure(o.status.success(), || describe(&o))
}

/// The newest baked playwright image.
fn playwright_image() -> Result<String, Failed> {
    let image = docker(&[
        "images",
        "harness/playwright",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    let image = image.lines().next().unwrap_or_default().to_string();
    ensure(!image.is_empty(), || {
        "no harness/playwright image: run `harness images --bake`".into()
    })?;
    Ok(image)
}

/// Loads `url` in the playwright image's Chromium, on the run's network, with only the CA in
/// `ca_dir` in the browser user's NSS database (created at container start, as the test job does).
/// Prints `STATUS <code>` and `TITLE <title>`, or `ERROR <message>`. No certificate-ignoring flag.
fn chromium_get(up: &Up, ca_dir: &std::path::Path, url: &str) -> Result<String, Failed> {
    let image = playwright_image()?;
    let network = docker(&[
        "network",
        "ls",
        "--filter",
        &format!("label=harness.run={}", up.run_id),
        "--format",
        "{{.Name}}",
    ]);
    let script = format!(
        r#"
set -e
mkdir -p "$HOME/.pki/nssdb"
certutil -d sql:"$HOME/.pki/nssdb" -N --empty-password
certutil -d sql:"$HOME/.pki/nssdb" -A -t "C,," -n harness -i /ca/ca.pem
python - <<'PY'
from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = b.new_page()
    try:
        r = page.goto("{url}", timeout=20000)
        print("STATUS", r.status)
        print("TITLE", page.title())
    except Exception as e:
        print("ERROR", e)
    b.close()
PY
"#
    );
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", network.trim()])
        .args(["--label", &format!("harness.run={}", up.run_id)])
        .args(["--label", "harness.project=e2e"])
        .args(["-e", "HOME=/tmp/home", "--shm-size", "256m"])
        .arg("-v")
        .arg(format!("{}:/ca:ro", ca_dir.display()))
        .args([&image, "sh", "-c", &script])
        .output()?;
    Ok(format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

/// The playwright image's Chromium, on the run's network, with only our CA in its NSS database,
/// loads the app over https; with a foreign CA instead it fails with ERR_CERT_AUTHORITY_INVALID.
fn chromium_trusts_the_run_ca_and_rejects_a_foreign_one() -> Outcome {
    let p = Project::new(WSGI_OK, "");
    let up = parse_up(&p.run(&["--json", "up", "--skip-build"]))?;
    let url = "https://app.localtest.me/health";
    let trusted = chromium_get(&up, &up.run_dir.join("tls"), url)?;
    ensure(trusted.contains("STATUS 200"), || {
        format!("with our CA:\n{trusted}")
    })?;
    let foreign = tempfile::tempdir()?;
    harness::tls::Ca::create(foreign.path()).map_err(|e| e.to_string())?;
    let rejected = chromium_get(&up, foreign.path(), url)?;
    ensure(rejected.contains("ERR_CERT_AUTHORITY_INVALID"), || {
        format!("with a foreign CA:\n{rejected}")
    })?;
    let o = p.run(&["down", "--run", &up.run_id]);
    ensure(o.status.success(), || describe(&o))
}

/// examples/flask-app, built for real (warm wheel cache, no index reachable), behind the TLS
/// proxy with every mock: the URLs answer, Chromium loads the login page with our CA, and the
/// official geoip2 client in the app container reaches the GeoIP mock over verified HTTPS.
fn example_app_up_with_mocks_answers_over_tls_and_reaches_geoip_over_https() -> Outcome {
    let dir = support::copy_example();
    let p = Project { dir, cleanup: true };
    let o = p
        .harness()
        .args(["--json", "up", "--with-mocks"])
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .output()?;
    let up = parse_up(&o)?;

    let (code, body) = proxy_get(&up, "/health")?;
    ensure(code == 200, || {
        format!("/health through the proxy: {code} {body}")
    })?;
    let (code, body) = proxy_get(&up, "/admin/login")?;
    ensure(code == 200 && body.contains("<form"), || {
        format!("/admin/login: {code}")
    })?;
    let (code, _) = get(&format!("{}readyz", url_of(&up, "mailpit")?))?;
    ensure(code == 200, || format!("mailpit readyz: {code}"))?;
    let (code, _) = get(&format!("{}health", url_of(&up, "netcup")?))?;
    ensure(code == 200, || format!("netcup health: {code}"))?;

    let page = chromium_get(
        &up,
        &up.run_dir.join("tls"),
        "https://app.localtest.me/admin/login",
    )?;
    ensure(
        page.contains("STATUS 200") && !page.contains("ERROR"),
        || format!("Chromium on the login page:\n{page}"),
    )?;

    let app = container_of(&up.run_id, "app")?;
    let lookup = "import sys; sys.path[:0] = ['/srv/app/vendor']\n\
                  import geoip2.webservice as w\n\
                  c = w.Client(42, 'test-license-key', host='geoip:8080')\n\
                  print(c.country('81.2.69.160').country.iso_code)";
    let geo = Command::new("docker")
        .args(["exec", &app, "python3", "-c", lookup])
        .output()?;
    ensure(text(&geo.stdout).trim() == "GB", || {
        format!(
            "geoip2 from the app container over HTTPS: {}",
            describe(&geo)
        )
    })?;

    let o = p.run(&["down", "--run", &up.run_id]);
    ensure(o.status.success(), || describe(&o))?;
    let left = resources_with(&format!("harness.run={}", up.run_id));
    ensure(left.is_empty(), || format!("left behind: {left:?}"))
}

//! Issue 11: images without a registry. Every case runs on the real engine with the real baked
//! images: Apache + Passenger, nginx, the harness binary, Chromium + Playwright.
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

use crate::ensure;
use crate::support::{
    Context, Scope, Spec, TestResult, harness, http_get, scoped, text, wait_http,
};

pub fn cases() -> Vec<crate::support::Case> {
    vec![
        (
            "images_bake_all_then_second_bake_changes_nothing",
            bake_twice,
        ),
        ("images_list_shows_source_hash_size_age", list_shows_baked),
        ("app_serves_minimal_wsgi_on_loopback_port", app_serves),
        ("app_restart_txt_gives_new_pid_after_throttle", app_restart),
        ("app_import_error_answers_500", app_import_error),
        ("app_runs_as_owner_of_mounted_package", app_runs_as_owner),
        ("app_stops_on_sigterm_without_kill", app_stop),
        (
            "app_starts_again_when_apache_dies_during_its_start",
            app_restarts_a_failed_start,
        ),
        (
            "app_starts_again_when_apache_listens_but_never_answers",
            app_restarts_a_hung_start,
        ),
        (
            "twelve_app_containers_started_at_once_under_load_all_answer",
            twelve_apps_under_load,
        ),
        ("app_starts_sshd_when_asked", app_sshd),
        ("proxy_nginx_t_passes_on_rendered_config", proxy_nginx_t),
        ("mocks_image_runs_harness_and_mock_health", mocks_health),
        (
            "playwright_screenshots_page_from_sibling_container",
            playwright_shot,
        ),
        ("bake_same_image_twice_at_once_bakes_once", parallel_bake),
        (
            "bake_nonexistent_package_exits_3_naming_it",
            missing_package,
        ),
        (
            "bake_interrupted_by_ctrl_c_removes_its_container",
            interrupted_bake,
        ),
        ("bake_chroot_fallback_builds_a_runnable_image", chroot_bake),
        ("images_honour_docker_host", docker_host),
        (
            "images_resolve_local_then_baked_in_the_configured_order",
            resolution_order,
        ),
    ]
}

/// The four stack images, baked (or found) once per test process.
fn images() -> Result<HashMap<String, String>, Failed> {
    type Baked = Result<HashMap<String, String>, String>;
    static CELL: OnceLock<Mutex<Option<Baked>>> = OnceLock::new();
    let mut guard = CELL
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        let out = harness(&["--json", "images", "--bake", "--offline"])?;
        let r = if out.status.success() {
            serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
                .map_err(|e| format!("bake output is not JSON ({e}): {}", text(&out)))
                .map(|v| {
                    v.iter()
                        .map(|i| {
                            (
                                i["name"].as_str().unwrap_or_default().to_string(),
                                i["reference"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
        } else {
            Err(format!("harness images --bake failed: {}", text(&out)))
        };
        *guard = Some(r);
    }
    guard.clone().expect("set above").map_err(Failed::from)
}

fn image(name: &str) -> Result<String, Failed> {
    images()?
        .get(name)
        .cloned()
        .ctx(&format!("no {name} image in the bake output"))
}

/// No temporary bake container may outlive a bake.
async fn no_bake_containers(scope: &Scope, name_part: &str) -> TestResult {
    let filters = HashMap::from([(
        "name".to_string(),
        vec![format!("harness-bake-{name_part}")],
    )]);
    let left = scope
        .docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .ctx("list containers")?;
    ensure!(
        left.is_empty(),
        "bake containers left behind: {:?}",
        left.iter().map(|c| c.names.clone()).collect::<Vec<_>>()
    );
    Ok(())
}

fn bake_twice() -> TestResult {
    let first = images()?;
    for n in ["app", "proxy", "mocks", "playwright"] {
        ensure!(first.contains_key(n), "bake did not produce {n}: {first:?}");
    }
    let out = harness(&["images", "--bake", "--offline"])?;
    ensure!(out.status.success(), "second bake failed: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        stdout.contains("nothing changed") && !stdout.contains(" built"),
        "second bake should change nothing and say so: {}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !stderr.contains("bake ") && !stderr.contains("debootstrap"),
        "second bake ran a bake stage: {}",
        text(&out)
    );
    scoped("bake_twice", |s| async move {
        for n in ["app", "proxy", "mocks", "playwright"] {
            no_bake_containers(&s, &format!("{n}-")).await?;
        }
        Ok(())
    })
}

fn list_shows_baked() -> TestResult {
    let refs = images()?;
    let out = harness(&["--json", "images", "--list"])?;
    ensure!(out.status.success(), "list failed: {}", text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ctx("list JSON")?;
    for row in &rows {
        let name = row["name"].as_str().unwrap_or_default();
        ensure!(row["source"] == "baked", "{name} not baked: {row}");
        ensure!(
            row["reference"].as_str() == refs.get(name).map(|s| s.as_str()),
            "{name}: list and bake disagree: {row}"
        );
        let hash = row["recipe_hash"].as_str().unwrap_or_default();
        ensure!(
            hash.len() == 64
                && row["reference"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with(&hash[..12]),
            "{name}: tag must carry the recipe hash: {row}"
        );
        ensure!(
            row["size"].as_i64().unwrap_or(0) > 0,
            "{name}: no size: {row}"
        );
        ensure!(row["created"].is_string(), "{name}: no age: {row}");
    }
    ensure!(rows.len() == 4, "expected 4 images, got {rows:?}");
    let human = harness(&["images", "--list"])?;
    let human = String::from_utf8_lossy(&human.stdout);
    ensure!(
        human.contains("SOURCE") && human.contains("baked"),
        "human list: {human}"
    );
    Ok(())
}

const WSGI_PID: &str = r#"import os
def application(environ, start_response):
    body = "pid=%d uid=%d greeting=%s" % (os.getpid(), os.getuid(), os.environ.get("GREETING"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

fn app_dir(source: &str) -> Result<tempfile::TempDir, Failed> {
    let dir = tempfile::tempdir().ctx("temp dir")?;
    std::fs::write(dir.path().join("passenger_wsgi.py"), source).ctx("write app")?;
    std::fs::create_dir(dir.path().join("tmp")).ctx("mkdir tmp")?;
    Ok(dir)
}

fn app_spec(image: String, dir: &Path, throttle: u32) -> Spec {
    Spec {
        image,
        env: vec![
            format!("PASSENGER_STAT_THROTTLE_RATE={throttle}"),
            "GREETING=hello from env".into(),
        ],
        binds: vec![(dir.to_path_buf(), "/srv/app".into())],
        publish: vec!["80/tcp".into()],
        ..Default::default()
    }
}

fn app_serves() -> TestResult {
    let img = image("app")?;
    let dir = app_dir(WSGI_PID)?;
    scoped("app_serves", |s| async move {
        let id = s.start(&app_spec(img, dir.path(), 10)).await?;
        let port = s.host_port(&id, "80/tcp").await?;
        let (status, body) = wait_http(port, "/", Duration::from_secs(60)).await?;
        ensure!(
            status == 200,
            "status {status}: {body}\n{}",
            s.logs(&id).await
        );
        ensure!(
            body.starts_with("pid=") && body.contains("greeting=hello from env"),
            "the app must see the container env through Passenger: {body}"
        );
        Ok(())
    })
}

fn pid_of(body: &str) -> Option<u32> {
    body.strip_prefix("pid=")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn app_restart() -> TestResult {
    let img = image("app")?;
    let dir = app_dir(WSGI_PID)?;
    let restart = dir.path().join("tmp/restart.txt");
    scoped("app_restart", |s| async move {
        let id = s.start(&app_spec(img, dir.path(), 1)).await?;
        let port = s.host_port(&id, "80/tcp").await?;
        let (status, body) = wait_http(port, "/", Duration::from_secs(60)).await?;
        ensure!(status == 200, "status {status}: {body}");
        let before = pid_of(&body).ctx("no pid in the first answer")?;
        // Same pid while nothing is touched: the pid change below is caused by restart.txt.
        let (_, again) = http_get(port, "/").map_err(Failed::from)?;
        ensure!(
            pid_of(&again) == Some(before),
            "pid changed untouched: {again}"
        );
        std::fs::write(&restart, "").ctx("touch restart.txt")?;
        // The throttle is 1 s: poll well past it rather than sleeping a guessed amount.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (status, body) = http_get(port, "/").map_err(Failed::from)?;
            ensure!(status == 200, "status {status} after restart: {body}");
            if pid_of(&body).is_some_and(|p| p != before) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "pid still {before} 20 s after touching tmp/restart.txt (throttle 1 s)"
            );
        }
    })
}

fn app_import_error() -> TestResult {
    let img = image("app")?;
    let dir = app_dir("raise RuntimeError('broken at import')\n")?;
    scoped("app_import_error", |s| async move {
        let id = s.start(&app_spec(img, dir.path(), 10)).await?;
        let port = s.host_port(&id, "80/tcp").await?;
        let (status, body) = wait_http(port, "/", Duration::from_secs(60)).await?;
        ensure!(
            status == 500,
            "an app that raises on import must give 500, got {status}: {body:.300}"
        );
        Ok(())
    })
}

fn app_runs_as_owner() -> TestResult {
    let img = image("app")?;
    let dir = app_dir(WSGI_PID)?;
    // A non-root owner without a passwd entry in the image: the entrypoint must create one and run
    // Passenger as that uid, so the app can write its own package.
    let write_app = r#"import os
def application(environ, start_response):
    root = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(root, "written.txt"), "w") as f:
        f.write("ok")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("uid=%d" % os.getuid()).encode()]
"#;
    std::fs::write(dir.path().join("passenger_wsgi.py"), write_app).ctx("write app")?;
    for entry in walk(dir.path()) {
        std::os::unix::fs::lchown(&entry, Some(4321), Some(4321)).ctx("chown test app")?;
    }
    let path = dir.path().to_path_buf();
    scoped("app_runs_as_owner", |s| async move {
        let id = s.start(&app_spec(img, &path, 10)).await?;
        let port = s.host_port(&id, "80/tcp").await?;
        let (status, body) = wait_http(port, "/", Duration::from_secs(60)).await?;
        ensure!(
            status == 200,
            "status {status}: {body}\n{}",
            s.logs(&id).await
        );
        ensure!(
            body == "uid=4321",
            "app must run as the package owner: {body}"
        );
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path.join("written.txt")).ctx("app did not write")?;
        ensure!(meta.uid() == 4321, "written as uid {}", meta.uid());
        Ok(())
    })
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

fn app_stop() -> TestResult {
    let img = image("app")?;
    let dir = app_dir(WSGI_PID)?;
    scoped("app_stop", |s| async move {
        let id = s.start(&app_spec(img, dir.path(), 10)).await?;
        let port = s.host_port(&id, "80/tcp").await?;
        let (status, _) = wait_http(port, "/", Duration::from_secs(60)).await?;
        ensure!(status == 200, "app not up: {status}");
        let started = Instant::now();
        s.stop(&id, 10).await?;
        let took = started.elapsed();
        let info = s.docker.inspect_container(&id, None).await.ctx("inspect")?;
        let code = info.state.and_then(|st| st.exit_code).unwrap_or(-1);
        eprintln!("    docker stop on the app took {took:?} (exit {code})");
        // 137 would mean Docker had to SIGKILL after the 10 s grace: SIGTERM did not reach Apache.
        ensure!(
            code != 137,
            "apache ignored SIGTERM and was killed (stop took {took:?})"
        );
        Ok(())
    })
}

/// Apache that dies during its start (here: port 80 is taken for its first tries, as real as
/// Passenger's rare crash between Apache's two configuration passes, and certain) is started
/// again by the image's entrypoint, and the container serves. Before, Apache was PID 1 and the
/// container died with it.
fn app_restarts_a_failed_start() -> TestResult {
    let img = image("app")?;
    let dir = app_dir(WSGI_PID)?;
    scoped("app_restart_start", |s| async move {
        let mut spec = app_spec(img, dir.path(), 10);
        spec.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
        spec.cmd = Some(vec![
            "python3 -c 'import socket, time; s = socket.socket(); \
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"0.0.0.0\", 80)); \
             s.listen(); time.sleep(2)' & sleep 0.3; exec /usr/local/bin/harness-app-entrypoint"
                .into(),
        ]);
        let id = s.start(&spec).await?;
        let port = s.host_port(&id, "80/tcp").await?;
        let (status, body) = wait_http(port, "/", Duration::from_secs(30)).await?;
        let logs = s.logs(&id).await;
        ensure!(status == 200, "status {status}: {body}\n{logs}");
        ensure!(
            logs.contains("Apache exited during start-up") && logs.contains("starting it again"),
            "the entrypoint did not say it started Apache again:\n{logs}"
        );
        // It still stops on SIGTERM with Apache's own status.
        s.stop(&id, 10).await?;
        let (code, _) = s.wait_exit(&id, Duration::from_secs(5)).await?;
        ensure!(code == 0, "exit {code} after docker stop");
        Ok(())
    })
}

/// Stands in for `apache2 -D FOREGROUND`. Its first start binds port 80 and the entrypoint's
/// probe port and never answers, with a child holding the sockets too: Apache hung between its
/// two configuration passes, as seen under load (its agents may hold the port). Later starts
/// serve.
const FAKE_HUNG_APACHE: &str = r#"#!/usr/bin/python3
import http.server, os, socket, threading, time
marker = "/tmp/fake-apache-first-start"
if not os.path.exists(marker):
    open(marker, "w").close()
    held = []
    for host, port in (("0.0.0.0", 80), ("127.0.0.1", 8079)):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(16)
        held.append(s)
    if os.fork() == 0:
        time.sleep(3600)
        os._exit(0)
    time.sleep(3600)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"served by the second start"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True

probe = Server(("127.0.0.1", 8079), Handler)
threading.Thread(target=probe.serve_forever, daemon=True).start()
Server(("0.0.0.0", 80), Handler).serve_forever()
"#;

/// Session 10's CI saw an app container whose Apache bound port 80 and then never served: the
/// entrypoint took the listening socket for a finished start. Now only an answer on its probe
/// vhost counts; a start without one is killed with everything it started (a child that kept
/// port 80 would fail the next start) and started again. Before, this container never answered.
fn app_restarts_a_hung_start() -> TestResult {
    let img = image("app")?;
    let dir = app_dir(WSGI_PID)?;
    std::fs::write(dir.path().join("fake-apache2"), FAKE_HUNG_APACHE).ctx("write fake apache")?;
    scoped("app_restart_hung", |s| async move {
        let mut spec = app_spec(img, dir.path(), 10);
        spec.env.push("HARNESS_APACHE_START_TIMEOUT=3".into());
        spec.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
        spec.cmd = Some(vec![
            "install -m 755 /srv/app/fake-apache2 /usr/sbin/apache2 && \
             exec /usr/local/bin/harness-app-entrypoint"
                .into(),
        ]);
        let id = s.start(&spec).await?;
        let port = s.host_port(&id, "80/tcp").await?;
        let (status, body) = wait_http(port, "/", Duration::from_secs(30)).await?;
        let logs = s.logs(&id).await;
        ensure!(
            status == 200 && body.contains("served by the second start"),
            "status {status}: {body}\n{logs}"
        );
        ensure!(
            logs.contains("Apache does not answer after 3 s") && logs.contains("starting it again"),
            "the entrypoint did not say it started a hung Apache again:\n{logs}"
        );
        Ok(())
    })
}

/// Issue 17, finding 18: a fresh app container that never answered. 12 containers start at
/// once while two busy loops and a stream of short processes load the machine; each must answer
/// within 60 s. The run reports how many never did. (30 containers took 77 to 89 s of CI's 20
/// minutes; the entrypoint's restart of a crashed start is shown deterministically by the test
/// above, so this one only has to load the machine.)
fn twelve_apps_under_load() -> TestResult {
    const N: usize = 12;
    let img = image("app")?;
    let dir = app_dir(WSGI_PID)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for i in 0..3 {
        let stop = stop.clone();
        load.push(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if i == 2 {
                    let _ = std::process::Command::new("true").status();
                } else {
                    std::hint::black_box((0..10_000u64).sum::<u64>());
                }
            }
        }));
    }
    let result = scoped("app_twelve", |s| async move {
        let started = Instant::now();
        let mut ids = Vec::new();
        for _ in 0..N {
            ids.push(s.start(&app_spec(img.clone(), dir.path(), 10)).await?);
        }
        let mut ports = Vec::new();
        for id in &ids {
            ports.push(s.host_port(id, "80/tcp").await?);
        }
        let waits = ports
            .iter()
            .map(|&p| wait_http(p, "/", Duration::from_secs(60)));
        let answers = futures_util::future::join_all(waits).await;
        let mut dead = Vec::new();
        for (id, a) in ids.iter().zip(&answers) {
            if !matches!(a, Ok((200, _))) {
                dead.push(format!("{id}: {a:?}\n{}", s.logs(id).await));
            }
        }
        eprintln!(
            "    {N} app containers under load: {} answered, {} never did ({:.1} s)",
            N - dead.len(),
            dead.len(),
            started.elapsed().as_secs_f64()
        );
        ensure!(
            dead.is_empty(),
            "{} never answered:\n{}",
            dead.len(),
            dead.join("\n")
        );
        Ok(())
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        let _ = t.join();
    }
    result
}

const NGINX_TEMPLATE: &str = r#"worker_processes 1;
error_log /dev/stderr;
pid /tmp/nginx-test.pid;
events { worker_connections 64; }
http {
    access_log off;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen 80;
        server_name {{FQDN}};
        return 301 https://$host$request_uri;
    }
    server {
        listen 443 ssl;
        server_name {{FQDN}};
        ssl_certificate {{CERT}};
        ssl_certificate_key {{KEY}};
        add_header Strict-Transport-Security "max-age=31536000" always;
        add_header X-Content-Type-Options nosniff always;
        add_header X-Frame-Options SAMEORIGIN always;
        add_header Referrer-Policy strict-origin-when-cross-origin always;
        location /mailpit/ {
            proxy_pass http://{{MAILPIT}}:8025;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
        }
        location / {
            proxy_pass http://{{APP}}:80;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port 443;
        }
    }
}
"#;

fn proxy_nginx_t() -> TestResult {
    let img = image("proxy")?;
    let conf = NGINX_TEMPLATE
        .replace("{{FQDN}}", "app.localtest.me")
        .replace("{{CERT}}", "/tmp/tls/cert.pem")
        .replace("{{KEY}}", "/tmp/tls/key.pem")
        .replace("{{APP}}", "app")
        .replace("{{MAILPIT}}", "mailpit");
    ensure!(!conf.contains("{{"), "template left unrendered: {conf}");
    let dir = tempfile::tempdir().ctx("temp dir")?;
    std::fs::write(dir.path().join("nginx.conf"), &conf).ctx("write config")?;
    let conf_dir = dir.path().to_path_buf();
    scoped("proxy_nginx_t", |s| async move {
        let net = s.network().await?;
        // nginx -t resolves upstream names, so the upstreams exist on the test's own network.
        let idle = |aliases: Vec<String>| Spec {
            image: img.clone(),
            entrypoint: Some(vec!["sleep".into()]),
            cmd: Some(vec!["300".into()]),
            network: Some((net.clone(), aliases)),
            ..Default::default()
        };
        s.start(&idle(vec!["app".into()])).await?;
        s.start(&idle(vec!["mailpit".into()])).await?;
        let proxy = s
            .start(&Spec {
                binds: vec![(conf_dir.clone(), "/etc/harness-proxy".into())],
                ..idle(vec!["proxy".into()])
            })
            .await?;
        let (code, out) = s
            .exec(
                &proxy,
                &[
                    "sh",
                    "-c",
                    "mkdir -p /tmp/tls && openssl req -x509 -newkey rsa:2048 -nodes -days 1 \
                     -subj /CN=app.localtest.me -keyout /tmp/tls/key.pem -out /tmp/tls/cert.pem \
                     2>/dev/null && nginx -t -c /etc/harness-proxy/nginx.conf",
                ],
            )
            .await?;
        ensure!(
            code == 0 && out.contains("test is successful"),
            "nginx -t failed ({code}): {out}"
        );
        Ok(())
    })
}

fn mocks_health() -> TestResult {
    let img = image("mocks")?;
    // The host binary and the one in the image are the same bytes (the recipe hash covers them).
    let host_version = harness(&["--version"])?;
    let host_version = String::from_utf8_lossy(&host_version.stdout)
        .trim()
        .to_string();
    let has_mock = harness(&["mock", "netcup", "--help"])?.status.success();
    scoped("mocks_health", |s| async move {
        let v = s
            .start(&Spec {
                image: img.clone(),
                cmd: Some(vec!["--version".into()]),
                ..Default::default()
            })
            .await?;
        let (code, logs) = s.wait_exit(&v, Duration::from_secs(30)).await?;
        ensure!(
            code == 0 && logs.trim() == host_version,
            "harness in the image (glibc mismatch?) exit {code}: {logs}"
        );
        if !has_mock {
            eprintln!("    `harness mock` is not in this build yet: checked --version only");
            return Ok(());
        }
        let id = s
            .start(&Spec {
                image: img,
                cmd: Some(vec![
                    "mock".into(),
                    "netcup".into(),
                    "--bind".into(),
                    "0.0.0.0".into(),
                    "--port".into(),
                    "8080".into(),
                ]),
                publish: vec!["8080/tcp".into()],
                ..Default::default()
            })
            .await?;
        let port = s.host_port(&id, "8080/tcp").await?;
        let (status, body) = wait_http(port, "/health", Duration::from_secs(30)).await?;
        ensure!(
            (200..300).contains(&status),
            "netcup mock health: {status} {body}\n{}",
            s.logs(&id).await
        );
        Ok(())
    })
}

const PW_CONFTEST: &str = r#"import os
import pytest

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Debian's chromium, never a downloaded one.
    return {**browser_type_launch_args, "executable_path": os.environ["PLAYWRIGHT_CHROMIUM"]}
"#;

const PW_TEST: &str = r##"def test_page_from_sibling(page):
    page.goto("http://web:8000/index.html")
    assert page.title() == "harness e2e"
    assert page.inner_text("#greeting") == "hello from the web container"
    page.screenshot(path="/out/shot.png", full_page=True)
    print("browser", page.context.browser.version)
"##;

fn playwright_shot() -> TestResult {
    let pw = image("playwright")?;
    let app = image("app")?;
    let dir = tempfile::tempdir().ctx("temp dir")?;
    std::fs::write(dir.path().join("conftest.py"), PW_CONFTEST).ctx("conftest")?;
    std::fs::write(dir.path().join("test_page.py"), PW_TEST).ctx("test")?;
    let out = dir.path().join("out");
    std::fs::create_dir(&out).ctx("out dir")?;
    let (work, out2) = (dir.path().to_path_buf(), out.clone());
    scoped("playwright_shot", |s| async move {
        let net = s.network().await?;
        // Any container can serve the page; the app image has python3.
        let web = s
            .start(&Spec {
                image: app,
                entrypoint: Some(vec!["sh".into(), "-c".into()]),
                cmd: Some(vec![
                    "mkdir -p /page && printf '<html><head><title>harness e2e</title></head>\
                     <body><h1 id=greeting>hello from the web container</h1></body></html>' \
                     > /page/index.html && exec python3 -m http.server 8000 -d /page"
                        .into(),
                ]),
                network: Some((net.clone(), vec!["web".into()])),
                ..Default::default()
            })
            .await?;
        let runner = s
            .start(&Spec {
                image: pw,
                cmd: Some(
                    [
                        "python",
                        "-m",
                        "pytest",
                        "-q",
                        "-s",
                        "-p",
                        "no:cacheprovider",
                        "/work",
                    ]
                    .map(String::from)
                    .to_vec(),
                ),
                binds: vec![(work, "/work".into()), (out2, "/out".into())],
                network: Some((net, vec![])),
                ..Default::default()
            })
            .await?;
        let (code, logs) = s.wait_exit(&runner, Duration::from_secs(180)).await?;
        ensure!(
            code == 0,
            "pytest exit {code}:\n{logs}\nweb:\n{}",
            s.logs(&web).await
        );
        let png = std::fs::read(out.join("shot.png")).ctx("no screenshot written")?;
        ensure!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
            "screenshot is not a PNG ({} bytes)",
            png.len()
        );
        if let Some(line) = logs.lines().find(|l| l.contains("browser ")) {
            eprintln!("    {}", line.trim());
        }
        Ok(())
    })
}

/// A throwaway recipe under a temp dir; the run id makes its hash (and tag) unique to this run.
fn tiny_recipe(name: &str, packages: &str) -> Result<tempfile::TempDir, Failed> {
    tiny_recipe_running(name, packages, "true")
}

fn tiny_recipe_running(name: &str, packages: &str, run: &str) -> Result<tempfile::TempDir, Failed> {
    let dir = tempfile::tempdir().ctx("temp dir")?;
    let r = dir.path().join(name);
    std::fs::create_dir(&r).ctx("mkdir")?;
    std::fs::write(
        r.join("recipe.toml"),
        format!(
            "description = \"e2e throwaway\"\npackages = [{packages}]\n\
             run = [\"echo {}\", \"{run}\"]\n\n[image]\ncmd = [\"true\"]\n",
            crate::support::run_id()
        ),
    )
    .ctx("write recipe")?;
    Ok(dir)
}

fn parallel_bake() -> TestResult {
    images()?; // the base exists, so both bakes race on the tag, not on debootstrap
    let dir = tiny_recipe("tiny", "\"hello\"")?;
    let recipes = dir.path().to_str().ctx("utf-8 path")?.to_string();
    let run = |r: String| {
        std::thread::spawn(move || {
            harness(&[
                "--json",
                "images",
                "--bake",
                "--offline",
                "--recipes",
                &r,
                "tiny",
            ])
        })
    };
    let (a, b) = (run(recipes.clone()), run(recipes.clone()));
    let a = a.join().map_err(|_| Failed::from("thread"))??;
    let b = b.join().map_err(|_| Failed::from("thread"))??;
    let parse = |o: &std::process::Output| -> Result<serde_json::Value, Failed> {
        ensure!(o.status.success(), "a parallel bake failed: {}", text(o));
        let v: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).ctx("bake JSON")?;
        v.into_iter().next().ctx("empty bake output")
    };
    let (ra, rb) = (parse(&a)?, parse(&b)?);
    let reference = ra["reference"].as_str().unwrap_or_default().to_string();
    let result = (|| {
        ensure!(
            ra["image_id"] == rb["image_id"] && ra["reference"] == rb["reference"],
            "two bakes gave two images: {ra} / {rb}"
        );
        let built = [&ra, &rb].iter().filter(|r| r["changed"] == true).count();
        ensure!(
            built == 1,
            "expected exactly one bake, got {built}: {ra} / {rb}"
        );
        let builder = if ra["changed"] == true { &a } else { &b };
        ensure!(
            String::from_utf8_lossy(&builder.stderr).contains("probe"),
            "the bake must probe which install path works: {}",
            text(builder)
        );
        Ok(())
    })();
    let hash12 = reference.rsplit(':').next().unwrap_or("x").to_string();
    let cleanup = scoped("parallel_bake", |s| async move {
        no_bake_containers(&s, &format!("tiny-{hash12}")).await
    });
    crate::support::remove_image(&reference);
    result.and(cleanup)
}

fn missing_package() -> TestResult {
    images()?;
    let bogus = "harness-no-such-package-e2e";
    let dir = tiny_recipe("tinybad", &format!("\"hello\", \"{bogus}\""))?;
    let recipes = dir.path().to_str().ctx("utf-8 path")?;
    let out = harness(&[
        "images",
        "--bake",
        "--offline",
        "--recipes",
        recipes,
        "tinybad",
    ])?;
    ensure!(
        out.status.code() == Some(3),
        "a missing package must exit 3: {}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        stderr.contains(bogus),
        "the error must name the package: {}",
        text(&out)
    );
    scoped("missing_package", |s| async move {
        no_bake_containers(&s, "tinybad-").await
    })
}

fn interrupted_bake() -> TestResult {
    images()?;
    let dir = tiny_recipe_running("tinyint", "", "sleep 120")?;
    let recipes = dir.path().to_str().ctx("utf-8 path")?.to_string();
    let child = std::process::Command::new(crate::support::harness_bin())
        .args([
            "images",
            "--bake",
            "--offline",
            "--recipes",
            &recipes,
            "tinyint",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ctx("spawn harness")?;
    let pid = child.id().to_string();
    let outcome = scoped("interrupted_bake", |s| async move {
        // Wait until the bake container runs, then interrupt the bake like a terminal's Ctrl-C.
        let filters = HashMap::from([(
            "name".to_string(),
            vec!["harness-bake-tinyint-".to_string()],
        )]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = s
                .docker
                .list_containers(Some(
                    bollard::query_parameters::ListContainersOptionsBuilder::new()
                        .filters(&filters)
                        .build(),
                ))
                .await
                .ctx("list containers")?;
            if !list.is_empty() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the bake container never started"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let kill = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .ctx("kill -INT")?;
        ensure!(kill.success(), "kill -INT {pid} failed");
        Ok(())
    });
    let out = child.wait_with_output().ctx("wait for harness")?;
    outcome?;
    ensure!(
        out.status.code() == Some(130),
        "an interrupted bake must exit 130: {}",
        text(&out)
    );
    scoped("interrupted_bake_after", |s| async move {
        no_bake_containers(&s, "tinyint-").await
    })
}

fn chroot_bake() -> TestResult {
    images()?; // the cached base rootfs exists
    let dir = tiny_recipe("tinychroot", "\"hello\"")?;
    let recipe = dir.path().join("tinychroot/recipe.toml");
    let toml = std::fs::read_to_string(&recipe)
        .ctx("read recipe")?
        .replace(
            "cmd = [\"true\"]",
            "cmd = [\"hello\"]\nenv = [\"GREETING=from chroot\"]\nstop_signal = \"SIGQUIT\"",
        );
    std::fs::write(&recipe, toml).ctx("write recipe")?;
    let recipes = dir.path().to_str().ctx("utf-8 path")?;
    let out = crate::support::harness_env(
        &[
            "--json",
            "images",
            "--bake",
            "--recipes",
            recipes,
            "tinychroot",
        ],
        &[("HARNESS_BAKE_PATH", "chroot")],
    )?;
    ensure!(out.status.success(), "chroot bake failed: {}", text(&out));
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ctx("bake JSON")?;
    let reference = v
        .first()
        .and_then(|r| r["reference"].as_str())
        .ctx("no reference")?
        .to_string();
    let image = reference.clone();
    let result = scoped("chroot_bake", |s| async move {
        {
            let info = s.docker.inspect_image(&reference).await.ctx("inspect")?;
            let cfg = info.config.ctx("no config")?;
            ensure!(
                cfg.stop_signal.as_deref() == Some("SIGQUIT")
                    && cfg
                        .env
                        .unwrap_or_default()
                        .contains(&"GREETING=from chroot".to_string())
                    && cfg
                        .labels
                        .unwrap_or_default()
                        .get("harness.image")
                        .map(|s| s.as_str())
                        == Some("tinychroot"),
                "the chroot image lost its config: {reference}"
            );
            let id = s
                .start(&Spec {
                    image: reference.clone(),
                    ..Default::default()
                })
                .await?;
            let (code, logs) = s.wait_exit(&id, Duration::from_secs(30)).await?;
            ensure!(
                code == 0 && logs.contains("Hello, world!"),
                "the package installed in the chroot must run: {code} {logs}"
            );
            no_bake_containers(&s, "tinychroot-").await?;
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            ensure!(
                !mounts.contains("/harness/rootfs/chroot-"),
                "chroot mounts left behind"
            );
            Ok(())
        }
    });
    // After the scope: its containers are gone, so nothing holds the image any more.
    crate::support::remove_image(&image);
    result
}

fn docker_host() -> TestResult {
    let bogus = "unix:///nonexistent/harness-e2e.sock";
    let out = crate::support::harness_env(&["images", "--list"], &[("DOCKER_HOST", bogus)])?;
    ensure!(
        out.status.code() == Some(3)
            && String::from_utf8_lossy(&out.stderr).contains("/nonexistent/harness-e2e.sock"),
        "DOCKER_HOST must be used and its failure reported with exit 3: {}",
        text(&out)
    );
    Ok(())
}

fn resolution_order() -> TestResult {
    images()?;
    let online = format!("harness-e2e-online/{}:1", crate::support::run_id());
    let dir = tiny_recipe("tinyonline", "")?;
    let recipe = dir.path().join("tinyonline/recipe.toml");
    let toml = std::fs::read_to_string(&recipe).ctx("read recipe")?;
    std::fs::write(&recipe, format!("online = \"{online}\"\n{toml}")).ctx("write recipe")?;
    let recipes = dir.path().to_str().ctx("utf-8 path")?.to_string();
    let resolve = |order: &str| -> Result<(Option<i32>, serde_json::Value, String), Failed> {
        let out = harness(&[
            "--json",
            "images",
            "--bake",
            "--offline",
            "--order",
            order,
            "--recipes",
            &recipes,
            "tinyonline",
        ])?;
        let v: serde_json::Value = serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
            .ok()
            .and_then(|v| v.into_iter().next())
            .unwrap_or(serde_json::Value::Null);
        Ok((out.status.code(), v, text(&out)))
    };
    let (code, first, out) = resolve("local,bake")?;
    let baked = first["reference"].as_str().unwrap_or_default().to_string();
    let result = (|| {
        ensure!(
            code == Some(0) && first["source"] == "baked",
            "without a local online image the order local,bake must bake: {out}"
        );
        // Make the pinned online image present locally, as `docker load` would.
        let (repo, tag) = online.rsplit_once(':').ctx("online reference has a tag")?;
        let rt = crate::support::runtime().map_err(Failed::from)?;
        rt.block_on(async {
            crate::support::docker()
                .await?
                .tag_image(
                    &baked,
                    Some(
                        bollard::query_parameters::TagImageOptionsBuilder::new()
                            .repo(repo)
                            .tag(tag)
                            .build(),
                    ),
                )
                .await
                .ctx("tag the baked image as the online one")
        })?;
        let (code, second, out) = resolve("local,bake")?;
        ensure!(
            code == Some(0)
                && second["source"] == "local"
                && second["reference"] == online.as_str()
                && second["changed"] == false,
            "a present online image must win with order local,bake: {out}"
        );
        let (code, third, out) = resolve("bake,local")?;
        ensure!(
            code == Some(0) && third["source"] == "baked" && third["reference"] == baked.as_str(),
            "order bake,local must take the baked image: {out}"
        );
        let (code, _, out) = resolve("pull")?;
        ensure!(
            code == Some(3) && out.contains("no source could provide"),
            "offline with order pull has no source: exit 3 expected: {out}"
        );
        Ok(())
    })();
    crate::support::remove_image(&online);
    crate::support::remove_image(&baked);
    result
}

fn app_sshd() -> TestResult {
    let img = image("app")?;
    let dir = app_dir(WSGI_PID)?;
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHarnessE2eTestKeyNotARealKeyAAAAAAAAAAAA e2e@harness";
    scoped("app_sshd", |s| async move {
        let mut spec = app_spec(img, dir.path(), 10);
        spec.env.push("HARNESS_SSHD=1".into());
        spec.env.push(format!("HARNESS_SSH_AUTHORIZED_KEYS={key}"));
        spec.publish.push("22/tcp".into());
        let id = s.start(&spec).await?;
        let port = s.host_port(&id, "80/tcp").await?;
        let (status, body) = wait_http(port, "/", Duration::from_secs(60)).await?;
        ensure!(
            status == 200,
            "app with sshd: {status} {body}\n{}",
            s.logs(&id).await
        );
        let (_, vhost) = s
            .exec(&id, &["cat", "/etc/apache2/sites-enabled/harness-app.conf"])
            .await?;
        ensure!(
            vhost.contains("SetEnv GREETING \"hello from env\"")
                && !vhost.contains("HARNESS_SSH")
                && !vhost.contains("SetEnv PASSENGER_"),
            "the vhost must pass app variables and keep HARNESS_*/PASSENGER_* out: {vhost}"
        );
        let ssh_port = s.host_port(&id, "22/tcp").await?;
        let banner = tokio::task::spawn_blocking(move || -> Result<String, String> {
            let mut c =
                std::net::TcpStream::connect(("127.0.0.1", ssh_port)).map_err(|e| e.to_string())?;
            c.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 64];
            let n = std::io::Read::read(&mut c, &mut buf).map_err(|e| e.to_string())?;
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        })
        .await
        .ctx("ssh thread")?
        .map_err(Failed::from)?;
        ensure!(
            banner.starts_with("SSH-2.0-OpenSSH"),
            "no sshd banner: {banner:?}"
        );
        let (code, keys) = s
            .exec(
                &id,
                &[
                    "sh",
                    "-c",
                    "cat ~root/.ssh/authorized_keys; ls /etc/ssh/ssh_host_ed25519_key",
                ],
            )
            .await?;
        ensure!(
            code == 0 && keys.contains(key),
            "authorized_keys not written for the app user: {keys}"
        );
        Ok(())
    })
}

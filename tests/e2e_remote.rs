//! `harness test` against a second Docker engine that sees none of this machine's paths: its own
//! dockerd in its own mount namespace (tmpfs over /tmp, where the project copies live, and over
//! its data root), its own exec root, pidfile and bridge, storage driver vfs, listening only with
//! TLS (rcgen certificates, client certificates required) on 127.0.0.2, and publishing ports on
//! 127.0.0.2 (`--ip`), so a client that assumes 127.0.0.1 fails. The stack's images are moved
//! over with `docker save | docker load`.
//!
//! Needs root (unshare, a bridge, dockerd). Under CI a daemon that cannot start is a failure with
//! its log; elsewhere the suite is skipped without Docker, as every Docker suite is.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::{Outcome, ensure, text};

const ADDRESS: &str = "127.0.0.2";
const PORT: u16 = 23750;
const BRIDGE: &str = "hrm-br0";
const BRIDGE_CIDR: &str = "172.31.251.1/24";

fn main() {
    support::run_docker_suite(
        "remote-engine",
        vec![(
            "a_remote_engine_runs_the_example_green_brings_a_failures_artifacts_back_and_bind_mounts_cannot",
            a_remote_engine_runs_the_example_green_brings_a_failures_artifacts_back_and_bind_mounts_cannot,
        )],
        vec![],
    )
}

/// The second engine; stopped and its traces removed on drop.
struct SecondEngine {
    daemon: Child,
    base: PathBuf,
    client_certs: PathBuf,
}

impl SecondEngine {
    fn host(&self) -> String {
        format!("tcp://{ADDRESS}:{PORT}")
    }

    /// The docker CLI against this engine.
    fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &self.client_certs);
        c
    }

    fn start() -> Result<SecondEngine, String> {
        // SAFETY: geteuid cannot fail and touches no memory.
        if unsafe { libc::geteuid() } != 0 {
            return Err("the second engine needs root (unshare, a bridge, dockerd)".into());
        }
        let base = PathBuf::from(format!("/var/lib/harness-remote-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for d in ["tls", "client", "data", "exec"] {
            std::fs::create_dir_all(base.join(d)).map_err(|e| e.to_string())?;
        }
        write_certificates(&base.join("tls"), &base.join("client"))?;
        std::fs::write(base.join("daemon.json"), "{}").map_err(|e| e.to_string())?;
        let _ = run("ip", &["link", "del", BRIDGE]);
        for args in [
            vec!["link", "add", BRIDGE, "type", "bridge"],
            vec!["addr", "add", BRIDGE_CIDR, "dev", BRIDGE],
            vec!["link", "set", BRIDGE, "up"],
        ] {
            let o = run("ip", &args)?;
            if !o.status.success() {
                return Err(format!("ip {}: {}", args.join(" "), text(&o.stderr)));
            }
        }
        let b = base.display();
        // The engine's own namespace: /tmp (every project copy) and its data root are tmpfs there.
        let script = format!(
            "mount -t tmpfs none /tmp && mount -t tmpfs -o size=16g none {b}/data && \
             exec dockerd --config-file {b}/daemon.json --data-root {b}/data --exec-root {b}/exec \
             --pidfile {b}/exec/dockerd.pid --bridge {BRIDGE} --storage-driver vfs --ip {ADDRESS} \
             --containerd-namespace harness-remote --containerd-plugins-namespace harness-remote-plugins \
             --tlsverify --tlscacert {b}/tls/ca.pem --tlscert {b}/tls/server-cert.pem \
             --tlskey {b}/tls/server-key.pem -H tcp://{ADDRESS}:{PORT} -H unix://{b}/exec/docker.sock"
        );
        let log = std::fs::File::create(base.join("dockerd.log")).map_err(|e| e.to_string())?;
        let daemon = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let engine = SecondEngine {
            daemon,
            client_certs: base.join("client"),
            base,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let o = engine
                .docker()
                .args(["version", "--format", "{{.Server.Version}}"])
                .output();
            if o.as_ref().is_ok_and(|o| o.status.success()) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the second dockerd did not answer within 60 s; its log:\n{}",
                    engine.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Ok(engine)
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.base.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `docker save` here, `docker load` there, for every image this harness resolves.
    fn load_images(&self) -> Result<(), String> {
        // Present here for this very binary (the mocks image carries it): a no-op after
        // scripts/test.sh's bake.
        let o = Command::new(support::harness_bin())
            .args(["images", "--bake"])
            .env("HARNESS_OFFLINE", "1")
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(format!("images --bake: {}", text(&o.stderr)));
        }
        let o = Command::new(support::harness_bin())
            .args(["--json", "images", "--list"])
            .env("HARNESS_OFFLINE", "1")
            .output()
            .map_err(|e| e.to_string())?;
        let listed: serde_json::Value = serde_json::from_slice(&o.stdout)
            .map_err(|e| format!("images --list: {e}: {}", text(&o.stdout)))?;
        let refs: Vec<String> = listed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["reference"].as_str().map(String::from))
            .filter(|r| r != "-")
            .collect();
        if refs.is_empty() {
            return Err(format!("no images listed: {listed}"));
        }
        let mut save = Command::new("docker")
            .arg("save")
            .args(&refs)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let o = self
            .docker()
            .arg("load")
            .stdin(save.stdout.take().unwrap())
            .output()
            .map_err(|e| e.to_string())?;
        let saved = save.wait().map_err(|e| e.to_string())?;
        if !saved.success() || !o.status.success() {
            return Err(format!("docker save | load: {}", text(&o.stderr)));
        }
        Ok(())
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = run("ip", &["link", "del", BRIDGE]);
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn run(program: &str, args: &[&str]) -> Result<Output, String> {
    Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))
}

/// A CA, the server's certificate for 127.0.0.2 and a client certificate, as dockerd and the
/// docker CLI (DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem) want them.
fn write_certificates(server: &Path, client: &Path) -> Result<(), String> {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
    };
    let e = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).map_err(e)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(e)?;
    let mut server_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    server_params.subject_alt_names =
        vec![SanType::IpAddress(ADDRESS.parse().expect("an IP address"))];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &issuer).map_err(e)?;

    let client_key = KeyPair::generate().map_err(e)?;
    let mut client_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer).map_err(e)?;

    let write = |p: PathBuf, s: String| -> Result<(), String> {
        let mut f = std::fs::File::create(&p).map_err(|e| e.to_string())?;
        f.write_all(s.as_bytes()).map_err(|e| e.to_string())
    };
    write(server.join("ca.pem"), ca.pem())?;
    write(server.join("server-cert.pem"), server_cert.pem())?;
    write(server.join("server-key.pem"), server_key.serialize_pem())?;
    write(client.join("ca.pem"), ca.pem())?;
    write(client.join("cert.pem"), client_cert.pem())?;
    write(client.join("key.pem"), client_key.serialize_pem())?;
    Ok(())
}

const FAILING: &str = r#"import os

def test_the_login_page_says_something_it_does_not(page):
    page.goto(os.environ["UI_BASE_URL"] + "/admin/login")
    assert page.title() == "a title this app never had"
"#;

fn a_remote_engine_runs_the_example_green_brings_a_failures_artifacts_back_and_bind_mounts_cannot()
-> Outcome {
    let engine = SecondEngine::start()?;
    engine.load_images()?;
    let project = support::copy_example();
    let harness = |args: &[&str], extra: &[(&str, &str)]| -> Output {
        let mut c = Command::new(support::harness_bin());
        c.arg("--project")
            .arg(project.path())
            .args(args)
            .env("HARNESS_OFFLINE", "1")
            .env("DOCKER_HOST", engine.host())
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &engine.client_certs);
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().expect("run harness")
    };
    let describe = |o: &Output| {
        format!(
            "{}\nsecond dockerd's log:\n{}",
            support::describe(o),
            engine.log()
        )
    };

    let o = harness(&["--json", "test", "--with-mocks"], &[]);
    ensure(o.status.code() == Some(0), || describe(&o))?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    ensure(
        v["outcome"] == "green" && v["passed"].as_u64() >= Some(10),
        || describe(&o),
    )?;
    // The stack's ports were reached where that engine publishes them.
    ensure(
        text(&o.stderr).contains(&format!("http://{ADDRESS}:")),
        || describe(&o),
    )?;

    // A failing test: its screenshot and trace come back into the report.
    let tests = project.path().join("ui_tests");
    for entry in std::fs::read_dir(&tests)? {
        let p = entry?.path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("test_") && name != "test_tls_proxy.py" {
            std::fs::remove_file(p)?;
        }
    }
    std::fs::write(tests.join("test_zz_failing.py"), FAILING)?;
    let o = harness(&["--json", "test", "--with-mocks"], &[]);
    ensure(o.status.code() == Some(1), || describe(&o))?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    ensure(v["outcome"] == "red" && v["failed"] == 1, || describe(&o))?;
    let run_dir = PathBuf::from(v["run_dir"].as_str().unwrap_or_default());
    let html = std::fs::read_to_string(run_dir.join("report.html"))?;
    ensure(html.contains("data:image/png;base64,"), || {
        "the report has no embedded screenshot of the failure".into()
    })?;
    let trace = walkdir::WalkDir::new(run_dir.join("report/artifacts"))
        .into_iter()
        .flatten()
        .find(|e| e.file_name() == "trace.zip")
        .ok_or("no trace.zip came back from the remote engine")?;
    ensure(std::fs::metadata(trace.path())?.len() > 0, || {
        "the trace is empty".into()
    })?;

    // The control: bind mounts of this machine's paths give that engine empty folders.
    let o = harness(
        &["--json", "test", "--with-mocks"],
        &[("HARNESS_BIND_MOUNTS", "1"), ("HARNESS_APP_TIMEOUT", "15s")],
    );
    ensure(
        o.status.code() != Some(0) && o.status.code() != Some(1),
        || {
            format!(
                "with bind mounts the run should not even reach its tests:\n{}",
                describe(&o)
            )
        },
    )?;

    let left = engine.docker().args(["ps", "-aq"]).output()?;
    ensure(text(&left.stdout).trim().is_empty(), || {
        format!(
            "containers left on the second engine: {}",
            text(&left.stdout)
        )
    })
}

use super::*;
use std::collections::HashMap;

fn src(name: &str, text: &str) -> Source {
    Source {
        name: name.into(),
        dir: PathBuf::from("/proj"),
        text: text.into(),
    }
}

fn load_with(files: &[Source], vars: &[(&str, &str)]) -> Result<Stack, ComposeError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load(files, &|k| map.get(k).cloned())
}

const BASE: &str = r#"
services:
  app:
    image: ${IMG:-harness/app:dev}
    command: ["apache2ctl", "-D", "FOREGROUND"]
    environment:
      A: "1"
      B: two
    ports: ["8080:80"]
    volumes:
      - ./pkg:/srv/app:ro
      - cache:/cache
    x-harness:
      wait: { http: { port: 80, path: /health } }
      timeout: 30s
  proxy:
    image: harness/proxy
    ports: ["80"]
    depends_on:
      app: { condition: service_healthy }
    networks:
      default:
        aliases: [app.localtest.me]
volumes:
  cache:
    x-harness: { cache: true }
"#;

#[test]
fn base_file_resolves_every_field() {
    let s = load_with(&[src("base.yml", BASE)], &[]).unwrap();
    let app = &s.services["app"];
    assert_eq!(app.image, "harness/app:dev");
    assert_eq!(
        app.command.as_deref().unwrap(),
        ["apache2ctl", "-D", "FOREGROUND"]
    );
    assert_eq!(app.environment["B"], "two");
    assert_eq!(
        app.ports,
        vec![PortSpec {
            port: 80,
            udp: false
        }]
    );
    assert_eq!(
        app.mounts[0],
        MountSpec::Bind {
            source: "/proj/pkg".into(),
            target: "/srv/app".into(),
            read_only: true
        }
    );
    assert_eq!(
        app.mounts[1],
        MountSpec::Volume {
            name: "cache".into(),
            target: "/cache".into(),
            read_only: false
        }
    );
    assert_eq!(
        app.wait,
        WaitSpec::Http {
            port: 80,
            path: "/health".into(),
            tls: None
        }
    );
    assert_eq!(app.timeout, Duration::from_secs(30));
    assert!(s.volumes["cache"]);
    let proxy = &s.services["proxy"];
    assert_eq!(proxy.depends_on["app"], Condition::Healthy);
    assert_eq!(proxy.aliases, vec!["proxy", "app.localtest.me"]);
    assert_eq!(proxy.wait, WaitSpec::Started);
    assert_eq!(proxy.timeout, DEFAULT_TIMEOUT);
}

#[test]
fn interpolation_reaches_image_env_and_ports() {
    let s = load_with(&[src("base.yml", BASE)], &[("IMG", "harness/app:abc")]).unwrap();
    assert_eq!(s.services["app"].image, "harness/app:abc");
}

#[test]
fn unsupported_service_key_names_file_line_and_column() {
    let text = "services:\n  app:\n    image: x\n    restart: always\n";
    let e = load_with(&[src("compose/base.yml", text)], &[]).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("compose/base.yml", 4), "{e}");
    assert!(e.message.contains("unknown field `restart`"), "{e}");
    assert!(e.to_string().starts_with("compose/base.yml:4:"), "{e}");
}

#[test]
fn unsupported_top_level_key_is_an_error() {
    let e = load_with(&[src("f.yml", "version: '3'\nservices: {}\n")], &[]).unwrap_err();
    assert_eq!(e.line, 1, "{e}");
    assert!(e.message.contains("version"), "{e}");
}

#[test]
fn unsupported_nested_key_in_healthcheck_points_at_it() {
    let text = "services:\n  a:\n    image: x\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      start_interval: 1s\n";
    let e = load_with(&[src("f.yml", text)], &[]).unwrap_err();
    assert_eq!(e.line, 6, "{e}");
}

#[test]
fn required_variable_error_names_file_line_and_message() {
    let text = "services:\n  a:\n    image: x\n    environment:\n      TOKEN: ${TOKEN:?export TOKEN first}\n";
    let e = load_with(&[src("f.yml", text)], &[]).unwrap_err();
    assert_eq!(e.line, 5, "{e}");
    assert!(e.message.contains("export TOKEN first"), "{e}");
    assert!(e.message.contains("service `a`"), "{e}");
}

#[test]
fn override_file_merges_by_service_and_adds_services() {
    let over = r#"
services:
  app:
    environment:
      B: changed
      C: new
    volumes:
      - ./other:/srv/app
  pdns:
    image: powerdns/pdns-auth
    depends_on: [app]
"#;
    let s = load_with(&[src("base.yml", BASE), src("override.yml", over)], &[]).unwrap();
    let app = &s.services["app"];
    assert_eq!(app.environment["A"], "1");
    assert_eq!(app.environment["B"], "changed");
    assert_eq!(app.environment["C"], "new");
    assert_eq!(app.image, "harness/app:dev", "unset fields stay");
    assert_eq!(
        app.mounts.len(),
        2,
        "same target replaces: {:?}",
        app.mounts
    );
    assert!(app.mounts.contains(&MountSpec::Bind {
        source: "/proj/other".into(),
        target: "/srv/app".into(),
        read_only: false
    }));
    assert_eq!(s.services["pdns"].depends_on["app"], Condition::Started);
}

#[test]
fn relative_paths_resolve_against_the_file_that_names_them() {
    let over = Source {
        name: "o.yml".into(),
        dir: PathBuf::from("/project"),
        text: "services:\n  app:\n    volumes: [\"./data:/data\", \"../up:/up:ro\"]\n".into(),
    };
    let s = load_with(&[src("base.yml", BASE), over], &[]).unwrap();
    let m = &s.services["app"].mounts;
    assert!(m.contains(&MountSpec::Bind {
        source: "/project/data".into(),
        target: "/data".into(),
        read_only: false
    }));
    assert!(m.contains(&MountSpec::Bind {
        source: "/up".into(),
        target: "/up".into(),
        read_only: true
    }));
    assert!(m.contains(&MountSpec::Bind {
        source: "/proj/pkg".into(),
        target: "/srv/app".into(),
        read_only: true
    }));
}

#[test]
fn override_replaces_command_and_wait() {
    let over = "services:\n  app:\n    command: sh -c 'echo \"hi there\"'\n    x-harness:\n      wait: { log: ready }\n";
    let s = load_with(&[src("base.yml", BASE), src("o.yml", over)], &[]).unwrap();
    let app = &s.services["app"];
    assert_eq!(
        app.command.as_deref().unwrap(),
        ["sh", "-c", "echo \"hi there\""]
    );
    assert_eq!(
        app.wait,
        WaitSpec::Log {
            text: "ready".into()
        }
    );
}

#[test]
fn environment_list_form_and_passthrough() {
    let text = "services:\n  a:\n    image: x\n    environment:\n      - K=v=w\n      - FROM_HOST\n      - MISSING\n";
    let s = load_with(&[src("f.yml", text)], &[("FROM_HOST", "h")]).unwrap();
    let env = &s.services["a"].environment;
    assert_eq!(env["K"], "v=w");
    assert_eq!(env["FROM_HOST"], "h");
    assert!(!env.contains_key("MISSING"));
}

#[test]
fn env_file_is_read_relative_to_the_compose_file_and_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.env"),
        "# c\nX=1\nexport Y=\"two\"\nZ='3'\n",
    )
    .unwrap();
    let text = "services:\n  a:\n    image: x\n    env_file: a.env\n    environment: { Z: over }\n";
    let source = Source {
        name: "f.yml".into(),
        dir: dir.path().to_path_buf(),
        text: text.into(),
    };
    let s = load_with(&[source], &[]).unwrap();
    let env = &s.services["a"].environment;
    assert_eq!(
        (env["X"].as_str(), env["Y"].as_str(), env["Z"].as_str()),
        ("1", "two", "over")
    );
}

#[test]
fn tmpfs_volume_healthcheck_shm_and_user() {
    let text = r#"
services:
  a:
    image: x
    user: 1000
    working_dir: /w
    shm_size: 256m
    tmpfs: /run
    volumes:
      - type: tmpfs
        target: /scratch
    healthcheck:
      test: curl -fsS localhost/health
      interval: 1s
      retries: 3
"#;
    let s = load_with(&[src("f.yml", text)], &[]).unwrap();
    let a = &s.services["a"];
    assert_eq!(a.user.as_deref(), Some("1000"));
    assert_eq!(a.working_dir.as_deref(), Some("/w"));
    assert_eq!(a.shm_size, Some(256 << 20));
    assert_eq!(a.tmpfs, vec!["/run"]);
    assert_eq!(
        a.mounts,
        vec![MountSpec::Tmpfs {
            target: "/scratch".into()
        }]
    );
    let h = a.healthcheck.as_ref().unwrap();
    assert_eq!(h.test, vec!["CMD-SHELL", "curl -fsS localhost/health"]);
    assert_eq!(h.interval, Some(Duration::from_secs(1)));
    assert_eq!(h.retries, Some(3));
    assert_eq!(
        a.wait,
        WaitSpec::Healthy,
        "a healthcheck is the default wait"
    );
}

#[test]
fn job_dependency_needs_an_exit_wait() {
    let ok = "services:\n  seed:\n    image: x\n    x-harness: { wait: { exit: 0 } }\n  app:\n    image: y\n    depends_on:\n      seed: { condition: service_completed_successfully }\n";
    let s = load_with(&[src("f.yml", ok)], &[]).unwrap();
    assert_eq!(
        s.services["app"].depends_on["seed"],
        Condition::CompletedSuccessfully
    );
    let bad = ok.replace("x-harness: { wait: { exit: 0 } }", "command: [x]");
    let e = load_with(&[src("f.yml", &bad)], &[]).unwrap_err();
    assert!(e.message.contains("seed"), "{e}");
    assert_eq!(e.line, 8, "{e}");
}

#[test]
fn healthy_dependency_on_a_service_without_readiness_is_an_error() {
    let text = "services:\n  db:\n    image: x\n  app:\n    image: y\n    depends_on:\n      db:\n        condition: service_healthy\n";
    let e = load_with(&[src("f.yml", text)], &[]).unwrap_err();
    assert!(e.message.contains("healthcheck"), "{e}");
}

#[test]
fn unknown_dependency_and_condition_are_errors() {
    let text = "services:\n  app:\n    image: y\n    depends_on: [nope]\n";
    let e = load_with(&[src("f.yml", text)], &[]).unwrap_err();
    assert!(e.message.contains("`nope`"), "{e}");
    assert_eq!(e.line, 4);
    let text = "services:\n  a:\n    image: y\n  app:\n    image: y\n    depends_on:\n      a: { condition: service_ready }\n";
    let e = load_with(&[src("f.yml", text)], &[]).unwrap_err();
    assert!(e.message.contains("service_ready"), "{e}");
    assert_eq!(e.line, 7, "{e}");
}

#[test]
fn bad_values_are_errors_at_their_line() {
    let cases = [
        ("    ports: [\"80-90:80-90\"]\n", "container port"),
        ("    ports: [\"80/sctp\"]\n", "protocol"),
        ("    volumes: [\"undeclared:/x\"]\n", "not declared"),
        ("    volumes: [\"/anon\"]\n", "anonymous"),
        ("    volumes: [\"./a:rel\"]\n", "absolute"),
        ("    shm_size: lots\n", "not a size"),
        ("    labels: { harness.run: x }\n", "reserved"),
        (
            "    x-harness: { wait: { http: { port: 81, path: /h } } }\n    ports: [\"80\"]\n",
            "not in `ports`",
        ),
        ("    x-harness: { timeout: soon }\n", "not a duration"),
        (
            "    x-harness: { wait: { healthy: true } }\n",
            "no healthcheck",
        ),
    ];
    for (extra, want) in cases {
        let text = format!("services:\n  a:\n    image: x\n{extra}");
        let e = load_with(&[src("f.yml", &text)], &[]).unwrap_err();
        assert!(e.message.contains(want), "{extra}: {e}");
        assert_eq!(e.line, 4, "{extra}: {e}");
    }
}

#[test]
fn missing_image_is_an_error() {
    let e = load_with(&[src("f.yml", "services:\n  a:\n    user: x\n")], &[]).unwrap_err();
    assert!(e.message.contains("no `image`"), "{e}");
    assert_eq!(e.line, 2);
}

#[test]
fn yaml_syntax_error_has_a_line() {
    let e = load_with(&[src("f.yml", "services:\n  a:\n    image: [x\n")], &[]).unwrap_err();
    assert!(e.line >= 3, "{e}");
}

#[test]
fn ports_accept_every_short_form() {
    for (text, port, udp) in [
        ("80", 80, false),
        ("8080:80", 80, false),
        ("127.0.0.1:8080:80", 80, false),
        ("127.0.0.1::80", 80, false),
        ("53/udp", 53, true),
        ("1025:1025/tcp", 1025, false),
    ] {
        assert_eq!(parse_port(text), Ok(PortSpec { port, udp }), "{text}");
    }
    assert!(parse_port("0").is_err());
    assert!(parse_port("x").is_err());
}

#[test]
fn durations_and_sizes() {
    assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
    assert_eq!(parse_duration("12"), Some(Duration::from_secs(12)));
    assert_eq!(parse_duration(""), None);
    assert_eq!(parse_duration("s"), None);
    assert_eq!(parse_duration("5d"), None);
    assert_eq!(parse_size("1g"), Some(1 << 30));
    assert_eq!(parse_size("64KB"), Some(64 << 10));
    assert_eq!(parse_size("100"), Some(100));
    assert_eq!(parse_size("x"), None);
}

#[test]
fn split_words_handles_quotes_and_escapes() {
    assert_eq!(
        split_words(r#"a "b c" 'd e' f\ g"#).unwrap(),
        ["a", "b c", "d e", "f g"]
    );
    assert_eq!(split_words(r#"x "" y"#).unwrap(), ["x", "", "y"]);
    assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
    assert!(split_words("'open").is_none());
}

#[test]
fn empty_file_is_an_empty_stack() {
    let s = load_with(&[src("f.yml", "")], &[]).unwrap();
    assert!(s.services.is_empty());
}

#[test]
fn a_value_of_the_wrong_shape_says_which_shapes_fit() {
    let text = "services:\n  a:\n    image: x\n    depends_on:\n      b: service_started\n";
    let e = load_with(&[src("f.yml", text)], &[]).unwrap_err();
    assert!(e.message.contains("condition"), "{e}");
    assert!(!e.message.contains("RawDependsOn"), "{e}");
    assert_eq!(e.line, 4, "{e}");
}

#[test]
fn volumes_with_required_variables_merge_by_their_real_target() {
    // `${VAR:?}` holds a colon; two such mounts on different targets must both survive a merge.
    let base = src(
        "base.yml",
        "services:\n  job:\n    image: x\n    volumes:\n      - ${A:?}:/state\n      - ${B:?}/report:/report\n",
    );
    let over = src(
        "over.yml",
        "services:\n  job:\n    volumes:\n      - ${C:?}:/tls:ro\n      - ${D:?}:/report\n",
    );
    let stack = load_with(
        &[base, over],
        &[("A", "/a"), ("B", "/b"), ("C", "/c"), ("D", "/d")],
    )
    .unwrap();
    let mut targets: Vec<(String, String)> = stack.services["job"]
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind { source, target, .. } => {
                (target.clone(), source.display().to_string())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![
            ("/report".to_string(), "/d".to_string()),
            ("/state".to_string(), "/a".to_string()),
            ("/tls".to_string(), "/c".to_string()),
        ]
    );
}

use serde_norway::Value;

use super::*;

fn spec(shards: u32, deploy: bool) -> Spec {
    Spec {
        shards,
        deploy,
        branch: "main".into(),
        runs_on: "ubuntu-24.04".into(),
        harness: HarnessSource {
            git: "https://github.com/example/harness".into(),
            rev: "0123456789abcdef0123456789abcdef01234567".into(),
        },
        workdir: String::new(),
        requirement_files: vec![
            "harness.toml".into(),
            "requirements.webhosting.txt".into(),
            "ui_tests/requirements.txt".into(),
        ],
    }
}

fn parse(text: &str) -> Value {
    serde_norway::from_str(text).expect("the workflow is YAML")
}

fn steps(job: &Value) -> Vec<&Value> {
    job["steps"].as_sequence().unwrap().iter().collect()
}

fn step<'a>(job: &'a Value, id: &str) -> &'a Value {
    steps(job)
        .into_iter()
        .find(|s| s["id"].as_str() == Some(id))
        .unwrap_or_else(|| panic!("no step {id}"))
}

fn run_text(step: &Value) -> &str {
    step["run"].as_str().unwrap()
}

#[test]
fn the_matrix_has_one_job_per_shard_each_running_its_own_part() {
    for n in [1, 4, 7] {
        let w = parse(&github::workflow(&spec(n, false)));
        let test = &w["jobs"]["test"];
        let matrix: Vec<u64> = test["strategy"]["matrix"]["shard"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(matrix, (1..=u64::from(n)).collect::<Vec<_>>());
        assert_eq!(test["strategy"]["fail-fast"], Value::Bool(false));
        let shard = step(test, "shard");
        assert_eq!(
            run_text(shard),
            format!("harness test --with-mocks --shard \"$SHARD/{n}\"")
        );
        assert_eq!(shard["env"]["SHARD"].as_str(), Some("${{ matrix.shard }}"));
    }
}

#[test]
fn records_are_signed_only_on_pushes_to_the_branch_and_the_pull_request_path_reaches_no_secret() {
    let text = github::workflow(&spec(4, false));
    let w = parse(&text);
    let test = &w["jobs"]["test"];
    let push = "github.event_name == 'push' && github.ref == 'refs/heads/main'";
    let signed = step(test, "signed-record");
    assert_eq!(
        signed["if"].as_str(),
        Some(format!("${{{{ {push} }}}}").as_str())
    );
    assert_eq!(
        signed["env"]["HARNESS_SIGNING_KEY"].as_str(),
        Some("${{ secrets.HARNESS_SIGNING_KEY }}")
    );
    assert!(run_text(signed).contains("harness runs export last --sign \"$key\""));
    let unsigned = step(test, "record");
    assert_eq!(
        unsigned["if"].as_str(),
        Some(format!("${{{{ !({push}) }}}}").as_str())
    );
    assert!(!run_text(unsigned).contains("--sign"));
    // The signing step is the only place any secret is named in the test job.
    let secret_steps: Vec<_> = steps(test)
        .into_iter()
        .filter(|s| serde_norway::to_string(s).unwrap().contains("secrets."))
        .collect();
    assert_eq!(secret_steps.len(), 1);
    assert_eq!(w["on"]["push"]["branches"][0].as_str(), Some("main"));
    assert!(w["on"]["pull_request"].is_null() && w["on"].get("pull_request").is_some());
    assert!(!text.contains("pull_request_target"));
}

#[test]
fn the_gate_job_needs_every_shard_and_imports_all_records_before_asking() {
    let w = parse(&github::workflow(&spec(4, false)));
    let gate = &w["jobs"]["gate"];
    assert_eq!(gate["needs"].as_str(), Some("test"));
    assert!(gate["if"].as_str().unwrap().contains("refs/heads/main"));
    let download = steps(gate)
        .into_iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/download-artifact@"))
        })
        .unwrap();
    assert_eq!(
        download["with"]["pattern"].as_str(),
        Some("harness-record-*")
    );
    assert_eq!(download["with"]["merge-multiple"], Value::Bool(true));
    assert_eq!(
        run_text(step(gate, "import")),
        "harness runs import \"$RUNNER_TEMP/records\""
    );
    assert_eq!(run_text(step(gate, "gate")), "harness gate webhosting");
    // The records the gate reads are the ones each shard uploads under that pattern.
    let upload_names: Vec<&str> = steps(&w["jobs"]["test"])
        .into_iter()
        .filter_map(|s| s["with"]["name"].as_str())
        .collect();
    assert!(upload_names.contains(&"harness-record-${{ matrix.shard }}"));
    assert!(w["jobs"].get("deploy").is_none(), "deploy is opt-in");
}

#[test]
fn the_deploy_job_is_opt_in_behind_the_environment_and_after_the_gate() {
    let w = parse(&github::workflow(&spec(2, true)));
    let deploy = &w["jobs"]["deploy"];
    assert_eq!(deploy["needs"].as_str(), Some("gate"));
    assert_eq!(deploy["environment"].as_str(), Some("webhosting"));
    assert!(deploy["if"].as_str().unwrap().contains("refs/heads/main"));
    assert!(run_text(step(deploy, "deploy")).contains("harness deploy webhosting"));
    step(deploy, "import");
}

#[test]
fn least_privilege_no_credentials_left_and_only_tag_pinned_github_actions() {
    let w = parse(&github::workflow(&spec(3, true)));
    assert_eq!(w["permissions"], parse("{}"));
    for (name, job) in w["jobs"].as_mapping().unwrap() {
        assert_eq!(
            job["permissions"],
            parse("contents: read"),
            "{name:?} permissions"
        );
        for s in steps(job) {
            let Some(uses) = s["uses"].as_str() else {
                continue;
            };
            let (action, tag) = uses.split_once('@').unwrap();
            assert!(action.starts_with("actions/"), "{uses}");
            assert!(
                tag.strip_prefix('v')
                    .is_some_and(|m| m.parse::<u32>().is_ok()),
                "{uses}: a major tag"
            );
            if action == "actions/checkout" {
                assert_eq!(s["with"]["persist-credentials"], Value::Bool(false));
            }
            if action == "actions/upload-artifact" {
                let path = s["with"]["path"].as_str().unwrap();
                assert!(
                    !path.contains("deploy.zip") && !path.contains(".harness"),
                    "{path}"
                );
            }
        }
    }
}

#[test]
fn caches_are_keyed_by_what_they_hold() {
    let w = parse(&github::workflow(&spec(1, false)));
    let keys: Vec<String> = steps(&w["jobs"]["test"])
        .into_iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/cache@"))
        })
        .map(|s| s["with"]["key"].as_str().unwrap().to_string())
        .collect();
    let rev = "0123456789abcdef0123456789abcdef01234567";
    assert_eq!(
        keys,
        [
            format!("harness-bin-${{{{ runner.os }}}}-${{{{ runner.arch }}}}-{rev}"),
            "harness-wheels-${{ runner.os }}-${{ hashFiles('harness.toml', \
             'requirements.webhosting.txt', 'ui_tests/requirements.txt') }}"
                .to_string(),
            format!("harness-images-${{{{ runner.os }}}}-${{{{ runner.arch }}}}-{rev}"),
        ]
    );
    let install = steps(&w["jobs"]["test"])
        .into_iter()
        .find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Install harness"))
        })
        .unwrap();
    assert_eq!(
        run_text(install),
        format!(
            "cargo install --locked --git https://github.com/example/harness --rev {rev} harness"
        )
    );
}

#[test]
fn a_project_in_a_subfolder_runs_there() {
    let mut s = spec(1, false);
    s.workdir = "apps/shop".into();
    let w = parse(&github::workflow(&s));
    for job in ["test", "gate"] {
        assert_eq!(
            w["jobs"][job]["defaults"]["run"]["working-directory"].as_str(),
            Some("apps/shop")
        );
    }
    let w = parse(&github::workflow(&spec(1, false)));
    assert!(w["jobs"]["test"].get("defaults").is_none());
}

#[test]
fn the_zizmor_policy_allows_tag_pins_for_github_actions_only() {
    let p = parse(&github::zizmor_policy());
    let policies = &p["rules"]["unpinned-uses"]["config"]["policies"];
    assert_eq!(policies["actions/*"].as_str(), Some("ref-pin"));
    assert_eq!(policies["*"].as_str(), Some("hash-pin"));
}

#[test]
fn same_spec_same_bytes() {
    assert_eq!(
        github::workflow(&spec(4, true)),
        github::workflow(&spec(4, true))
    );
    assert_ne!(
        github::workflow(&spec(4, false)),
        github::workflow(&spec(3, false))
    );
}

mod from_config {
    use super::*;

    const TOML: &str = "[package]\nsources = []\nentry_point = { from = \"app.py\", to = \"passenger_wsgi.py\" }\n\
        requirements = \"req/server.txt\"\n\
        [targets.webhosting]\nssh = \"deploy@host.example\"\nremote_dir = \"/home/deploy/app\"\nurl = \"https://app.example\"\n";
    const CI: &str = "[ci]\nharness = { git = \"https://github.com/example/harness\", rev = \"0123456789abcdef0123456789abcdef01234567\" }\nshards = 3\n";

    fn project(toml: &str) -> (tempfile::TempDir, Config) {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path().join("apps/shop");
        std::fs::create_dir_all(root.join("req")).unwrap();
        std::fs::write(root.join("req/server.txt"), "-r base.txt\nflask\n").unwrap();
        std::fs::write(root.join("req/base.txt"), "click\n").unwrap();
        std::fs::write(root.join("harness.toml"), toml).unwrap();
        let ok = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(repo.path())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let config = Config::load(&root, None).unwrap();
        (repo, config)
    }

    #[test]
    fn the_spec_follows_includes_and_the_project_folder() {
        let (_repo, config) = project(&format!("{TOML}{CI}"));
        let spec = Spec::of(&config, None).unwrap();
        assert_eq!(spec.shards, 3);
        assert_eq!(spec.workdir, "apps/shop");
        assert_eq!(
            spec.requirement_files,
            [
                "apps/shop/harness.toml",
                "apps/shop/req/server.txt",
                "apps/shop/req/base.txt"
            ]
        );
        assert_eq!(Spec::of(&config, Some(5)).unwrap().shards, 5);
        let e = Spec::of(&config, Some(0)).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        let e = Spec::of(&config, Some(MAX_SHARDS + 1)).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
    }

    #[test]
    fn without_ci_harness_it_says_what_to_add() {
        let (_repo, config) = project(TOML);
        let e = Spec::of(&config, None).unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(e.to_string().contains("[ci] harness is not set"), "{e}");
    }

    #[test]
    fn bad_ci_values_name_the_line() {
        for (bad, what) in [
            (
                "[ci]\nharness = { git = \"git@github.com:x/h\", rev = \"0123456789abcdef0123456789abcdef01234567\" }\n",
                "not an https:// URL",
            ),
            (
                "[ci]\nharness = { git = \"https://github.com/x/h\", rev = \"main\" }\n",
                "not a 40-digit commit",
            ),
            ("[ci]\nshards = 0\n", "out of range"),
            (
                "[ci]\nbranch = \"main; rm -rf /\"\n",
                "not a plain branch name",
            ),
            ("[ci]\nruns_on = \"${{ x }}\"\n", "not a runner label"),
        ] {
            let e = Config::parse(
                "/p".into(),
                "/p/harness.toml".into(),
                format!("{TOML}{bad}"),
            )
            .unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with("/p/harness.toml:10:"), "{text}");
            assert!(text.contains(what), "{text}");
        }
    }

    #[test]
    fn generate_writes_both_files_and_check_finds_them_current_then_stale() {
        let (repo, config) = project(&format!("{TOML}{CI}"));
        let spec = Spec::of(&config, None).unwrap();
        let outputs = Outputs::new(&config, None);
        let top = repo.path().canonicalize().unwrap();
        assert_eq!(
            outputs
                .workflow
                .canonicalize()
                .unwrap_or(outputs.workflow.clone()),
            top.join(".github/workflows/harness.yml")
        );
        assert_eq!(check(&spec, &outputs).len(), 2, "nothing written yet");
        let g = generate(&config, &spec, &outputs).unwrap();
        assert!(g.changed);
        assert!(top.join(".github/zizmor.yml").is_file());
        assert!(g.todo.iter().any(|t| t.contains("trusted_keys")));
        assert!(check(&spec, &outputs).is_empty());
        assert!(!generate(&config, &spec, &outputs).unwrap().changed);
        let other = Spec::of(&config, Some(2)).unwrap();
        let stale = check(&other, &outputs);
        assert_eq!(stale.len(), 1);
        assert!(
            stale[0].diff.contains("-        shard: [1, 2, 3]"),
            "{}",
            stale[0].diff
        );
        assert!(
            stale[0].diff.contains("+        shard: [1, 2]"),
            "{}",
            stale[0].diff
        );
    }

    #[test]
    fn an_output_elsewhere_gets_its_policy_beside_it() {
        let (repo, config) = project(&format!("{TOML}{CI}"));
        let out = repo.path().join("out/pipeline.yml");
        let o = Outputs::new(&config, Some(&out));
        assert_eq!(o.policy, repo.path().join("out/zizmor.yml"));
    }
}

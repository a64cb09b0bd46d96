//! `--help` of harness and of every subcommand, against tests/snapshots/help.txt: a move of code
//! between modules (issue 18) must not change what users read. A deliberate change of the help
//! updates the snapshot with `UPDATE_SNAPSHOTS=1 cargo nextest run --test help_snapshot`, and the
//! diff shows up in review.
use clap::CommandFactory;

fn render(cmd: &mut clap::Command, path: &str, out: &mut String) {
    let help = without_env_values(&cmd.render_long_help().to_string());
    out.push_str(&format!("===== {path} --help\n{}\n", help.trim_end()));
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    for name in names {
        let sub = cmd.find_subcommand_mut(&name).expect("listed subcommand");
        render(sub, &format!("{path} {name}"), out);
    }
}

/// clap shows an `env`-backed flag's current value (`[env: NAME=value]`); the snapshot must not
/// depend on the shell it runs in.
fn without_env_values(help: &str) -> String {
    let mut out = String::new();
    let mut rest = help;
    while let Some(i) = rest.find("[env: ") {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let end = tail.find(']').map_or(tail.len(), |e| e + 1);
        let item = &tail[..end];
        match item.split_once('=') {
            Some((name, _)) => {
                out.push_str(name);
                out.push_str("=]");
            }
            None => out.push_str(item),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn help_of_every_command_matches_the_snapshot() {
    let mut cmd = harness::cli::Cli::command().term_width(100);
    cmd.build();
    let mut got = String::new();
    render(&mut cmd, "harness", &mut got);
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/help.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&file, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&file).unwrap_or_default();
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "--help changed from {} at line {} (UPDATE_SNAPSHOTS=1 rewrites it on purpose):\n got: {:?}\nwant: {:?}",
            file.display(),
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
}

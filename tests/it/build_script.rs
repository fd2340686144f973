//! scripts/build.sh skips the release build when no input changed since its last successful build.
//! Run on a copy of the script in a small tree, with a stand-in `cargo` that records each build.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

/// The stand-in: `cargo leptos --version`, and `cargo leptos build --release`, which writes the
/// outputs and counts itself in `builds`, or fails while the file `fail` exists.
const FAKE_CARGO: &str = r#"#!/usr/bin/env bash
set -eu
case "$*" in
  "leptos --version") echo "cargo-leptos 0.3.10" ;;
  "leptos build --release")
    echo build >>builds
    [ -e fail ] && exit 1
    mkdir -p target/release target/site/pkg
    for f in target/release/llm-bridge target/site/pkg/llm-bridge.js target/site/pkg/llm-bridge.wasm target/site/pkg/llm-bridge.css; do
      echo "$RANDOM" >"$f"
    done ;;
  *) echo "unexpected: cargo $*" >&2; exit 2 ;;
esac
"#;

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let script =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build.sh")).unwrap();
    write(root, "scripts/build.sh", &script);
    write(root, "tools/node_modules/.bin/cargo", FAKE_CARGO);
    for exe in ["scripts/build.sh", "tools/node_modules/.bin/cargo"] {
        fs::set_permissions(root.join(exe), fs::Permissions::from_mode(0o755)).unwrap();
    }
    write(root, "src/lib.rs", "pub fn a() {}\n");
    write(root, "src/app/mod.rs", "pub fn b() {}\n");
    write(root, "style/main.css", "body {}\n");
    write(root, "public/favicon.svg", "<svg/>\n");
    write(root, "Cargo.toml", "[package]\nname = \"x\"\n");
    write(root, "Cargo.lock", "version = 4\n");
    write(root, "tools/package.json", "{}\n");
    write(root, "tools/package-lock.json", "{}\n");
    dir
}

/// Runs the script; returns whether it succeeded and how many builds have run so far.
fn run(root: &Path, env: &[(&str, &str)]) -> (bool, usize) {
    let mut cmd = Command::new(root.join("scripts/build.sh"));
    cmd.current_dir(root)
        .env_remove("LLM_BRIDGE_FORCE_BUILD")
        .env_remove("RUSTFLAGS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let builds = fs::read_to_string(root.join("builds")).map_or(0, |s| s.lines().count());
    (out.status.success(), builds)
}

#[test]
fn builds_only_when_an_input_changed() {
    let dir = tree();
    let root = dir.path();
    assert_eq!(run(root, &[]), (true, 1), "first build");
    assert_eq!(run(root, &[]), (true, 1), "nothing changed: skipped");

    // Same content, newer time: still nothing to do.
    let lib = fs::File::options()
        .write(true)
        .open(root.join("src/lib.rs"))
        .unwrap();
    lib.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    assert_eq!(run(root, &[]), (true, 1), "touched only");

    write(root, "src/app/mod.rs", "pub fn b() { }\n");
    assert_eq!(run(root, &[]), (true, 2), "a source changed");
    assert_eq!(run(root, &[]), (true, 2));

    write(root, "public/robots.txt", "\n");
    assert_eq!(run(root, &[]), (true, 3), "an asset was added");
    fs::remove_file(root.join("public/robots.txt")).unwrap();
    assert_eq!(run(root, &[]), (true, 4), "an asset was removed");

    write(root, "Cargo.lock", "version = 4\n# changed\n");
    assert_eq!(run(root, &[]), (true, 5), "the lock file changed");

    fs::remove_file(root.join("target/site/pkg/llm-bridge.wasm")).unwrap();
    assert_eq!(run(root, &[]), (true, 6), "an output is missing");

    // The server rebuilt by something else after the stamp: build again.
    let bin = fs::File::options()
        .write(true)
        .open(root.join("target/release/llm-bridge"))
        .unwrap();
    bin.set_modified(SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        run(root, &[]),
        (true, 7),
        "an output is newer than the last build"
    );

    assert_eq!(
        run(root, &[("RUSTFLAGS", "-Ctarget-cpu=native")]),
        (true, 8),
        "RUSTFLAGS"
    );
    // Forced, and with RUSTFLAGS unset again: the stamp is that build's.
    assert_eq!(
        run(root, &[("LLM_BRIDGE_FORCE_BUILD", "1")]),
        (true, 9),
        "forced"
    );
    assert_eq!(run(root, &[]), (true, 9), "the forced build counts");
    assert_eq!(
        run(root, &[("RUSTFLAGS", "-Ctarget-cpu=native")]),
        (true, 10),
        "RUSTFLAGS again"
    );
}

#[test]
fn a_failed_build_is_not_taken_for_a_finished_one() {
    let dir = tree();
    let root = dir.path();
    assert_eq!(run(root, &[]), (true, 1));
    write(root, "style/main.css", "body { color: red }\n");
    write(root, "fail", "");
    assert_eq!(run(root, &[]), (false, 2), "the build fails");
    fs::remove_file(root.join("fail")).unwrap();
    assert_eq!(run(root, &[]), (true, 3), "and runs again next time");
    assert_eq!(run(root, &[]), (true, 3));

    // A failure with unchanged inputs (e.g. a tool broke) does not leave an old stamp behind.
    write(root, "fail", "");
    assert_eq!(run(root, &[("LLM_BRIDGE_FORCE_BUILD", "1")]), (false, 4));
    fs::remove_file(root.join("fail")).unwrap();
    assert_eq!(run(root, &[]), (true, 5));
}

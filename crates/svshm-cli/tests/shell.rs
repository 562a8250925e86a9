//! `svshm completions` and `svshm man`: generated from the command-line
//! definition, non-empty, naming the subcommands; bash loads its completion.

mod common;

use common::*;

const SOME_COMMANDS: &[&str] = &[
    "ipcs", "lsipc", "ipcrm", "ipcmk", "read", "write", "create", "gc",
];

#[test]
fn completions_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let text = stdout_of(&["completions", shell]);
        assert!(text.len() > 1000, "{shell}: only {} bytes", text.len());
        for cmd in SOME_COMMANDS {
            assert!(text.contains(cmd), "{shell} completion lacks {cmd}");
        }
        assert!(
            text.contains("--peek") || text.contains("peek"),
            "{shell}: no options"
        );
    }
    let out = svshm().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bash_loads_the_completion() {
    let Ok(probe) = std::process::Command::new("bash").arg("--version").output() else {
        eprintln!("skipped: bash is not installed");
        return;
    };
    assert!(probe.status.success());
    let s = svshm_path();
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "source <('{}' completions bash) && complete -p svshm",
                s.display()
            ),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.starts_with("complete ") && text.trim_end().ends_with(" svshm"),
        "{text}"
    );
}

#[test]
fn man_page_is_roff_naming_the_subcommands() {
    let text = stdout_of(&["man"]);
    assert!(
        text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH svshm"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(text.contains(".TH svshm"), "no title");
    for cmd in SOME_COMMANDS {
        assert!(text.contains(cmd), "man page lacks {cmd}");
    }
}

#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let dir = std::env::temp_dir().join(unique_name("man"));
    let out = svshm().args(["man", "--dir"]).arg(&dir).output().unwrap();
    let pages: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}");
    for want in [
        "svshm.1",
        "svshm-ipcrm.1",
        "svshm-ipcmk.1",
        "svshm-read.1",
        "svshm-completions.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want} not in {pages:?}");
    }
    assert!(
        !pages.iter().any(|p| p.contains("demo-sink")),
        "hidden command got a page: {pages:?}"
    );
}

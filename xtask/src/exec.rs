//! Running host commands so that a failure says which command failed, how,
//! and (when its output was captured) what it printed.

use crate::artifacts::Paths;
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// What to do with a command's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// Let it print to the terminal as it runs.
    Live,
    /// Capture it, and show it only in the error if the command fails.
    OnFailure,
}

/// A `cargo` command (the one running xtask) in the workspace root, with the
/// target directory pinned to [`Paths::target`] whatever the current directory.
pub fn cargo(paths: &Paths) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .current_dir(&paths.workspace)
        .env("CARGO_TARGET_DIR", &paths.target);
    command
}

/// Runs `command` to completion; fails unless it exits with status 0.
pub fn run(command: &mut Command, echo: Echo) -> Result<()> {
    match echo {
        Echo::Live => {
            let status = command
                .stdin(Stdio::null())
                .status()
                .with_context(|| format!("cannot start `{}`", describe(command)))?;
            if !status.success() {
                bail!("`{}` failed ({status})", describe(command));
            }
            Ok(())
        }
        Echo::OnFailure => {
            let output = capture(command)?;
            if !output.status.success() {
                bail!(
                    "`{}` failed ({})\n{}",
                    describe(command),
                    output.status,
                    combined_output(&output)
                );
            }
            Ok(())
        }
    }
}

/// Runs `command` to completion and returns its status and output, whatever the status.
pub fn capture(command: &mut Command) -> Result<Output> {
    command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{}`", describe(command)))
}

/// A command's stdout then stderr, as text.
pub fn combined_output(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

/// The command as a shell line, for messages.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| {
            let word = word.to_string_lossy();
            if word.is_empty() || word.contains(char::is_whitespace) {
                format!("{word:?}")
            } else {
                word.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The path of executable `name` on `$PATH`, like the shell's `command -v`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_quotes_words_with_spaces() {
        let mut command = Command::new("qemu-system-x86_64");
        command.args(["-append", "qemu-exit verbose", "-s", ""]);
        assert_eq!(
            describe(&command),
            "qemu-system-x86_64 -append \"qemu-exit verbose\" -s \"\""
        );
    }

    #[test]
    fn finds_a_shell_on_the_path() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("no-such-program-anywhere").is_none());
    }

    #[test]
    fn a_failing_command_reports_its_output() {
        let error = run(
            Command::new("sh").args(["-c", "echo oops >&2; exit 3"]),
            Echo::OnFailure,
        )
        .expect_err("exit 3");
        let message = format!("{error:#}");
        assert!(message.contains("oops"), "{message}");
        assert!(message.contains("exit status: 3"), "{message}");
    }
}

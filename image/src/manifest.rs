//! The system manifest, `image/system.toml`: which programs the boot image
//! carries and how procman starts them. It travels inside the boot archive as
//! [`MANIFEST_ENTRY`], so procman reads exactly the text
//! that was checked here.
//!
//! Parsing happens in two steps: `toml` and `serde` decode the text into the
//! raw tables (unknown keys are refused), then [`Manifest::parse`] checks the
//! rules that span several values (valid, unique archive names). Every error
//! names the line it is about. Security-policy tables will join as further
//! fields of [`Manifest`].

use crate::MANIFEST_ENTRY;
use crate::format::{self, NameError};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// A parsed and checked system manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The `[system]` table.
    pub system: System,
    /// The `[[program]]` tables, in file order.
    pub programs: Vec<Program>,
}

/// The `[system]` table: facts about the whole image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct System {
    /// The system's name (`name = "hinge"`).
    pub name: String,
}

/// One `[[program]]` table: a user program that the boot archive carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The program's entry name in the boot archive.
    pub name: String,
    /// The cargo package whose binary (of the same name) is the program's ELF.
    pub package: String,
    /// The program's arguments.
    pub args: Vec<String>,
    /// The security domain procman runs it in.
    pub domain: String,
}

/// Where a manifest error is, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The line number.
    pub line: usize,
    /// The column, in characters.
    pub column: usize,
}

/// Why a manifest was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// The position of the offending text, when known.
    pub location: Option<Location>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(Location { line, column }) => {
                write!(f, "line {line}, column {column}: {}", self.reason)
            }
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    /// Parses and checks the text of a system manifest.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|error| ManifestError {
            location: error.span().map(|span| location_of(text, span.start)),
            reason: error.message().trim_end().to_owned(),
        })?;
        let at = |span: Range<usize>, reason: String| ManifestError {
            location: Some(location_of(text, span.start)),
            reason,
        };

        let mut programs: Vec<Program> = Vec::with_capacity(raw.program.len());
        for program in raw.program {
            let name_span = program.name.span();
            let name = program.name.into_inner();
            if let Err(reason) = format::validate_name(&name) {
                return Err(at(name_span, invalid_name(&name, reason)));
            }
            if name == MANIFEST_ENTRY {
                return Err(at(
                    name_span,
                    format!("program name {name:?} is reserved for the manifest itself"),
                ));
            }
            if programs.iter().any(|earlier| earlier.name == name) {
                return Err(at(
                    name_span,
                    format!("program name {name:?} is used twice"),
                ));
            }
            let package_span = program.package.span();
            let package = program.package.into_inner();
            if package.is_empty() {
                return Err(at(package_span, "program package is empty".to_owned()));
            }
            programs.push(Program {
                name,
                package,
                args: program.args,
                domain: program.domain,
            });
        }

        let system_name_span = raw.system.name.span();
        let system_name = raw.system.name.into_inner();
        if system_name.is_empty() {
            return Err(at(system_name_span, "system name is empty".to_owned()));
        }
        Ok(Self {
            system: System { name: system_name },
            programs,
        })
    }
}

fn invalid_name(name: &str, reason: NameError) -> String {
    format!("program name {name:?} cannot be a boot archive entry: {reason}")
}

/// The 1-based line and column of byte `offset` of `text`.
fn location_of(text: &str, offset: usize) -> Location {
    let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    let line_start = before
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |newline| newline + 1);
    let line_so_far = before.get(line_start..).unwrap_or_default();
    Location {
        line: before.iter().filter(|&&byte| byte == b'\n').count() + 1,
        column: String::from_utf8_lossy(line_so_far).chars().count() + 1,
    }
}

/// The manifest as written, before the checks that span several values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    system: RawSystem,
    #[serde(default)]
    program: Vec<RawProgram>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    name: Spanned<String>,
    package: Spanned<String>,
    #[serde(default)]
    args: Vec<String>,
    domain: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> ManifestError {
        Manifest::parse(text).expect_err("the manifest is malformed")
    }

    #[test]
    fn the_committed_manifest_parses() {
        let manifest = Manifest::parse(include_str!("../system.toml")).expect("system.toml");
        assert_eq!(manifest.system.name, "hinge");
    }

    #[test]
    fn parses_programs_with_default_args() {
        let manifest = Manifest::parse(
            r#"
[system]
name = "test"

[[program]]
name = "echo"
package = "echo-server"
domain = "servers"

[[program]]
name = "shell"
package = "shell"
args = ["-i", "--quiet"]
domain = "users"
"#,
        )
        .expect("well-formed");
        assert_eq!(
            manifest.programs,
            [
                Program {
                    name: "echo".into(),
                    package: "echo-server".into(),
                    args: vec![],
                    domain: "servers".into(),
                },
                Program {
                    name: "shell".into(),
                    package: "shell".into(),
                    args: vec!["-i".into(), "--quiet".into()],
                    domain: "users".into(),
                },
            ]
        );
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let error = error_of("[system]\nname = \"hinge\"\n\n[[program]\nname = \"x\"\n");
        assert_eq!(error.location.map(|l| l.line), Some(4), "{error}");
        assert!(error.to_string().starts_with("line 4, column "), "{error}");
    }

    #[test]
    fn an_unknown_key_is_refused_on_its_line() {
        let error = error_of("[system]\nname = \"hinge\"\ncolour = \"blue\"\n");
        assert_eq!(error.location.map(|l| l.line), Some(3), "{error}");
        assert!(error.reason.contains("colour"), "{error}");
    }

    #[test]
    fn a_missing_key_is_reported() {
        let error =
            error_of("[system]\nname = \"hinge\"\n[[program]]\nname = \"x\"\ndomain = \"d\"\n");
        assert!(error.reason.contains("package"), "{error}");
    }

    #[test]
    fn a_wrong_type_names_its_line() {
        let error = error_of("[system]\nname = 7\n");
        assert_eq!(error.location.map(|l| l.line), Some(2), "{error}");
    }

    #[test]
    fn duplicate_program_names_are_refused_at_the_second() {
        let program = "[[program]]\nname = \"x\"\npackage = \"p\"\ndomain = \"d\"\n";
        let error = error_of(&format!("[system]\nname = \"hinge\"\n{program}{program}"));
        assert_eq!(
            error.location,
            Some(Location { line: 8, column: 8 }),
            "{error}"
        );
        assert!(error.reason.contains("used twice"), "{error}");
    }

    #[test]
    fn program_names_must_be_archive_names() {
        let long = "x".repeat(format::NAME_CAPACITY + 1);
        let error = error_of(&format!(
            "[system]\nname = \"hinge\"\n[[program]]\nname = \"{long}\"\npackage = \"p\"\ndomain = \"d\"\n"
        ));
        assert_eq!(error.location.map(|l| l.line), Some(4), "{error}");
        let error = error_of(
            "[system]\nname = \"hinge\"\n[[program]]\nname = \"system.toml\"\npackage = \"p\"\ndomain = \"d\"\n",
        );
        assert!(error.reason.contains("reserved"), "{error}");
    }

    #[test]
    fn locations_count_lines_and_characters() {
        assert_eq!(location_of("ab\ncé\nx", 0), Location { line: 1, column: 1 });
        assert_eq!(location_of("ab\ncé\nx", 3), Location { line: 2, column: 1 });
        assert_eq!(location_of("ab\ncé\nx", 7), Location { line: 3, column: 1 });
        assert_eq!(location_of("ab\ncé\nx", 6), Location { line: 2, column: 3 });
    }
}

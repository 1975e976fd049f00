//! The system manifest, `image/system.toml`: which programs the boot image
//! carries, how procman starts them, and the security policy procman
//! enforces (seed 004, "IPC basic model": who may create IPC objects and
//! *system* IPC objects, under which names, of which security types, and
//! which types each domain may open). It travels inside the boot archive
//! twice: as text ([`MANIFEST_ENTRY`], for humans) and compiled
//! ([`POLICY_ENTRY`], see [`crate::policy`]), which is
//! what procman reads.
//!
//! Parsing happens in two steps: `toml` and `serde` decode the text into the
//! raw tables (unknown keys are refused), then [`Manifest::parse`] checks the
//! rules that span several values. Every error names the line it is about.
//!
//! The rules:
//! - `[system] name` is non-empty; `types` are non-empty and unique, at most
//!   [`MAX_TYPES`]; a type's number is its index in `types` plus one.
//! - `[[domain]]` names are non-empty and unique, at most [`MAX_DOMAINS`];
//!   `create_system_objects = true` needs `create_objects = true` (seed 004
//!   checks both); every `register` prefix starts with `/`, at most
//!   [`MAX_PREFIXES_PER_DOMAIN`] of them; every `create_types` and
//!   `open_types` entry is a type of `[system] types`; every `spawn` entry is
//!   a program's name; every `portal_classes` entry is a portal class
//!   (`share`, `direct`, `anon`, `cow`, `special`); no list names the same
//!   thing twice.
//! - a domain's `io_ports` entries are `"FIRST-LAST"` or `"PORT"` (hex with
//!   `0x`, or decimal), `FIRST <= LAST <= 0xFFFF`, no two overlapping; its
//!   `irqs` are ISA lines 0..=15, none twice; together at most
//!   [`MAX_DEVICES_PER_DOMAIN`] entries (procman grants them on request,
//!   ABI.md §7a.4).
//! - `[[program]]` names are valid archive entry names, unique, not one of
//!   the manifest's own entry names, at most [`MAX_PROGRAMS`]; `package` is
//!   non-empty; `domain` is a `[[domain]]`'s name; no argument contains a NUL
//!   byte (the compiled form ends each argument with one).

use crate::format::{self, NameError};
use crate::{MANIFEST_ENTRY, POLICY_ENTRY};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// The most security types a manifest may declare (type numbers are 1..=255).
pub const MAX_TYPES: usize = 255;
/// The most security domains a manifest may declare.
pub const MAX_DOMAINS: usize = 64;
/// The most programs a manifest may list.
pub const MAX_PROGRAMS: usize = 255;
/// The most name prefixes one domain may register.
pub const MAX_PREFIXES_PER_DOMAIN: usize = 255;
/// The most `io_ports` and `irqs` entries one domain may have together.
pub const MAX_DEVICES_PER_DOMAIN: usize = 255;
/// The highest interrupt line `irqs` may name.
pub const MAX_IRQ: u8 = 15;
/// The longest manifest text accepted, so that every offset of the compiled
/// form fits its 32-bit field.
pub const MAX_TEXT_SIZE: usize = 16 << 20;

/// A parsed and checked system manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The `[system]` table.
    pub system: System,
    /// The `[[domain]]` tables, in file order (a domain's index is its place here).
    pub domains: Vec<Domain>,
    /// The `[[program]]` tables, in file order.
    pub programs: Vec<Program>,
}

/// The `[system]` table: facts about the whole image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct System {
    /// The system's name (`name = "hinge"`).
    pub name: String,
    /// The security types of IPC objects; type number = index + 1.
    pub types: Vec<String>,
}

/// One `[[domain]]` table: a security domain and what its processes may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Domain {
    /// The domain's name, which `[[program]] domain` refers to.
    pub name: String,
    /// May create IPC objects at all.
    pub create_objects: bool,
    /// May create *system* IPC objects (`SYSTEM_BASE` functions).
    pub create_system_objects: bool,
    /// Name prefixes it may register: a name must start with one of them.
    pub register: Vec<String>,
    /// Security types it may give the objects it creates.
    pub create_types: Vec<String>,
    /// Security types of the objects it may open.
    pub open_types: Vec<String>,
    /// Programs (by archive name) it may ask procman to spawn.
    pub spawn: Vec<String>,
    /// The memory-portal classes it may ask procman for (`portal_classes`:
    /// "share", "direct", "anon", "cow", "special").
    pub portal_classes: abi::portal::PortalClass,
    /// The I/O port ranges its processes may ask procman for (`io_ports`).
    pub io_ports: Vec<PortRange>,
    /// The interrupt lines its processes may ask procman for (`irqs`).
    pub irqs: Vec<u8>,
}

/// An inclusive range of I/O ports (`"0x3f8-0x3ff"`, or one port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// The first port of the range.
    pub first: u16,
    /// The last port of the range (at least `first`).
    pub last: u16,
}

impl PortRange {
    /// Reads `"FIRST-LAST"` or `"PORT"`, each number hex with `0x` or decimal.
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = |part: &str| {
            let part = part.trim();
            let parsed = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                Some(hex) => u16::from_str_radix(hex, 16),
                None => part.parse::<u16>(),
            };
            parsed.map_err(|_| {
                format!("io_ports entry {text:?}: {part:?} is not a port number (0..=0xFFFF)")
            })
        };
        let (first, last) = match text.split_once('-') {
            Some((first, last)) => (number(first)?, number(last)?),
            None => {
                let port = number(text)?;
                (port, port)
            }
        };
        if first > last {
            return Err(format!("io_ports entry {text:?} ends before it starts"));
        }
        Ok(PortRange { first, last })
    }

    /// Whether the two ranges share a port.
    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
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
    /// Whether procman starts it at boot (`start = true`; default false).
    pub start: bool,
}

impl Manifest {
    /// The number of security type `name` (its index in `[system] types`
    /// plus one), if it is declared.
    pub fn type_number(&self, name: &str) -> Option<u32> {
        let index = self.system.types.iter().position(|t| t == name)?;
        u32::try_from(index + 1).ok()
    }

    /// The index of domain `name`, if it is declared.
    pub fn domain_index(&self, name: &str) -> Option<usize> {
        self.domains.iter().position(|domain| domain.name == name)
    }

    /// The index of program `name`, if it is listed.
    pub fn program_index(&self, name: &str) -> Option<usize> {
        self.programs
            .iter()
            .position(|program| program.name == name)
    }
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
        if text.len() > MAX_TEXT_SIZE {
            return Err(ManifestError {
                location: None,
                reason: format!(
                    "the manifest is {} bytes long, more than the {MAX_TEXT_SIZE} allowed",
                    text.len()
                ),
            });
        }
        let raw: RawManifest = toml::from_str(text).map_err(|error| ManifestError {
            location: error.span().map(|span| location_of(text, span.start)),
            reason: error.message().trim_end().to_owned(),
        })?;
        Checker { text }.check(raw)
    }
}

/// Turns the raw tables into a [`Manifest`], checking every rule; its errors
/// carry the line of the value they are about.
struct Checker<'t> {
    text: &'t str,
}

impl Checker<'_> {
    fn error(&self, span: Range<usize>, reason: String) -> ManifestError {
        ManifestError {
            location: Some(location_of(self.text, span.start)),
            reason,
        }
    }

    fn check(&self, raw: RawManifest) -> Result<Manifest, ManifestError> {
        let system = self.check_system(raw.system)?;

        let mut domains: Vec<Domain> = Vec::with_capacity(raw.domain.len());
        // The spawn lists are checked once every program is known.
        let mut spawn_lists = Vec::with_capacity(raw.domain.len());
        for domain in raw.domain {
            let name_span = domain.name.span();
            if domains.len() == MAX_DOMAINS {
                return Err(self.error(
                    name_span,
                    format!("more than {MAX_DOMAINS} domains are declared"),
                ));
            }
            let (checked, spawn) = self.check_domain(domain, &system.types)?;
            if domains.iter().any(|earlier| earlier.name == checked.name) {
                return Err(self.error(
                    name_span,
                    format!("domain name {:?} is used twice", checked.name),
                ));
            }
            domains.push(checked);
            spawn_lists.push(spawn);
        }

        let mut programs: Vec<Program> = Vec::with_capacity(raw.program.len());
        for program in raw.program {
            let name_span = program.name.span();
            if programs.len() == MAX_PROGRAMS {
                return Err(self.error(
                    name_span,
                    format!("more than {MAX_PROGRAMS} programs are listed"),
                ));
            }
            let checked = self.check_program(program, &domains)?;
            if programs.iter().any(|earlier| earlier.name == checked.name) {
                return Err(self.error(
                    name_span,
                    format!("program name {:?} is used twice", checked.name),
                ));
            }
            programs.push(checked);
        }

        for (domain, spawn) in domains.iter_mut().zip(spawn_lists) {
            domain.spawn = self.check_list(spawn, "spawn", |entry| {
                if programs.iter().any(|program| program.name == entry) {
                    Ok(())
                } else {
                    Err(format!(
                        "spawn names {entry:?}, which is not a [[program]] of this manifest"
                    ))
                }
            })?;
        }

        Ok(Manifest {
            system,
            domains,
            programs,
        })
    }

    fn check_system(&self, raw: RawSystem) -> Result<System, ManifestError> {
        let name_span = raw.name.span();
        let name = raw.name.into_inner();
        if name.is_empty() {
            return Err(self.error(name_span, "system name is empty".to_owned()));
        }
        if raw.types.len() > MAX_TYPES {
            let span = raw.types[MAX_TYPES].span();
            return Err(self.error(
                span,
                format!("more than {MAX_TYPES} security types are declared"),
            ));
        }
        let types = self.check_list(raw.types, "types", |entry| {
            if entry.is_empty() {
                Err("a security type's name is empty".to_owned())
            } else {
                Ok(())
            }
        })?;
        Ok(System { name, types })
    }

    /// Checks one domain; its `spawn` list comes back unchecked.
    fn check_domain(
        &self,
        raw: RawDomain,
        types: &[String],
    ) -> Result<(Domain, Vec<Spanned<String>>), ManifestError> {
        let name_span = raw.name.span();
        let name = raw.name.into_inner();
        if name.is_empty() {
            return Err(self.error(name_span, "domain name is empty".to_owned()));
        }
        let create_system_objects = match raw.create_system_objects {
            Some(flag) if *flag.get_ref() && !raw.create_objects => {
                return Err(self.error(
                    flag.span(),
                    format!(
                        "domain {name:?} has create_system_objects = true but not \
                         create_objects = true (a system object is an IPC object too)"
                    ),
                ));
            }
            Some(flag) => flag.into_inner(),
            None => false,
        };
        if raw.register.len() > MAX_PREFIXES_PER_DOMAIN {
            let span = raw.register[MAX_PREFIXES_PER_DOMAIN].span();
            return Err(self.error(
                span,
                format!("domain {name:?} registers more than {MAX_PREFIXES_PER_DOMAIN} prefixes"),
            ));
        }
        let register = self.check_list(raw.register, "register", |prefix| {
            if prefix.starts_with('/') {
                Ok(())
            } else {
                Err(format!(
                    "register prefix {prefix:?} does not start with '/'"
                ))
            }
        })?;
        let known_type = |field: &str| {
            let field = field.to_owned();
            move |entry: &str| {
                if types.iter().any(|t| t == entry) {
                    Ok(())
                } else {
                    Err(format!(
                        "{field} names {entry:?}, which is not one of [system] types"
                    ))
                }
            }
        };
        let create_types =
            self.check_list(raw.create_types, "create_types", known_type("create_types"))?;
        let open_types = self.check_list(raw.open_types, "open_types", known_type("open_types"))?;
        let class_names = self.check_list(raw.portal_classes, "portal_classes", |entry| {
            abi::portal::PortalClass::from_name(entry)
                .map(|_| ())
                .ok_or_else(|| {
                    format!(
                        "portal_classes names {entry:?}, which is not a portal class \
                     (share, direct, anon, cow, special)"
                    )
                })
        })?;
        let portal_classes = class_names
            .iter()
            .filter_map(|name| abi::portal::PortalClass::from_name(name))
            .fold(abi::portal::PortalClass(0), abi::portal::PortalClass::with);
        let (io_ports, irqs) = self.check_devices(&name, raw.io_ports, raw.irqs)?;
        Ok((
            Domain {
                name,
                create_objects: raw.create_objects,
                create_system_objects,
                register,
                create_types,
                open_types,
                spawn: Vec::new(),
                portal_classes,
                io_ports,
                irqs,
            },
            raw.spawn,
        ))
    }

    /// Checks a domain's `io_ports` and `irqs`.
    fn check_devices(
        &self,
        domain: &str,
        raw_ports: Vec<Spanned<String>>,
        raw_irqs: Vec<Spanned<i64>>,
    ) -> Result<(Vec<PortRange>, Vec<u8>), ManifestError> {
        let mut io_ports: Vec<PortRange> = Vec::with_capacity(raw_ports.len());
        let mut irqs: Vec<u8> = Vec::with_capacity(raw_irqs.len());
        let mut entries = 0usize;
        let mut count = |span: Range<usize>| {
            entries += 1;
            if entries > MAX_DEVICES_PER_DOMAIN {
                Err(self.error(
                    span,
                    format!(
                        "domain {domain:?} has more than {MAX_DEVICES_PER_DOMAIN} \
                         io_ports and irqs entries"
                    ),
                ))
            } else {
                Ok(())
            }
        };
        for entry in raw_ports {
            let span = entry.span();
            count(span.clone())?;
            let range =
                PortRange::parse(entry.get_ref()).map_err(|r| self.error(span.clone(), r))?;
            if let Some(earlier) = io_ports.iter().find(|earlier| earlier.overlaps(&range)) {
                return Err(self.error(
                    span,
                    format!(
                        "io_ports entry {:?} overlaps the earlier {:#x}-{:#x}",
                        entry.get_ref(),
                        earlier.first,
                        earlier.last
                    ),
                ));
            }
            io_ports.push(range);
        }
        for entry in raw_irqs {
            let span = entry.span();
            count(span.clone())?;
            let line = match u8::try_from(*entry.get_ref()) {
                Ok(line) if line <= MAX_IRQ => line,
                _ => {
                    return Err(self.error(
                        span,
                        format!(
                            "irqs names {}, which is not an ISA interrupt line (0..={MAX_IRQ})",
                            entry.get_ref()
                        ),
                    ));
                }
            };
            if irqs.contains(&line) {
                return Err(self.error(span, format!("irqs lists {line} twice")));
            }
            irqs.push(line);
        }
        Ok((io_ports, irqs))
    }

    fn check_program(&self, raw: RawProgram, domains: &[Domain]) -> Result<Program, ManifestError> {
        let name_span = raw.name.span();
        let name = raw.name.into_inner();
        if let Err(reason) = format::validate_name(&name) {
            return Err(self.error(name_span, invalid_name(&name, reason)));
        }
        if name == MANIFEST_ENTRY || name == POLICY_ENTRY {
            return Err(self.error(
                name_span,
                format!("program name {name:?} is reserved for the manifest itself"),
            ));
        }
        let package_span = raw.package.span();
        let package = raw.package.into_inner();
        if package.is_empty() {
            return Err(self.error(package_span, "program package is empty".to_owned()));
        }
        let domain_span = raw.domain.span();
        let domain = raw.domain.into_inner();
        if !domains.iter().any(|known| known.name == domain) {
            return Err(self.error(
                domain_span,
                format!("program {name:?} is in domain {domain:?}, which is not a [[domain]]"),
            ));
        }
        let mut args = Vec::with_capacity(raw.args.len());
        for arg in raw.args {
            if arg.get_ref().contains('\0') {
                return Err(self.error(
                    arg.span(),
                    format!("an argument of program {name:?} contains a NUL byte"),
                ));
            }
            args.push(arg.into_inner());
        }
        Ok(Program {
            name,
            package,
            args,
            domain,
            start: raw.start,
        })
    }

    /// Checks each entry of list `field` with `rule`, and that no entry
    /// appears twice; the error points at the offending entry.
    fn check_list(
        &self,
        list: Vec<Spanned<String>>,
        field: &str,
        rule: impl Fn(&str) -> Result<(), String>,
    ) -> Result<Vec<String>, ManifestError> {
        let mut checked: Vec<String> = Vec::with_capacity(list.len());
        for entry in list {
            let span = entry.span();
            let entry = entry.into_inner();
            rule(&entry).map_err(|reason| self.error(span.clone(), reason))?;
            if checked.contains(&entry) {
                return Err(self.error(span, format!("{field} lists {entry:?} twice")));
            }
            checked.push(entry);
        }
        Ok(checked)
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
    domain: Vec<RawDomain>,
    #[serde(default)]
    program: Vec<RawProgram>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    name: Spanned<String>,
    #[serde(default)]
    types: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: Spanned<String>,
    #[serde(default)]
    create_objects: bool,
    #[serde(default)]
    create_system_objects: Option<Spanned<bool>>,
    #[serde(default)]
    register: Vec<Spanned<String>>,
    #[serde(default)]
    create_types: Vec<Spanned<String>>,
    #[serde(default)]
    open_types: Vec<Spanned<String>>,
    #[serde(default)]
    spawn: Vec<Spanned<String>>,
    #[serde(default)]
    portal_classes: Vec<Spanned<String>>,
    #[serde(default)]
    io_ports: Vec<Spanned<String>>,
    #[serde(default)]
    irqs: Vec<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    name: Spanned<String>,
    package: Spanned<String>,
    #[serde(default)]
    args: Vec<Spanned<String>>,
    domain: Spanned<String>,
    #[serde(default)]
    start: bool,
}

#[cfg(test)]
mod tests;

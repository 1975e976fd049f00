//! The security policy from the system manifest, and every check procman
//! makes with it. Each check is a pure function of the policy, the caller's
//! domain and the request, so each rule is tested here, allowed and refused.

use abi::procman::ProcmanError;
use alloc::string::String;
use alloc::vec::Vec;

use crate::namespace::{Namespace, check_name};

/// A security domain: what the processes running in it may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Domain {
    /// Its name in the manifest.
    pub name: String,
    /// May create IPC objects at all.
    pub create_objects: bool,
    /// May create system objects.
    pub create_system_objects: bool,
    /// Name prefixes it may register.
    pub register: Vec<String>,
    /// Security types (numbers, from 1) it may give objects it creates.
    pub create_types: Vec<u32>,
    /// Security types of objects it may open.
    pub open_types: Vec<u32>,
    /// Programs it may spawn (indices into [`Policy::programs`]).
    pub spawn: Vec<usize>,
}

/// A program of the boot archive that procman may start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    /// Its boot-archive name.
    pub name: String,
    /// The domain it runs in (index into [`Policy::domains`]).
    pub domain: usize,
    /// Its argument bytes.
    pub arguments: Vec<u8>,
    /// Started by procman at boot.
    pub start: bool,
}

/// The whole policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Security type names; type number `n` is `types[n - 1]`.
    pub types: Vec<String>,
    /// The domains.
    pub domains: Vec<Domain>,
    /// The programs.
    pub programs: Vec<Program>,
}

/// A CREATE_OBJECT request as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateRequest<'a> {
    /// A system object (SYSTEM_BASE) rather than a user one.
    pub system: bool,
    /// The name to register, if any.
    pub name: Option<&'a str>,
    /// The security type asked for.
    pub security_type: u32,
}

impl Policy {
    /// The domain at `index`.
    pub fn domain(&self, index: usize) -> Result<&Domain, ProcmanError> {
        self.domains.get(index).ok_or(ProcmanError::UnknownCaller)
    }

    /// The program called `name`, with its index.
    pub fn program(&self, name: &str) -> Result<(usize, &Program), ProcmanError> {
        self.programs
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == name)
            .ok_or(ProcmanError::NoSuchProgram)
    }

    /// The checks of seed 004, in its order: the domain may create IPC
    /// objects; may create a system object if one is asked for; may register
    /// the name; the name is free; the security type is one it may give.
    pub fn check_create(
        &self,
        domain: usize,
        request: CreateRequest<'_>,
        namespace: &Namespace,
    ) -> Result<(), ProcmanError> {
        let d = self.domain(domain)?;
        if !d.create_objects {
            return Err(ProcmanError::CreateDenied);
        }
        if request.system && !d.create_system_objects {
            return Err(ProcmanError::SystemObjectDenied);
        }
        if let Some(name) = request.name {
            check_name(name)?;
            if !d
                .register
                .iter()
                .any(|prefix| name.starts_with(prefix.as_str()))
            {
                return Err(ProcmanError::NameDenied);
            }
            if namespace.contains(name) {
                return Err(ProcmanError::NameExists);
            }
        }
        if !d.create_types.contains(&request.security_type) {
            return Err(ProcmanError::TypeDenied);
        }
        Ok(())
    }

    /// Whether `domain` may open an object of `security_type`.
    pub fn check_open(&self, domain: usize, security_type: u32) -> Result<(), ProcmanError> {
        if self.domain(domain)?.open_types.contains(&security_type) {
            Ok(())
        } else {
            Err(ProcmanError::OpenDenied)
        }
    }

    /// Whether `domain` may spawn `program`; returns the program's index.
    pub fn check_spawn(&self, domain: usize, program: &str) -> Result<usize, ProcmanError> {
        let d = self.domain(domain)?;
        let (index, _) = self.program(program)?;
        if d.spawn.contains(&index) {
            Ok(index)
        } else {
            Err(ProcmanError::SpawnDenied)
        }
    }
}

impl Policy {
    /// The policy from its compiled form (`image::POLICY_ENTRY` in the boot
    /// archive, written by the image builder from `image/system.toml`).
    pub fn from_compiled(bytes: &[u8]) -> Result<Policy, &'static str> {
        let compiled =
            image::CompiledPolicy::parse(bytes).map_err(|_| "system.policy is malformed")?;
        let types = compiled.types().map(String::from).collect();
        let domains = compiled
            .domains()
            .map(|d| Domain {
                name: String::from(d.name()),
                create_objects: d.may_create_objects(),
                create_system_objects: d.may_create_system_objects(),
                register: d.register_prefixes().map(String::from).collect(),
                create_types: d.create_types().collect(),
                open_types: d.open_types().collect(),
                spawn: (0..compiled.program_count())
                    .filter(|i| d.may_spawn_index(*i))
                    .collect(),
            })
            .collect();
        let programs = compiled
            .programs()
            .map(|p| Program {
                name: String::from(p.name()),
                domain: p.domain_index(),
                arguments: p.arguments().to_vec(),
                start: p.starts_at_boot(),
            })
            .collect();
        Ok(Policy {
            types,
            domains,
            programs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::NameEntry;

    /// Types: 1 = echo, 2 = console. Domains: 0 servers, 1 users, 2 system.
    fn policy() -> Policy {
        Policy {
            types: vec!["echo".into(), "console".into()],
            domains: vec![
                Domain {
                    name: "servers".into(),
                    create_objects: true,
                    create_system_objects: false,
                    register: vec!["/srv/".into()],
                    create_types: vec![1],
                    open_types: vec![1],
                    spawn: vec![],
                },
                Domain {
                    name: "users".into(),
                    open_types: vec![1],
                    spawn: vec![1],
                    ..Domain::default()
                },
                Domain {
                    name: "system".into(),
                    create_objects: true,
                    create_system_objects: true,
                    register: vec!["/".into()],
                    create_types: vec![1, 2],
                    open_types: vec![1, 2],
                    spawn: vec![0, 1],
                },
            ],
            programs: vec![
                Program {
                    name: "echo".into(),
                    domain: 0,
                    arguments: vec![],
                    start: true,
                },
                Program {
                    name: "client".into(),
                    domain: 1,
                    arguments: vec![],
                    start: false,
                },
            ],
        }
    }

    fn create(system: bool, name: Option<&str>, security_type: u32) -> CreateRequest<'_> {
        CreateRequest {
            system,
            name,
            security_type,
        }
    }

    #[test]
    fn create_checks_run_in_the_seeds_order() {
        let p = policy();
        let mut ns = Namespace::new();
        let entry = NameEntry {
            descriptor: 3,
            owner: 9,
            security_type: 1,
            system: false,
        };
        assert_eq!(ns.insert("/srv/taken", entry), Ok(()));
        // Each request fails the first check it does not pass, in order.
        assert_eq!(
            p.check_create(1, create(true, Some("/x"), 9), &ns),
            Err(ProcmanError::CreateDenied)
        );
        assert_eq!(
            p.check_create(0, create(true, Some("/x"), 9), &ns),
            Err(ProcmanError::SystemObjectDenied)
        );
        assert_eq!(
            p.check_create(0, create(false, Some("srv"), 9), &ns),
            Err(ProcmanError::BadName)
        );
        assert_eq!(
            p.check_create(0, create(false, Some("/dev/x"), 9), &ns),
            Err(ProcmanError::NameDenied)
        );
        assert_eq!(
            p.check_create(0, create(false, Some("/srv/taken"), 9), &ns),
            Err(ProcmanError::NameExists)
        );
        assert_eq!(
            p.check_create(0, create(false, Some("/srv/new"), 2), &ns),
            Err(ProcmanError::TypeDenied)
        );
        assert_eq!(
            p.check_create(0, create(false, Some("/srv/new"), 1), &ns),
            Ok(())
        );
        assert_eq!(
            p.check_create(0, create(false, None, 1), &ns),
            Ok(()),
            "anonymous objects need no prefix"
        );
        assert_eq!(
            p.check_create(2, create(true, Some("/dev/tty0"), 2), &ns),
            Ok(())
        );
        assert_eq!(
            p.check_create(7, create(false, None, 1), &ns),
            Err(ProcmanError::UnknownCaller)
        );
    }

    #[test]
    fn the_compiled_manifest_converts_faithfully() {
        let text = r#"
[system]
name = "t"
types = ["echo", "console"]

[[domain]]
name = "servers"
create_objects = true
register = ["/srv/"]
create_types = ["echo"]
open_types = ["echo"]
spawn = ["client"]

[[domain]]
name = "users"
open_types = ["console", "echo"]

[[program]]
name = "echo"
package = "echo"
domain = "servers"
args = ["-v"]
start = true

[[program]]
name = "client"
package = "client"
domain = "users"
"#;
        let manifest = image::Manifest::parse(text);
        assert!(manifest.is_ok(), "{manifest:?}");
        let Ok(manifest) = manifest else { return };
        let policy = Policy::from_compiled(&image::policy::compile(&manifest));
        let expected = Policy {
            types: vec!["echo".into(), "console".into()],
            domains: vec![
                Domain {
                    name: "servers".into(),
                    create_objects: true,
                    create_system_objects: false,
                    register: vec!["/srv/".into()],
                    create_types: vec![1],
                    open_types: vec![1],
                    spawn: vec![1],
                },
                Domain {
                    name: "users".into(),
                    open_types: vec![1, 2],
                    ..Domain::default()
                },
            ],
            programs: vec![
                Program {
                    name: "echo".into(),
                    domain: 0,
                    arguments: b"-v\0".to_vec(),
                    start: true,
                },
                Program {
                    name: "client".into(),
                    domain: 1,
                    arguments: vec![],
                    start: false,
                },
            ],
        };
        assert_eq!(policy, Ok(expected));
        assert!(Policy::from_compiled(b"garbage").is_err());
    }

    #[test]
    fn open_and_spawn_follow_the_domain() {
        let p = policy();
        assert_eq!(p.check_open(1, 1), Ok(()));
        assert_eq!(p.check_open(1, 2), Err(ProcmanError::OpenDenied));
        assert_eq!(p.check_open(2, 2), Ok(()));
        assert_eq!(p.check_spawn(1, "client"), Ok(1));
        assert_eq!(p.check_spawn(1, "echo"), Err(ProcmanError::SpawnDenied));
        assert_eq!(p.check_spawn(0, "client"), Err(ProcmanError::SpawnDenied));
        assert_eq!(
            p.check_spawn(2, "nothing"),
            Err(ProcmanError::NoSuchProgram)
        );
    }
}

//! procman's security decisions. The policy itself is the compiled
//! `system.policy` from the boot archive, read in place through `image`'s
//! reader ([`CompiledPolicy`]): procman keeps no copy of it. Each check here
//! asks the reader and turns its answer into the [`ProcmanError`] the caller
//! gets; each is a pure function of the policy, the caller's domain and the
//! request, so each rule is tested here, allowed and refused.

use abi::procman::{InterruptLineRequest, IoPortsRequest, MAX_INTERRUPT_LINE, ProcmanError};
use image::{CompiledPolicy, DomainPolicy, ProgramPolicy};

use crate::namespace::{Namespace, check_name};

/// A CREATE_OBJECT request as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateRequest<'a> {
    /// A system object (SYSTEM_BASE) rather than a user one.
    pub system: bool,
    /// The name to register, if any.
    pub name: Option<&'a str>,
    /// The security type asked for.
    pub security_type: u32,
    /// The asking process; a name counts against its quota.
    pub caller: u32,
}

/// Domain `index` of `policy` (the domain procman recorded for a caller's
/// process); a domain the policy does not have is an unknown caller.
pub fn domain<'p>(
    policy: &CompiledPolicy<'p>,
    index: usize,
) -> Result<DomainPolicy<'p>, ProcmanError> {
    policy.domain_at(index).ok_or(ProcmanError::UnknownCaller)
}

/// The checks of seed 004, in its order: the domain may create IPC objects;
/// may create a system object if one is asked for; may register the name;
/// the name is free; the security type is one it may give. Then ours: a
/// name must fit the caller's quota ([`crate::namespace::MAX_NAMES_PER_PROCESS`]); anonymous
/// objects leave nothing in procman, so they have none.
pub fn check_create(
    policy: &CompiledPolicy<'_>,
    domain_index: usize,
    request: CreateRequest<'_>,
    namespace: &Namespace,
) -> Result<(), ProcmanError> {
    let domain = domain(policy, domain_index)?;
    if !domain.may_create_objects() {
        return Err(ProcmanError::CreateDenied);
    }
    if request.system && !domain.may_create_system_objects() {
        return Err(ProcmanError::SystemObjectDenied);
    }
    if let Some(name) = request.name {
        check_name(name)?;
        // procman's socket names (D96), whatever the domain's prefixes.
        if crate::namespace::is_socket_name(name) {
            return Err(ProcmanError::NameReserved);
        }
        if !domain.may_register(name) {
            return Err(ProcmanError::NameDenied);
        }
        if namespace.contains(name) {
            return Err(ProcmanError::NameExists);
        }
    }
    if !domain.may_create_type(request.security_type) {
        return Err(ProcmanError::TypeDenied);
    }
    if request.name.is_some() {
        namespace.may_register(request.caller)?;
    }
    Ok(())
}

/// Whether domain `domain_index` may open an object of `security_type`.
pub fn check_open(
    policy: &CompiledPolicy<'_>,
    domain_index: usize,
    security_type: u32,
) -> Result<(), ProcmanError> {
    if domain(policy, domain_index)?.may_open(security_type) {
        Ok(())
    } else {
        Err(ProcmanError::OpenDenied)
    }
}

/// Whether domain `domain_index` may spawn the program called `name`;
/// returns the program.
pub fn check_spawn<'p>(
    policy: &CompiledPolicy<'p>,
    domain_index: usize,
    name: &str,
) -> Result<ProgramPolicy<'p>, ProcmanError> {
    let domain = domain(policy, domain_index)?;
    let program = policy.program(name).ok_or(ProcmanError::NoSuchProgram)?;
    if domain.may_spawn_index(program.index()) {
        Ok(program)
    } else {
        Err(ProcmanError::SpawnDenied)
    }
}

/// DEVICE_PORTS (ABI.md §7a.4): the range `[first, first + count)` must be
/// well-formed (`PM_BAD_REQUEST`: no ports, past port 0xFFFF, a reserved
/// field set) and lie
/// wholly inside one of the domain's `io_ports` entries
/// (`PM_PORTS_DENIED`).
pub fn check_ports(
    policy: &CompiledPolicy<'_>,
    domain_index: usize,
    request: IoPortsRequest,
) -> Result<(), ProcmanError> {
    let domain = domain(policy, domain_index)?;
    let (first, count) = (u32::from(request.first), u32::from(request.count));
    if request.reserved != 0 || count == 0 || first + count > PORT_END {
        return Err(ProcmanError::BadRequest);
    }
    if domain.may_use_ports(first, count) {
        Ok(())
    } else {
        Err(ProcmanError::PortsDenied)
    }
}

/// One past the highest I/O port.
const PORT_END: u32 = 0x1_0000;

/// DEVICE_INTERRUPT (ABI.md §7a.4): the request must be well-formed
/// (`PM_BAD_REQUEST`: a reserved field set, a line past
/// [`MAX_INTERRUPT_LINE`]) and the domain's `irqs` must name the line
/// (`PM_INTERRUPT_DENIED`).
pub fn check_interrupt(
    policy: &CompiledPolicy<'_>,
    domain_index: usize,
    request: InterruptLineRequest,
) -> Result<(), ProcmanError> {
    let domain = domain(policy, domain_index)?;
    if request.reserved != 0 || request.line > MAX_INTERRUPT_LINE {
        return Err(ProcmanError::BadRequest);
    }
    if domain.may_use_irq(request.line) {
        Ok(())
    } else {
        Err(ProcmanError::InterruptDenied)
    }
}

/// CONSOLE_LOG (ABI.md §7a.4): the domain's `io_ports` must cover COM1
/// whole (`PM_CONSOLE_DENIED`): the console's driver, and only it, takes
/// the kernel's log.
pub fn check_console(policy: &CompiledPolicy<'_>, domain_index: usize) -> Result<(), ProcmanError> {
    let domain = domain(policy, domain_index)?;
    let (first, count) = abi::procman::CONSOLE_PORTS;
    if domain.may_use_ports(u32::from(first), u32::from(count)) {
        Ok(())
    } else {
        Err(ProcmanError::ConsoleDenied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::{MAX_NAMES_PER_PROCESS, NameEntry};
    use ProcmanError::{
        BadName, CreateDenied, NameDenied, NameExists, NameReserved, SystemObjectDenied,
        TooManyObjects, TypeDenied, UnknownCaller,
    };

    /// Types: 1 = echo, 2 = console. Domains: 0 servers, 1 users, 2 system.
    /// Programs: 0 echo (servers, started at boot), 1 client (users).
    const POLICY: &str = r#"
[system]
name = "t"
types = ["echo", "console"]

[[domain]]
name = "servers"
create_objects = true
register = ["/srv/"]
create_types = ["echo"]
open_types = ["echo"]
io_ports = ["0x3f8-0x3ff", "0x2e8-0x2ef", "0xffff"]
irqs = [4, 3]

[[domain]]
name = "users"
open_types = ["echo"]
spawn = ["client"]

[[domain]]
name = "system"
create_objects = true
create_system_objects = true
register = ["/"]
create_types = ["echo", "console"]
open_types = ["console", "echo"]
spawn = ["echo", "client"]

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

    /// [`POLICY`] compiled, as the image builder writes `system.policy`.
    fn compiled() -> Vec<u8> {
        image::policy::compile(&image::Manifest::parse(POLICY).expect("a valid test manifest"))
    }

    /// `bytes` read as procman reads `system.policy`.
    fn read(bytes: &[u8]) -> CompiledPolicy<'_> {
        CompiledPolicy::parse(bytes).expect("compile writes valid policies")
    }

    /// The process that asks in the tests; [`FULL`] has no quota left.
    const CALLER: u32 = 1;
    const FULL: u32 = 9;

    fn create(system: bool, name: Option<&str>, security_type: u32) -> CreateRequest<'_> {
        CreateRequest {
            system,
            name,
            security_type,
            caller: CALLER,
        }
    }

    fn create_by_full(name: Option<&str>, security_type: u32) -> CreateRequest<'_> {
        CreateRequest {
            caller: FULL,
            ..create(false, name, security_type)
        }
    }

    #[test]
    fn create_checks_run_in_the_seeds_order() {
        let bytes = compiled();
        let p = read(&bytes);
        let mut ns = Namespace::new();
        let entry = NameEntry {
            descriptor: 3,
            owner: FULL,
            security_type: 1,
            system: false,
            mount: false,
        };
        assert_eq!(ns.insert("/srv/taken", entry), Ok(()));
        for i in 1..MAX_NAMES_PER_PROCESS {
            assert_eq!(ns.insert(&format!("/srv/full{i}"), entry), Ok(()));
        }
        // Each request fails the first check it does not pass, in order.
        let cases = [
            (1, create(true, Some("/x"), 9), Err(CreateDenied)),
            (0, create(true, Some("/x"), 9), Err(SystemObjectDenied)),
            (0, create(false, Some("srv"), 9), Err(BadName)),
            // /sock is procman's, even for a domain that may register "/"
            // (D96), and before the prefix check.
            (2, create(false, Some("/sock/80"), 1), Err(NameReserved)),
            (2, create(false, Some("/sock"), 1), Err(NameReserved)),
            (0, create(false, Some("/sock/80"), 9), Err(NameReserved)),
            (2, create(false, Some("/socket"), 1), Ok(())),
            (0, create(false, Some("/dev/x"), 9), Err(NameDenied)),
            (0, create(false, Some("/srv/taken"), 9), Err(NameExists)),
            (0, create(false, Some("/srv/new"), 2), Err(TypeDenied)),
            (0, create(false, Some("/srv/new"), 1), Ok(())),
            // Anonymous objects need no prefix.
            (0, create(false, None, 1), Ok(())),
            (2, create(true, Some("/dev/tty0"), 2), Ok(())),
            (7, create(false, None, 1), Err(UnknownCaller)),
            // The quota comes last, and only names count against it.
            (0, create_by_full(Some("/srv/taken"), 1), Err(NameExists)),
            (0, create_by_full(Some("/srv/new"), 2), Err(TypeDenied)),
            (0, create_by_full(Some("/srv/new"), 1), Err(TooManyObjects)),
            (0, create_by_full(None, 1), Ok(())),
        ];
        for (domain, request, expected) in cases {
            assert_eq!(
                check_create(&p, domain, request, &ns),
                expected,
                "{request:?} from domain {domain}"
            );
        }
    }

    #[test]
    fn the_compiled_manifest_reads_faithfully() {
        let bytes = compiled();
        let policy = read(&bytes);
        assert_eq!(policy.types().collect::<Vec<_>>(), ["echo", "console"]);

        // Every query procman asks of a domain answers as the manifest says.
        assert_eq!(policy.domain_count(), 3);
        let servers = domain(&policy, 0).expect("domain 0");
        assert_eq!(servers.name(), "servers");
        assert!(servers.may_create_objects());
        assert!(!servers.may_create_system_objects());
        assert_eq!(servers.register_prefixes().collect::<Vec<_>>(), ["/srv/"]);
        assert_eq!(servers.create_types().collect::<Vec<_>>(), [1]);
        assert_eq!(servers.open_types().collect::<Vec<_>>(), [1]);
        assert!(!servers.may_spawn_index(0) && !servers.may_spawn_index(1));
        let users = domain(&policy, 1).expect("domain 1");
        assert_eq!(users.name(), "users");
        assert!(!users.may_create_objects());
        assert!(!users.may_create_system_objects());
        assert_eq!(users.register_prefixes().count(), 0);
        assert_eq!(users.create_types().count(), 0);
        assert_eq!(users.open_types().collect::<Vec<_>>(), [1]);
        assert!(!users.may_spawn_index(0) && users.may_spawn_index(1));
        let system = domain(&policy, 2).expect("domain 2");
        assert_eq!(system.name(), "system");
        assert!(system.may_create_objects() && system.may_create_system_objects());
        assert_eq!(system.register_prefixes().collect::<Vec<_>>(), ["/"]);
        assert_eq!(system.create_types().collect::<Vec<_>>(), [1, 2]);
        // Sets come back in type-number order, whatever the manifest's order.
        assert_eq!(system.open_types().collect::<Vec<_>>(), [1, 2]);
        assert!(system.may_spawn_index(0) && system.may_spawn_index(1));
        assert_eq!(
            domain(&policy, 3).map(|d| d.name()),
            Err(ProcmanError::UnknownCaller)
        );

        // And every program: its place, domain, argument bytes and start flag.
        let programs: Vec<_> = policy
            .programs()
            .map(|p| {
                (
                    p.index(),
                    p.name(),
                    p.domain_index(),
                    p.arguments(),
                    p.starts_at_boot(),
                )
            })
            .collect();
        assert_eq!(
            programs,
            [
                (0, "echo", 0, &b"-v\0"[..], true),
                (1, "client", 1, &b""[..], false)
            ]
        );
        assert!(CompiledPolicy::parse(b"garbage").is_err());
    }

    #[test]
    fn open_and_spawn_follow_the_domain() {
        let bytes = compiled();
        let p = read(&bytes);
        let spawned = |domain: usize, name: &str| check_spawn(&p, domain, name).map(|p| p.index());
        assert_eq!(check_open(&p, 1, 1), Ok(()));
        assert_eq!(check_open(&p, 1, 2), Err(ProcmanError::OpenDenied));
        assert_eq!(check_open(&p, 2, 2), Ok(()));
        assert_eq!(spawned(1, "client"), Ok(1));
        assert_eq!(spawned(1, "echo"), Err(ProcmanError::SpawnDenied));
        assert_eq!(spawned(0, "client"), Err(ProcmanError::SpawnDenied));
        assert_eq!(spawned(2, "nothing"), Err(ProcmanError::NoSuchProgram));
    }

    #[test]
    fn device_grants_follow_the_domain() {
        let bytes = compiled();
        let p = read(&bytes);
        let ports = |domain: usize, first: u16, count: u16| {
            check_ports(&p, domain, IoPortsRequest::new(first, count))
        };
        use ProcmanError::{BadRequest, InterruptDenied, PortsDenied};
        // Inside one entry, whole or part.
        assert_eq!(ports(0, 0x3f8, 8), Ok(()));
        assert_eq!(ports(0, 0x3fd, 1), Ok(()));
        assert_eq!(ports(0, 0x2e8, 8), Ok(()));
        assert_eq!(ports(0, 0xffff, 1), Ok(()));
        // Across an entry's end, or across two entries: denied.
        assert_eq!(ports(0, 0x3f8, 9), Err(PortsDenied));
        assert_eq!(ports(0, 0x3f7, 1), Err(PortsDenied));
        assert_eq!(ports(0, 0x2e8, 0x3ff - 0x2e8 + 1), Err(PortsDenied));
        assert_eq!(ports(0, 0xfffe, 2), Err(PortsDenied));
        // Malformed before the policy is asked.
        assert_eq!(ports(0, 0x3f8, 0), Err(BadRequest));
        assert_eq!(ports(0, 0xffff, 2), Err(BadRequest));
        assert_eq!(ports(0, 2, u16::MAX), Err(BadRequest));
        assert_eq!(ports(0, 1, u16::MAX), Err(PortsDenied));
        assert_eq!(
            check_ports(&p, 0, IoPortsRequest::new(0x3f8, 1).with_reserved(1)),
            Err(BadRequest)
        );
        assert_eq!(ports(1, 0x3f8, 0), Err(BadRequest));
        // A domain without io_ports, even the system's.
        assert_eq!(ports(1, 0x3f8, 8), Err(PortsDenied));
        assert_eq!(ports(2, 0x3f8, 1), Err(PortsDenied));
        assert_eq!(ports(3, 0x3f8, 1), Err(ProcmanError::UnknownCaller));

        let line = |domain: usize, line: u32, reserved: u32| {
            check_interrupt(
                &p,
                domain,
                InterruptLineRequest::new(line).with_reserved(reserved),
            )
        };
        assert_eq!(line(0, 4, 0), Ok(()));
        assert_eq!(line(0, 3, 0), Ok(()));
        assert_eq!(line(0, 5, 0), Err(InterruptDenied));
        assert_eq!(line(0, 16, 0), Err(BadRequest));
        assert_eq!(line(0, 4, 1), Err(BadRequest));
        assert_eq!(line(1, 4, 0), Err(InterruptDenied));
        assert_eq!(line(2, 3, 0), Err(InterruptDenied));
        // Every line of every domain against the manifest: exhaustive.
        for domain in 0..3 {
            for number in 0..=20 {
                let allowed = domain == 0 && (number == 3 || number == 4);
                let expected = if number > 15 {
                    Err(BadRequest)
                } else if allowed {
                    Ok(())
                } else {
                    Err(InterruptDenied)
                };
                assert_eq!(
                    line(domain, number, 0),
                    expected,
                    "line {number}, domain {domain}"
                );
            }
        }
    }
}

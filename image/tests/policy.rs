//! The compiled security policy end to end: what `compile` writes the reader
//! reads back as the manifest it came from, every broken rule is reported as
//! its own error, and no input whatsoever makes the reader panic.

use image::manifest::{Domain, MAX_PREFIXES_PER_DOMAIN, PortRange, System};
use image::policy::{
    self, DEVICE_IRQ, DEVICE_PORTS, DEVICE_RECORD_SIZE, DOMAIN_RECORD_SIZE, DeviceRecord,
    DomainRecord, HEADER_SIZE, PROGRAM_RECORD_SIZE, PolicyHeader, ProgramRecord, Record,
    STR_REF_SIZE, StrRef, TypeList,
};
use image::{
    CompiledPolicy, MANIFEST_ENTRY, Manifest, NameError, POLICY_ENTRY, PolicyError, Program,
};
use proptest::prelude::*;
use zerocopy::FromBytes;

const SAMPLE: &str = r#"
[system]
name = "hinge"
types = ["echo", "console", "tty"]

[[domain]]
name = "system"
create_objects = true
create_system_objects = true
register = ["/", "/dev/"]
create_types = ["tty", "echo", "console"]
open_types = ["echo", "console", "tty"]
spawn = ["echo", "echo-client", "shell"]

[[domain]]
name = "servers"
create_objects = true
register = ["/srv/"]
create_types = ["echo"]
open_types = ["console"]
io_ports = ["0x3f8-0x3ff", "0x60"]
irqs = [4, 1]

[[domain]]
name = "users"
open_types = ["echo"]

[[program]]
name = "echo"
package = "echo"
domain = "servers"
start = true

[[program]]
name = "echo-client"
package = "echo-client"
domain = "users"
args = ["--count", "3"]
start = true

[[program]]
name = "shell"
package = "shell"
domain = "users"
args = ["", "x"]
"#;

fn sample_manifest() -> Manifest {
    Manifest::parse(SAMPLE).expect("the sample is well-formed")
}

fn sample_policy() -> Vec<u8> {
    policy::compile(&sample_manifest())
}

#[test]
fn the_entry_names_differ() {
    assert_eq!(POLICY_ENTRY, "system.policy");
    assert_ne!(POLICY_ENTRY, MANIFEST_ENTRY);
}

#[test]
fn the_sample_reads_back() {
    let bytes = sample_policy();
    let policy = CompiledPolicy::parse(&bytes).expect("compile writes valid policies");
    assert_eq!(policy.system_name(), "hinge");
    assert_eq!(
        policy.types().collect::<Vec<_>>(),
        ["echo", "console", "tty"]
    );
    assert_eq!(policy.type_count(), 3);
    assert_eq!(policy.type_number("echo"), Some(1));
    assert_eq!(policy.type_number("tty"), Some(3));
    assert_eq!(policy.type_number("Echo"), None);
    assert_eq!(policy.type_name(2), Some("console"));
    assert_eq!(policy.type_name(0), None);
    assert_eq!(policy.type_name(4), None);
    assert_eq!(policy.type_name(u32::MAX), None);

    assert_eq!(policy.domain_count(), 3);
    let system = policy.domain("system").expect("system");
    assert_eq!(system.index(), 0);
    assert!(system.may_create_objects() && system.may_create_system_objects());
    assert_eq!(
        system.register_prefixes().collect::<Vec<_>>(),
        ["/", "/dev/"]
    );
    assert!(system.may_register("/anything"));
    // Sets come back in number order, whatever the manifest's order.
    assert_eq!(system.create_types().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        system.spawnable().collect::<Vec<_>>(),
        ["echo", "echo-client", "shell"]
    );

    let servers = policy.domain("servers").expect("servers");
    assert_eq!(servers.index(), 1);
    assert!(servers.may_create_objects() && !servers.may_create_system_objects());
    assert!(servers.may_register("/srv/echo"));
    assert!(!servers.may_register("/dev/tty0"));
    assert!(!servers.may_register("/sr"));
    assert!(servers.may_create_type(1) && !servers.may_create_type(2));
    assert!(servers.may_open(2) && !servers.may_open(1));
    assert!(!servers.may_open(0) && !servers.may_open(300));
    assert_eq!(servers.spawnable().count(), 0);
    assert!(!servers.may_spawn("echo"));

    let users = policy.domain("users").expect("users");
    assert!(!users.may_create_objects() && !users.may_create_system_objects());
    assert_eq!(users.register_prefixes().count(), 0);
    assert!(!users.may_register("/srv/x"));
    assert_eq!(users.create_types().count(), 0);
    assert_eq!(users.open_types().collect::<Vec<_>>(), [1]);
    assert!(policy.domain("nobody").is_none());
    assert!(policy.domain_at(3).is_none());
    assert!(system.may_spawn("shell") && system.may_spawn_index(2));
    assert!(!system.may_spawn("init") && !system.may_spawn_index(3));

    assert_eq!(policy.program_count(), 3);
    let echo = policy.program("echo").expect("echo");
    assert_eq!(echo.index(), 0);
    assert_eq!(echo.domain_index(), 1);
    assert_eq!(echo.domain().name(), "servers");
    assert_eq!(echo.arguments(), b"");
    assert_eq!(echo.argument_list().count(), 0);
    assert!(echo.starts_at_boot());
    let client = policy.program("echo-client").expect("echo-client");
    assert_eq!(client.arguments(), b"--count\x003\x00");
    assert_eq!(client.argument_list().collect::<Vec<_>>(), ["--count", "3"]);
    let shell = policy.program("shell").expect("shell");
    assert_eq!(shell.arguments(), b"\0x\0");
    assert_eq!(shell.argument_list().collect::<Vec<_>>(), ["", "x"]);
    assert!(!shell.starts_at_boot());
    assert!(policy.program("init").is_none());
    assert!(policy.program_at(3).is_none());
    assert_eq!(
        policy
            .boot_programs()
            .map(|program| program.name())
            .collect::<Vec<_>>(),
        ["echo", "echo-client"]
    );
    assert_eq!(policy.as_bytes(), bytes.as_slice());
    assert!(format!("{policy:?}").contains("hinge"));
    assert!(format!("{echo:?}").contains("servers"));
    assert!(format!("{users:?}").contains("users"));
}

#[test]
fn the_committed_manifest_compiles_and_reads_back() {
    let manifest = Manifest::parse(include_str!("../system.toml")).expect("system.toml");
    let bytes = policy::compile(&manifest);
    let policy = CompiledPolicy::parse(&bytes).expect("valid");
    assert_eq!(decompile(&policy), normalized(&manifest));
}

#[test]
fn the_policy_travels_in_the_boot_archive() {
    // As xtask packs it: the text for humans, the compiled form for procman.
    let text = include_str!("../system.toml");
    let manifest = Manifest::parse(text).expect("system.toml");
    let archive = image::ArchiveBuilder::new()
        .add(MANIFEST_ENTRY, text.as_bytes())
        .and_then(|builder| builder.add(POLICY_ENTRY, policy::compile(&manifest)))
        .expect("valid names")
        .build();
    let archive = image::BootArchive::parse(&archive).expect("valid archive");
    let bytes = archive.find(POLICY_ENTRY).expect("the policy entry");
    let policy = CompiledPolicy::parse(bytes).expect("valid policy");
    for program in &manifest.programs {
        let compiled = policy.program(&program.name).expect("every program");
        assert_eq!(compiled.domain().name(), program.domain);
        assert_eq!(compiled.starts_at_boot(), program.start);
    }
}

#[test]
fn an_empty_policy_is_header_and_name() {
    let manifest = Manifest::parse("[system]\nname = \"h\"\n").expect("minimal");
    let bytes = policy::compile(&manifest);
    assert_eq!(bytes.len(), HEADER_SIZE + 1);
    let policy = CompiledPolicy::parse(&bytes).expect("valid");
    assert_eq!(policy.types().count(), 0);
    assert_eq!(policy.domains().count(), 0);
    assert_eq!(policy.programs().count(), 0);
}

#[test]
fn the_limits_fit_the_format() {
    let mut text = "[system]\nname = \"hinge\"\ntypes = [".to_owned();
    for number in 1..=255 {
        text.push_str(&format!("\"t{number}\","));
    }
    text.push_str("]\n");
    let all_types: Vec<String> = (1..=255).map(|number| format!("\"t{number}\"")).collect();
    let all_programs: Vec<String> = (0..255).map(|index| format!("\"p{index}\"")).collect();
    let prefixes: Vec<String> = (0..MAX_PREFIXES_PER_DOMAIN)
        .map(|index| format!("\"/p{index}\""))
        .collect();
    for index in 0..64 {
        text.push_str(&format!(
            "[[domain]]\nname = \"d{index}\"\ncreate_objects = true\ncreate_system_objects = true\n\
             register = [{}]\ncreate_types = [{}]\nopen_types = [{}]\nspawn = [{}]\n",
            prefixes.join(","),
            all_types.join(","),
            all_types.join(","),
            all_programs.join(",")
        ));
    }
    for index in 0..255 {
        text.push_str(&format!(
            "[[program]]\nname = \"p{index}\"\npackage = \"p\"\ndomain = \"d63\"\nstart = true\n"
        ));
    }
    let manifest = Manifest::parse(&text).expect("everything at its limit");
    let bytes = policy::compile(&manifest);
    let policy = CompiledPolicy::parse(&bytes).expect("valid");
    assert_eq!(decompile(&policy), normalized(&manifest));
    let last = policy.domain("d63").expect("d63");
    assert_eq!(last.register_prefixes().len(), MAX_PREFIXES_PER_DOMAIN);
    assert!(last.may_open(255) && last.may_create_type(255));
    assert!(last.may_spawn("p254"));
    assert_eq!(policy.program("p254").expect("p254").domain_index(), 63);
}

/// The manifest a compiled policy describes, lists of types and programs in
/// number order; packages are not in the policy and come back empty.
fn decompile(policy: &CompiledPolicy<'_>) -> Manifest {
    let type_name = |number| {
        policy
            .type_name(number)
            .expect("the reader yields only declared types")
            .to_owned()
    };
    Manifest {
        system: System {
            name: policy.system_name().to_owned(),
            types: policy.types().map(str::to_owned).collect(),
        },
        domains: policy
            .domains()
            .map(|domain| Domain {
                name: domain.name().to_owned(),
                create_objects: domain.may_create_objects(),
                create_system_objects: domain.may_create_system_objects(),
                register: domain.register_prefixes().map(str::to_owned).collect(),
                create_types: domain.create_types().map(type_name).collect(),
                open_types: domain.open_types().map(type_name).collect(),
                spawn: domain.spawnable().map(str::to_owned).collect(),
                portal_classes: domain.portal_classes(),
                io_ports: domain
                    .io_ports()
                    .map(|(first, last)| PortRange { first, last })
                    .collect(),
                irqs: domain.irqs().collect(),
            })
            .collect(),
        programs: policy
            .programs()
            .map(|program| Program {
                name: program.name().to_owned(),
                package: String::new(),
                args: program.argument_list().map(str::to_owned).collect(),
                domain: program.domain().name().to_owned(),
                start: program.starts_at_boot(),
            })
            .collect(),
    }
}

/// `manifest` as [`decompile`] gives it back: the sets in number order, no packages.
fn normalized(manifest: &Manifest) -> Manifest {
    let mut normal = manifest.clone();
    let type_number = |name: &String| manifest.type_number(name);
    for domain in &mut normal.domains {
        domain.create_types.sort_by_key(type_number);
        domain.open_types.sort_by_key(type_number);
        domain
            .spawn
            .sort_by_key(|name| manifest.program_index(name));
    }
    for program in &mut normal.programs {
        program.package.clear();
    }
    normal
}

/// Walks every accessor of a policy the reader accepted and checks what the
/// format promises; a panic here is a reader bug.
fn exercise(policy: &CompiledPolicy<'_>) {
    let _ = policy.system_name();
    for (index, name) in policy.types().enumerate() {
        assert!(!name.is_empty());
        assert_eq!(policy.type_number(name), Some(index as u32 + 1));
    }
    assert_eq!(policy.domains().count(), policy.domain_count());
    for domain in policy.domains() {
        assert_eq!(
            policy.domain(domain.name()).map(|d| d.index()),
            Some(domain.index())
        );
        assert!(!domain.may_create_system_objects() || domain.may_create_objects());
        for prefix in domain.register_prefixes() {
            assert!(prefix.starts_with('/'));
            assert!(domain.may_register(prefix));
        }
        for number in domain.create_types().chain(domain.open_types()) {
            assert!((1..=policy.type_count()).contains(&number));
        }
        for program in domain.spawnable() {
            assert!(domain.may_spawn(program));
        }
        for (first, last) in domain.io_ports() {
            assert!(first <= last);
            let count = u32::from(last - first) + 1;
            assert!(domain.may_use_ports(u32::from(first), count));
            assert!(!domain.may_use_ports(u32::from(first), 0));
        }
        for line in domain.irqs() {
            assert!(line <= 15);
            assert!(domain.may_use_irq(u32::from(line)));
        }
        assert!(!domain.may_use_irq(16));
    }
    assert_eq!(policy.programs().count(), policy.program_count());
    for program in policy.programs() {
        assert_eq!(
            policy.program(program.name()).map(|p| p.index()),
            Some(program.index())
        );
        assert!(program.domain_index() < policy.domain_count());
        let arguments = program.arguments();
        assert!(arguments.is_empty() || arguments.ends_with(b"\0"));
        assert_eq!(
            program.argument_list().count(),
            arguments.iter().filter(|&&byte| byte == 0).count()
        );
        let _ = program.starts_at_boot();
    }
    let _ = format!("{policy:?}");
}

// Crafting broken policies: the tables' places in the sample.

fn header_mut(bytes: &mut [u8]) -> &mut PolicyHeader {
    PolicyHeader::mut_from_prefix(bytes).expect("a header").0
}

struct Places {
    types: usize,
    domains: usize,
    programs: usize,
    prefixes: usize,
    devices: usize,
    strings: usize,
}

fn places(bytes: &[u8]) -> Places {
    let header = PolicyHeader::ref_from_prefix(bytes).expect("a header").0;
    let types = HEADER_SIZE;
    let domains = types + usize::from(header.type_count) * STR_REF_SIZE;
    let programs = domains + usize::from(header.domain_count) * DOMAIN_RECORD_SIZE;
    let prefixes = programs + usize::from(header.program_count) * PROGRAM_RECORD_SIZE;
    let devices = prefixes + usize::from(header.prefix_count.get()) * STR_REF_SIZE;
    let strings = devices + usize::from(header.device_count.get()) * DEVICE_RECORD_SIZE;
    Places {
        types,
        domains,
        programs,
        prefixes,
        devices,
        strings,
    }
}

fn type_mut(bytes: &mut [u8], index: usize) -> &mut StrRef {
    let at = places(bytes).types + index * STR_REF_SIZE;
    StrRef::mut_from_prefix(&mut bytes[at..]).expect("a type").0
}

fn domain_mut(bytes: &mut [u8], index: usize) -> &mut DomainRecord {
    let at = places(bytes).domains + index * DOMAIN_RECORD_SIZE;
    DomainRecord::mut_from_prefix(&mut bytes[at..])
        .expect("a domain")
        .0
}

fn program_mut(bytes: &mut [u8], index: usize) -> &mut ProgramRecord {
    let at = places(bytes).programs + index * PROGRAM_RECORD_SIZE;
    ProgramRecord::mut_from_prefix(&mut bytes[at..])
        .expect("a program")
        .0
}

fn prefix_mut(bytes: &mut [u8], index: usize) -> &mut StrRef {
    let at = places(bytes).prefixes + index * STR_REF_SIZE;
    StrRef::mut_from_prefix(&mut bytes[at..])
        .expect("a prefix")
        .0
}

fn device_mut(bytes: &mut [u8], index: usize) -> &mut DeviceRecord {
    let at = places(bytes).devices + index * DEVICE_RECORD_SIZE;
    DeviceRecord::mut_from_prefix(&mut bytes[at..])
        .expect("a device")
        .0
}

/// The bytes of `string` in the string area.
fn string_mut(bytes: &mut [u8], string: StrRef) -> &mut [u8] {
    let start = places(bytes).strings + string.offset.get() as usize;
    &mut bytes[start..start + string.len.get() as usize]
}

/// The error for `bytes`, whose message must start with `message`.
#[track_caller]
fn refused(bytes: &[u8], message: &str) -> PolicyError {
    let error = CompiledPolicy::parse(bytes).expect_err("the policy is broken");
    assert!(
        error.to_string().starts_with(message),
        "{error} does not start with {message:?}"
    );
    error
}

#[test]
fn too_short_for_a_header() {
    let bytes = sample_policy();
    for len in [0, HEADER_SIZE - 1] {
        assert_eq!(
            refused(&bytes[..len], "too short"),
            PolicyError::TooShortForHeader { available: len }
        );
    }
}

#[test]
fn bad_magic() {
    let mut bytes = sample_policy();
    bytes[7] = b'X';
    assert_eq!(
        refused(
            &bytes,
            "bad magic (expected \"HINGEPOL\", found \"HINGEPOX\")"
        ),
        PolicyError::BadMagic {
            found: *b"HINGEPOX"
        }
    );
    // An archive is not a policy.
    assert!(matches!(
        CompiledPolicy::parse(&image::ArchiveBuilder::new().build()),
        Err(PolicyError::BadMagic { .. })
    ));
}

#[test]
fn unsupported_version() {
    let mut bytes = sample_policy();
    // Version 1 had no device table.
    header_mut(&mut bytes).version.set(1);
    assert_eq!(
        refused(&bytes, "unsupported policy version 1"),
        PolicyError::UnsupportedVersion { found: 1 }
    );
}

#[test]
fn size_mismatch() {
    let bytes = sample_policy();
    let declared = bytes.len() as u32;
    let short = &bytes[..bytes.len() - 1];
    assert_eq!(
        refused(short, "size mismatch"),
        PolicyError::SizeMismatch {
            declared,
            available: short.len()
        }
    );
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        refused(&long, "size mismatch"),
        PolicyError::SizeMismatch {
            declared,
            available: long.len()
        }
    );
}

#[test]
fn reserved_not_zero() {
    let mut bytes = sample_policy();
    header_mut(&mut bytes).reserved0 = 1;
    assert_eq!(
        refused(&bytes, "a reserved field of the header is 0x1"),
        PolicyError::ReservedNotZero {
            record: Record::Header,
            found: 1
        }
    );
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 1).portal_classes = 0x20;
    assert_eq!(
        refused(&bytes, "a reserved field of domain 1 is 0x20000000"),
        PolicyError::ReservedNotZero {
            record: Record::Domain { index: 1 },
            found: 0x2000_0000
        }
    );
    let mut bytes = sample_policy();
    device_mut(&mut bytes, 2).reserved0 = 1;
    assert_eq!(
        refused(&bytes, "a reserved field of device 2 is 0x1"),
        PolicyError::ReservedNotZero {
            record: Record::Device { index: 2 },
            found: 1
        }
    );
    let mut bytes = sample_policy();
    device_mut(&mut bytes, 0).reserved1.set(1);
    assert_eq!(
        refused(&bytes, "a reserved field of device 0 is 0x100"),
        PolicyError::ReservedNotZero {
            record: Record::Device { index: 0 },
            found: 0x100
        }
    );
    let mut bytes = sample_policy();
    program_mut(&mut bytes, 2).reserved.set(0x8000);
    assert_eq!(
        refused(&bytes, "a reserved field of program 2 is 0x8000"),
        PolicyError::ReservedNotZero {
            record: Record::Program { index: 2 },
            found: 0x8000
        }
    );
}

#[test]
fn too_many_domains() {
    let mut bytes = sample_policy();
    header_mut(&mut bytes).domain_count = 65;
    assert_eq!(
        refused(&bytes, "too many domains: 65"),
        PolicyError::TooManyDomains { count: 65 }
    );
}

#[test]
fn tables_out_of_bounds() {
    let mut bytes = sample_policy();
    let total_size = bytes.len() as u32;
    header_mut(&mut bytes).prefix_count.set(u16::MAX);
    let tables_end = places(&bytes).strings as u64;
    assert_eq!(
        refused(&bytes, "tables out of bounds"),
        PolicyError::TablesOutOfBounds {
            tables_end,
            total_size
        }
    );
}

#[test]
fn string_out_of_bounds() {
    let mut bytes = sample_policy();
    let strings_size = (bytes.len() - places(&bytes).strings) as u32;
    header_mut(&mut bytes).system_name.len.set(strings_size + 1);
    let offset = header_mut(&mut bytes).system_name.offset.get();
    assert_eq!(
        refused(&bytes, "string of the header out of bounds"),
        PolicyError::StringOutOfBounds {
            record: Record::Header,
            offset,
            len: strings_size + 1,
            strings_size
        }
    );
    // An offset that would overflow.
    let mut bytes = sample_policy();
    type_mut(&mut bytes, 2).offset.set(u32::MAX);
    assert!(matches!(
        refused(&bytes, "string of type 2 out of bounds"),
        PolicyError::StringOutOfBounds {
            record: Record::Type { index: 2 },
            offset: u32::MAX,
            ..
        }
    ));
    let mut bytes = sample_policy();
    program_mut(&mut bytes, 1).arguments.len.set(u32::MAX);
    assert!(matches!(
        refused(&bytes, "string of the arguments of program 1 out of bounds"),
        PolicyError::StringOutOfBounds {
            record: Record::Arguments { index: 1 },
            ..
        }
    ));
    let mut bytes = sample_policy();
    prefix_mut(&mut bytes, 0).len.set(u32::MAX);
    assert!(matches!(
        refused(&bytes, "string of prefix 0 out of bounds"),
        PolicyError::StringOutOfBounds {
            record: Record::Prefix { index: 0 },
            ..
        }
    ));
}

#[test]
fn string_not_utf8() {
    let mut bytes = sample_policy();
    let name = header_mut(&mut bytes).system_name;
    string_mut(&mut bytes, name)[0] = 0xff;
    assert_eq!(
        refused(&bytes, "string of the header is not valid UTF-8"),
        PolicyError::StringNotUtf8 {
            record: Record::Header
        }
    );
    // "tty" is only a type's name.
    let mut bytes = sample_policy();
    let name = *type_mut(&mut bytes, 2);
    string_mut(&mut bytes, name)[1] = 0xc3;
    assert_eq!(
        refused(&bytes, "string of type 2 is not valid UTF-8"),
        PolicyError::StringNotUtf8 {
            record: Record::Type { index: 2 }
        }
    );
}

#[test]
fn empty_names() {
    let mut bytes = sample_policy();
    header_mut(&mut bytes).system_name.len.set(0);
    assert_eq!(
        refused(&bytes, "the name of the header is empty"),
        PolicyError::EmptyName {
            record: Record::Header
        }
    );
    let mut bytes = sample_policy();
    type_mut(&mut bytes, 1).len.set(0);
    assert_eq!(
        refused(&bytes, "the name of type 1 is empty"),
        PolicyError::EmptyName {
            record: Record::Type { index: 1 }
        }
    );
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 2).name.len.set(0);
    assert_eq!(
        refused(&bytes, "the name of domain 2 is empty"),
        PolicyError::EmptyName {
            record: Record::Domain { index: 2 }
        }
    );
}

#[test]
fn duplicate_names() {
    let mut bytes = sample_policy();
    let first = *type_mut(&mut bytes, 0);
    *type_mut(&mut bytes, 2) = first;
    assert_eq!(
        refused(&bytes, "duplicate name: type 2"),
        PolicyError::DuplicateName {
            record: Record::Type { index: 2 },
            first: 0
        }
    );
    let mut bytes = sample_policy();
    let first = domain_mut(&mut bytes, 0).name;
    domain_mut(&mut bytes, 1).name = first;
    assert_eq!(
        refused(&bytes, "duplicate name: domain 1"),
        PolicyError::DuplicateName {
            record: Record::Domain { index: 1 },
            first: 0
        }
    );
    let mut bytes = sample_policy();
    let first = program_mut(&mut bytes, 1).name;
    program_mut(&mut bytes, 2).name = first;
    assert_eq!(
        refused(&bytes, "duplicate name: program 2"),
        PolicyError::DuplicateName {
            record: Record::Program { index: 2 },
            first: 1
        }
    );
}

#[test]
fn invalid_program_names() {
    let mut bytes = sample_policy();
    program_mut(&mut bytes, 0).name.len.set(0);
    assert_eq!(
        refused(&bytes, "program 0 has an invalid name"),
        PolicyError::InvalidProgramName {
            index: 0,
            reason: NameError::Empty
        }
    );
    // The arguments "--count\03\0" hold NULs.
    let mut bytes = sample_policy();
    let arguments = program_mut(&mut bytes, 1).arguments;
    program_mut(&mut bytes, 1).name = arguments;
    assert_eq!(
        refused(&bytes, "program 1 has an invalid name"),
        PolicyError::InvalidProgramName {
            index: 1,
            reason: NameError::InteriorNul
        }
    );
}

#[test]
fn prefix_not_absolute() {
    let mut bytes = sample_policy();
    let name = *type_mut(&mut bytes, 0);
    *prefix_mut(&mut bytes, 2) = name;
    assert_eq!(
        refused(&bytes, "prefix 2 does not start with '/'"),
        PolicyError::PrefixNotAbsolute { index: 2 }
    );
}

#[test]
fn unknown_flags() {
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 1).flags |= 0x80;
    assert_eq!(
        refused(&bytes, "unknown flags 0x81 in domain 1"),
        PolicyError::UnknownFlags {
            record: Record::Domain { index: 1 },
            found: 0x81
        }
    );
    let mut bytes = sample_policy();
    program_mut(&mut bytes, 0).flags = 0x03;
    assert_eq!(
        refused(&bytes, "unknown flags 0x03 in program 0"),
        PolicyError::UnknownFlags {
            record: Record::Program { index: 0 },
            found: 0x03
        }
    );
}

#[test]
fn system_objects_without_objects() {
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 2).flags = policy::DOMAIN_CREATE_SYSTEM_OBJECTS;
    assert_eq!(
        refused(&bytes, "domain 2 may create system objects but not objects"),
        PolicyError::SystemObjectsWithoutObjects { index: 2 }
    );
}

#[test]
fn prefixes_out_of_bounds() {
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 1).first_prefix.set(u16::MAX);
    assert_eq!(
        refused(&bytes, "prefixes of domain 1 out of bounds"),
        PolicyError::PrefixesOutOfBounds {
            index: 1,
            first: u16::MAX,
            count: 1,
            prefix_count: 3
        }
    );
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 0).prefix_count = 4;
    assert!(matches!(
        refused(&bytes, "prefixes of domain 0 out of bounds"),
        PolicyError::PrefixesOutOfBounds {
            index: 0,
            first: 0,
            count: 4,
            ..
        }
    ));
}

#[test]
fn the_sample_devices_read_back() {
    let bytes = sample_policy();
    let policy = CompiledPolicy::parse(&bytes).expect("valid");
    let servers = policy.domain("servers").expect("servers");
    assert_eq!(
        servers.io_ports().collect::<Vec<_>>(),
        vec![(0x3f8, 0x3ff), (0x60, 0x60)]
    );
    assert_eq!(servers.irqs().collect::<Vec<_>>(), vec![4, 1]);
    assert!(servers.may_use_ports(0x3f8, 8));
    assert!(servers.may_use_ports(0x3fd, 1));
    assert!(servers.may_use_ports(0x60, 1));
    assert!(!servers.may_use_ports(0x3f8, 9));
    assert!(!servers.may_use_ports(0x3f7, 2));
    assert!(!servers.may_use_ports(0x60, 2));
    assert!(!servers.may_use_ports(0x3f8, 0));
    assert!(!servers.may_use_ports(u32::MAX, 2));
    assert!(!servers.may_use_ports(0x3f8, u32::MAX));
    assert!(servers.may_use_irq(4) && servers.may_use_irq(1));
    assert!(!servers.may_use_irq(3) && !servers.may_use_irq(0x104));
    for name in ["system", "users"] {
        let domain = policy.domain(name).expect("declared");
        assert_eq!(domain.io_ports().count() + domain.irqs().count(), 0);
        assert!(!domain.may_use_ports(0x3f8, 1) && !domain.may_use_irq(4));
    }
}

#[test]
fn devices_out_of_bounds() {
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 1).device_count = 5;
    assert_eq!(
        refused(&bytes, "devices of domain 1 out of bounds"),
        PolicyError::DevicesOutOfBounds {
            index: 1,
            first: 0,
            count: 5,
            device_count: 4
        }
    );
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 2).first_device.set(u16::MAX);
    domain_mut(&mut bytes, 2).device_count = 1;
    assert!(matches!(
        refused(&bytes, "devices of domain 2 out of bounds"),
        PolicyError::DevicesOutOfBounds { index: 2, .. }
    ));
}

#[test]
fn bad_devices() {
    let breakages: [fn(&mut DeviceRecord); 5] = [
        |device| device.kind = 0,
        |device| device.kind = 3,
        |device| {
            device.kind = DEVICE_PORTS;
            device.first.set(device.last.get() + 1);
        },
        |device| {
            device.kind = DEVICE_IRQ;
            device.first.set(16);
            device.last.set(16);
        },
        |device| {
            device.kind = DEVICE_IRQ;
            device.first.set(3);
            device.last.set(4);
        },
    ];
    for (number, breakage) in breakages.iter().enumerate() {
        let mut bytes = sample_policy();
        breakage(device_mut(&mut bytes, 1));
        assert_eq!(
            refused(&bytes, "device 1 is neither"),
            PolicyError::BadDevice { index: 1 },
            "breakage {number}"
        );
    }
}

#[test]
fn unknown_types() {
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 1).create_types[0] |= 1;
    assert_eq!(
        refused(&bytes, "domain 1's create_types holds type number 0"),
        PolicyError::UnknownType {
            index: 1,
            list: TypeList::Create,
            number: 0
        }
    );
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 2).open_types[0] |= 1 << 4;
    domain_mut(&mut bytes, 2).open_types[31] |= 1 << 7;
    assert_eq!(
        refused(&bytes, "domain 2's open_types holds type number 4"),
        PolicyError::UnknownType {
            index: 2,
            list: TypeList::Open,
            number: 4
        }
    );
}

#[test]
fn unknown_spawn_program() {
    let mut bytes = sample_policy();
    domain_mut(&mut bytes, 0).spawn[0] |= 1 << 3;
    assert_eq!(
        refused(&bytes, "domain 0's spawn holds program index 3"),
        PolicyError::UnknownSpawnProgram {
            index: 0,
            program: 3
        }
    );
}

#[test]
fn unknown_domain() {
    let mut bytes = sample_policy();
    program_mut(&mut bytes, 2).domain = 3;
    assert_eq!(
        refused(&bytes, "program 2 is in domain 3"),
        PolicyError::UnknownDomain {
            index: 2,
            domain: 3,
            domain_count: 3
        }
    );
}

#[test]
fn unterminated_arguments() {
    let mut bytes = sample_policy();
    let len = program_mut(&mut bytes, 1).arguments.len.get();
    program_mut(&mut bytes, 1).arguments.len.set(len - 1);
    assert_eq!(
        refused(
            &bytes,
            "the arguments of program 1 do not end with a NUL byte"
        ),
        PolicyError::UnterminatedArguments { index: 1 }
    );
}

// Arbitrary manifests: every rule of `Manifest::parse` holds by construction.

/// Any text of 1..=8 characters, NUL, newlines and quotes included.
fn any_name() -> impl Strategy<Value = String> {
    "(?s).{1,8}"
}

/// A valid archive entry name that is not one of the manifest's own.
fn program_name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9._-]{1,20}", "[^\\x00]{1,12}"].prop_filter("reserved", |name| {
        name != MANIFEST_ENTRY && name != POLICY_ENTRY
    })
}

/// A domain's fields but its name: masks over the types and programs, with
/// sort keys so the lists come in any order.
#[derive(Clone, Debug)]
struct DomainShape {
    create_objects: bool,
    create_system_objects: bool,
    register: Vec<String>,
    create: Vec<(bool, u8)>,
    open: Vec<(bool, u8)>,
    spawn: Vec<(bool, u8)>,
    io_ports: Vec<(u16, u8)>,
    irqs: std::collections::BTreeSet<u8>,
}

fn domain_shape() -> impl Strategy<Value = DomainShape> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::collection::btree_set("/(?s).{0,6}", 0..4),
        proptest::collection::vec(any::<(bool, u8)>(), 8),
        proptest::collection::vec(any::<(bool, u8)>(), 8),
        proptest::collection::vec(any::<(bool, u8)>(), 6),
        (
            proptest::collection::vec(any::<(u16, u8)>(), 0..4),
            proptest::collection::btree_set(0u8..=15, 0..4),
        ),
    )
        .prop_map(
            |(create_objects, system, register, create, open, spawn, (io_ports, irqs))| {
                DomainShape {
                    create_objects,
                    create_system_objects: create_objects && system,
                    register: register.into_iter().collect(),
                    create,
                    open,
                    spawn,
                    io_ports,
                    irqs,
                }
            },
        )
}

/// The entries of `names` whose mask bit is set, ordered by their keys.
fn pick(names: &[String], mask: &[(bool, u8)]) -> Vec<String> {
    let mut picked: Vec<(u8, &String)> = names
        .iter()
        .zip(mask)
        .filter(|(_, (chosen, _))| *chosen)
        .map(|(name, (_, key))| (*key, name))
        .collect();
    picked.sort_by_key(|(key, _)| *key);
    picked.into_iter().map(|(_, name)| name.clone()).collect()
}

fn arbitrary_manifest() -> impl Strategy<Value = Manifest> {
    (
        any_name(),
        proptest::collection::btree_set(any_name(), 0..8),
        proptest::collection::btree_map(any_name(), domain_shape(), 0..5),
        proptest::collection::btree_map(
            program_name(),
            (
                "[a-z-]{1,10}",
                proptest::collection::vec("[^\\x00]{0,6}", 0..4),
                any::<bool>(),
                any::<prop::sample::Index>(),
            ),
            0..6,
        ),
    )
        .prop_map(|(name, types, domains, programs)| {
            let types: Vec<String> = types.into_iter().collect();
            let domain_names: Vec<String> = domains.keys().cloned().collect();
            let programs: Vec<Program> = if domain_names.is_empty() {
                Vec::new()
            } else {
                programs
                    .into_iter()
                    .map(|(name, (package, args, start, domain))| Program {
                        name,
                        package,
                        args,
                        domain: domain.get(&domain_names).clone(),
                        start,
                    })
                    .collect()
            };
            let program_names: Vec<String> = programs.iter().map(|p| p.name.clone()).collect();
            let domains = domains
                .into_iter()
                .map(|(name, shape)| Domain {
                    // Any set of classes: derived from the name's length.
                    portal_classes: abi::portal::PortalClass(name.len() as u32 & 0x1f),
                    name,
                    create_objects: shape.create_objects,
                    create_system_objects: shape.create_system_objects,
                    register: shape.register,
                    create_types: pick(&types, &shape.create),
                    open_types: pick(&types, &shape.open),
                    spawn: pick(&program_names, &shape.spawn),
                    io_ports: port_ranges(&shape.io_ports),
                    irqs: shape.irqs.into_iter().collect(),
                })
                .collect();
            Manifest {
                system: System { name, types },
                domains,
                programs,
            }
        })
}

/// Port ranges from (first, length) pairs, keeping those that do not
/// overlap an earlier one (the manifest refuses overlaps).
fn port_ranges(pairs: &[(u16, u8)]) -> Vec<PortRange> {
    let mut ranges: Vec<PortRange> = Vec::new();
    for &(first, length) in pairs {
        let range = PortRange {
            first,
            last: first.saturating_add(u16::from(length)),
        };
        if !ranges.iter().any(|earlier| earlier.overlaps(&range)) {
            ranges.push(range);
        }
    }
    ranges
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\U{:08X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn toml_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|item| toml_string(item)).collect();
    format!("[{}]", items.join(", "))
}

/// `manifest` written as `system.toml` text.
fn render(manifest: &Manifest) -> String {
    let mut text = format!(
        "[system]\nname = {}\ntypes = {}\n",
        toml_string(&manifest.system.name),
        toml_list(&manifest.system.types)
    );
    for domain in &manifest.domains {
        text.push_str(&format!(
            "\n[[domain]]\nname = {}\ncreate_objects = {}\ncreate_system_objects = {}\n\
             register = {}\ncreate_types = {}\nopen_types = {}\nspawn = {}\nportal_classes = {}\n\
             io_ports = {}\nirqs = {:?}\n",
            toml_string(&domain.name),
            domain.create_objects,
            domain.create_system_objects,
            toml_list(&domain.register),
            toml_list(&domain.create_types),
            toml_list(&domain.open_types),
            toml_list(&domain.spawn),
            toml_list(
                &abi::portal::PortalClass::NAMES
                    .iter()
                    .filter(|(_, class)| domain.portal_classes.contains(*class))
                    .map(|(name, _)| (*name).to_owned())
                    .collect::<Vec<_>>()
            ),
            toml_list(
                &domain
                    .io_ports
                    .iter()
                    .map(|range| format!("{:#x}-{}", range.first, range.last))
                    .collect::<Vec<_>>()
            ),
            domain.irqs,
        ));
    }
    for program in &manifest.programs {
        text.push_str(&format!(
            "\n[[program]]\nname = {}\npackage = {}\nargs = {}\ndomain = {}\nstart = {}\n",
            toml_string(&program.name),
            toml_string(&program.package),
            toml_list(&program.args),
            toml_string(&program.domain),
            program.start,
        ));
    }
    text
}

proptest! {
    #[test]
    fn arbitrary_manifests_are_valid_manifests(manifest in arbitrary_manifest()) {
        // The generator writes only what `Manifest::parse` accepts, and the
        // parser reads back exactly what was written.
        let text = render(&manifest);
        let parsed = Manifest::parse(&text).map_err(|error| {
            TestCaseError::fail(format!("{error}\n--- in ---\n{text}"))
        })?;
        prop_assert_eq!(parsed, manifest);
    }

    #[test]
    fn compile_then_parse_gives_back_the_manifest(manifest in arbitrary_manifest()) {
        let bytes = policy::compile(&manifest);
        let policy = CompiledPolicy::parse(&bytes).map_err(|error| {
            TestCaseError::fail(format!("compile wrote an invalid policy: {error}"))
        })?;
        prop_assert_eq!(decompile(&policy), normalized(&manifest));
        exercise(&policy);
        for (index, program) in manifest.programs.iter().enumerate() {
            let compiled = policy.program(&program.name).expect("every program");
            prop_assert_eq!(compiled.index(), index);
            let joined: Vec<u8> = program.args.iter().flat_map(|arg| arg.bytes().chain([0])).collect();
            prop_assert_eq!(compiled.arguments(), joined.as_slice());
        }
        for domain in &manifest.domains {
            let compiled = policy.domain(&domain.name).expect("every domain");
            for (number, name) in (1..).zip(&manifest.system.types) {
                prop_assert_eq!(compiled.may_open(number), domain.open_types.contains(name));
                prop_assert_eq!(compiled.may_create_type(number), domain.create_types.contains(name));
            }
            for program in &manifest.programs {
                prop_assert_eq!(compiled.may_spawn(&program.name), domain.spawn.contains(&program.name));
            }
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(policy) = CompiledPolicy::parse(&bytes) {
            exercise(&policy);
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes_behind_a_valid_header(
        counts in any::<(u8, u8, u8, u8)>(),
        name in any::<(u8, u8)>(),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        // A header that passes the first checks, so the table checks see random data.
        let (type_count, domain_count, program_count, prefix_count) = counts;
        let mut bytes = vec![0u8; HEADER_SIZE];
        bytes.extend_from_slice(&body);
        let total = bytes.len() as u32;
        let header = header_mut(&mut bytes);
        header.magic = policy::MAGIC;
        header.version.set(policy::VERSION);
        header.total_size.set(total);
        header.system_name.offset.set(u32::from(name.0));
        header.system_name.len.set(u32::from(name.1 % 4));
        header.type_count = type_count % 8;
        header.domain_count = domain_count % 4;
        header.program_count = program_count % 8;
        header.prefix_count.set(u16::from(prefix_count % 8));
        header.device_count.set(u16::from(type_count / 32));
        if let Ok(policy) = CompiledPolicy::parse(&bytes) {
            exercise(&policy);
        }
    }

    #[test]
    fn parse_never_panics_on_mutations_of_a_valid_policy(
        manifest in arbitrary_manifest(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = policy::compile(&manifest);
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        if let Ok(policy) = CompiledPolicy::parse(&bytes) {
            exercise(&policy);
        }
    }

    #[test]
    fn parse_never_panics_on_resized_policies(
        manifest in arbitrary_manifest(),
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // Truncated or extended, with the size field made to agree, so that
        // the table and string checks meet the damage.
        let bytes = policy::compile(&manifest);
        let mut resized = bytes[..cut.index(bytes.len()).max(HEADER_SIZE)].to_vec();
        resized.extend_from_slice(&extra);
        let total = resized.len() as u32;
        header_mut(&mut resized).total_size.set(total);
        if let Ok(policy) = CompiledPolicy::parse(&resized) {
            exercise(&policy);
        }
    }

    #[test]
    fn every_truncation_of_a_valid_policy_is_refused(
        manifest in arbitrary_manifest(),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = policy::compile(&manifest);
        let len = cut.index(bytes.len());
        prop_assert!(CompiledPolicy::parse(&bytes[..len]).is_err());
    }
}

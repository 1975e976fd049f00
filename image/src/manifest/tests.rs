use super::*;

fn error_of(text: &str) -> ManifestError {
    Manifest::parse(text).expect_err("the manifest is malformed")
}

/// Asserts that `text` is refused on the line marked `# here`, with a reason
/// containing `fragment`.
#[track_caller]
fn assert_refused_at_mark(text: &str, fragment: &str) {
    let marked = text
        .lines()
        .position(|line| line.ends_with("# here"))
        .expect("the test text marks a line")
        + 1;
    let error = error_of(text);
    assert_eq!(
        error.location.map(|l| l.line),
        Some(marked),
        "{error}\n--- in ---\n{text}"
    );
    assert!(error.reason.contains(fragment), "{error}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("line {marked}, column ")),
        "{error}"
    );
}

const HEAD: &str = "[system]\nname = \"hinge\"\ntypes = [\"echo\", \"console\"]\n";
const DOMAIN_D: &str = "[[domain]]\nname = \"d\"\n";

#[test]
fn the_committed_manifest_parses() {
    let manifest = Manifest::parse(include_str!("../../system.toml")).expect("system.toml");
    assert_eq!(manifest.system.name, "hinge");
    for program in &manifest.programs {
        assert!(manifest.domain_index(&program.domain).is_some());
    }
}

#[test]
fn parses_the_whole_schema_with_defaults() {
    let manifest = Manifest::parse(
        r#"
[system]
name = "test"
types = ["echo", "console"]

[[domain]]
name = "servers"
create_objects = true
register = ["/srv/"]
create_types = ["echo"]
open_types = ["console", "echo"]
spawn = ["shell"]

[[domain]]
name = "users"

[[program]]
name = "echo"
package = "echo-server"
domain = "servers"
start = true

[[program]]
name = "shell"
package = "shell"
args = ["-i", "--quiet", ""]
domain = "users"
"#,
    )
    .expect("well-formed");
    assert_eq!(
        manifest,
        Manifest {
            system: System {
                name: "test".into(),
                types: vec!["echo".into(), "console".into()],
            },
            domains: vec![
                Domain {
                    name: "servers".into(),
                    create_objects: true,
                    create_system_objects: false,
                    register: vec!["/srv/".into()],
                    create_types: vec!["echo".into()],
                    open_types: vec!["console".into(), "echo".into()],
                    spawn: vec!["shell".into()],
                    portal_classes: abi::portal::PortalClass::default(),
                    io_ports: vec![],
                    irqs: vec![],
                },
                Domain {
                    name: "users".into(),
                    ..Domain::default()
                },
            ],
            programs: vec![
                Program {
                    name: "echo".into(),
                    package: "echo-server".into(),
                    args: vec![],
                    domain: "servers".into(),
                    start: true,
                },
                Program {
                    name: "shell".into(),
                    package: "shell".into(),
                    args: vec!["-i".into(), "--quiet".into(), String::new()],
                    domain: "users".into(),
                    start: false,
                },
            ],
        }
    );
    assert_eq!(manifest.type_number("echo"), Some(1));
    assert_eq!(manifest.type_number("console"), Some(2));
    assert_eq!(manifest.type_number("tty"), None);
    assert_eq!(manifest.domain_index("users"), Some(1));
    assert_eq!(manifest.program_index("shell"), Some(1));
    assert_eq!(manifest.program_index("init"), None);
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

    let error = error_of(&format!("{HEAD}{DOMAIN_D}create_object = true\n"));
    assert_eq!(error.location.map(|l| l.line), Some(6), "{error}");
    assert!(error.reason.contains("create_object"), "{error}");
}

#[test]
fn a_missing_key_is_reported() {
    let error = error_of(&format!(
        "{HEAD}{DOMAIN_D}[[program]]\nname = \"x\"\ndomain = \"d\"\n"
    ));
    assert!(error.reason.contains("package"), "{error}");
    let error = error_of(&format!("{HEAD}[[domain]]\ncreate_objects = true\n"));
    assert!(error.reason.contains("name"), "{error}");
}

#[test]
fn a_wrong_type_names_its_line() {
    let error = error_of("[system]\nname = 7\n");
    assert_eq!(error.location.map(|l| l.line), Some(2), "{error}");
    let error = error_of(&format!("{HEAD}{DOMAIN_D}create_objects = \"yes\"\n"));
    assert_eq!(error.location.map(|l| l.line), Some(6), "{error}");
}

#[test]
fn the_system_name_must_not_be_empty() {
    assert_refused_at_mark("[system]\nname = \"\" # here\n", "system name is empty");
}

#[test]
fn type_names_are_non_empty_and_unique() {
    assert_refused_at_mark(
        "[system]\nname = \"hinge\"\ntypes = [\n  \"echo\",\n  \"\", # here\n]\n",
        "empty",
    );
    assert_refused_at_mark(
        "[system]\nname = \"hinge\"\ntypes = [\n  \"echo\",\n  \"console\",\n  \"echo\", # here\n]\n",
        "types lists \"echo\" twice",
    );
}

#[test]
fn at_most_255_types() {
    let mut text = "[system]\nname = \"hinge\"\ntypes = [\n".to_owned();
    for number in 1..=MAX_TYPES {
        text.push_str(&format!("\"t{number}\",\n"));
    }
    let fits = format!("{text}]\n");
    assert_eq!(
        Manifest::parse(&fits)
            .expect("255 types")
            .system
            .types
            .len(),
        MAX_TYPES
    );
    assert_refused_at_mark(
        &format!("{text}\"one-too-many\", # here\n]\n"),
        "more than 255 security types",
    );
}

#[test]
fn domain_names_are_non_empty_and_unique() {
    assert_refused_at_mark(
        &format!("{HEAD}[[domain]]\nname = \"\" # here\n"),
        "domain name is empty",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}[[domain]]\nname = \"e\"\n[[domain]]\nname = \"d\" # here\n"),
        "domain name \"d\" is used twice",
    );
}

#[test]
fn at_most_64_domains() {
    let mut text = HEAD.to_owned();
    for index in 0..MAX_DOMAINS {
        text.push_str(&format!("[[domain]]\nname = \"d{index}\"\n"));
    }
    assert_eq!(
        Manifest::parse(&text).expect("64 domains").domains.len(),
        MAX_DOMAINS
    );
    assert_refused_at_mark(
        &format!("{text}[[domain]]\nname = \"d64\" # here\n"),
        "more than 64 domains",
    );
}

#[test]
fn system_objects_need_objects() {
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}create_system_objects = true # here\n"),
        "create_system_objects = true but not create_objects",
    );
    let manifest = Manifest::parse(&format!(
        "{HEAD}{DOMAIN_D}create_objects = true\ncreate_system_objects = true\n"
    ))
    .expect("both");
    assert!(manifest.domains[0].create_system_objects);
    let manifest = Manifest::parse(&format!("{HEAD}{DOMAIN_D}create_system_objects = false\n"))
        .expect("an explicit false");
    assert!(!manifest.domains[0].create_system_objects);
}

#[test]
fn register_prefixes_start_with_a_slash() {
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}register = [\n  \"/srv/\",\n  \"dev/\", # here\n]\n"),
        "register prefix \"dev/\" does not start with '/'",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}register = [\"\"] # here\n"),
        "does not start with '/'",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}register = [\n  \"/srv/\",\n  \"/srv/\", # here\n]\n"),
        "register lists \"/srv/\" twice",
    );
}

#[test]
fn at_most_255_prefixes_per_domain() {
    let mut text = format!("{HEAD}{DOMAIN_D}register = [\n");
    for index in 0..MAX_PREFIXES_PER_DOMAIN {
        text.push_str(&format!("\"/p{index}\",\n"));
    }
    let fits = format!("{text}]\n");
    assert_eq!(
        Manifest::parse(&fits).expect("255 prefixes").domains[0]
            .register
            .len(),
        MAX_PREFIXES_PER_DOMAIN
    );
    assert_refused_at_mark(
        &format!("{text}\"/one-too-many\", # here\n]\n"),
        "registers more than 255 prefixes",
    );
}

#[test]
fn domain_types_must_be_declared() {
    assert_refused_at_mark(
        &format!(
            "{HEAD}{DOMAIN_D}create_objects = true\ncreate_types = [\"echo\", \"tty\"] # here\n"
        ),
        "create_types names \"tty\", which is not one of [system] types",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}open_types = [\n  \"console\",\n  \"Echo\", # here\n]\n"),
        "open_types names \"Echo\"",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}open_types = [\n  \"console\",\n  \"console\", # here\n]\n"),
        "open_types lists \"console\" twice",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}create_types = [\"echo\",\n\"echo\"] # here\n"),
        "create_types lists \"echo\" twice",
    );
    // A manifest without types has nothing to name.
    assert_refused_at_mark(
        "[system]\nname = \"hinge\"\n[[domain]]\nname = \"d\"\nopen_types = [\"echo\"] # here\n",
        "not one of [system] types",
    );
}

#[test]
fn spawn_entries_name_programs() {
    let program = "[[program]]\nname = \"shell\"\npackage = \"shell\"\ndomain = \"d\"\n";
    // The program may come after the domain that names it.
    let manifest = Manifest::parse(&format!("{HEAD}{DOMAIN_D}spawn = [\"shell\"]\n{program}"))
        .expect("shell is a program");
    assert_eq!(manifest.domains[0].spawn, ["shell"]);
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}spawn = [\n  \"shell\",\n  \"sh\", # here\n]\n{program}"),
        "spawn names \"sh\", which is not a [[program]]",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}spawn = [\n  \"shell\",\n  \"shell\", # here\n]\n{program}"),
        "spawn lists \"shell\" twice",
    );
}

#[test]
fn every_program_domain_exists() {
    assert_refused_at_mark(
        &format!(
            "{HEAD}{DOMAIN_D}[[program]]\nname = \"x\"\npackage = \"p\"\ndomain = \"e\" # here\n"
        ),
        "program \"x\" is in domain \"e\", which is not a [[domain]]",
    );
    // No domains at all: every program's domain is unknown.
    assert_refused_at_mark(
        "[system]\nname = \"hinge\"\n[[program]]\nname = \"x\"\npackage = \"p\"\ndomain = \"d\" # here\n",
        "not a [[domain]]",
    );
}

#[test]
fn arguments_contain_no_nul() {
    assert_refused_at_mark(
        &format!(
            "{HEAD}{DOMAIN_D}[[program]]\nname = \"x\"\npackage = \"p\"\ndomain = \"d\"\nargs = [\n  \"ok\",\n  \"a\\u0000b\", # here\n]\n"
        ),
        "contains a NUL byte",
    );
}

#[test]
fn at_most_255_programs() {
    let mut text = format!("{HEAD}{DOMAIN_D}");
    for index in 0..MAX_PROGRAMS {
        text.push_str(&format!(
            "[[program]]\nname = \"p{index}\"\npackage = \"p\"\ndomain = \"d\"\n"
        ));
    }
    assert_eq!(
        Manifest::parse(&text).expect("255 programs").programs.len(),
        MAX_PROGRAMS
    );
    assert_refused_at_mark(
        &format!("{text}[[program]]\nname = \"p255\" # here\npackage = \"p\"\ndomain = \"d\"\n"),
        "more than 255 programs",
    );
}

#[test]
fn duplicate_program_names_are_refused_at_the_second() {
    let program = "[[program]]\nname = \"x\"\npackage = \"p\"\ndomain = \"d\"\n";
    let error = error_of(&format!(
        "[system]\nname = \"hinge\"\n{DOMAIN_D}{program}{program}"
    ));
    assert_eq!(
        error.location,
        Some(Location {
            line: 10,
            column: 8
        }),
        "{error}"
    );
    assert!(error.reason.contains("used twice"), "{error}");
}

#[test]
fn program_names_must_be_archive_names() {
    let long = "x".repeat(format::NAME_CAPACITY + 1);
    assert_refused_at_mark(
        &format!(
            "{HEAD}{DOMAIN_D}[[program]]\nname = \"{long}\" # here\npackage = \"p\"\ndomain = \"d\"\n"
        ),
        "cannot be a boot archive entry",
    );
    for reserved in [MANIFEST_ENTRY, POLICY_ENTRY] {
        assert_refused_at_mark(
            &format!(
                "{HEAD}{DOMAIN_D}[[program]]\nname = \"{reserved}\" # here\npackage = \"p\"\ndomain = \"d\"\n"
            ),
            "reserved",
        );
    }
}

#[test]
fn the_package_must_not_be_empty() {
    assert_refused_at_mark(
        &format!(
            "{HEAD}{DOMAIN_D}[[program]]\nname = \"x\"\npackage = \"\" # here\ndomain = \"d\"\n"
        ),
        "package is empty",
    );
}

#[test]
fn an_oversized_text_is_refused() {
    let text = format!("{HEAD}#{}\n", "x".repeat(MAX_TEXT_SIZE));
    let error = error_of(&text);
    assert_eq!(error.location, None);
    assert!(error.reason.contains("bytes long"), "{error}");
}

#[test]
fn locations_count_lines_and_characters() {
    assert_eq!(location_of("ab\ncé\nx", 0), Location { line: 1, column: 1 });
    assert_eq!(location_of("ab\ncé\nx", 3), Location { line: 2, column: 1 });
    assert_eq!(location_of("ab\ncé\nx", 7), Location { line: 3, column: 1 });
    assert_eq!(location_of("ab\ncé\nx", 6), Location { line: 2, column: 3 });
}

#[test]
fn portal_classes_are_known_and_compiled_into_the_domain() {
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}portal_classes = [\"share\", \"mmio\"] # here\n"),
        "portal_classes names \"mmio\", which is not a portal class",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}portal_classes = [\"cow\",\n\"cow\"] # here\n"),
        "portal_classes lists \"cow\" twice",
    );
    let manifest = Manifest::parse(&format!(
        "{HEAD}{DOMAIN_D}portal_classes = [\"direct\", \"share\"]\n"
    ))
    .expect("a valid manifest");
    assert_eq!(
        manifest.domains[0].portal_classes,
        abi::portal::PortalClass::DIRECT.with(abi::portal::PortalClass::SHARE)
    );
    let compiled = crate::policy::compile(&manifest);
    let policy = crate::CompiledPolicy::parse(&compiled).expect("compiles");
    assert_eq!(
        policy.domain_at(0).map(|d| d.portal_classes()),
        Some(abi::portal::PortalClass::DIRECT.with(abi::portal::PortalClass::SHARE))
    );
}

#[test]
fn io_ports_are_ranges_that_do_not_overlap() {
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}io_ports = [\n\"0x3f8-0x3ff\",\n\"0x3ff-0x400\", # here\n]\n"),
        "io_ports entry \"0x3ff-0x400\" overlaps the earlier 0x3f8-0x3ff",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}io_ports = [\"0x3ff-0x3f8\"] # here\n"),
        "ends before it starts",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}io_ports = [\"0x10000\"] # here\n"),
        "\"0x10000\" is not a port number",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}io_ports = [\"com1\"] # here\n"),
        "is not a port number",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}io_ports = [\"0x60-\"] # here\n"),
        "is not a port number",
    );
    let manifest = Manifest::parse(&format!(
        "{HEAD}{DOMAIN_D}io_ports = [\"0x3f8-0x3ff\", \"96\", \"0x2F8 - 0x2FF\"]\n"
    ))
    .expect("a valid manifest");
    assert_eq!(
        manifest.domains[0].io_ports,
        vec![
            PortRange {
                first: 0x3f8,
                last: 0x3ff
            },
            PortRange {
                first: 96,
                last: 96
            },
            PortRange {
                first: 0x2f8,
                last: 0x2ff
            },
        ]
    );
}

#[test]
fn irqs_are_isa_lines_named_once() {
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}irqs = [4,\n16] # here\n"),
        "irqs names 16, which is not an ISA interrupt line (0..=15)",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}irqs = [-1] # here\n"),
        "irqs names -1",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}irqs = [4, 3,\n4] # here\n"),
        "irqs lists 4 twice",
    );
    assert_refused_at_mark(
        &format!("{HEAD}{DOMAIN_D}irqs = [\"4\"] # here\n"),
        "invalid type",
    );
    let manifest =
        Manifest::parse(&format!("{HEAD}{DOMAIN_D}irqs = [4, 3]\n")).expect("a valid manifest");
    assert_eq!(manifest.domains[0].irqs, vec![4, 3]);
}

#[test]
fn at_most_255_device_entries_per_domain() {
    let ports: Vec<String> = (0..200).map(|port| format!("\"{port}\"")).collect();
    let irqs: Vec<String> = (0..16).map(|line| line.to_string()).collect();
    let text = format!(
        "{HEAD}{DOMAIN_D}io_ports = [{}]\nirqs = [{}]\n",
        ports.join(", "),
        irqs.join(", ")
    );
    assert_eq!(
        Manifest::parse(&text).map(|m| m.domains[0].io_ports.len() + m.domains[0].irqs.len()),
        Ok(216)
    );
    let ports: Vec<String> = (0..240).map(|port| format!("\"{port}\"")).collect();
    assert_refused_at_mark(
        &format!(
            "{HEAD}{DOMAIN_D}io_ports = [{}]\nirqs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,\n15] # here\n",
            ports.join(", ")
        ),
        "more than 255 io_ports and irqs entries",
    );
}

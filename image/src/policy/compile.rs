//! Writing a compiled policy on the host, from a checked [`Manifest`].

use super::format::{
    BITMAP_SIZE, Bitmap, DEVICE_IRQ, DEVICE_PORTS, DOMAIN_CREATE_OBJECTS,
    DOMAIN_CREATE_SYSTEM_OBJECTS, DeviceRecord, DomainRecord, HEADER_SIZE, MAGIC, PROGRAM_START,
    PolicyHeader, ProgramRecord, StrRef, VERSION,
};
use crate::manifest::Manifest;
use std::collections::HashMap;
use zerocopy::IntoBytes;
use zerocopy::little_endian::{U16, U32};

/// Compiles the policy of `manifest` (its types, domains and programs; not
/// the programs' packages, which only the image builder needs).
///
/// # Panics
///
/// If `manifest` breaks a rule that [`Manifest::parse`] checks (a name that
/// is not declared, more entries than the format holds): a manifest that
/// `parse` returned never does.
pub fn compile(manifest: &Manifest) -> Vec<u8> {
    let mut strings = StringArea::default();
    let count = |len: usize, what: &str| {
        u8::try_from(len).unwrap_or_else(|_| panic!("{len} {what} do not fit the policy format"))
    };
    let type_count = count(manifest.system.types.len(), "types");
    let domain_count = count(manifest.domains.len(), "domains");
    let program_count = count(manifest.programs.len(), "programs");
    let type_bit = |name: &String| {
        manifest
            .type_number(name)
            .unwrap_or_else(|| panic!("type {name:?} is not declared"))
    };

    let system_name = strings.add(manifest.system.name.as_bytes());
    let types: Vec<StrRef> = manifest
        .system
        .types
        .iter()
        .map(|name| strings.add(name.as_bytes()))
        .collect();

    let mut prefixes: Vec<StrRef> = Vec::new();
    let mut devices: Vec<DeviceRecord> = Vec::new();
    let mut domains: Vec<DomainRecord> = Vec::with_capacity(manifest.domains.len());
    for domain in &manifest.domains {
        let first_prefix = u16::try_from(prefixes.len()).expect("at most 64 × 255 prefixes");
        prefixes.extend(
            domain
                .register
                .iter()
                .map(|prefix| strings.add(prefix.as_bytes())),
        );
        let first_device = u16::try_from(devices.len()).expect("at most 64 × 255 devices");
        let device = |kind, first, last| DeviceRecord {
            kind,
            reserved0: 0,
            first: U16::new(first),
            last: U16::new(last),
            reserved1: U16::ZERO,
        };
        devices.extend(
            domain
                .io_ports
                .iter()
                .map(|range| device(DEVICE_PORTS, range.first, range.last)),
        );
        devices.extend(
            domain
                .irqs
                .iter()
                .map(|&line| device(DEVICE_IRQ, u16::from(line), u16::from(line))),
        );
        let mut flags = 0;
        if domain.create_objects {
            flags |= DOMAIN_CREATE_OBJECTS;
        }
        if domain.create_system_objects {
            flags |= DOMAIN_CREATE_SYSTEM_OBJECTS;
        }
        domains.push(DomainRecord {
            name: strings.add(domain.name.as_bytes()),
            flags,
            prefix_count: count(domain.register.len(), "register prefixes"),
            first_prefix: U16::new(first_prefix),
            portal_classes: u8::try_from(domain.portal_classes.0).expect("five class bits"),
            device_count: count(domain.io_ports.len() + domain.irqs.len(), "devices"),
            first_device: U16::new(first_device),
            create_types: bitmap(domain.create_types.iter().map(type_bit)),
            open_types: bitmap(domain.open_types.iter().map(type_bit)),
            spawn: bitmap(domain.spawn.iter().map(|name| {
                let index = manifest
                    .program_index(name)
                    .unwrap_or_else(|| panic!("spawn names {name:?}, which is not a program"));
                u32::try_from(index).expect("at most 255 programs")
            })),
        });
    }

    let programs: Vec<ProgramRecord> = manifest
        .programs
        .iter()
        .map(|program| {
            let domain = manifest
                .domain_index(&program.domain)
                .unwrap_or_else(|| panic!("program {:?} is in an unknown domain", program.name));
            let mut arguments = Vec::new();
            for arg in &program.args {
                arguments.extend_from_slice(arg.as_bytes());
                arguments.push(0);
            }
            ProgramRecord {
                name: strings.add(program.name.as_bytes()),
                arguments: strings.add(&arguments),
                domain: count(domain, "domains"),
                flags: if program.start { PROGRAM_START } else { 0 },
                reserved: U16::ZERO,
            }
        })
        .collect();

    let mut policy = vec![0u8; HEADER_SIZE];
    policy.extend_from_slice(types.as_bytes());
    policy.extend_from_slice(domains.as_bytes());
    policy.extend_from_slice(programs.as_bytes());
    policy.extend_from_slice(prefixes.as_bytes());
    policy.extend_from_slice(devices.as_bytes());
    policy.extend_from_slice(&strings.bytes);
    let header = PolicyHeader {
        magic: MAGIC,
        version: U32::new(VERSION),
        total_size: U32::new(u32::try_from(policy.len()).expect("a policy under 4 GiB")),
        system_name,
        type_count,
        domain_count,
        program_count,
        reserved0: 0,
        prefix_count: U16::new(u16::try_from(prefixes.len()).expect("at most 64 × 255 prefixes")),
        device_count: U16::new(u16::try_from(devices.len()).expect("at most 64 × 255 devices")),
    };
    policy[..HEADER_SIZE].copy_from_slice(header.as_bytes());
    policy
}

/// The set of `numbers` (each below 256) as a bitmap.
fn bitmap(numbers: impl IntoIterator<Item = u32>) -> Bitmap {
    let mut bitmap = [0u8; BITMAP_SIZE];
    for number in numbers {
        let byte = usize::try_from(number / 8)
            .ok()
            .and_then(|byte| bitmap.get_mut(byte))
            .unwrap_or_else(|| panic!("{number} does not fit a 256-bit set"));
        *byte |= 1 << (number % 8);
    }
    bitmap
}

/// The string area being written: each distinct string is stored once.
#[derive(Default)]
struct StringArea {
    bytes: Vec<u8>,
    known: HashMap<Vec<u8>, StrRef>,
}

impl StringArea {
    fn add(&mut self, string: &[u8]) -> StrRef {
        if let Some(known) = self.known.get(string) {
            return *known;
        }
        let reference = StrRef {
            offset: U32::new(u32::try_from(self.bytes.len()).expect("a policy under 4 GiB")),
            len: U32::new(u32::try_from(string.len()).expect("a string under 4 GiB")),
        };
        self.bytes.extend_from_slice(string);
        self.known.insert(string.to_vec(), reference);
        reference
    }
}

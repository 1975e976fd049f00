//! Reading a compiled policy: [`CompiledPolicy::parse`] checks every rule of
//! the format once, up front, so that the accessors afterwards cannot fail.
//!
//! The input is hostile until checked: every length and offset is checked
//! arithmetic, every slice is taken with `get`, and no input makes it panic
//! (the property tests feed it arbitrary and mutated bytes). Nothing here
//! allocates: procman's policy checks are lookups in the bytes themselves.

use super::error::{PolicyError, Record, TypeList};
use super::format::{
    Bitmap, DEVICE_IRQ, DEVICE_PORTS, DEVICE_RECORD_SIZE, DOMAIN_CREATE_OBJECTS,
    DOMAIN_CREATE_SYSTEM_OBJECTS, DOMAIN_RECORD_SIZE, DeviceRecord, DomainRecord, HEADER_SIZE,
    MAGIC, MAX_DOMAINS, MAX_IRQ, PROGRAM_RECORD_SIZE, PROGRAM_START, PolicyHeader, ProgramRecord,
    STR_REF_SIZE, StrRef, VERSION, bitmap_contains,
};
use crate::format::validate_name;
use core::fmt;
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

/// A compiled policy that passed every check of the format: a view of its
/// bytes.
#[derive(Clone, Copy)]
pub struct CompiledPolicy<'a> {
    bytes: &'a [u8],
    strings: &'a [u8],
    system_name: StrRef,
    type_count: u8,
    domain_count: u8,
    program_count: u8,
    prefix_count: u16,
    device_count: u16,
}

/// One domain of a [`CompiledPolicy`]: what its processes may do.
#[derive(Clone, Copy)]
pub struct DomainPolicy<'a> {
    policy: CompiledPolicy<'a>,
    record: &'a DomainRecord,
    index: u8,
}

/// One program of a [`CompiledPolicy`].
#[derive(Clone, Copy)]
pub struct ProgramPolicy<'a> {
    policy: CompiledPolicy<'a>,
    record: &'a ProgramRecord,
    domain: DomainPolicy<'a>,
    index: u8,
}

/// Where each table starts, from the header's counts; `u64` so that no count
/// can overflow it.
#[derive(Clone, Copy)]
struct Layout {
    types: u64,
    domains: u64,
    programs: u64,
    prefixes: u64,
    devices: u64,
    strings: u64,
}

impl Layout {
    fn of(
        type_count: u8,
        domain_count: u8,
        program_count: u8,
        prefix_count: u16,
        device_count: u16,
    ) -> Self {
        let types = HEADER_SIZE as u64;
        let domains = types + u64::from(type_count) * STR_REF_SIZE as u64;
        let programs = domains + u64::from(domain_count) * DOMAIN_RECORD_SIZE as u64;
        let prefixes = programs + u64::from(program_count) * PROGRAM_RECORD_SIZE as u64;
        let devices = prefixes + u64::from(prefix_count) * STR_REF_SIZE as u64;
        let strings = devices + u64::from(device_count) * DEVICE_RECORD_SIZE as u64;
        Self {
            types,
            domains,
            programs,
            prefixes,
            devices,
            strings,
        }
    }
}

/// Record `index` of the table of `T` that starts at `table`, if `bytes` holds it.
fn record_at<T>(bytes: &[u8], table: u64, index: usize) -> Option<&T>
where
    T: FromBytes + KnownLayout + Immutable + Unaligned,
{
    let start = usize::try_from(table)
        .ok()?
        .checked_add(index.checked_mul(size_of::<T>())?)?;
    let record = bytes.get(start..start.checked_add(size_of::<T>())?)?;
    T::ref_from_bytes(record).ok()
}

/// The bytes `string` names in `strings`, if they are there.
fn string_bytes(strings: &[u8], string: StrRef) -> Option<&[u8]> {
    let start = usize::try_from(string.offset.get()).ok()?;
    let len = usize::try_from(string.len.get()).ok()?;
    strings.get(start..start.checked_add(len)?)
}

/// The text `string` names in `strings`, checked.
fn checked_str(strings: &[u8], string: StrRef, record: Record) -> Result<&str, PolicyError> {
    let bytes = string_bytes(strings, string).ok_or(PolicyError::StringOutOfBounds {
        record,
        offset: string.offset.get(),
        len: string.len.get(),
        // `parse` made the string area at most `u32::MAX` bytes long.
        strings_size: u32::try_from(strings.len()).unwrap_or(u32::MAX),
    })?;
    core::str::from_utf8(bytes).map_err(|_| PolicyError::StringNotUtf8 { record })
}

/// The lowest number in `bitmap` outside `lowest..end`, if any.
fn first_outside(bitmap: &Bitmap, lowest: u32, end: u32) -> Option<u32> {
    (0..256u32).find(|&number| bitmap_contains(bitmap, number) && !(lowest..end).contains(&number))
}

impl<'a> CompiledPolicy<'a> {
    /// Validates `bytes` as a compiled policy, in this order: length of the
    /// header, magic, version, total size against the input's length, the
    /// header's reserved fields, domain count, table bounds; then the system
    /// name; each type name (in bounds, UTF-8, non-empty, unique); each domain
    /// (name as for types, portal-class bits, flags, prefix run, device
    /// run, type bitmaps, spawn bitmap); each program (name in bounds, UTF-8,
    /// a valid archive name, unique; arguments in bounds, UTF-8, terminated;
    /// domain index; flags; reserved field); each prefix (in bounds, UTF-8,
    /// starting with `/`); each device (reserved fields; a known kind, a port
    /// range that does not end before it starts, or one line 0..=15). The
    /// first broken rule is the error.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PolicyError> {
        let Ok((header, _)) = PolicyHeader::read_from_prefix(bytes) else {
            return Err(PolicyError::TooShortForHeader {
                available: bytes.len(),
            });
        };
        if header.magic != MAGIC {
            return Err(PolicyError::BadMagic {
                found: header.magic,
            });
        }
        if header.version.get() != VERSION {
            return Err(PolicyError::UnsupportedVersion {
                found: header.version.get(),
            });
        }
        let total_size = header.total_size.get();
        if usize::try_from(total_size).ok() != Some(bytes.len()) {
            return Err(PolicyError::SizeMismatch {
                declared: total_size,
                available: bytes.len(),
            });
        }
        let reserved = u32::from(header.reserved0);
        if reserved != 0 {
            return Err(PolicyError::ReservedNotZero {
                record: Record::Header,
                found: reserved,
            });
        }
        if usize::from(header.domain_count) > MAX_DOMAINS {
            return Err(PolicyError::TooManyDomains {
                count: header.domain_count,
            });
        }
        let layout = Layout::of(
            header.type_count,
            header.domain_count,
            header.program_count,
            header.prefix_count.get(),
            header.device_count.get(),
        );
        let strings = usize::try_from(layout.strings)
            .ok()
            .and_then(|start| bytes.get(start..))
            .ok_or(PolicyError::TablesOutOfBounds {
                tables_end: layout.strings,
                total_size,
            })?;

        let policy = Self {
            bytes,
            strings,
            system_name: header.system_name,
            type_count: header.type_count,
            domain_count: header.domain_count,
            program_count: header.program_count,
            prefix_count: header.prefix_count.get(),
            device_count: header.device_count.get(),
        };
        if checked_str(strings, header.system_name, Record::Header)?.is_empty() {
            return Err(PolicyError::EmptyName {
                record: Record::Header,
            });
        }
        policy.check_types()?;
        policy.check_domains()?;
        policy.check_programs()?;
        policy.check_prefixes()?;
        policy.check_devices()?;
        Ok(policy)
    }

    fn layout(&self) -> Layout {
        Layout::of(
            self.type_count,
            self.domain_count,
            self.program_count,
            self.prefix_count,
            self.device_count,
        )
    }

    fn type_ref(&self, index: u8) -> Option<&'a StrRef> {
        record_at(self.bytes, self.layout().types, usize::from(index))
    }

    fn domain_record(&self, index: u8) -> Option<&'a DomainRecord> {
        record_at(self.bytes, self.layout().domains, usize::from(index))
    }

    fn program_record(&self, index: u8) -> Option<&'a ProgramRecord> {
        record_at(self.bytes, self.layout().programs, usize::from(index))
    }

    fn prefix_ref(&self, index: u16) -> Option<&'a StrRef> {
        record_at(self.bytes, self.layout().prefixes, usize::from(index))
    }

    fn device_record(&self, index: u16) -> Option<&'a DeviceRecord> {
        record_at(self.bytes, self.layout().devices, usize::from(index))
    }

    /// The text of a string `parse` checked ("" would mean a bug in `parse`).
    fn str_of(&self, string: StrRef) -> &'a str {
        string_bytes(self.strings, string)
            .and_then(|bytes| core::str::from_utf8(bytes).ok())
            .unwrap_or_default()
    }

    /// Checks the name of record `index` of the table whose names
    /// `name_of` gives: in bounds, UTF-8, and unique; returns it.
    fn check_unique_name(
        &self,
        index: u8,
        record: Record,
        name_of: impl Fn(u8) -> Option<StrRef>,
    ) -> Result<&'a str, PolicyError> {
        let table_out_of_bounds = PolicyError::TablesOutOfBounds {
            tables_end: self.layout().strings,
            total_size: u32::try_from(self.bytes.len()).unwrap_or(u32::MAX),
        };
        let name = checked_str(
            self.strings,
            name_of(index).ok_or(table_out_of_bounds)?,
            record,
        )?;
        // Earlier names were checked already, so the quadratic scan compares
        // valid strings; tables hold at most 255 records.
        for first in 0..index {
            if name_of(first).map(|earlier| self.str_of(earlier)) == Some(name) {
                return Err(PolicyError::DuplicateName { record, first });
            }
        }
        Ok(name)
    }

    fn check_types(&self) -> Result<(), PolicyError> {
        for index in 0..self.type_count {
            let record = Record::Type { index };
            let name = self.check_unique_name(index, record, |i| self.type_ref(i).copied())?;
            if name.is_empty() {
                return Err(PolicyError::EmptyName { record });
            }
        }
        Ok(())
    }

    fn check_domains(&self) -> Result<(), PolicyError> {
        for index in 0..self.domain_count {
            let record = Record::Domain { index };
            let name =
                self.check_unique_name(index, record, |i| self.domain_record(i).map(|r| r.name))?;
            if name.is_empty() {
                return Err(PolicyError::EmptyName { record });
            }
            // `check_unique_name` found the record.
            let Some(domain) = self.domain_record(index) else {
                continue;
            };
            // Undefined portal-class bits count as a reserved field set.
            let undefined_classes =
                u32::from(domain.portal_classes) & !abi::portal::PortalClass::ALL.0;
            let reserved = undefined_classes << 24;
            if reserved != 0 {
                return Err(PolicyError::ReservedNotZero {
                    record,
                    found: reserved,
                });
            }
            let known_flags = DOMAIN_CREATE_OBJECTS | DOMAIN_CREATE_SYSTEM_OBJECTS;
            if domain.flags & !known_flags != 0 {
                return Err(PolicyError::UnknownFlags {
                    record,
                    found: domain.flags,
                });
            }
            if domain.flags & DOMAIN_CREATE_SYSTEM_OBJECTS != 0
                && domain.flags & DOMAIN_CREATE_OBJECTS == 0
            {
                return Err(PolicyError::SystemObjectsWithoutObjects { index });
            }
            let first = domain.first_prefix.get();
            if u32::from(first) + u32::from(domain.prefix_count) > u32::from(self.prefix_count) {
                return Err(PolicyError::PrefixesOutOfBounds {
                    index,
                    first,
                    count: domain.prefix_count,
                    prefix_count: self.prefix_count,
                });
            }
            let first = domain.first_device.get();
            if u32::from(first) + u32::from(domain.device_count) > u32::from(self.device_count) {
                return Err(PolicyError::DevicesOutOfBounds {
                    index,
                    first,
                    count: domain.device_count,
                    device_count: self.device_count,
                });
            }
            let type_end = u32::from(self.type_count) + 1;
            for (list, bitmap) in [
                (TypeList::Create, &domain.create_types),
                (TypeList::Open, &domain.open_types),
            ] {
                if let Some(number) = first_outside(bitmap, 1, type_end) {
                    return Err(PolicyError::UnknownType {
                        index,
                        list,
                        number,
                    });
                }
            }
            if let Some(program) = first_outside(&domain.spawn, 0, u32::from(self.program_count)) {
                return Err(PolicyError::UnknownSpawnProgram { index, program });
            }
        }
        Ok(())
    }

    fn check_programs(&self) -> Result<(), PolicyError> {
        for index in 0..self.program_count {
            let record = Record::Program { index };
            let name =
                self.check_unique_name(index, record, |i| self.program_record(i).map(|r| r.name))?;
            validate_name(name)
                .map_err(|reason| PolicyError::InvalidProgramName { index, reason })?;
            let Some(program) = self.program_record(index) else {
                continue;
            };
            let arguments =
                checked_str(self.strings, program.arguments, Record::Arguments { index })?;
            if !arguments.is_empty() && !arguments.ends_with('\0') {
                return Err(PolicyError::UnterminatedArguments { index });
            }
            if program.domain >= self.domain_count {
                return Err(PolicyError::UnknownDomain {
                    index,
                    domain: program.domain,
                    domain_count: self.domain_count,
                });
            }
            if program.flags & !PROGRAM_START != 0 {
                return Err(PolicyError::UnknownFlags {
                    record,
                    found: program.flags,
                });
            }
            if program.reserved.get() != 0 {
                return Err(PolicyError::ReservedNotZero {
                    record,
                    found: u32::from(program.reserved.get()),
                });
            }
        }
        Ok(())
    }

    fn check_prefixes(&self) -> Result<(), PolicyError> {
        for index in 0..self.prefix_count {
            let record = Record::Prefix { index };
            let Some(prefix) = self.prefix_ref(index) else {
                return Err(PolicyError::TablesOutOfBounds {
                    tables_end: self.layout().strings,
                    total_size: u32::try_from(self.bytes.len()).unwrap_or(u32::MAX),
                });
            };
            if !checked_str(self.strings, *prefix, record)?.starts_with('/') {
                return Err(PolicyError::PrefixNotAbsolute { index });
            }
        }
        Ok(())
    }

    fn check_devices(&self) -> Result<(), PolicyError> {
        for index in 0..self.device_count {
            let Some(device) = self.device_record(index) else {
                return Err(PolicyError::TablesOutOfBounds {
                    tables_end: self.layout().strings,
                    total_size: u32::try_from(self.bytes.len()).unwrap_or(u32::MAX),
                });
            };
            let reserved = u32::from(device.reserved0) | u32::from(device.reserved1.get()) << 8;
            if reserved != 0 {
                return Err(PolicyError::ReservedNotZero {
                    record: Record::Device { index },
                    found: reserved,
                });
            }
            let (first, last) = (device.first.get(), device.last.get());
            let valid = match device.kind {
                DEVICE_PORTS => first <= last,
                DEVICE_IRQ => first == last && first <= MAX_IRQ,
                _ => false,
            };
            if !valid {
                return Err(PolicyError::BadDevice { index });
            }
        }
        Ok(())
    }

    /// The system's name (`[system] name`).
    pub fn system_name(&self) -> &'a str {
        self.str_of(self.system_name)
    }

    /// How many security types there are; their numbers are `1..=type_count()`.
    pub fn type_count(&self) -> u32 {
        u32::from(self.type_count)
    }

    /// The security types' names, in type-number order (from 1).
    pub fn types(&self) -> impl ExactSizeIterator<Item = &'a str> + Clone + use<'a> {
        let policy = *self;
        (0..self.type_count).map(move |index| {
            policy
                .type_ref(index)
                .map_or("", |name| policy.str_of(*name))
        })
    }

    /// The number of security type `name`, if it is declared (never 0).
    pub fn type_number(&self, name: &str) -> Option<u32> {
        let index = self.types().position(|candidate| candidate == name)?;
        u32::try_from(index + 1).ok()
    }

    /// The name of security type `number`, if it is declared.
    pub fn type_name(&self, number: u32) -> Option<&'a str> {
        let index = u8::try_from(number.checked_sub(1)?).ok()?;
        (index < self.type_count).then(|| self.type_ref(index).map(|name| self.str_of(*name)))?
    }

    /// How many domains there are.
    pub fn domain_count(&self) -> usize {
        usize::from(self.domain_count)
    }

    /// The domains, in manifest order.
    pub fn domains(&self) -> impl Iterator<Item = DomainPolicy<'a>> + Clone + use<'a> {
        let policy = *self;
        (0..self.domain_count).filter_map(move |index| policy.domain_at(usize::from(index)))
    }

    /// Domain `index` (its place in the manifest), if there is one.
    pub fn domain_at(&self, index: usize) -> Option<DomainPolicy<'a>> {
        let index = u8::try_from(index).ok()?;
        (index < self.domain_count)
            .then(|| self.domain_record(index))?
            .map(|record| DomainPolicy {
                policy: *self,
                record,
                index,
            })
    }

    /// The domain called `name`, if there is one.
    pub fn domain(&self, name: &str) -> Option<DomainPolicy<'a>> {
        self.domains().find(|domain| domain.name() == name)
    }

    /// How many programs there are.
    pub fn program_count(&self) -> usize {
        usize::from(self.program_count)
    }

    /// The programs, in manifest order.
    pub fn programs(&self) -> impl Iterator<Item = ProgramPolicy<'a>> + Clone + use<'a> {
        let policy = *self;
        (0..self.program_count).filter_map(move |index| policy.program_at(usize::from(index)))
    }

    /// Program `index` (its place in the manifest), if there is one.
    pub fn program_at(&self, index: usize) -> Option<ProgramPolicy<'a>> {
        let index = u8::try_from(index).ok()?;
        let record = (index < self.program_count).then(|| self.program_record(index))??;
        Some(ProgramPolicy {
            policy: *self,
            record,
            domain: self.domain_at(usize::from(record.domain))?,
            index,
        })
    }

    /// The program called `name`, if there is one.
    pub fn program(&self, name: &str) -> Option<ProgramPolicy<'a>> {
        self.programs().find(|program| program.name() == name)
    }

    /// The programs procman starts at boot, in manifest order.
    pub fn boot_programs(&self) -> impl Iterator<Item = ProgramPolicy<'a>> + Clone + use<'a> {
        self.programs().filter(ProgramPolicy::starts_at_boot)
    }

    /// The policy's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<'a> DomainPolicy<'a> {
    /// The domain's index (its place in the manifest).
    pub fn index(&self) -> usize {
        usize::from(self.index)
    }

    /// The domain's name.
    pub fn name(&self) -> &'a str {
        self.policy.str_of(self.record.name)
    }

    /// The portal classes the domain may ask procman for.
    pub fn portal_classes(&self) -> abi::portal::PortalClass {
        abi::portal::PortalClass(u32::from(self.record.portal_classes))
    }

    /// The domain's device records (`parse` checked each one).
    fn devices(&self) -> impl Iterator<Item = &'a DeviceRecord> + Clone + use<'a> {
        let policy = self.policy;
        let first = self.record.first_device.get();
        (0..u16::from(self.record.device_count)).filter_map(move |offset| {
            first
                .checked_add(offset)
                .and_then(|index| policy.device_record(index))
        })
    }

    /// The I/O port ranges (first, last; inclusive) the domain may ask
    /// procman for, in manifest order (`io_ports`).
    pub fn io_ports(&self) -> impl Iterator<Item = (u16, u16)> + Clone + use<'a> {
        self.devices()
            .filter(|device| device.kind == DEVICE_PORTS)
            .map(|device| (device.first.get(), device.last.get()))
    }

    /// The interrupt lines the domain may ask procman for, in manifest
    /// order (`irqs`).
    pub fn irqs(&self) -> impl Iterator<Item = u8> + Clone + use<'a> {
        self.devices()
            .filter(|device| device.kind == DEVICE_IRQ)
            .filter_map(|device| u8::try_from(device.first.get()).ok())
    }

    /// Whether one `io_ports` entry covers all of the ports
    /// `[first, first + count)`; an empty range or one past port 0xFFFF is
    /// covered by none.
    pub fn may_use_ports(&self, first: u32, count: u32) -> bool {
        let Some(last) = count
            .checked_sub(1)
            .and_then(|extra| first.checked_add(extra))
        else {
            return false;
        };
        self.io_ports()
            .any(|(low, high)| u32::from(low) <= first && last <= u32::from(high))
    }

    /// Whether the domain's `irqs` name interrupt line `line`.
    pub fn may_use_irq(&self, line: u32) -> bool {
        self.irqs().any(|allowed| u32::from(allowed) == line)
    }

    /// Whether the domain may create IPC objects at all.
    pub fn may_create_objects(&self) -> bool {
        self.record.flags & DOMAIN_CREATE_OBJECTS != 0
    }

    /// Whether the domain may create *system* IPC objects (implies
    /// [`may_create_objects`](Self::may_create_objects)).
    pub fn may_create_system_objects(&self) -> bool {
        self.record.flags & DOMAIN_CREATE_SYSTEM_OBJECTS != 0
    }

    /// The name prefixes the domain may register, in manifest order.
    pub fn register_prefixes(&self) -> impl ExactSizeIterator<Item = &'a str> + Clone + use<'a> {
        let policy = self.policy;
        let first = self.record.first_prefix.get();
        (0..u16::from(self.record.prefix_count)).map(move |offset| {
            first
                .checked_add(offset)
                .and_then(|index| policy.prefix_ref(index))
                .map_or("", |prefix| policy.str_of(*prefix))
        })
    }

    /// Whether the domain may register `name`: it starts with one of the
    /// domain's prefixes.
    pub fn may_register(&self, name: &str) -> bool {
        self.register_prefixes()
            .any(|prefix| name.starts_with(prefix))
    }

    /// The type numbers the domain may give the objects it creates, ascending.
    pub fn create_types(&self) -> impl Iterator<Item = u32> + Clone + use<'a> {
        let bitmap = &self.record.create_types;
        (1..=self.policy.type_count()).filter(move |&number| bitmap_contains(bitmap, number))
    }

    /// Whether the domain may give its objects type `number`.
    pub fn may_create_type(&self, number: u32) -> bool {
        bitmap_contains(&self.record.create_types, number)
    }

    /// The type numbers of the objects the domain may open, ascending.
    pub fn open_types(&self) -> impl Iterator<Item = u32> + Clone + use<'a> {
        let bitmap = &self.record.open_types;
        (1..=self.policy.type_count()).filter(move |&number| bitmap_contains(bitmap, number))
    }

    /// Whether the domain may open an object of type `number`.
    pub fn may_open(&self, number: u32) -> bool {
        bitmap_contains(&self.record.open_types, number)
    }

    /// The names of the programs the domain may spawn, in manifest order.
    pub fn spawnable(&self) -> impl Iterator<Item = &'a str> + Clone + use<'a> {
        let bitmap = &self.record.spawn;
        self.policy
            .programs()
            .filter(move |program| bitmap_contains(bitmap, u32::from(program.index)))
            .map(|program| program.name())
    }

    /// Whether the domain may spawn program `index`.
    pub fn may_spawn_index(&self, index: usize) -> bool {
        u32::try_from(index).is_ok_and(|index| bitmap_contains(&self.record.spawn, index))
    }

    /// Whether the domain may spawn the program called `name`.
    pub fn may_spawn(&self, name: &str) -> bool {
        self.policy
            .program(name)
            .is_some_and(|program| self.may_spawn_index(program.index()))
    }
}

impl<'a> ProgramPolicy<'a> {
    /// The program's index (its place in the manifest).
    pub fn index(&self) -> usize {
        usize::from(self.index)
    }

    /// The program's archive entry name.
    pub fn name(&self) -> &'a str {
        self.policy.str_of(self.record.name)
    }

    /// The index of the program's domain.
    pub fn domain_index(&self) -> usize {
        self.domain.index()
    }

    /// The program's domain.
    pub fn domain(&self) -> DomainPolicy<'a> {
        self.domain
    }

    /// The program's argument bytes, as procman passes them to the program:
    /// each argument followed by a NUL byte (empty when it has none).
    pub fn arguments(&self) -> &'a [u8] {
        string_bytes(self.policy.strings, self.record.arguments).unwrap_or_default()
    }

    /// The program's arguments, one by one.
    pub fn argument_list(&self) -> impl Iterator<Item = &'a str> + Clone + use<'a> {
        self.policy
            .str_of(self.record.arguments)
            .split_terminator('\0')
    }

    /// Whether procman starts the program at boot.
    pub fn starts_at_boot(&self) -> bool {
        self.record.flags & PROGRAM_START != 0
    }
}

// The bytes would drown a debug print; the shape is what matters.
impl fmt::Debug for CompiledPolicy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("system_name", &self.system_name())
            .field("types", &self.type_count)
            .field("domains", &self.domain_count)
            .field("programs", &self.program_count)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for DomainPolicy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainPolicy")
            .field("index", &self.index)
            .field("name", &self.name())
            .field("create_objects", &self.may_create_objects())
            .field("create_system_objects", &self.may_create_system_objects())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ProgramPolicy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgramPolicy")
            .field("index", &self.index)
            .field("name", &self.name())
            .field("domain", &self.domain.name())
            .field("start", &self.starts_at_boot())
            .finish_non_exhaustive()
    }
}

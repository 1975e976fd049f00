//! The Limine side of the boot image: where the kernel and the boot archive
//! sit inside the ISO, and the `limine.conf` that tells Limine to load them.
//! xtask lays the ISO out from these paths; nothing else restates them.

use std::fmt;

/// The kernel ELF inside the ISO root.
pub const KERNEL_FILE: &str = "boot/kernel.elf";

/// The boot archive inside the ISO root (loaded as the one Limine module).
pub const ARCHIVE_FILE: &str = "boot/boot.archive";

/// The directory of Limine's own files and of `limine.conf` inside the ISO root.
pub const LIMINE_DIR: &str = "boot/limine";

/// `limine.conf` inside the ISO root.
pub const CONFIG_FILE: &str = "boot/limine/limine.conf";

/// The name of the single boot entry.
pub const ENTRY_NAME: &str = "hinge";

/// The Limine path of a file inside the boot medium's root, e.g. `boot():/boot/kernel.elf`.
pub fn boot_path(file_in_root: &str) -> String {
    format!("boot():/{file_in_root}")
}

/// Why a value cannot be written into `limine.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigValueError {
    /// Which option it was for (`kernel_path`, `module_path`, `cmdline`).
    pub option: &'static str,
    /// The value as given.
    pub value: String,
}

impl fmt::Display for ConfigValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "limine.conf {}: {:?} contains a control character (a line break would start a new option)",
            self.option, self.value
        )
    }
}

impl std::error::Error for ConfigValueError {}

/// The text of `limine.conf`: no menu delay, one entry that boots the kernel
/// with the Limine protocol, the boot archive as its module and `cmdline` as
/// the kernel command line (left out when empty).
pub fn render(
    kernel_path: &str,
    module_path: &str,
    cmdline: &str,
) -> Result<String, ConfigValueError> {
    let kernel_path = single_line("kernel_path", kernel_path)?;
    let module_path = single_line("module_path", module_path)?;
    let cmdline = single_line("cmdline", cmdline)?.trim();

    let mut text = format!(
        "# Written by `cargo xtask image`; see image/src/limine_conf.rs.\n\
         timeout: 0\n\
         \n\
         /{ENTRY_NAME}\n    \
             protocol: limine\n    \
             kernel_path: {kernel_path}\n    \
             module_path: {module_path}\n"
    );
    if !cmdline.is_empty() {
        text.push_str(&format!("    cmdline: {cmdline}\n"));
    }
    Ok(text)
}

fn single_line<'a>(option: &'static str, value: &'a str) -> Result<&'a str, ConfigValueError> {
    if value.chars().any(char::is_control) {
        Err(ConfigValueError {
            option,
            value: value.to_owned(),
        })
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_entry_with_kernel_module_and_cmdline() {
        let text = render(
            &boot_path(KERNEL_FILE),
            &boot_path(ARCHIVE_FILE),
            "qemu-exit",
        )
        .expect("plain values");
        assert_eq!(
            text,
            "# Written by `cargo xtask image`; see image/src/limine_conf.rs.\n\
             timeout: 0\n\
             \n\
             /hinge\n    \
                 protocol: limine\n    \
                 kernel_path: boot():/boot/kernel.elf\n    \
                 module_path: boot():/boot/boot.archive\n    \
                 cmdline: qemu-exit\n"
        );
    }

    #[test]
    fn leaves_out_an_empty_cmdline() {
        let text = render("boot():/k", "boot():/m", "  ").expect("plain values");
        assert!(!text.contains("cmdline"));
    }

    #[test]
    fn refuses_values_that_would_inject_options() {
        let error = render("boot():/k", "boot():/m", "a\n    kernel_path: x").expect_err("newline");
        assert_eq!(error.option, "cmdline");
    }
}

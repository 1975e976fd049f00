//! Keeps ABI.md honest: every error and every kernel function the crate
//! defines is documented there, with the same number.

const SPEC: &str = include_str!("../ABI.md");

#[test]
fn every_error_is_documented_with_its_number() {
    for error in abi::Error::ALL {
        let row = format!("| {} | {} |", *error as u32, error.name());
        assert!(SPEC.contains(&row), "ABI.md lacks the error row `{row}`");
    }
}

#[test]
fn every_kernel_function_is_documented_with_its_number() {
    for function in abi::KernelFunction::ALL {
        let name = function.name();
        let number = format!("0x{:03X}", *function as i32);
        let documented = SPEC
            .lines()
            .any(|line| line.contains(&number) && line.contains(name));
        assert!(documented, "ABI.md lacks {name} ({number}) on one line");
    }
}

#[test]
fn every_procman_error_is_documented_with_its_number() {
    for error in abi::procman::ProcmanError::ALL {
        let row = format!("| 0x{:04X} | {} |", *error as u32, error.name());
        assert!(
            SPEC.contains(&row),
            "ABI.md lacks the procman error row `{row}`"
        );
    }
}

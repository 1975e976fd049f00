//! Keeps the table, README.md and ABI.md honest with each other:
//! - every case ID is well formed, unique, in its area, in increasing order;
//! - README.md's catalogue has exactly one row per case, equal to the row
//!   the table generates (ID, section, decisions, rule, expected values),
//!   and no row for a case that does not exist;
//! - every decision `D<n>` of ABI.md §9 is checked by at least one case,
//!   every decision a case names exists, and README.md's decision map lists
//!   exactly the cases of each;
//! - every section a case cites is a heading of ABI.md.
//!
//! After adding or changing a case, print the rows to paste with
//! `cargo test -p conformance --test docs -- --ignored --nocapture catalogue`.

use std::collections::{BTreeMap, BTreeSet};

use conformance::Case;
use conformance::cases::{AREAS, all};

const README: &str = include_str!("../README.md");
const ABI: &str = include_str!("../../abi/ABI.md");

const CATALOGUE_BEGIN: &str = "<!-- catalogue: begin -->";
const CATALOGUE_END: &str = "<!-- catalogue: end -->";
const DECISIONS_BEGIN: &str = "<!-- decisions: begin -->";
const DECISIONS_END: &str = "<!-- decisions: end -->";

/// The text between two markers of README.md.
fn section<'a>(text: &'a str, begin: &str, end: &str) -> &'a str {
    let start = text
        .find(begin)
        .unwrap_or_else(|| panic!("README.md lacks the marker {begin}"));
    let stop = text
        .find(end)
        .unwrap_or_else(|| panic!("README.md lacks the marker {end}"));
    &text[start + begin.len()..stop]
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The catalogue row of a case.
fn row(case: &Case) -> String {
    let decisions = if case.decisions.is_empty() {
        String::from("-")
    } else {
        case.decisions.join(", ")
    };
    format!(
        "| {} | §{} | {} | {} | `{}` |",
        case.id,
        case.section,
        decisions,
        escape(case.rule),
        escape(&case.expect.describe())
    )
}

/// Every `MSG-<AREA>-<NNN>` token of `text`.
fn ids_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(offset) = text[at..].find("MSG-") {
        let start = at + offset;
        let mut end = start + 4;
        while end < bytes.len() && bytes[end].is_ascii_uppercase() {
            end += 1;
        }
        let digits = end + 1;
        if end > start + 4
            && bytes.get(end) == Some(&b'-')
            && bytes
                .get(digits..digits + 3)
                .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            && !bytes.get(digits + 3).is_some_and(u8::is_ascii_digit)
        {
            found.push(text[start..digits + 3].to_owned());
        }
        at = start + 4;
    }
    found
}

/// The decisions ABI.md §9 lists: `D1`, `D2`, ...
fn abi_decisions() -> BTreeSet<String> {
    let start = ABI
        .find("## 9. ")
        .expect("ABI.md has a section 9 (decisions)");
    let rest = &ABI[start..];
    let end = rest[6..].find("\n## ").map_or(rest.len(), |at| at + 6);
    rest[..end]
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("- **D"))
        .filter_map(|line| {
            let digits: String = line.chars().take_while(char::is_ascii_digit).collect();
            (!digits.is_empty()).then(|| format!("D{digits}"))
        })
        .collect()
}

#[test]
fn ids_are_well_formed_unique_in_their_area_and_increasing() {
    let mut seen = BTreeSet::new();
    for (area, cases) in AREAS {
        let mut last = 0;
        for case in cases.iter() {
            let ids = ids_in(case.id);
            assert_eq!(
                ids,
                [case.id],
                "{} is not of the form MSG-<AREA>-<NNN>",
                case.id
            );
            let prefix = format!("MSG-{area}-");
            let number: u32 = case
                .id
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{} is filed under {area}", case.id))
                .parse()
                .unwrap_or(0);
            assert!(number > last, "{} is out of order in {area}", case.id);
            last = number;
            assert!(seen.insert(case.id), "{} appears twice", case.id);
        }
    }
    assert!(seen.len() >= 80, "the suite has only {} cases", seen.len());
}

#[test]
fn rules_are_one_line_and_expectations_printable() {
    for case in all() {
        assert!(
            !case.rule.is_empty() && !case.rule.contains('\n'),
            "{}: the rule must be one line",
            case.id
        );
        // The runner separates the rule from the details with " -- ".
        assert!(
            !case.rule.contains(" -- "),
            "{}: the rule contains \" -- \"",
            case.id
        );
        assert!(
            case.expect.describe().starts_with(case.expect.observed),
            "{}",
            case.id
        );
    }
}

#[test]
fn every_case_is_documented_once_and_exactly_as_the_table_says() {
    let catalogue = section(README, CATALOGUE_BEGIN, CATALOGUE_END);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in ids_in(catalogue) {
        *counts.entry(id).or_default() += 1;
    }
    let mut problems = Vec::new();
    for case in all() {
        match counts.remove(case.id) {
            None => problems.push(format!("missing from README.md: {}", row(case))),
            Some(1) => {
                if !catalogue.lines().any(|line| line == row(case)) {
                    problems.push(format!(
                        "README.md's row of {} differs from the table; it should be:\n{}",
                        case.id,
                        row(case)
                    ));
                }
            }
            Some(count) => problems.push(format!(
                "{} is documented {count} times in README.md",
                case.id
            )),
        }
    }
    for (id, _) in counts {
        problems.push(format!("README.md documents {id}, which is no case"));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_decision_of_abi_md_is_checked_and_mapped_in_readme() {
    let decisions = abi_decisions();
    assert!(decisions.len() >= 12, "ABI.md §9 lists {decisions:?}");
    let mut by_decision: BTreeMap<String, Vec<&str>> =
        decisions.iter().map(|d| (d.clone(), Vec::new())).collect();
    for case in all() {
        for decision in case.decisions {
            by_decision
                .get_mut(*decision)
                .unwrap_or_else(|| {
                    panic!(
                        "{} names {decision}, which ABI.md §9 does not list",
                        case.id
                    )
                })
                .push(case.id);
        }
    }
    let map = section(README, DECISIONS_BEGIN, DECISIONS_END);
    for (decision, ids) in &by_decision {
        assert!(!ids.is_empty(), "no case checks {decision} of ABI.md §9");
        let expected = format!("| {decision} | {} |", ids.join(", "));
        assert!(
            map.lines()
                .any(|line| line.starts_with(&format!("| {decision} |"))
                    && line.ends_with(&format!("| {} |", ids.join(", ")))),
            "README.md's decision map should have the row\n{expected}\n(with the decision's title between)"
        );
    }
}

#[test]
fn every_cited_section_is_a_heading_of_abi_md() {
    for case in all() {
        let top = case.section.split('.').next().unwrap_or_default();
        let heading = if case.section.contains('.') {
            format!("\n### {} ", case.section)
        } else {
            format!("\n## {top}. ")
        };
        assert!(
            ABI.contains(&heading),
            "{} cites §{}, which ABI.md lacks",
            case.id,
            case.section
        );
    }
}

/// Prints the catalogue rows and the decision map (run with --ignored --nocapture).
#[test]
#[ignore]
fn catalogue() {
    println!("{CATALOGUE_BEGIN}");
    println!(
        "| ID | ABI.md | decisions | rule | expected (the observed trap's registers; buffer bytes at offsets from its msgPtr) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for case in all() {
        println!("{}", row(case));
    }
    println!("{CATALOGUE_END}");
    println!();
    let mut by_decision: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for case in all() {
        for decision in case.decisions {
            let number = decision.trim_start_matches('D').parse().unwrap_or(0);
            by_decision.entry(number).or_default().push(case.id);
        }
    }
    for (number, ids) in by_decision {
        println!("| D{number} | ... | {} |", ids.join(", "));
    }
}

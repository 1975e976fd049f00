//! `cargo xtask bench --plot FILE.svg`: the rows in the guest's unit as
//! horizontal bars on a log scale, hinge's and Linux's side by side
//! (grouped by what they measure: the trap, then the round trips by size),
//! drawn with `plotters`' SVG backend. It writes only the file it is given.

use super::{Row, System, Unit, kind_of, unit_of};
use crate::cli::Accel;
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

/// Pixels per bar, and the chart's width.
const BAR_HEIGHT: u32 = 26;
const WIDTH: u32 = 1000;

/// The rows to draw: the guest's unit only (instructions are never drawn
/// beside cycles), ordered by kind, then system, then name.
fn drawn(accel: Accel, rows: &[Row]) -> Vec<&Row> {
    let unit = unit_of(accel);
    let mut drawn: Vec<&Row> = rows
        .iter()
        .filter(|row| row.unit == unit && row.median > 0 && row.name != "rdtsc-empty")
        .collect();
    drawn.sort_by_key(|row| {
        let kind = match kind_of(row) {
            Some(super::Kind::Trap) => (0, 0),
            Some(super::Kind::Message(bytes)) => (1, bytes),
            None => (2, row.payload_bytes),
        };
        (kind, row.system != System::Guest, row.name.clone())
    });
    drawn
}

fn colour(system: System) -> RGBColor {
    match system {
        System::Guest => RGBColor(0x1f, 0x77, 0xb4),
        System::LinuxVm => RGBColor(0xd6, 0x27, 0x28),
        System::Linux => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

/// Writes the chart to `path`.
pub fn write_svg(path: &Path, accel: Accel, rows: &[Row]) -> Result<()> {
    let rows = drawn(accel, rows);
    if rows.is_empty() {
        return Err(anyhow!("no row in the guest's unit to plot"));
    }
    let count = rows.len();
    let height = 120 + BAR_HEIGHT * count as u32;
    let largest = rows.iter().map(|row| row.median).max().unwrap_or(1) as f64;
    let unit = match unit_of(accel) {
        Unit::Instructions => "instructions per operation (tcg-icount), log scale",
        Unit::Cycles => "TSC cycles per operation, log scale",
    };
    let fail = |error: &dyn std::fmt::Display| anyhow!("drawing {}: {error}", path.display());
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("hinge and Linux, {} (median)", accel.name()),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(260)
        .build_cartesian_2d(
            (10f64..largest * 2.0).log_scale(),
            -0.5f64..count as f64 - 0.5,
        )
        .map_err(|e| fail(&e))?;
    let labels: Vec<String> = rows
        .iter()
        .map(|row| format!("{} {}", row.system.name(), row.name))
        .collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(count)
        .y_label_formatter(&|y| {
            let index = y.round();
            if (y - index).abs() < 0.01 && index >= 0.0 {
                labels.get(index as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc(unit)
        .draw()
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(rows.iter().enumerate().map(|(index, row)| {
            let at = index as f64;
            Rectangle::new(
                [(10.0, at - 0.35), (row.median as f64, at + 0.35)],
                colour(row.system).filled(),
            )
        }))
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(rows.iter().enumerate().map(|(index, row)| {
            Text::new(
                row.median.to_string(),
                (row.median as f64 * 1.05, index as f64 + 0.15),
                ("sans-serif", 13),
            )
        }))
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: System, name: &str, payload_bytes: u32, unit: Unit, median: u64) -> Row {
        Row {
            name: name.to_owned(),
            system,
            payload_bytes,
            descriptors: 0,
            unit,
            median,
            p10: median,
            p90: median,
            iterations: 1,
        }
    }

    #[test]
    fn only_the_guests_unit_is_drawn_grouped_by_kind() {
        let rows = [
            row(System::Linux, "pipe-64", 64, Unit::Cycles, 9000),
            row(System::LinuxVm, "pipe-64", 64, Unit::Instructions, 13000),
            row(System::Guest, "roundtrip-64", 64, Unit::Instructions, 1980),
            row(
                System::LinuxVm,
                "syscall-getppid",
                0,
                Unit::Instructions,
                340,
            ),
            row(System::Guest, "trap-null", 0, Unit::Instructions, 346),
            row(System::Guest, "rdtsc-empty", 0, Unit::Instructions, 1),
        ];
        let names: Vec<(System, &str)> = drawn(Accel::TcgIcount, &rows)
            .into_iter()
            .map(|row| (row.system, row.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (System::Guest, "trap-null"),
                (System::LinuxVm, "syscall-getppid"),
                (System::Guest, "roundtrip-64"),
                (System::LinuxVm, "pipe-64"),
            ]
        );
    }

    #[test]
    fn the_chart_is_an_svg_with_every_row() {
        let rows = [
            row(System::Guest, "roundtrip-64", 64, Unit::Instructions, 1980),
            row(System::LinuxVm, "pipe-64", 64, Unit::Instructions, 13130),
        ];
        let path = std::env::temp_dir().join(format!("hinge-plot-{}.svg", std::process::id()));
        write_svg(&path, Accel::TcgIcount, &rows).expect("plot");
        let text = std::fs::read_to_string(&path).expect("svg");
        let _ = std::fs::remove_file(&path);
        assert!(text.starts_with("<svg"), "{text}");
        assert!(text.contains("guest roundtrip-64"), "{text}");
        assert!(text.contains("linux-vm pipe-64"), "{text}");
        assert!(text.contains("13130"), "{text}");
        assert!(write_svg(&path, Accel::Kvm, &rows).is_err());
    }
}

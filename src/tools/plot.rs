//! SVG plots of a load run (plotters): the latency distribution by
//! percentile (log scale in "nines", as HdrHistogram plots it) and the
//! messages sent per second over the run.

use hdrhistogram::Histogram;
use plotters::prelude::*;
use std::path::Path;

fn io_error(err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

/// Latency (µs) against percentile, one line per histogram.
///
/// # Errors
/// The file could not be written.
pub fn latency(path: &Path, series: &[(&str, &Histogram<u64>)]) -> std::io::Result<()> {
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(io_error)?;
    let points: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, h)| {
            h.iter_quantiles(1)
                .map(|v| {
                    let q = v.quantile_iterated_to().min(0.999_999);
                    (-(1.0 - q).log10(), v.value_iterated_to() as f64 / 1_000.0)
                })
                .collect()
        })
        .collect();
    let y_max = points.iter().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption("latency by percentile", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..6.0, 0.0..y_max)
        .map_err(io_error)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("microseconds")
        .x_label_formatter(&|x: &f64| format!("{:.4}%", 100.0 * (1.0 - 10f64.powf(-*x))))
        .draw()
        .map_err(io_error)?;
    for (i, ((name, _), line)) in series.iter().zip(points).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))
            .map_err(io_error)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart.configure_series_labels().border_style(BLACK).draw().map_err(io_error)?;
    root.present().map_err(io_error)
}

/// Messages sent in each second of the measured run.
///
/// # Errors
/// The file could not be written.
pub fn throughput(path: &Path, per_second: &[u64]) -> std::io::Result<()> {
    let root = SVGBackend::new(path, (900, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(io_error)?;
    let y_max = per_second.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let x_max = per_second.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("throughput", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(io_error)?;
    chart.configure_mesh().x_desc("second").y_desc("messages per second").draw().map_err(io_error)?;
    let line = per_second.iter().enumerate().map(|(i, n)| (i as f64 + 0.5, *n as f64));
    chart.draw_series(LineSeries::new(line, BLUE.stroke_width(2))).map_err(io_error)?;
    root.present().map_err(io_error)
}

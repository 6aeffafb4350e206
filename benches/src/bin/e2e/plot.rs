//! Plots of a results file: throughput and latency against offered load, one line per store and
//! transport, as SVG beside the JSON.

use plotters::prelude::*;
use serde_json::Value;
use std::path::Path;

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// (run name, points) for one figure of each step: x = offered detections/s.
fn series(results: &Value, y: impl Fn(&Value) -> Option<f64>) -> Vec<(String, Vec<(f64, f64)>)> {
    results["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|run| {
            let name = format!(
                "{} / {}",
                run["store"].as_str().unwrap_or("?"),
                run["transport"].as_str().unwrap_or("?")
            );
            let points = run["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| Some((s["offered_detections_per_s"].as_f64()?, y(s)?)))
                .collect();
            (name, points)
        })
        .collect()
}

/// A line to draw: its legend, its points, and its style.
type Line = (String, Vec<(f64, f64)>, ShapeStyle);

fn draw_lines<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    lines: &[Line],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    for (name, points, style) in lines {
        let style = *style;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 4, style.color.filled())),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

fn x_max(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|(_, p, _)| p.iter().map(|p| p.0))
        .fold(1.0, f64::max)
        * 1.05
}

fn y_max(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|(_, p, _)| p.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.3
}

/// Applied against offered, with the line where they are equal.
fn throughput_chart(path: &Path, lines: &[Line]) -> anyhow::Result<()> {
    let (x_max, y_max) = (x_max(lines), y_max(lines));
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Detections applied and acknowledged vs offered",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("offered detections per second")
        .y_desc("applied detections per second")
        .x_label_formatter(&|v| format!("{:.0}k", v / 1_000.0))
        .y_label_formatter(&|v| format!("{:.0}k", v / 1_000.0))
        .draw()?;
    let grey = BLACK.mix(0.3).stroke_width(1);
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (x_max, x_max)], grey))?
        .label("offered")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], grey));
    draw_lines(&mut chart, lines)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Latencies on a log scale: tens of milliseconds and seconds on one chart.
fn latency_chart(path: &Path, lines: &[Line]) -> anyhow::Result<()> {
    let (x_max, y_max) = (x_max(lines), y_max(lines).max(10.0));
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("p99 latency vs offered load", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, (1.0..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered detections per second")
        .y_desc("milliseconds (log scale)")
        .x_label_formatter(&|v| format!("{:.0}k", v / 1_000.0))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    draw_lines(&mut chart, lines)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Writes `throughput.svg` and `latency.svg` beside `results` (a results.json).
pub fn plot(results: &Path) -> anyhow::Result<()> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(results)?)?;
    let dir = results.parent().unwrap_or(Path::new("."));
    let styled = |series: Vec<(String, Vec<(f64, f64)>)>, suffix: &str, faint: bool| -> Vec<Line> {
        series
            .into_iter()
            .enumerate()
            .map(|(i, (name, points))| {
                let colour = COLOURS[i % COLOURS.len()];
                let style = match faint {
                    true => colour.mix(0.45).stroke_width(1),
                    false => colour.stroke_width(2),
                };
                (format!("{name}{suffix}"), points, style)
            })
            .collect()
    };
    let applied = styled(
        series(&doc, |s| s["applied_detections_per_s"].as_f64()),
        "",
        false,
    );
    throughput_chart(&dir.join("throughput.svg"), &applied)?;
    let mut latency = styled(
        series(&doc, |s| s["alert_latency_ms"]["p99"].as_f64()),
        ": alert p99",
        false,
    );
    latency.extend(styled(
        series(&doc, |s| s["ack_latency_ms"]["p99_le"].as_f64()),
        ": ACK p99 (bucket ≤)",
        true,
    ));
    latency_chart(&dir.join("latency.svg"), &latency)?;
    eprintln!(
        "Plots: {} and {}",
        dir.join("throughput.svg").display(),
        dir.join("latency.svg").display()
    );
    Ok(())
}

/// The backlog scenario over time since the stations reconnected: above, each stolen-vehicle
/// alert's latency (log scale; live frames and backlog frames apart); below, the process's RSS
/// and the frames still in the stations' flash.
pub fn backlog(
    path: &Path,
    alerts: &[(f64, f64, bool)],
    seconds: &[(f64, f64, f64)],
) -> anyhow::Result<()> {
    let t_max = seconds
        .iter()
        .map(|s| s.0)
        .chain(alerts.iter().map(|a| a.0))
        .fold(1.0, f64::max)
        * 1.02;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (900, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(400);
    let ms_max = alerts.iter().map(|a| a.1).fold(100.0, f64::max) * 1.5;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            "City-wide backlog: stolen-vehicle alert latency after reconnecting",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, (1.0..ms_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds after the stations reconnected")
        .y_desc("alert latency, ms (log)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    // One point per second and kind of frame, the slowest alert of that second: thousands of
    // alerts drawn one by one made a plot of megabytes.
    let mut slowest: std::collections::BTreeMap<(i64, bool), f64> = Default::default();
    for a in alerts {
        let at = slowest.entry((a.0.floor() as i64, a.2)).or_insert(0.0);
        *at = at.max(a.1);
    }
    for (from_backlog, colour, name) in [
        (false, COLOURS[0], "live frames (slowest of each second)"),
        (true, COLOURS[1], "backlog frames (slowest of each second)"),
    ] {
        let style = colour.filled();
        chart
            .draw_series(
                slowest
                    .iter()
                    .filter(|((_, backlog), _)| *backlog == from_backlog)
                    .map(|(&(t, _), &ms)| Circle::new((t as f64 + 0.5, ms.max(1.0)), 2, style)),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;

    let rss_max = seconds.iter().map(|s| s.1).fold(1.0, f64::max) * 1.3;
    let flash_max = seconds.iter().map(|s| s.2).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&bottom)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .right_y_label_area_size(80)
        .build_cartesian_2d(0.0..t_max, 0.0..rss_max)?
        .set_secondary_coord(0.0..t_max, 0.0..flash_max);
    chart
        .configure_mesh()
        .x_desc("seconds after the stations reconnected")
        .y_desc("RSS, MiB (server and load generator)")
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("frames left in the stations' flash")
        .y_label_formatter(&|v| format!("{:.0}k", v / 1_000.0))
        .draw()?;
    let rss_style = COLOURS[2].stroke_width(2);
    chart
        .draw_series(LineSeries::new(
            seconds.iter().map(|s| (s.0, s.1)),
            rss_style,
        ))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .label("RSS")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], rss_style));
    let flash_style = COLOURS[3].stroke_width(2);
    chart
        .draw_secondary_series(LineSeries::new(
            seconds.iter().map(|s| (s.0, s.2)),
            flash_style,
        ))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .label("backlog left in flash")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], flash_style));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    eprintln!("Plot: {}", path.display());
    Ok(())
}

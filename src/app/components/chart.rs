//! A small SVG line chart: one or two series over time buckets, axes with labels, and a hover
//! value per bucket (an SVG `<title>` on an invisible column).

use leptos::prelude::*;

use crate::app::format;
use crate::app::i18n::use_i18n;

const W: f64 = 480.0;
const H: f64 = 190.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// English label (translated when shown).
    pub label: &'static str,
    pub values: Vec<f64>,
}

/// The smallest "round" number (1, 2, 2.5, 5 × 10^k) at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= v * 0.999_999)
        .unwrap_or(10.0 * magnitude)
}

fn path(values: &[f64], max: f64) -> String {
    let n = values.len().max(1) as f64;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = LEFT + (i as f64 + 0.5) * plot_w / n;
            let y = TOP + plot_h - (v / max).clamp(0.0, 1.0) * plot_h;
            format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[component]
pub fn LineChart(
    /// English title (translated when shown); also the `data-chart` name.
    title: &'static str,
    name: &'static str,
    /// Unix seconds at the start of each bucket.
    times: Vec<u64>,
    series: Vec<Series>,
    /// Formats a value for the hover text and the axis.
    format: fn(f64) -> String,
    /// Buckets are hours (label with dates) rather than minutes.
    #[prop(optional)]
    hourly: bool,
) -> impl IntoView {
    let i18n = use_i18n();
    let n = times.len();
    let max = nice_ceiling(
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0, f64::max),
    );
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let label_time = move |t: u64| {
        if hourly {
            format::day_clock(t)
        } else {
            format::clock(t)
        }
    };
    let grid = [0.0, 0.5, 1.0]
        .into_iter()
        .map(|f| {
            let y = TOP + plot_h - f * plot_h;
            view! {
                <g class="grid">
                    <line x1=LEFT x2=W - RIGHT y1=y y2=y></line>
                    <text x=LEFT - 6.0 y=y + 3.5 text-anchor="end">{format(max * f)}</text>
                </g>
            }
        })
        .collect_view();
    let x_labels = if n == 0 {
        Vec::new()
    } else {
        let mut picks = vec![(0, "start"), (n / 2, "middle"), (n - 1, "end")];
        picks.dedup_by_key(|p| p.0);
        picks
    }
    .into_iter()
    .map(|(i, anchor)| {
        let x = match anchor {
            "start" => LEFT,
            "end" => W - RIGHT,
            _ => LEFT + (i as f64 + 0.5) * plot_w / n as f64,
        };
        view! { <text class="x-label" x=x y=H - 8.0 text-anchor=anchor>{label_time(times[i])}</text> }
    })
    .collect_view();
    let lines = series
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let d = path(&s.values, max);
            let area = (k == 0 && n > 0).then(|| {
                let last_x = LEFT + (n as f64 - 0.5) * plot_w / n as f64;
                let first_x = LEFT + 0.5 * plot_w / n as f64;
                format!(
                    "{d} L{last_x:.1},{:.1} L{first_x:.1},{:.1} Z",
                    TOP + plot_h,
                    TOP + plot_h
                )
            });
            view! {
                {area.map(|a| view! { <path class="area" d=a></path> })}
                <path class=format!("line s{k}") d=d></path>
            }
        })
        .collect_view();
    let hover_series = series.clone();
    let columns = (0..n)
        .map(|i| {
            let x = LEFT + i as f64 * plot_w / n as f64;
            let hover_series = hover_series.clone();
            let t = times[i];
            let text = move || {
                let values = hover_series
                    .iter()
                    .map(|s| {
                        format!(
                            "{}: {}",
                            i18n.t(s.label),
                            format(s.values.get(i).copied().unwrap_or(0.0))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" · ");
                format!("{} UTC — {values}", label_time(t))
            };
            view! {
                <g class="hit">
                    <rect x=x y=TOP width=plot_w / n as f64 height=plot_h></rect>
                    <title>{text}</title>
                </g>
            }
        })
        .collect_view();
    let last = series
        .first()
        .and_then(|s| s.values.last().copied())
        .unwrap_or(0.0);
    let legend = series
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let label = s.label;
            view! {
                <span class="legend-item">
                    <span class=format!("swatch s{k}") aria-hidden="true"></span>
                    {move || i18n.t(label)}
                </span>
            }
        })
        .collect_view();
    view! {
        <figure class="chart" data-chart=name>
            <figcaption>
                <span class="chart-title">{move || i18n.t(title)}</span>
                <span class="legend">{legend}</span>
            </figcaption>
            <svg
                viewBox=format!("0 0 {W} {H}")
                role="img"
                aria-label=move || format!("{} — {}", i18n.t(title), format(last))
                preserveAspectRatio="xMidYMid meet"
            >
                {grid}
                <line class="axis" x1=LEFT x2=W - RIGHT y1=TOP + plot_h y2=TOP + plot_h></line>
                {lines}
                {x_labels}
                {columns}
            </svg>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::nice_ceiling;

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(180.0), 200.0);
        assert_eq!(nice_ceiling(0.0021), 0.0025);
    }
}

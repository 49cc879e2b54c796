//! Bar charts drawn as SVG on the server: no script, no library, readable without JavaScript
//! and in a screenshot. Labels and values are escaped by maud.

use maud::{html, Markup};

/// One bar: its label, its length and the text printed after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

impl Bar {
    pub fn count(label: impl Into<String>, value: i64) -> Bar {
        Bar {
            label: label.into(),
            value: value as f64,
            shown: value.to_string(),
        }
    }
}

/// One bar split into coloured parts, e.g. how conversations ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StackedBar {
    pub label: String,
    pub parts: Vec<f64>,
}

const WIDTH: f64 = 560.0;
const LABEL_WIDTH: f64 = 150.0;
const VALUE_WIDTH: f64 = 70.0;
const ROW: f64 = 28.0;
const BAR: f64 = 18.0;

/// Horizontal bars scaled to the largest value, in one colour.
pub fn bars(title: &str, bars: &[Bar], color: &str) -> Markup {
    let max = bars.iter().map(|bar| bar.value).fold(0.0_f64, f64::max);
    let span = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let height = ROW * bars.len().max(1) as f64 + 8.0;
    html! {
        svg class="chart" role="img" aria-label=(title) width=(WIDTH) height=(height)
            viewBox={ "0 0 " (WIDTH) " " (height) } xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            @if bars.is_empty() {
                text x="0" y="18" class="chart-empty" { "No data for this period" }
            }
            @for (index, bar) in bars.iter().enumerate() {
                @let y = 4.0 + ROW * index as f64;
                @let length = if max > 0.0 { (bar.value / max * span).max(if bar.value > 0.0 { 2.0 } else { 0.0 }) } else { 0.0 };
                text x=(LABEL_WIDTH - 8.0) y=(y + BAR * 0.75) text-anchor="end" class="chart-label" { (bar.label) }
                rect x=(LABEL_WIDTH) y=(y) width=(format!("{length:.1}")) height=(BAR) rx="3" fill=(color) {}
                text x=(LABEL_WIDTH + length + 6.0) y=(y + BAR * 0.75) class="chart-value" { (bar.shown) }
            }
        }
    }
}

/// Horizontal bars made of coloured parts, with a legend naming each part.
pub fn stacked(title: &str, bars: &[StackedBar], legend: &[(&str, &str)]) -> Markup {
    let max = bars
        .iter()
        .map(|bar| bar.parts.iter().sum::<f64>())
        .fold(0.0_f64, f64::max);
    let span = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let height = ROW * bars.len().max(1) as f64 + 30.0;
    html! {
        svg class="chart" role="img" aria-label=(title) width=(WIDTH) height=(height)
            viewBox={ "0 0 " (WIDTH) " " (height) } xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            @if bars.is_empty() {
                text x="0" y="18" class="chart-empty" { "No data for this period" }
            }
            @for (index, bar) in bars.iter().enumerate() {
                @let y = 4.0 + ROW * index as f64;
                @let total: f64 = bar.parts.iter().sum();
                text x=(LABEL_WIDTH - 8.0) y=(y + BAR * 0.75) text-anchor="end" class="chart-label" { (bar.label) }
                @let segments = segments(&bar.parts, max, span);
                @for ((x, length), (_, color)) in segments.iter().zip(legend.iter()) {
                    rect x=(format!("{x:.1}")) y=(y) width=(format!("{length:.1}")) height=(BAR) fill=(color) {}
                }
                @let end = segments.last().map_or(LABEL_WIDTH, |(x, length)| x + length);
                text x=(end + 6.0) y=(y + BAR * 0.75) class="chart-value" { (total) }
            }
            @let legend_y = ROW * bars.len().max(1) as f64 + 14.0;
            @for (index, (name, color)) in legend.iter().enumerate() {
                @let x = LABEL_WIDTH + 130.0 * index as f64;
                rect x=(x) y=(legend_y - 10.0) width="12" height="12" fill=(color) {}
                text x=(x + 16.0) y=(legend_y) class="chart-label" { (name) }
            }
        }
    }
}

/// Where each part of a stacked bar starts and how long it is.
fn segments(parts: &[f64], max: f64, span: f64) -> Vec<(f64, f64)> {
    let mut x = LABEL_WIDTH;
    parts
        .iter()
        .map(|part| {
            let length = if max > 0.0 { part / max * span } else { 0.0 };
            let start = x;
            x += length;
            (start, length)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let svg = bars(
            "Funnel",
            &[
                Bar::count("<b>conversations</b>", 10),
                Bar::count("leads", 5),
            ],
            "#2563eb",
        )
        .into_string();
        assert!(svg.contains("&lt;b&gt;conversations&lt;/b&gt;"), "{svg}");
        assert!(
            svg.contains(r#"width="340.0""#),
            "the longest bar spans the chart: {svg}"
        );
        assert!(
            svg.contains(r#"width="170.0""#),
            "half the value, half the length: {svg}"
        );
    }

    #[test]
    fn an_empty_chart_says_so() {
        let svg = bars("Ratings", &[], "#000").into_string();
        assert!(svg.contains("No data for this period"));
    }
}

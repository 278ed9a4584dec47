//! A hand-written SVG line chart: previews Ready over time, one step line
//! per series, axes with ticks, a dashed line per marker, a legend.

use std::fmt::Write;

/// One line on the chart: when each preview became Ready, sorted.
pub struct Series {
    pub label: String,
    pub color: &'static str,
    pub ready_secs: Vec<f64>,
}

/// A vertical dashed line, e.g. the rate limits' lower bound.
pub struct Marker {
    pub label: String,
    pub at_secs: f64,
}

const W: f64 = 760.0;
const H: f64 = 420.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// A round tick step giving about `target` ticks over `span`.
fn tick_step(span: f64, target: f64) -> f64 {
    let raw = (span / target).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn ready_chart(title: &str, series: &[Series], markers: &[Marker]) -> String {
    let n_max = series
        .iter()
        .map(|s| s.ready_secs.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let t_max = series
        .iter()
        .flat_map(|s| s.ready_secs.iter().copied())
        .chain(markers.iter().map(|m| m.at_secs))
        .fold(1.0, f64::max)
        * 1.05;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: f64| LEFT + t / t_max * pw;
    let y = |n: f64| TOP + ph - n / n_max * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    // Axes, ticks and grid.
    let step = tick_step(t_max, 8.0);
    let mut t = 0.0;
    while t <= t_max {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1:.1}" stroke="#eee"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{t}</text>"##,
            x(t),
            TOP + ph,
            TOP + ph + 16.0
        );
        t += step;
    }
    let nstep = tick_step(n_max, 5.0);
    let mut n = 0.0;
    while n <= n_max {
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#eee"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{n}</text>"##,
            y(n),
            LEFT + pw,
            LEFT - 6.0,
            y(n) + 4.0
        );
        n += nstep;
    }
    let _ = writeln!(
        s,
        r#"<path d="M{LEFT},{TOP} V{0} H{1}" fill="none" stroke="black"/>"#,
        TOP + ph,
        LEFT + pw
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds since dispatch</text>"#,
        LEFT + pw / 2.0,
        H - 10.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">previews Ready</text>"#,
        TOP + ph / 2.0
    );
    for m in markers {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1:.1}" stroke="#888" stroke-dasharray="5,4"/><text x="{2:.1}" y="{3:.1}" fill="#555">{4}</text>"##,
            x(m.at_secs),
            TOP + ph,
            x(m.at_secs) + 4.0,
            TOP + 14.0,
            esc(&m.label)
        );
    }
    // Step lines: the count rises by one at each preview's Ready time.
    for ser in series {
        let mut d = format!("M{:.1},{:.1}", x(0.0), y(0.0));
        for (i, t) in ser.ready_secs.iter().enumerate() {
            let _ = write!(d, " H{:.1} V{:.1}", x(*t), y((i + 1) as f64));
        }
        let _ = writeln!(
            s,
            r#"<path d="{d}" fill="none" stroke="{}" stroke-width="2"/>"#,
            ser.color
        );
    }
    for (i, ser) in series.iter().enumerate() {
        let ly = TOP + 30.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{0:.1}" y1="{ly:.1}" x2="{1:.1}" y2="{ly:.1}" stroke="{2}" stroke-width="3"/><text x="{3:.1}" y="{4:.1}">{5}</text>"#,
            LEFT + pw - 230.0,
            LEFT + pw - 205.0,
            ser.color,
            LEFT + pw - 198.0,
            ly + 4.0,
            esc(&ser.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_one_path_per_series_and_the_legend() {
        let svg = ready_chart(
            "t",
            &[
                Series {
                    label: "previewd".into(),
                    color: "#1f77b4",
                    ready_secs: vec![1.0, 2.0],
                },
                Series {
                    label: "baseline <naive>".into(),
                    color: "#d62728",
                    ready_secs: vec![3.0],
                },
            ],
            &[Marker {
                label: "bound".into(),
                at_secs: 1.5,
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("stroke-width=\"2\"").count(), 2);
        assert!(svg.contains("baseline &lt;naive&gt;"));
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(100.0, 8.0), 20.0);
        assert_eq!(tick_step(9.0, 5.0), 2.0);
    }
}

//! The Prometheus text exposition format (version 0.0.4): `# HELP`, `# TYPE`, samples with
//! escaped label values, histograms as cumulative `_bucket`, `_sum` and `_count`.

use std::fmt::Write;

use crate::meter::series::HistogramSum;

/// Rendered labels, `name="value",...` without braces.
#[derive(Default, Clone)]
pub struct Labels(String);

impl Labels {
    /// No labels.
    pub fn new() -> Self {
        Labels(String::new())
    }

    /// These rendered labels, to add to.
    pub fn from(rendered: &str) -> Self {
        Labels(rendered.to_string())
    }

    /// Adds `name="value"`, escaping the value (backslash, quote, newline).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        if !self.0.is_empty() {
            self.0.push(',');
        }
        self.0.push_str(name);
        self.0.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => self.0.push_str("\\\\"),
                '"' => self.0.push_str("\\\""),
                '\n' => self.0.push_str("\\n"),
                c => self.0.push(c),
            }
        }
        self.0.push('"');
        self
    }

    /// The rendered labels.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The rendered labels, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A metrics page being written.
#[derive(Default)]
pub struct Text(String);

impl Text {
    /// Starts a metric family.
    pub fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample with an integer value.
    pub fn sample(&mut self, name: &str, labels: &str, value: u64) {
        self.line(name, labels, &value.to_string());
    }

    /// One sample with a float value.
    pub fn sample_f64(&mut self, name: &str, labels: &str, value: f64) {
        self.line(name, labels, &float(value));
    }

    fn line(&mut self, name: &str, labels: &str, value: &str) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    /// A histogram: cumulative buckets with `bounds`, `+Inf`, the sum divided by `divisor`
    /// (1e9 turns nanoseconds into seconds) and the count.
    pub fn histogram(&mut self, name: &str, labels: &str, h: &HistogramSum, bounds: &[f64], divisor: f64) {
        let bucket = format!("{name}_bucket");
        let mut acc = 0;
        for (i, le) in bounds.iter().enumerate() {
            acc += h.buckets.get(i).copied().unwrap_or(0);
            let l = Labels::from(labels).with("le", &float(*le));
            self.sample(&bucket, l.as_str(), acc);
        }
        let l = Labels::from(labels).with("le", "+Inf");
        self.sample(&bucket, l.as_str(), h.count());
        self.sample_f64(&format!("{name}_sum"), labels, h.sum as f64 / divisor);
        self.sample(&format!("{name}_count"), labels, h.count());
    }

    /// The page.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A float in its shortest form that reads back the same.
fn float(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let l = Labels::new().with("a", "x\"y\\z\nw").with("b", "");
        assert_eq!(l.as_str(), r#"a="x\"y\\z\nw",b="""#);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut t = Text::default();
        let h = HistogramSum {
            buckets: vec![1, 0, 2],
            over: 1,
            sum: 10,
        };
        t.histogram("h", "x=\"1\"", &h, &[0.5, 1.0, 2.5], 1.0);
        let s = t.into_string();
        assert!(s.contains("h_bucket{x=\"1\",le=\"0.5\"} 1\n"), "{s}");
        assert!(s.contains("h_bucket{x=\"1\",le=\"2.5\"} 3\n"), "{s}");
        assert!(s.contains("h_bucket{x=\"1\",le=\"+Inf\"} 4\n"), "{s}");
        assert!(s.contains("h_sum{x=\"1\"} 10\n"), "{s}");
        assert!(s.contains("h_count{x=\"1\"} 4\n"), "{s}");
    }
}

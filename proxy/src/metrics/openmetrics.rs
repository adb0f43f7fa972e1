//! The OpenMetrics 1.0 text format of a registry, for scrapers that ask for it (the
//! prometheus crate writes only the older text format 0.0.4).
//!
//! The differences that matter: a counter family is named without its `_total` suffix
//! (its sample keeps it), HELP text escapes `"` too, and the exposition ends with `# EOF`.

use std::fmt::Write;

use prometheus::proto::{LabelPair, MetricFamily, MetricType};

/// The media type, as sent in `Content-Type`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Encodes `families` (as [`prometheus::Registry::gather`] returns them).
pub fn encode(families: &[MetricFamily]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    for mf in families {
        let name = mf.name();
        let (family, ty) = match mf.get_field_type() {
            MetricType::COUNTER => (name.strip_suffix("_total").unwrap_or(name), "counter"),
            MetricType::GAUGE => (name, "gauge"),
            MetricType::HISTOGRAM => (name, "histogram"),
            MetricType::SUMMARY => (name, "summary"),
            MetricType::UNTYPED => (name, "unknown"),
        };
        let _ = writeln!(out, "# TYPE {family} {ty}");
        if !mf.help().is_empty() {
            let _ = writeln!(out, "# HELP {family} {}", escape(mf.help()));
        }
        for m in mf.get_metric() {
            let labels = m.get_label();
            match mf.get_field_type() {
                MetricType::COUNTER => sample(
                    &mut out,
                    family,
                    "_total",
                    labels,
                    None,
                    m.get_counter().get_value(),
                ),
                MetricType::GAUGE => sample(
                    &mut out,
                    family,
                    "",
                    labels,
                    None,
                    m.get_gauge().get_value(),
                ),
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    let mut inf = false;
                    for b in h.get_bucket() {
                        let le = b.upper_bound();
                        inf |= le.is_infinite() && le.is_sign_positive();
                        sample(
                            &mut out,
                            family,
                            "_bucket",
                            labels,
                            Some(("le", &float(le))),
                            b.cumulative_count() as f64,
                        );
                    }
                    if !inf {
                        sample(
                            &mut out,
                            family,
                            "_bucket",
                            labels,
                            Some(("le", "+Inf")),
                            h.get_sample_count() as f64,
                        );
                    }
                    sample(&mut out, family, "_sum", labels, None, h.get_sample_sum());
                    sample(
                        &mut out,
                        family,
                        "_count",
                        labels,
                        None,
                        h.get_sample_count() as f64,
                    );
                }
                MetricType::SUMMARY => {
                    let s = m.get_summary();
                    for q in s.get_quantile() {
                        sample(
                            &mut out,
                            family,
                            "",
                            labels,
                            Some(("quantile", &float(q.quantile()))),
                            q.value(),
                        );
                    }
                    sample(&mut out, family, "_sum", labels, None, s.sample_sum());
                    sample(
                        &mut out,
                        family,
                        "_count",
                        labels,
                        None,
                        s.sample_count() as f64,
                    );
                }
                // The proxy registers no untyped metric (the type is deprecated upstream).
                MetricType::UNTYPED => {}
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn sample(
    out: &mut String,
    family: &str,
    suffix: &str,
    labels: &[LabelPair],
    extra: Option<(&str, &str)>,
    value: f64,
) {
    out.push_str(family);
    out.push_str(suffix);
    let mut sep = '{';
    for (n, v) in labels.iter().map(|l| (l.name(), l.value())).chain(extra) {
        let _ = write!(out, "{sep}{n}=\"{}\"", escape(v));
        sep = ',';
    }
    if sep == ',' {
        out.push('}');
    }
    out.push(' ');
    out.push_str(&float(value));
    out.push('\n');
}

/// Numbers as OpenMetrics writes them: integers without a fraction, `+Inf`, `NaN`.
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        v.to_string()
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

    #[test]
    fn counters_lose_total_in_the_family_and_keep_it_in_the_sample() {
        let r = Registry::new();
        let c = IntCounterVec::new(
            Opts::new("dicomtap_x_total", "Things \"counted\"."),
            &["kind"],
        )
        .unwrap();
        r.register(Box::new(c.clone())).unwrap();
        c.with_label_values(&["a\"b"]).inc_by(3);
        let g = IntGauge::new("dicomtap_open", "Open now.").unwrap();
        r.register(Box::new(g.clone())).unwrap();
        g.set(2);
        let h = HistogramVec::new(
            HistogramOpts::new("dicomtap_seconds", "Time.").buckets(vec![0.5, 1.0]),
            &["op"],
        )
        .unwrap();
        r.register(Box::new(h.clone())).unwrap();
        h.with_label_values(&["echo"]).observe(0.7);
        let text = encode(&r.gather());
        for line in [
            "# TYPE dicomtap_x counter\n",
            "# HELP dicomtap_x Things \\\"counted\\\".\n",
            "dicomtap_x_total{kind=\"a\\\"b\"} 3\n",
            "dicomtap_open 2\n",
            "dicomtap_seconds_bucket{op=\"echo\",le=\"0.5\"} 0\n",
            "dicomtap_seconds_bucket{op=\"echo\",le=\"+Inf\"} 1\n",
            "dicomtap_seconds_count{op=\"echo\"} 1\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}

//! The fleet report: devices by site, drift by rule, worst offenders, trend. One HTML
//! page without scripts or outside resources, and the same figures as JSON.

use dicomtap_analyzer::report::html::escape;
use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::state::FleetState;

/// `YYYY-MM-DD` of a day number (days since the epoch).
pub fn day(days: u64) -> String {
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

fn time(us: u64) -> String {
    let secs = us / 1_000_000;
    let rem = secs % 86_400;
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        day(secs / 86_400),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The worst offenders: (device, findings, sites it drifted at), most findings first.
pub fn offenders(state: &FleetState) -> Vec<(String, u64, Vec<String>)> {
    let mut by: BTreeMap<&str, (u64, Vec<String>)> = BTreeMap::new();
    for ((site, device, _), n) in &state.finding_counts {
        let e = by.entry(device).or_default();
        e.0 += n;
        if !e.1.contains(site) {
            e.1.push(site.clone());
        }
    }
    let mut v: Vec<(String, u64, Vec<String>)> = by
        .into_iter()
        .map(|(d, (n, s))| (d.to_string(), n, s))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Findings by rule and site.
pub fn by_rule(state: &FleetState) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for ((site, _, rule), n) in &state.finding_counts {
        *out.entry(rule.clone())
            .or_default()
            .entry(site.clone())
            .or_default() += n;
    }
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    events: u64,
    duplicates: u64,
    sites: &'a BTreeMap<String, crate::state::SiteFigures>,
    findings_by_rule: BTreeMap<String, BTreeMap<String, u64>>,
    offenders: Vec<Offender>,
    trend: BTreeMap<String, &'a BTreeMap<String, u64>>,
    findings: &'a [crate::state::FleetFinding],
}

#[derive(Serialize)]
struct Offender {
    device: String,
    findings: u64,
    sites: Vec<String>,
}

/// The figures as JSON.
pub fn json(state: &FleetState) -> String {
    let r = JsonReport {
        events: state.total,
        duplicates: state.duplicates,
        sites: &state.sites,
        findings_by_rule: by_rule(state),
        offenders: offenders(state)
            .into_iter()
            .map(|(device, findings, sites)| Offender {
                device,
                findings,
                sites,
            })
            .collect(),
        trend: state.trend.iter().map(|(d, m)| (day(*d), m)).collect(),
        findings: &state.findings,
    };
    serde_json::to_string_pretty(&r).unwrap_or_else(|_| "{}".to_string())
}

/// The report page.
pub fn html(state: &FleetState, now_us: u64) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dicomtap fleet report</title>\
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
th,td{{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}}th{{background:#eee}}\
td.n{{text-align:right}}.bad{{background:#fdd}}.ok{{background:#dfd}}small{{color:#666}}\
.bar{{display:inline-block;background:#c33;height:.8em}}</style></head><body>\
<h1>dicomtap fleet report</h1><p><small>{} · {} events from {} sites · {} duplicates delivered again and dropped</small></p>",
        escape(&time(now_us)),
        state.total,
        state.sites.len(),
        state.duplicates
    );
    // Sites.
    h.push_str("<h2>Sites</h2><table><tr><th>Site</th><th>Instances</th><th>Associations</th><th>C-STOREs</th><th>Findings</th><th>Latest event</th></tr>");
    for (site, f) in &state.sites {
        let findings: u64 = state
            .finding_counts
            .iter()
            .filter(|((s, _, _), _)| s == site)
            .map(|(_, n)| n)
            .sum();
        let assoc: u64 = f.associations.values().sum();
        let stores: Vec<String> = f.stores.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{assoc}</td><td>{}</td><td class=\"n {}\">{findings}</td><td>{}</td></tr>",
            escape(site),
            escape(&f.instances.keys().cloned().collect::<Vec<_>>().join(", ")),
            escape(&stores.join(", ")),
            if findings > 0 { "bad" } else { "ok" },
            escape(&time(f.last_ts_us))
        );
    }
    h.push_str("</table>");
    // Devices by site.
    let sites: Vec<&String> = state.sites.keys().collect();
    let mut devices: BTreeMap<&str, BTreeMap<&str, (u64, u64)>> = BTreeMap::new();
    for (site, f) in &state.sites {
        for (d, n) in &f.devices {
            devices.entry(d).or_default().entry(site).or_default().0 += n;
        }
    }
    for ((site, device, _), n) in &state.finding_counts {
        devices
            .entry(device)
            .or_default()
            .entry(site)
            .or_default()
            .1 += n;
    }
    h.push_str("<h2>Devices by site</h2><p><small>associations / findings per device and site</small></p><table><tr><th>Device</th>");
    for s in &sites {
        let _ = write!(h, "<th>{}</th>", escape(s));
    }
    h.push_str("</tr>");
    for (d, per) in &devices {
        let _ = write!(h, "<tr><td>{}</td>", escape(d));
        for s in &sites {
            match per.get(s.as_str()) {
                Some((a, f)) => {
                    let _ = write!(
                        h,
                        "<td class=\"n {}\">{a} / {f}</td>",
                        if *f > 0 { "bad" } else { "ok" }
                    );
                }
                None => h.push_str("<td></td>"),
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    // Drift by rule.
    h.push_str("<h2>Drift by rule</h2><table><tr><th>Rule</th>");
    for s in &sites {
        let _ = write!(h, "<th>{}</th>", escape(s));
    }
    h.push_str("<th>Total</th></tr>");
    for (rule, per) in by_rule(state) {
        let _ = write!(h, "<tr><td>{}</td>", escape(&rule));
        let mut total = 0;
        for s in &sites {
            let n = per.get(s.as_str()).copied().unwrap_or(0);
            total += n;
            let _ = write!(
                h,
                "<td class=\"n\">{}</td>",
                if n > 0 { n.to_string() } else { String::new() }
            );
        }
        let _ = write!(h, "<td class=\"n\">{total}</td></tr>");
    }
    h.push_str("</table>");
    // Worst offenders.
    h.push_str(
        "<h2>Worst offenders</h2><table><tr><th>Device</th><th>Findings</th><th>Sites</th></tr>",
    );
    for (d, n, s) in offenders(state).into_iter().take(20) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{n}</td><td>{}</td></tr>",
            escape(&d),
            escape(&s.join(", "))
        );
    }
    h.push_str("</table>");
    // Trend.
    h.push_str(
        "<h2>Trend</h2><table><tr><th>Day</th><th>Findings</th><th></th><th>By rule</th></tr>",
    );
    let max = state
        .trend
        .values()
        .map(|m| m.values().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    for (d, m) in &state.trend {
        let n: u64 = m.values().sum();
        let rules: Vec<String> = m.iter().map(|(r, c)| format!("{r} {c}")).collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{n}</td><td><span class=\"bar\" style=\"width:{}px\"></span></td><td>{}</td></tr>",
            day(*d),
            n * 200 / max,
            escape(&rules.join(", "))
        );
    }
    h.push_str("</table>");
    // Latest findings.
    h.push_str("<h2>Findings</h2><table><tr><th>When</th><th>Site / instance</th><th>Device</th><th>Rule</th><th>Severity</th><th>Checked by</th><th>Observed</th></tr>");
    for f in state.findings.iter().rev().take(200) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&time(f.ts_us)),
            escape(&f.site),
            escape(&f.instance),
            escape(&f.device),
            escape(&f.rule),
            escape(&f.severity),
            if f.by == "fleet" {
                "fleet (across instances)"
            } else {
                "instance"
            },
            escape(&f.observed)
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn days() {
        assert_eq!(super::day(0), "1970-01-01");
        assert_eq!(super::day(20_790), "2026-12-03");
    }
}

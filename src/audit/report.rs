//! The three renderers of a [`Report`]: a text table with a summary, one JSON document, and CSV
//! rows with the summary on a side stream.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::{Account, Mode, Report};
use crate::severity::Severity;

/// The filter-mode answer for an account: `probably-breached`, `not-breached` or `unchecked`.
fn answer(a: &Account) -> &'static str {
    match a.count {
        Some(0) => "not-breached",
        Some(_) => "probably-breached",
        None => "unchecked",
    }
}

/// Whether the report holds filter answers rather than counts.
fn filter_mode(report: &Report) -> bool {
    matches!(report.mode, Mode::Filter { .. })
}

/// Unparseable lines listed in text output (all of them are in JSON).
const TEXT_BAD_LINES_SHOWN: usize = 50;

/// Members of a reuse group listed in text output.
const TEXT_GROUP_MEMBERS_SHOWN: usize = 20;

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// A table and a summary for people.
    Text,
    /// One JSON object with accounts, summary, reuse groups and unparseable lines.
    Json,
    /// One row per account; the summary goes to the text stream given separately.
    Csv,
}

impl std::str::FromStr for ReportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(ReportFormat::Text),
            "json" => Ok(ReportFormat::Json),
            "csv" => Ok(ReportFormat::Csv),
            _ => Err(format!("unknown format {s:?}: expected text, json or csv")),
        }
    }
}

/// Rendering settings.
#[derive(Debug, Clone, Copy)]
pub struct Render {
    /// Output format.
    pub format: ReportFormat,
    /// Print each account's hash (off by default: the report may travel further than the dump).
    pub show_hashes: bool,
    /// Print exact breach counts. Off by default: reports get shared, and an exact count names
    /// the password (9,545,824 is "password"); the severity tier is shown instead.
    pub show_counts: bool,
}

impl Render {
    /// Writes `report` to `out`; for CSV the summary goes to `summary_out`.
    pub fn write(
        &self,
        report: &Report,
        out: &mut dyn Write,
        summary_out: &mut dyn Write,
    ) -> io::Result<()> {
        match self.format {
            ReportFormat::Text => self.write_text(report, out),
            ReportFormat::Json => {
                serde_json::to_writer_pretty(&mut *out, &self.json(report))?;
                writeln!(out)
            }
            ReportFormat::Csv => {
                self.write_csv(report, out)?;
                write_summary(report, summary_out)
            }
        }
    }

    fn write_text(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let width = report
            .accounts
            .iter()
            .map(|a| report.account_name(a).chars().count())
            .max()
            .unwrap_or(0)
            .clamp(7, 40);
        let filter = filter_mode(report);
        write!(out, "{:<width$}  ", "ACCOUNT")?;
        if filter {
            write!(out, "{:<17}  SOURCE", "FILTER ANSWER")?;
        } else {
            if self.show_counts {
                write!(out, "{:>10}  ", "COUNT")?;
            }
            write!(out, "{:<8}  SOURCE", "SEVERITY")?;
        }
        if self.show_hashes {
            write!(out, "  HASH")?;
        }
        writeln!(out)?;
        for a in &report.accounts {
            write!(out, "{:<width$}  ", report.account_name(a))?;
            if filter {
                write!(out, "{:<17}  {}", answer(a), report.source(a.file, a.line))?;
            } else {
                let (count, severity) = match (a.count, a.severity) {
                    (Some(c), Some(s)) => (c.to_string(), s.name()),
                    _ => ("-".into(), "unchecked"),
                };
                if self.show_counts {
                    write!(out, "{count:>10}  ")?;
                }
                write!(out, "{severity:<8}  {}", report.source(a.file, a.line))?;
            }
            if self.show_hashes {
                write!(out, "  {}", a.hash)?;
            }
            writeln!(out)?;
        }
        writeln!(out)?;
        write_summary(report, out)?;
        if !report.reuse.is_empty() {
            writeln!(out, "\nAccounts sharing a password:")?;
            for g in &report.reuse {
                let first = &report.accounts[g.members[0]];
                let mut names: Vec<String> = g
                    .members
                    .iter()
                    .take(TEXT_GROUP_MEMBERS_SHOWN)
                    .map(|&i| report.account_name(&report.accounts[i]))
                    .collect();
                if g.members.len() > TEXT_GROUP_MEMBERS_SHOWN {
                    names.push(format!(
                        "... {} more",
                        g.members.len() - TEXT_GROUP_MEMBERS_SHOWN
                    ));
                }
                let breached = match (first.count, first.severity) {
                    (Some(c), Some(s)) if self.show_counts => format!("breached {c} times, {s}"),
                    (Some(0), Some(s)) => format!("not breached, {s}"),
                    (Some(_), Some(s)) => format!("breached, {s}"),
                    (Some(_), None) => answer(first).replace('-', " "),
                    _ => "unchecked".into(),
                };
                write!(
                    out,
                    "  {} accounts ({breached}): {}",
                    g.members.len(),
                    names.join(", ")
                )?;
                if self.show_hashes {
                    write!(out, " [{}]", first.hash)?;
                }
                writeln!(out)?;
            }
        }
        Ok(())
    }

    fn write_csv(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let filter = filter_mode(report);
        if filter {
            write!(out, "user,file,line,kind,filter_answer")?;
        } else {
            write!(out, "user,file,line,kind,")?;
            if self.show_counts {
                write!(out, "count,")?;
            }
            write!(out, "severity")?;
        }
        if self.show_hashes {
            write!(out, ",hash")?;
        }
        writeln!(out)?;
        for a in &report.accounts {
            let user = a.user.as_deref().unwrap_or("");
            if filter {
                write!(
                    out,
                    "{},{},{},{},{}",
                    csv_field(user),
                    csv_field(&report.files[a.file]),
                    a.line,
                    a.hash.kind(),
                    answer(a),
                )?;
                if self.show_hashes {
                    write!(out, ",{}", a.hash)?;
                }
                writeln!(out)?;
                continue;
            }
            write!(
                out,
                "{},{},{},{},",
                csv_field(user),
                csv_field(&report.files[a.file]),
                a.line,
                a.hash.kind(),
            )?;
            if self.show_counts {
                write!(out, "{},", a.count.map_or(String::new(), |c| c.to_string()))?;
            }
            write!(out, "{}", a.severity.map_or("unchecked", Severity::name))?;
            if self.show_hashes {
                write!(out, ",{}", a.hash)?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    /// The JSON document: `summary`, `accounts`, `reuse_groups`, `unparseable`.
    pub fn json(&self, report: &Report) -> Value {
        let s = report.summary();
        let accounts: Vec<Value> = report
            .accounts
            .iter()
            .map(|a| {
                let mut v = json!({
                    "user": a.user,
                    "account": report.account_name(a),
                    "file": report.files[a.file],
                    "line": a.line,
                    "kind": a.hash.kind().name(),
                    "severity": a.severity.map(Severity::name),
                });
                if let Mode::Filter { .. } = report.mode {
                    v["filter_answer"] = json!(answer(a));
                } else if self.show_counts {
                    v["count"] = json!(a.count);
                }
                if self.show_hashes {
                    v["hash"] = json!(a.hash.to_hex());
                }
                v
            })
            .collect();
        let groups: Vec<Value> = report
            .reuse
            .iter()
            .map(|g| {
                let first = &report.accounts[g.members[0]];
                let mut v = json!({
                    "size": g.members.len(),
                    "severity": first.severity.map(Severity::name),
                    "accounts": g.members.iter().map(|&i| report.account_name(&report.accounts[i])).collect::<Vec<_>>(),
                });
                if let Mode::Filter { .. } = report.mode {
                    v["filter_answer"] = json!(answer(first));
                } else if self.show_counts {
                    v["count"] = json!(first.count);
                }
                if self.show_hashes {
                    v["hash"] = json!(first.hash.to_hex());
                }
                v
            })
            .collect();
        let bad: Vec<Value> = report
            .bad_lines
            .iter()
            .map(|b| json!({"file": report.files[b.file], "line": b.line, "error": b.error.to_string()}))
            .collect();
        let severity: serde_json::Map<String, Value> = Severity::ALL
            .iter()
            .map(|t| (t.name().to_owned(), json!(s.by_severity[*t as usize])))
            .collect();
        let reuse_by_size: serde_json::Map<String, Value> = s
            .reuse_by_size
            .iter()
            .map(|(size, n)| (size.to_string(), json!(n)))
            .collect();
        let (mode, fp_rate) = match report.mode {
            Mode::Counts => ("counts", None),
            Mode::Filter { fp_rate } => ("filter", Some(fp_rate)),
        };
        json!({
            "summary": {
                "mode": mode,
                "filter_false_positive_rate": fp_rate,
                "accounts": report.accounts.len(),
                "checked": s.checked,
                "unchecked": s.unchecked,
                "breached": s.breached,
                "breached_percent": (s.breached_percent() * 10.0).round() / 10.0,
                "severity": severity,
                "thresholds": report.thresholds.to_string(),
                "unparseable_lines": s.unparseable,
                "reuse_groups_by_size": reuse_by_size,
            },
            "accounts": accounts,
            "reuse_groups": groups,
            "unparseable": bad,
        })
    }
}

/// The human summary (also used for CSV, on the side stream).
fn write_summary(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let s = report.summary();
    writeln!(out, "Summary")?;
    if let Mode::Filter { fp_rate } = report.mode {
        writeln!(
            out,
            "  mode: filter (answers are \"probably breached\" or \"not breached\", no counts; \
             built for a {:.4}% false-positive rate)",
            fp_rate * 100.0
        )?;
        writeln!(
            out,
            "  accounts checked: {} ({} unchecked: no filter of their hash kind)",
            s.checked, s.unchecked
        )?;
        writeln!(
            out,
            "  {:.1}% of accounts probably use a breached password ({} of {})",
            s.breached_percent(),
            s.breached,
            s.checked
        )?;
        return write_reuse_and_bad_lines(report, &s, out);
    }
    writeln!(
        out,
        "  accounts checked: {} ({} unchecked: no index of their hash kind)",
        s.checked, s.unchecked
    )?;
    writeln!(
        out,
        "  {:.1}% of accounts use a breached password ({} of {})",
        s.breached_percent(),
        s.breached,
        s.checked
    )?;
    let tiers: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|t| format!("{t} {}", s.by_severity[*t as usize]))
        .collect();
    writeln!(
        out,
        "  by severity: {} (thresholds {})",
        tiers.join(", "),
        report.thresholds
    )?;
    write_reuse_and_bad_lines(report, &s, out)
}

/// The summary's reuse and unparseable-line sections (both modes).
fn write_reuse_and_bad_lines(
    report: &Report,
    s: &super::Summary,
    out: &mut dyn Write,
) -> io::Result<()> {
    if s.reuse_by_size.is_empty() {
        writeln!(out, "  password reuse: no two accounts share a hash")?;
    } else {
        let sizes: Vec<String> = s
            .reuse_by_size
            .iter()
            .rev()
            .map(|(size, n)| format!("{n} x {size} accounts"))
            .collect();
        writeln!(
            out,
            "  password reuse: {} groups ({})",
            report.reuse.len(),
            sizes.join(", ")
        )?;
    }
    writeln!(out, "  unparseable lines: {}", s.unparseable)?;
    for b in report.bad_lines.iter().take(TEXT_BAD_LINES_SHOWN) {
        writeln!(out, "    {}: {}", report.source(b.file, b.line), b.error)?;
    }
    if report.bad_lines.len() > TEXT_BAD_LINES_SHOWN {
        writeln!(
            out,
            "    ... {} more",
            report.bad_lines.len() - TEXT_BAD_LINES_SHOWN
        )?;
    }
    Ok(())
}

/// Quotes a CSV field when needed (RFC 4180).
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

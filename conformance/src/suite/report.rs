//! Reporting: the table row per case (with the wire trace of failures under `-v`), the summary
//! line, the JSON and JUnit files; and the `--case`/`--skip` glob matcher.

use super::case::Outcome;
use super::xml::attr;
use anyhow::Result;

/// One case's result.
pub struct CaseResult {
    pub id: &'static str,
    pub clause: &'static str,
    pub outcome: Outcome,
    /// The implementation whose documented deviation this failure is (`--known-deviations`).
    pub known: Option<String>,
    pub ms: u128,
    pub trace: Vec<String>,
}

impl CaseResult {
    fn status(&self) -> &'static str {
        match self.outcome {
            Outcome::Pass => "PASS",
            Outcome::NotApplicable(_) => "N-A",
            Outcome::Fail(_) => "FAIL",
        }
    }

    /// Whether the case failed, other than as a known deviation.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail(_)) && self.known.is_none()
    }

    /// The status column: `FAIL (known: NAME)` for a known deviation.
    fn label(&self) -> String {
        match &self.known {
            Some(name) => format!("FAIL (known: {name})"),
            None => self.status().to_string(),
        }
    }

    fn detail(&self) -> &str {
        match &self.outcome {
            Outcome::Pass => "",
            Outcome::NotApplicable(d) | Outcome::Fail(d) => d,
        }
    }
}

/// Prints the table row of `r`; with `verbose`, a failure's wire trace follows it.
pub fn print_row(r: &CaseResult, verbose: bool) {
    println!(
        "{:<44} {:<32} {:<5} {:>6} ms  {}",
        r.id,
        r.clause,
        r.label(),
        r.ms,
        r.detail()
    );
    if verbose && matches!(r.outcome, Outcome::Fail(_)) {
        for line in &r.trace {
            println!("    {line}");
        }
    }
}

/// How many cases passed, failed (not as known deviations), were N-A, failed as known
/// deviations.
fn counts(results: &[CaseResult]) -> (usize, usize, usize, usize) {
    let count = |s: &str| results.iter().filter(|r| r.status() == s).count();
    let known = results.iter().filter(|r| r.known.is_some()).count();
    (count("PASS"), count("FAIL") - known, count("N-A"), known)
}

/// `N passed, N failed, N skipped`, then `, N known deviations` when there are some.
pub fn summary(results: &[CaseResult]) -> String {
    let (passed, failed, skipped, known) = counts(results);
    let mut line = format!("{passed} passed, {failed} failed, {skipped} skipped");
    if known > 0 {
        line.push_str(&format!(", {known} failed as known deviations"));
    }
    line
}

/// The results as JSON: `{"cases": [{id, clause, result, known?, ms, detail}], passed, failed,
/// skipped, known}` (`failed` leaves out the known deviations, counted in `known`).
pub fn json(results: &[CaseResult]) -> Result<String> {
    let cases: Vec<_> = results
        .iter()
        .map(|r| {
            let mut case = serde_json::json!({
                "id": r.id,
                "clause": r.clause,
                "result": r.status(),
                "ms": r.ms,
                "detail": r.detail(),
            });
            if let Some(name) = &r.known {
                case["known"] = name.as_str().into();
            }
            case
        })
        .collect();
    let (passed, failed, skipped, known) = counts(results);
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "cases": cases,
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "known": known,
    }))?)
}

/// The results as a JUnit XML test suite (N-A cases and known deviations are `<skipped/>`).
pub fn junit(results: &[CaseResult]) -> String {
    let (_, failures, skipped, known) = counts(results);
    let skipped = skipped + known;
    let mut out = format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n<testsuite name='palaver-conformance' tests='{}' failures='{failures}' skipped='{skipped}'>\n",
        results.len()
    );
    for r in results {
        out.push_str(&format!(
            "  <testcase classname='{}' name='{}' time='{:.3}'>",
            attr(r.clause),
            attr(r.id),
            r.ms as f64 / 1000.0
        ));
        match &r.outcome {
            Outcome::Pass => {}
            Outcome::NotApplicable(d) => out.push_str(&format!("<skipped message='{}'/>", attr(d))),
            Outcome::Fail(d) if r.known.is_some() => out.push_str(&format!(
                "<skipped message='{}'/>",
                attr(&format!("{}: {d}", r.label()))
            )),
            Outcome::Fail(d) => out.push_str(&format!(
                "<failure message='{}'>{}</failure>",
                attr(d),
                attr(&r.trace.join("\n"))
            )),
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

/// Whether `text` matches `glob` (`*` any run, `?` one character).
pub fn glob_match(glob: &str, text: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ti));
            gi += 1;
        } else if let Some((sg, st)) = star {
            gi = sg + 1;
            ti = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &'static str, outcome: Outcome, known: Option<&str>) -> CaseResult {
        CaseResult {
            id,
            clause: "XEP-0045 §7.2.3",
            outcome,
            known: known.map(str::to_string),
            ms: 1,
            trace: Vec::new(),
        }
    }

    #[test]
    fn known_deviations_are_counted_apart_from_failures() -> Result<()> {
        let results = [
            result("a", Outcome::Pass, None),
            result("b", Outcome::Fail("x".into()), Some("prosody")),
            result("c", Outcome::NotApplicable("y".into()), None),
        ];
        assert_eq!(
            summary(&results),
            "1 passed, 0 failed, 1 skipped, 1 failed as known deviations"
        );
        assert!(!results.iter().any(CaseResult::failed));
        assert_eq!(results[1].label(), "FAIL (known: prosody)");
        let j: serde_json::Value = serde_json::from_str(&json(&results)?)?;
        assert_eq!(
            (j["failed"].as_u64(), j["known"].as_u64()),
            (Some(0), Some(1))
        );
        assert_eq!(j["cases"][1]["known"], "prosody");
        assert!(junit(&results).contains("failures='0' skipped='2'"));
        let unknown = result("d", Outcome::Fail("z".into()), None);
        assert!(unknown.failed());
        assert_eq!(summary(&[unknown]), "0 passed, 1 failed, 0 skipped");
        Ok(())
    }

    #[test]
    fn globs() {
        assert!(glob_match("muc.*", "muc.join.self-presence-110"));
        assert!(glob_match("*110", "muc.join.self-presence-110"));
        assert!(glob_match("muc.join.?elf*", "muc.join.self-presence-110"));
        assert!(!glob_match("stream.*", "muc.join"));
        assert!(glob_match("*", ""));
    }
}

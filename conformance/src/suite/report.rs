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
        r.status(),
        r.ms,
        r.detail()
    );
    if verbose && matches!(r.outcome, Outcome::Fail(_)) {
        for line in &r.trace {
            println!("    {line}");
        }
    }
}

/// `N passed, N failed, N skipped`.
pub fn summary(results: &[CaseResult]) -> String {
    let count = |s: &str| results.iter().filter(|r| r.status() == s).count();
    format!(
        "{} passed, {} failed, {} skipped",
        count("PASS"),
        count("FAIL"),
        count("N-A")
    )
}

/// The results as JSON: `{"cases": [{id, clause, result, ms, detail}], passed, failed, skipped}`.
pub fn json(results: &[CaseResult]) -> Result<String> {
    let cases: Vec<_> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "clause": r.clause,
                "result": r.status(),
                "ms": r.ms,
                "detail": r.detail(),
            })
        })
        .collect();
    let count = |s: &str| results.iter().filter(|r| r.status() == s).count();
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "cases": cases,
        "passed": count("PASS"),
        "failed": count("FAIL"),
        "skipped": count("N-A"),
    }))?)
}

/// The results as a JUnit XML test suite (N-A cases are `<skipped/>`).
pub fn junit(results: &[CaseResult]) -> String {
    let failures = results.iter().filter(|r| r.status() == "FAIL").count();
    let skipped = results.iter().filter(|r| r.status() == "N-A").count();
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
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("muc.*", "muc.join.self-presence-110"));
        assert!(glob_match("*110", "muc.join.self-presence-110"));
        assert!(glob_match("muc.join.?elf*", "muc.join.self-presence-110"));
        assert!(!glob_match("stream.*", "muc.join"));
        assert!(glob_match("*", ""));
    }
}

//! Known deviations (`--known-deviations FILE --implementation NAME`): the cases a given
//! implementation is documented to fail, read from a markdown file such as
//! `conformance/KNOWN-DEVIATIONS.md`. Each deviation is one table row whose first cell is the
//! implementation and second the case id (backticks allowed):
//! `| prosody | \`muc.some.case\` | the clause, quoted | what it does instead |`.
//! A failure of such a case is reported as `FAIL (known: NAME)` and does not fail the run.

use anyhow::{bail, Context as _, Result};
use std::collections::HashSet;
use std::path::Path;

/// The case ids documented as deviations of one implementation.
#[derive(Debug, Default, Clone)]
pub struct Known {
    /// The implementation's name as given with `--implementation`.
    pub implementation: String,
    ids: HashSet<String>,
}

impl Known {
    /// Reads `file` and keeps the rows of `implementation` (compared case-insensitively).
    pub fn load(file: &Path, implementation: &str) -> Result<Known> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading known deviations {}", file.display()))?;
        Ok(Known::parse(&text, implementation))
    }

    /// The rows of `implementation` in the markdown `text`.
    pub fn parse(text: &str, implementation: &str) -> Known {
        let ids = text
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').collect();
                let cell = |i: usize| cells.get(i).map(|c| c.trim().trim_matches('`').trim());
                let (name, id) = (cell(0)?, cell(1)?);
                name.eq_ignore_ascii_case(implementation)
                    .then(|| id.to_string())
            })
            .collect();
        Known {
            implementation: implementation.to_string(),
            ids,
        }
    }

    /// Whether `id` is a documented deviation.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// How many deviations are documented.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

/// The deviations the options ask for: none without `--known-deviations`; that option needs
/// `--implementation`.
pub fn from_options(file: Option<&Path>, implementation: Option<&str>) -> Result<Option<Known>> {
    match (file, implementation) {
        (None, _) => Ok(None),
        (Some(_), None) => bail!("--known-deviations needs --implementation NAME"),
        (Some(f), Some(name)) => Known::load(f, name).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::Known;

    const FILE: &str = "\
# Known deviations

| implementation | case | clause | behaviour |
|---|---|---|---|
| prosody | `muc.a` | XEP-0045 §1: \"MUST\" | does b |
| Prosody | muc.c | x | y |
| ejabberd | `muc.d` | x | y |
";

    #[test]
    fn rows_of_one_implementation() {
        let k = Known::parse(FILE, "prosody");
        assert!(k.contains("muc.a"));
        assert!(k.contains("muc.c"));
        assert!(!k.contains("muc.d"));
        assert!(!k.contains("case"));
        assert_eq!(k.len(), 2);
        assert_eq!(Known::parse(FILE, "ejabberd").len(), 1);
        assert_eq!(Known::parse(FILE, "palaver").len(), 0);
    }
}

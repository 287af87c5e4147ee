//! Export of archived events as JSON lines, CSV (RFC 4180) or XML, streamed row by row in seq
//! order to any `std::io::Write`.

use super::db::{ComplianceDb, Filter};
use super::event::StoredEvent;
use super::ComplianceError;
use std::io::Write;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Xml,
}

impl Format {
    /// "jsonl", "csv" or "xml".
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "jsonl" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }
}

/// The CSV header line (the column order of every format).
pub const CSV_HEADER: &str = "seq,at,room,actor,protocol,kind,detail,prev_hash,hash";

/// One CSV field, quoted when it holds a comma, a quote, CR or LF (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// XML text/attribute escaping; characters XML 1.0 cannot carry become U+FFFD.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Writes one row in `format`.
pub fn write_row(w: &mut dyn Write, format: Format, r: &StoredEvent) -> std::io::Result<()> {
    let e = &r.event;
    match format {
        Format::Jsonl => {
            // The detail is embedded as JSON when it parses, else as a string.
            let detail = serde_json::from_str::<serde_json::Value>(&e.detail)
                .unwrap_or_else(|_| serde_json::Value::String(e.detail.clone()));
            let line = serde_json::json!({
                "seq": r.seq,
                "at": e.at,
                "room": e.room,
                "actor": e.actor,
                "protocol": e.protocol,
                "kind": e.kind.as_str(),
                "detail": detail,
                "prev_hash": r.prev_hash,
                "hash": r.hash,
            });
            serde_json::to_writer(&mut *w, &line)?;
            w.write_all(b"\n")
        }
        Format::Csv => {
            let fields = [
                r.seq.to_string(),
                e.at.to_string(),
                csv_field(&e.room),
                csv_field(&e.actor),
                csv_field(&e.protocol),
                e.kind.as_str().to_string(),
                csv_field(&e.detail),
                r.prev_hash.clone(),
                r.hash.clone(),
            ];
            w.write_all(fields.join(",").as_bytes())?;
            w.write_all(b"\r\n")
        }
        Format::Xml => writeln!(
            w,
            "  <event seq=\"{}\" at=\"{}\" room=\"{}\" actor=\"{}\" protocol=\"{}\" kind=\"{}\" \
             prev_hash=\"{}\" hash=\"{}\"><detail>{}</detail></event>",
            r.seq,
            e.at,
            xml_escape(&e.room),
            xml_escape(&e.actor),
            xml_escape(&e.protocol),
            e.kind.as_str(),
            r.prev_hash,
            r.hash,
            xml_escape(&e.detail)
        ),
    }
}

/// Streams the rows matching `filter` to `w` in `format`; calls `progress` with the number of
/// rows written so far after every row. Returns that number.
pub async fn export(
    db: &ComplianceDb,
    filter: &Filter,
    format: Format,
    w: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ComplianceError> {
    match format {
        Format::Csv => {
            w.write_all(CSV_HEADER.as_bytes())?;
            w.write_all(b"\r\n")?;
        }
        Format::Xml => w.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<events>\n")?,
        Format::Jsonl => {}
    }
    let mut n = 0u64;
    db.for_each(filter, |row| {
        write_row(w, format, &row)?;
        n += 1;
        progress(n);
        Ok(())
    })
    .await?;
    if format == Format::Xml {
        w.write_all(b"</events>\n")?;
    }
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(
            xml_escape("<a & 'b'>\u{1}"),
            "&lt;a &amp; &apos;b&apos;&gt;\u{FFFD}"
        );
    }
}

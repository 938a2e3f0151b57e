//! Expands the placeholders of `-o`: `{date}`, `{time}`, `{host}`.

use crate::exit::usage;
use std::path::PathBuf;

/// Expands `{date}` (YYYY-MM-DD), `{time}` (HH-MM-SS, local) and `{host}`.
/// Any other `{...}` is a usage error.
pub fn expand(template: &str) -> anyhow::Result<PathBuf> {
    let now = chrono::Local::now();
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".to_string());
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| usage(format!("-o {template:?}: unclosed '{{'")))?;
        match &after[..close] {
            "date" => out.push_str(&now.format("%Y-%m-%d").to_string()),
            "time" => out.push_str(&now.format("%H-%M-%S").to_string()),
            "host" => out.push_str(&host),
            other => return Err(usage(format!("-o {template:?}: unknown placeholder {{{other}}} (use {{date}}, {{time}}, {{host}})"))),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(usage("-o must not be empty"));
    }
    Ok(PathBuf::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_placeholders() {
        let p = expand("/data/{host}/{date}_{time}").unwrap();
        let s = p.to_string_lossy();
        assert!(!s.contains('{'), "{s}");
        assert!(s.starts_with("/data/"));
        assert!(s.matches('-').count() >= 4);
    }

    #[test]
    fn rejects_unknown_or_unclosed() {
        assert!(expand("x/{camera}").is_err());
        assert!(expand("x/{date").is_err());
        assert_eq!(expand("plain").unwrap(), PathBuf::from("plain"));
    }
}

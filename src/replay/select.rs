//! Which episodes and cameras a replay covers: `--episodes 3,5-7` and
//! `--cameras left,right`.

use crate::exit::usage;
use std::collections::BTreeSet;

/// A set of episode numbers parsed from `3,5-7` (inclusive ranges).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpisodeSelection {
    /// `None` = every episode.
    only: Option<BTreeSet<u32>>,
}

impl EpisodeSelection {
    /// Every episode.
    pub fn all() -> Self {
        Self { only: None }
    }

    /// Parses `3,5-7`: comma-separated numbers and inclusive `A-B` ranges.
    /// Errors are usage errors (exit code 2).
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let bad = |why: &str| {
            usage(format!(
                "--episodes {spec:?}: {why}; expected numbers and ranges like 3,5-7"
            ))
        };
        let mut set = BTreeSet::new();
        for part in spec.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(bad("empty item"));
            }
            let num = |s: &str| {
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| bad(&format!("{s:?} is not an episode number")))
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(bad(&format!("range {a}-{b} runs backwards")));
                    }
                    if b - a > 1_000_000 {
                        return Err(bad(&format!("range {a}-{b} is too large")));
                    }
                    set.extend(a..=b);
                }
                None => {
                    set.insert(num(part)?);
                }
            }
        }
        Ok(Self { only: Some(set) })
    }

    /// Whether episode `index` is selected.
    pub fn contains(&self, index: u32) -> bool {
        self.only.as_ref().is_none_or(|s| s.contains(&index))
    }

    /// The explicitly selected numbers (`None` = all).
    pub fn explicit(&self) -> Option<&BTreeSet<u32>> {
        self.only.as_ref()
    }
}

/// Parses `a,b` into camera names (validated like `-i ...#name=`).
pub fn parse_cameras(spec: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for name in spec.split(',').map(str::trim) {
        crate::capture::spec::validate_name(name)
            .map_err(|e| usage(format!("--cameras {spec:?}: {e}")))?;
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_ranges() {
        let s = EpisodeSelection::parse("3,5-7, 10").unwrap();
        let got: Vec<u32> = s.explicit().unwrap().iter().copied().collect();
        assert_eq!(got, vec![3, 5, 6, 7, 10]);
        assert!(s.contains(6) && !s.contains(4));
        assert!(EpisodeSelection::all().contains(12345));
        assert_eq!(
            EpisodeSelection::parse("4-4")
                .unwrap()
                .explicit()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn bad_specs_are_usage_errors() {
        for bad in ["", "3,", "a", "7-5", "1-", "-2", "1.5", "0-99999999"] {
            let err = EpisodeSelection::parse(bad).unwrap_err();
            assert!(
                err.chain()
                    .any(|c| c.downcast_ref::<crate::exit::UsageError>().is_some()),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("3,5-7"), "{err}");
        }
    }

    #[test]
    fn camera_lists() {
        assert_eq!(parse_cameras("a, b,a").unwrap(), vec!["a", "b"]);
        assert!(parse_cameras("a,,b").is_err());
        assert!(parse_cameras("x/y").is_err());
    }
}

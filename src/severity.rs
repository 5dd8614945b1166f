//! Severity tiers: a breach count mapped to `none`, `low`, `medium`, `high` or `critical`, so
//! applications can apply an allow / nudge / block policy and audits can summarise exposure.

use std::fmt;
use std::str::FromStr;

/// How badly a password is exposed, from its breach count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Not in the corpus.
    None,
    /// Seen a few times.
    Low,
    /// Seen often enough to be in targeted wordlists.
    Medium,
    /// Common: in every general-purpose cracking wordlist.
    High,
    /// Among the most common passwords there are.
    Critical,
}

impl Severity {
    /// Every tier, from `None` to `Critical`.
    pub const ALL: [Severity; 5] = [
        Severity::None,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Lower-case name used in JSON, CSV and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The smallest count of each tier above `none`; counts below `low` (i.e. 0) are `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Smallest count rated `low`.
    pub low: u32,
    /// Smallest count rated `medium`.
    pub medium: u32,
    /// Smallest count rated `high`.
    pub high: u32,
    /// Smallest count rated `critical`.
    pub critical: u32,
}

impl Thresholds {
    /// The documented defaults: low 1-9, medium 10-999, high 1,000-99,999, critical 100,000+.
    pub const DEFAULT: Thresholds = Thresholds {
        low: 1,
        medium: 10,
        high: 1_000,
        critical: 100_000,
    };

    /// The tier of a breach count.
    pub fn classify(&self, count: u32) -> Severity {
        if count >= self.critical {
            Severity::Critical
        } else if count >= self.high {
            Severity::High
        } else if count >= self.medium {
            Severity::Medium
        } else if count >= self.low {
            Severity::Low
        } else {
            Severity::None
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for Thresholds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{},{}", self.low, self.medium, self.high, self.critical)
    }
}

/// Parses `LOW,MEDIUM,HIGH,CRITICAL` (four increasing counts, the first at least 1).
impl FromStr for Thresholds {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("expected four counts LOW,MEDIUM,HIGH,CRITICAL, found {s:?}"))?;
        let [low, medium, high, critical] = parts[..] else {
            return Err(format!("expected four counts LOW,MEDIUM,HIGH,CRITICAL, found {s:?}"));
        };
        if low == 0 || !(low < medium && medium < high && high < critical) {
            return Err(format!(
                "thresholds must be increasing and start at 1 or more, found {s:?}"
            ));
        }
        Ok(Thresholds {
            low,
            medium,
            high,
            critical,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tiers_cover_boundaries() {
        let t = Thresholds::DEFAULT;
        assert_eq!(t.classify(0), Severity::None);
        assert_eq!(t.classify(1), Severity::Low);
        assert_eq!(t.classify(9), Severity::Low);
        assert_eq!(t.classify(10), Severity::Medium);
        assert_eq!(t.classify(999), Severity::Medium);
        assert_eq!(t.classify(1_000), Severity::High);
        assert_eq!(t.classify(100_000), Severity::Critical);
        assert_eq!(t.classify(u32::MAX), Severity::Critical);
    }

    #[test]
    fn thresholds_parse_and_reject_bad_orders() {
        assert_eq!("1,10,1000,100000".parse::<Thresholds>(), Ok(Thresholds::DEFAULT));
        assert!("0,10,100,1000".parse::<Thresholds>().is_err());
        assert!("1,100,10,1000".parse::<Thresholds>().is_err());
        assert!("1,2,3".parse::<Thresholds>().is_err());
        assert_eq!(Thresholds::DEFAULT.to_string(), "1,10,1000,100000");
    }
}

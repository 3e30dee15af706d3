//! Route 53 as the function sees it: what a health check's checkers say, and
//! a name's A record set.

/// What Route 53's checkers currently say about a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerReport {
    pub healthy: usize,
    pub total: usize,
    /// One failing checker's words, for the report.
    pub sample_failure: Option<String>,
}

impl CheckerReport {
    /// Route 53 status lines start with `Success` or `Failure`.
    pub fn from_statuses(statuses: &[&str]) -> Self {
        Self {
            healthy: statuses.iter().filter(|s| s.starts_with("Success")).count(),
            total: statuses.len(),
            sample_failure: statuses
                .iter()
                .find(|s| !s.starts_with("Success"))
                .map(|s| (*s).to_owned()),
        }
    }

    /// More than half of the checkers that answered see the endpoint healthy.
    pub fn mostly_healthy(&self) -> bool {
        self.total > 0 && self.healthy * 2 > self.total
    }
}

/// The one record set of a name and type, as Route 53 lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    pub name: String,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    /// Set on weighted, failover, latency... records; a simple record has none.
    pub set_identifier: Option<String>,
    /// An alias record points at an AWS resource, not at addresses.
    pub alias: bool,
}

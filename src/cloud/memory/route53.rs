//! Route 53: hosted zones and their A records (UPSERT's refusals), and the
//! health checks whose checkers a test sets.

use std::net::Ipv4Addr;

use super::account::{Account, err};
use super::records::HealthCheckRec;
use crate::cloud::sdk::same_dns_name;
use crate::cloud::{CloudError, Operation, RecordSet};

/// Route 53 names: lowercase, fully qualified.
pub(super) fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

impl Account {
    pub(super) fn zone_index(&self, operation: Operation, id: &str) -> Result<usize, CloudError> {
        let id = id.trim_start_matches("/hostedzone/");
        self.zones.iter().position(|z| z.id == id).ok_or_else(|| {
            err(
                operation,
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {id}"),
            )
        })
    }

    pub(super) fn health_check(
        &self,
        operation: Operation,
        id: &str,
    ) -> Result<&HealthCheckRec, CloudError> {
        self.health_checks
            .iter()
            .find(|h| h.id == id)
            .ok_or_else(|| {
                err(
                    operation,
                    "NoSuchHealthCheck",
                    format!("A health check with id {id} does not exist."),
                )
            })
    }

    pub(super) fn upsert_a_record(
        &mut self,
        zone_id: &str,
        name: &str,
        ttl: i64,
        address: &str,
    ) -> Result<(), CloudError> {
        const OP: Operation = Operation::ChangeResourceRecordSets;
        let z = self.zone_index(OP, zone_id)?;
        let zone = &self.zones[z];
        let name = fqdn(name);
        let batch = |m: String| err(OP, "InvalidChangeBatch", m);
        if !(name == zone.name || name.ends_with(&format!(".{}", zone.name))) {
            return Err(batch(format!(
                "RRSet with DNS name {name} is not permitted in zone {}",
                zone.name
            )));
        }
        if address.parse::<Ipv4Addr>().is_err() {
            return Err(batch(format!(
                "Invalid Resource Record: FATAL problem: ARRDATAIllegalIPv4Address encountered at {address}"
            )));
        }
        if !(0..=i64::from(i32::MAX)).contains(&ttl) {
            return Err(err(
                OP,
                "InvalidInput",
                format!("TTL {ttl} is out of range"),
            ));
        }
        if zone
            .records
            .iter()
            .any(|r| same_dns_name(&r.name, &name) && r.set_identifier.is_some())
        {
            return Err(batch(format!(
                "RRSet of type A with DNS name {name} is not permitted because a conflicting RRSet of type A with the same DNS name already exists in zone {}.",
                zone.name
            )));
        }
        let record = RecordSet {
            name: name.clone(),
            ttl: Some(ttl),
            values: vec![address.to_owned()],
            set_identifier: None,
            alias: false,
        };
        let records = &mut self.zones[z].records;
        match records.iter_mut().find(|r| same_dns_name(&r.name, &name)) {
            Some(r) => *r = record,
            None => records.push(record),
        }
        Ok(())
    }
}

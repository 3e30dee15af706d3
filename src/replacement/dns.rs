//! The DNS step: which address the record should hold, and whether an
//! UPSERT is needed, harmless, or must not happen (alias, routing policy).

use crate::cloud::{CloudError, Instance, RecordSet};
use crate::config::{DnsAddress, DnsRecord, Settings};
use crate::engine::{Change, Decision};

/// The address the DNS record should hold: the floating IP goes to the
/// replacement, so when public it wins over the replacement's own public IP.
/// `Err` says why there is none yet.
pub(super) fn dns_target(
    dns: &DnsRecord,
    settings: &Settings,
    replacement: &str,
    current: Option<&Instance>,
) -> Result<String, String> {
    match dns.address {
        DnsAddress::Public => {
            if let Some(ip) = settings.failover.floating_ip {
                return Ok(ip.to_string());
            }
            current.and_then(|i| i.public_ip.clone()).ok_or_else(|| {
                format!("{replacement} has no public address (and no FLOATING_IP is set)")
            })
        }
        DnsAddress::Private => current
            .and_then(|i| i.private_ip.clone())
            .ok_or_else(|| format!("{replacement} has no private address yet")),
    }
}

/// Decides the DNS step: already right, a record set we must not overwrite
/// (alias, or weighted/failover records that a simple UPSERT would clash with),
/// or an UPSERT.
pub fn dns_decision(
    dns: &DnsRecord,
    records: &[RecordSet],
    target: Result<String, String>,
) -> Decision {
    if let Some(r) = records
        .iter()
        .find(|r| r.alias || r.set_identifier.is_some())
    {
        let kind = if r.alias {
            "an alias record".to_owned()
        } else {
            format!(
                "a routing-policy record (SetIdentifier {})",
                r.set_identifier.as_deref().unwrap_or_default()
            )
        };
        return Decision::LeaveAlone(format!(
            "{} A in {} is {kind}; only a simple record follows the appliance (point the record at FLOATING_IP instead)",
            dns.name, dns.zone_id
        ));
    }
    let to = match target {
        Ok(to) => to,
        // In a dry run the replacement does not exist yet: say what will be used.
        Err(why) => return Decision::LeaveAlone(format!("{} not updated: {why}", dns.name)),
    };
    let current = records.first();
    if current.is_some_and(|r| r.values == [to.clone()] && r.ttl == Some(dns.ttl)) {
        return Decision::AlreadyDone(format!("{} A already {to} (TTL {})", dns.name, dns.ttl));
    }
    Decision::Make(Change::UpsertRecord {
        zone_id: dns.zone_id.clone(),
        name: dns.name.clone(),
        ttl: dns.ttl,
        from: current.map(|r| r.values.clone()).unwrap_or_default(),
        to,
    })
}

/// The record could not be looked at: UPSERT anyway (repeating it is harmless,
/// and Route 53 refuses it rather than flatten a routing-policy record).
pub(super) fn blind_upsert(
    dns: &DnsRecord,
    target: Result<String, String>,
    error: &CloudError,
) -> Decision {
    match target {
        Ok(to) => Decision::Make(Change::UpsertRecord {
            zone_id: dns.zone_id.clone(),
            name: dns.name.clone(),
            ttl: dns.ttl,
            from: vec![format!("unknown, the look failed: {error}")],
            to,
        }),
        Err(why) => Decision::LeaveAlone(format!("{} not updated: {why}", dns.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::post_launch;
    use super::*;
    use crate::cloud::InstanceState;
    use crate::step::Step;
    use crate::test_fixtures::{instance, settings, world};

    fn dns() -> DnsRecord {
        DnsRecord {
            zone_id: "Z1".into(),
            name: "ssh.example.com.".into(),
            ttl: 60,
            address: DnsAddress::Private,
        }
    }

    fn record(values: &[&str], ttl: i64) -> RecordSet {
        RecordSet {
            name: "ssh.example.com.".into(),
            ttl: Some(ttl),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            set_identifier: None,
            alias: false,
        }
    }

    #[test]
    fn dns_record_is_upserted_unless_already_right_or_not_ours() {
        let to = || Ok("10.0.2.9".to_owned());
        assert!(matches!(
            dns_decision(&dns(), &[record(&["10.0.2.9"], 60)], to()),
            Decision::AlreadyDone(_)
        ));
        let Decision::Make(Change::UpsertRecord {
            from, to: new, ttl, ..
        }) = dns_decision(&dns(), &[record(&["10.0.1.5"], 60)], to())
        else {
            panic!("expected an UPSERT");
        };
        assert_eq!(
            (from, new, ttl),
            (vec!["10.0.1.5".to_owned()], "10.0.2.9".to_owned(), 60)
        );
        // A TTL other than DNS_TTL is corrected too.
        assert!(matches!(
            dns_decision(&dns(), &[record(&["10.0.2.9"], 300)], to()),
            Decision::Make(_)
        ));
        assert!(matches!(dns_decision(&dns(), &[], to()), Decision::Make(_)));
        let mut failover = record(&["203.0.113.1"], 60);
        failover.set_identifier = Some("primary".into());
        assert!(matches!(
            dns_decision(&dns(), &[failover], to()),
            Decision::LeaveAlone(_)
        ));
        assert!(matches!(
            dns_decision(&dns(), &[], Err("no address".into())),
            Decision::LeaveAlone(_)
        ));
    }

    #[test]
    fn a_failed_look_still_upserts_the_record() {
        let mut w = world(vec![]);
        let mut s = settings();
        s.dns = Some(dns());
        w.dns_records = Some(Err(CloudError::service(
            crate::cloud::Operation::ListResourceRecordSets,
            "AccessDenied",
            "no",
        )));
        let mut i = instance("i-new", InstanceState::Running, "ap-northeast-1c");
        i.private_ip = Some("10.0.2.9".into());
        let steps = post_launch(&w, &s, "i-new", Some(&i), None);
        let dns_step = steps.iter().find(|p| p.step == Step::DnsRecord).unwrap();
        assert!(
            matches!(&dns_step.decision, Decision::Make(Change::UpsertRecord { to, .. }) if to == "10.0.2.9"),
            "{dns_step:?}"
        );
    }

    #[test]
    fn public_dns_prefers_the_floating_ip() {
        let mut s = settings();
        s.failover.floating_ip = Some("203.0.113.10".parse().unwrap());
        let mut d = dns();
        d.address = DnsAddress::Public;
        let mut i = instance("i-new", InstanceState::Running, "ap-northeast-1c");
        i.public_ip = Some("198.51.100.7".into());
        i.private_ip = Some("10.0.2.9".into());
        assert_eq!(
            dns_target(&d, &s, "i-new", Some(&i)).unwrap(),
            "203.0.113.10"
        );
        s.failover.floating_ip = None;
        assert_eq!(
            dns_target(&d, &s, "i-new", Some(&i)).unwrap(),
            "198.51.100.7"
        );
        d.address = DnsAddress::Private;
        assert_eq!(dns_target(&d, &s, "i-new", Some(&i)).unwrap(), "10.0.2.9");
        i.public_ip = None;
        d.address = DnsAddress::Public;
        assert!(dns_target(&d, &s, "i-new", Some(&i)).is_err());
    }
}

//! Failover groups: many appliances, one deployment.
//!
//! `FAILOVER_GROUPS` is a JSON list; each group has a `name` and the same keys
//! as the single-appliance variables, in lower case (`instance_name`,
//! `route_cidrs`, `alarm_name`, ..., with `region` for `TARGET_REGION`).
//! Each group is validated by the very code that validates the environment
//! ([`Settings::from_lookup`]), so the rules cannot drift apart; errors name
//! the group and the key. Without `FAILOVER_GROUPS`, the environment forms one
//! group, as before.

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::config::{ConfigError, Settings};

/// One protected appliance and what selects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub settings: Settings,
}

impl Group {
    /// Alarms with this name select the group when no health check id matches.
    pub fn alarm_name(&self) -> Option<&str> {
        self.settings.appliance.alarm_name.as_deref()
    }
}

/// A bad `FAILOVER_GROUPS` document: which group, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupsError {
    #[error("configuration: FAILOVER_GROUPS is not a JSON list of objects: {0}")]
    NotAList(String),
    #[error("configuration: FAILOVER_GROUPS group {group}: key {key:?} {problem}")]
    Key {
        group: String,
        key: String,
        problem: String,
    },
    #[error("configuration: FAILOVER_GROUPS: {0}")]
    Document(String),
    #[error(transparent)]
    Env(#[from] ConfigError),
}

/// Keys of a group that are not environment variables of their own.
const OWN_KEYS: &[&str] = &["name", "region"];

/// The group key for an environment variable (`TARGET_REGION` is `region`).
fn key_of(variable: &str) -> String {
    match variable {
        "TARGET_REGION" => "region".to_owned(),
        v => v.to_ascii_lowercase(),
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        // Lists are accepted where the variable is a comma list.
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.join(",")),
        Value::Null => Some(String::new()),
        Value::Object(_) => None,
    }
}

/// Reads the groups: from `FAILOVER_GROUPS` when set, else one group from the
/// single-appliance variables (named after its instance).
pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Vec<Group>, GroupsError> {
    let raw = get("FAILOVER_GROUPS").filter(|v| !v.trim().is_empty());
    let Some(raw) = raw else {
        let settings = Settings::from_lookup(&get)?;
        return Ok(vec![Group {
            name: settings.appliance.instance_name.clone(),
            settings,
        }]);
    };
    let doc: Value =
        serde_json::from_str(&raw).map_err(|e| GroupsError::NotAList(e.to_string()))?;
    let Value::Array(items) = doc else {
        return Err(GroupsError::NotAList(format!(
            "got {}",
            crate::event::kind_of(&doc)
        )));
    };
    if items.is_empty() {
        return Err(GroupsError::Document("the list is empty".into()));
    }
    let mut groups: Vec<Group> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let group = parse_group(i, item)?;
        if groups.iter().any(|g| g.name == group.name) {
            return Err(GroupsError::Key {
                group: group.name,
                key: "name".into(),
                problem: "is used by two groups".into(),
            });
        }
        groups.push(group);
    }
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            if let Some((key, problem)) = overlap(a, b) {
                return Err(GroupsError::Key {
                    group: b.name.clone(),
                    key: key.into(),
                    problem,
                });
            }
        }
    }
    Ok(groups)
}

/// What two groups both claim, as (group key, problem). An alarm must select
/// one group; and two groups over one instance, Elastic IP, route or DNS
/// record would each move it their own way, every reconcile undoing the
/// other. Targets in the function's own region (no `region`) compare equal
/// to each other only: the function does not know its region here.
fn overlap(a: &Group, b: &Group) -> Option<(&'static str, String)> {
    let (x, y) = (&a.settings, &b.settings);
    let same = |p: Option<&str>, q: Option<&str>| p.is_some() && p == q;
    let region = x.appliance.target_region == y.appliance.target_region;
    let vpc = region && x.appliance.vpc_name == y.appliance.vpc_name;
    let shared_route = || {
        let table = vpc && x.failover.route_table_name == y.failover.route_table_name;
        let cidrs = &y.failover.route_cidrs;
        table && x.failover.route_cidrs.iter().any(|c| cidrs.contains(c))
    };
    let shared_ip =
        x.failover.floating_ip.is_some() && x.failover.floating_ip == y.failover.floating_ip;
    let key = if same(
        x.appliance.health_check_id.as_deref(),
        y.appliance.health_check_id.as_deref(),
    ) {
        "health_check_id"
    } else if same(a.alarm_name(), b.alarm_name()) {
        "alarm_name"
    } else if vpc && x.appliance.instance_name == y.appliance.instance_name {
        "instance_name"
    } else if region && shared_ip {
        "floating_ip"
    } else if shared_route() {
        "route_cidrs"
    } else if x.dns.is_some()
        && x.dns.as_ref().map(|d| (&d.zone_id, &d.name))
            == y.dns.as_ref().map(|d| (&d.zone_id, &d.name))
    {
        "dns_record_name"
    } else {
        return None;
    };
    let why = match key {
        "health_check_id" | "alarm_name" => "an alarm must select one group",
        _ => "two groups would move it each their own way",
    };
    Some((key, format!("is also group {}'s; {why}", a.name)))
}

fn parse_group(index: usize, item: &Value) -> Result<Group, GroupsError> {
    let label = format!("#{}", index + 1);
    let Value::Object(obj) = item else {
        return Err(GroupsError::Key {
            group: label,
            key: String::new(),
            problem: format!("is {}, not an object", crate::event::kind_of(item)),
        });
    };
    let name = group_name(label, obj)?;
    let values = group_values(&name, obj)?;
    let asked: RefCell<BTreeSet<String>> = RefCell::default();
    let lookup = |variable: &str| {
        let key = key_of(variable);
        asked.borrow_mut().insert(key.clone());
        values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    };
    let mut settings = Settings::from_lookup(lookup).map_err(|e| GroupsError::Key {
        group: name.clone(),
        key: key_of(e.variable),
        problem: match e.value.as_str() {
            "" => e.problem,
            v => format!("= {v:?} {}", e.problem),
        },
    })?;
    // A key the settings never asked for is a typo or a variable from elsewhere.
    let asked = asked.into_inner();
    if let Some((key, _)) = values
        .iter()
        .find(|(k, _)| !asked.contains(k) && !OWN_KEYS.contains(&k.as_str()))
    {
        let mut known: Vec<&str> = asked.iter().map(String::as_str).collect();
        known.extend(OWN_KEYS);
        known.sort_unstable();
        return Err(GroupsError::Key {
            group: name,
            key: key.clone(),
            problem: format!("is not a known key (known: {})", known.join(", ")),
        });
    }
    settings.appliance.group = Some(name.clone());
    Ok(Group { name, settings })
}

/// The group's `name`, which every error after it names the group by.
fn group_name(label: String, obj: &Map<String, Value>) -> Result<String, GroupsError> {
    match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        _ => Err(GroupsError::Key {
            group: label,
            key: "name".into(),
            problem: "is required (a non-empty string)".into(),
        }),
    }
}

/// Every key of the group with its value as the environment would hold it.
fn group_values(
    name: &str,
    obj: &Map<String, Value>,
) -> Result<Vec<(String, String)>, GroupsError> {
    obj.iter()
        .map(|(key, value)| {
            let text = text_of(value).ok_or_else(|| GroupsError::Key {
                group: name.to_owned(),
                key: key.clone(),
                problem: "must be a string, number, boolean or list of strings".into(),
            })?;
            Ok((key.clone(), text))
        })
        .collect()
}

/// Which of `items` (groups, or what holds one) an alarm belongs to: by health
/// check id first, then by alarm name.
pub fn for_alarm<'a, T>(
    items: &'a [T],
    group: impl Fn(&T) -> &Group,
    health_check_id: Option<&str>,
    alarm_name: &str,
) -> Option<&'a T> {
    health_check_id
        .and_then(|id| {
            items
                .iter()
                .find(|g| group(g).settings.appliance.health_check_id.as_deref() == Some(id))
        })
        .or_else(|| {
            items
                .iter()
                .find(|g| group(g).alarm_name() == Some(alarm_name))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(doc: &str) -> Result<Vec<Group>, GroupsError> {
        let doc = doc.to_owned();
        from_lookup(move |k| (k == "FAILOVER_GROUPS").then(|| doc.clone()))
    }

    const TWO: &str = r#"[
      {"name": "tokyo-vpn", "instance_name": "sophos", "ami_name": "sophos", "vpc_name": "my-vpc",
       "subnet_name": "public", "route_cidrs": ["10.242.2.0/24"], "floating_ip": "203.0.113.10",
       "region": "ap-northeast-1", "health_check_id": "hc-tokyo", "cooldown_minutes": 30,
       "standby": "hot"},
      {"name": "dublin-nat", "instance_name": "nat", "ami_name": "nat", "vpc_name": "eu-vpc",
       "subnet_name": "private", "route_cidrs": "0.0.0.0/0", "region": "eu-west-1",
       "alarm_name": "nat-health"}
    ]"#;

    #[test]
    fn a_groups_document_gives_validated_settings_per_group() {
        let g = groups(TWO).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].name, "tokyo-vpn");
        assert_eq!(
            g[0].settings.appliance.target_region.as_deref(),
            Some("ap-northeast-1")
        );
        assert_eq!(g[0].settings.failover.cooldown.as_secs(), 30 * 60);
        assert_eq!(
            g[0].settings.failover.route_cidrs[0].to_string(),
            "10.242.2.0/24"
        );
        assert_eq!(g[1].settings.failover.route_table_name, "private");
        assert_eq!(g[1].alarm_name(), Some("nat-health"));
        // Each group has its own standby mode; cold unless it says so.
        assert_eq!(g[0].settings.failover.standby, crate::config::Standby::Hot);
        assert_eq!(g[1].settings.failover.standby, crate::config::Standby::Cold);
    }

    #[test]
    fn without_the_document_the_environment_is_one_group() {
        let env = |k: &str| {
            match k {
                "INSTANCE_NAME" | "AMI_NAME" => Some("sophos"),
                "VPC_NAME" => Some("my-vpc"),
                "SUBNET_NAME" => Some("public"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let g = from_lookup(env).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, "sophos");
    }

    #[test]
    fn errors_name_the_group_and_the_key() {
        let cases = [
            (r#"{"a": 1}"#, None, None),
            ("[]", None, None),
            ("not json", None, None),
            (r#"[{"instance_name": "x"}]"#, Some("#1"), Some("name")),
            (
                r#"[{"name": "g1", "instance_name": "x", "ami_name": "x", "vpc_name": "v"}]"#,
                Some("g1"),
                Some("subnet_name"),
            ),
            (
                r#"[{"name": "g1", "instance_name": "x", "ami_name": "x", "vpc_name": "v", "subnet_name": "s", "route_cidrs": "10.0.0.1/8"}]"#,
                Some("g1"),
                Some("route_cidrs"),
            ),
            (
                r#"[{"name": "g1", "instance_name": "x", "ami_name": "x", "vpc_name": "v", "subnet_name": "s", "region": "Tokyo"}]"#,
                Some("g1"),
                Some("region"),
            ),
            (
                r#"[{"name": "g1", "instance_name": "x", "ami_name": "x", "vpc_name": "v", "subnet_name": "s", "standby": "lukewarm"}]"#,
                Some("g1"),
                Some("standby"),
            ),
            (
                r#"[{"name": "g1", "instance_name": "x", "ami_name": "x", "vpc_name": "v", "subnet_name": "s", "floating_ipp": "1.2.3.4"}]"#,
                Some("g1"),
                Some("floating_ipp"),
            ),
            (
                r#"[{"name": "g1", "instance_name": "x", "ami_name": "x", "vpc_name": "v", "subnet_name": "s", "cooldown_minutes": {"m": 1}}]"#,
                Some("g1"),
                Some("cooldown_minutes"),
            ),
            (
                r#"[{"name": "g", "instance_name": "x", "ami_name": "x", "vpc_name": "v", "subnet_name": "s"},
                    {"name": "g", "instance_name": "y", "ami_name": "y", "vpc_name": "v", "subnet_name": "s"}]"#,
                Some("g"),
                Some("name"),
            ),
            (
                r#"[{"name": "a", "instance_name": "x", "ami_name": "x", "vpc_name": "v", "subnet_name": "s", "health_check_id": "hc"},
                    {"name": "b", "instance_name": "y", "ami_name": "y", "vpc_name": "v", "subnet_name": "s", "health_check_id": "hc"}]"#,
                Some("b"),
                Some("health_check_id"),
            ),
        ];
        for (doc, group, key) in cases {
            let e = groups(doc).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("FAILOVER_GROUPS"), "{text}");
            if let (Some(group), Some(key)) = (group, key) {
                match &e {
                    GroupsError::Key {
                        group: g, key: k, ..
                    } => {
                        assert_eq!((g.as_str(), k.as_str()), (group, key), "{text}");
                    }
                    other => panic!("{doc}: {other}"),
                }
            }
        }
    }

    #[test]
    fn alarms_select_by_health_check_then_by_name() {
        let g = groups(TWO).unwrap();
        assert_eq!(
            for_alarm(&g, |g| g, Some("hc-tokyo"), "whatever")
                .unwrap()
                .name,
            "tokyo-vpn"
        );
        assert_eq!(
            for_alarm(&g, |g| g, Some("hc-other"), "nat-health")
                .unwrap()
                .name,
            "dublin-nat"
        );
        assert_eq!(
            for_alarm(&g, |g| g, None, "nat-health").unwrap().name,
            "dublin-nat"
        );
        assert!(for_alarm(&g, |g| g, Some("hc-other"), "other").is_none());
    }

    /// Two groups over one appliance's instance, EIP, route or DNS record.
    fn pair(a: &str, b: &str) -> String {
        let base = r#""ami_name": "x", "subnet_name": "public", "region": "ap-northeast-1""#;
        format!(
            r#"[{{"name": "a", "vpc_name": "v", {base}, {a}}},
                {{"name": "b", "vpc_name": "v", {base}, {b}}}]"#
        )
    }

    #[test]
    fn two_groups_may_not_claim_one_instance_address_route_or_record() {
        let dns = r#""dns_zone_id": "Z1", "dns_record_name": "vpn.example.com""#;
        let cases = [
            (
                r#""instance_name": "x""#,
                r#""instance_name": "x""#,
                "instance_name",
            ),
            (
                r#""instance_name": "x", "floating_ip": "203.0.113.1""#,
                r#""instance_name": "y", "floating_ip": "203.0.113.1""#,
                "floating_ip",
            ),
            (
                r#""instance_name": "x", "route_cidrs": "10.0.0.0/8,0.0.0.0/0""#,
                r#""instance_name": "y", "route_cidrs": "0.0.0.0/0""#,
                "route_cidrs",
            ),
            (
                &format!(r#""instance_name": "x", {dns}"#),
                &format!(r#""instance_name": "y", {dns}"#),
                "dns_record_name",
            ),
        ];
        for (a, b, key) in cases {
            match groups(&pair(a, b)) {
                Err(GroupsError::Key {
                    group,
                    key: k,
                    problem,
                }) => {
                    assert_eq!((group.as_str(), k.as_str()), ("b", key), "{problem}");
                    assert!(problem.contains("group a's"), "{problem}");
                }
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn groups_apart_by_name_cidr_or_region_are_accepted() {
        let apart = [
            (r#""instance_name": "x""#, r#""instance_name": "y""#),
            (
                r#""instance_name": "x", "route_cidrs": "10.0.0.0/8""#,
                r#""instance_name": "y", "route_cidrs": "0.0.0.0/0""#,
            ),
        ];
        for (a, b) in apart {
            assert!(groups(&pair(a, b)).is_ok(), "{a} / {b}");
        }
        // The same names in another region are other resources.
        let other_region = pair(r#""instance_name": "x""#, r#""instance_name": "x""#).replacen(
            "ap-northeast-1",
            "eu-west-1",
            1,
        );
        assert!(groups(&other_region).is_ok());
    }

    #[test]
    fn a_wildcard_in_a_name_is_refused_with_the_group_and_key() {
        let doc = pair(r#""instance_name": "vpn*""#, r#""instance_name": "y""#);
        match groups(&doc) {
            Err(GroupsError::Key {
                group,
                key,
                problem,
            }) => {
                assert_eq!((group.as_str(), key.as_str()), ("a", "instance_name"));
                assert!(problem.contains("wildcard"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }
}

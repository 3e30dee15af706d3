//! A small evaluator of the function's IAM policy in `template.yaml`.
//!
//! It renders the inline policy for one set of stack parameters (the
//! CloudFormation functions the template uses: `Ref`, `Sub`, `If`, `Split`,
//! and the `Conditions` section), then answers whether a request (action,
//! resource ARN, condition keys) is allowed, as IAM does: some `Allow`
//! statement names the action and the resource and every one of its
//! conditions holds, and no `Deny` statement does (the `iam_policy` tests
//! allow a Deny only to take away). A condition operator it does not know is a test failure,
//! never a silent allow.

use std::collections::BTreeMap;

use serde_yaml::Value;

pub const ACCOUNT: &str = "123456789012";
pub const PARTITION: &str = "aws";

/// One API request as IAM sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub action: String,
    pub resource: String,
    /// Condition keys (lower case) and their values.
    pub context: BTreeMap<String, Vec<String>>,
}

impl Request {
    pub fn new(action: &str, resource: impl Into<String>) -> Self {
        Self {
            action: action.to_owned(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.context
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.into());
        self
    }

    /// `aws:ResourceTag/<k>` for each tag.
    pub fn resource_tags<'a>(self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        tags.into_iter()
            .fold(self, |r, (k, v)| r.with(&format!("aws:ResourceTag/{k}"), v))
    }

    /// `aws:RequestTag/<k>` for each tag, and `aws:TagKeys`.
    pub fn request_tags<'a>(self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        tags.into_iter().fold(self, |r, (k, v)| {
            r.with(&format!("aws:RequestTag/{k}"), v)
                .with("aws:TagKeys", k)
        })
    }
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: String,
    /// A `Deny` takes away what the `Allow`s grant.
    deny: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    condition: Option<Value>,
}

/// The rendered policy of one deployment.
#[derive(Debug, Clone)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// The function's inline policy documents for these parameter values, rendered.
pub fn documents(template: &Value, params: &[(&str, &str)], region: &str) -> Value {
    let stack = Stack::new(template, params, region);
    let policies = &template["Resources"]["FailoverFunction"]["Properties"]["Policies"];
    stack.render(policies).expect("the function has policies")
}

/// The stack's output `name` for these parameter values, rendered.
pub fn output(template: &Value, params: &[(&str, &str)], name: &str) -> Option<Value> {
    let stack = Stack::new(template, params, "ap-northeast-1");
    stack.render(&template["Outputs"][name]["Value"])
}

impl Policy {
    /// The function's policy for these parameter values (others: the
    /// template's defaults), deployed in `region`.
    pub fn render(template: &Value, params: &[(&str, &str)], region: &str) -> Policy {
        let statements = documents(template, params, region)
            .as_sequence()
            .expect("Policies is a list")
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().expect("inline policy").clone())
            .collect::<Vec<_>>();
        Policy::of(&statements)
    }

    /// A policy of these rendered statements (a policy document's `Statement`).
    pub fn of(statements: &[Value]) -> Policy {
        let statement = |st: &Value| {
            let deny = match st["Effect"].as_str() {
                Some("Allow") => false,
                Some("Deny") => true,
                other => panic!("Effect {other:?}"),
            };
            Statement {
                sid: st["Sid"].as_str().unwrap_or("(no Sid)").to_owned(),
                deny,
                actions: texts(&st["Action"]),
                resources: texts(&st["Resource"]),
                condition: st.get("Condition").cloned(),
            }
        };
        Policy {
            statements: statements.iter().map(statement).collect(),
        }
    }

    /// Whether a `Deny` of the policy matches the request.
    pub fn denies(&self, request: &Request) -> bool {
        self.statements
            .iter()
            .any(|st| st.deny && st.applies(request))
    }

    /// The statement that allows the request, if any and none denies it.
    pub fn allows(&self, request: &Request) -> Option<&Statement> {
        if self.denies(request) {
            return None;
        }
        self.statements
            .iter()
            .find(|st| !st.deny && st.applies(request))
    }
}

impl Statement {
    pub fn is_deny(&self) -> bool {
        self.deny
    }

    pub fn actions(&self) -> &[String] {
        &self.actions
    }

    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// The condition keys the statement tests, as written.
    pub fn condition_keys(&self) -> Vec<String> {
        let ops = self.condition.iter().filter_map(Value::as_mapping);
        ops.flat_map(|ops| ops.values().filter_map(Value::as_mapping))
            .flat_map(|keys| keys.keys().filter_map(Value::as_str).map(str::to_owned))
            .collect()
    }

    /// It names the request's action and resource, and its conditions hold.
    fn applies(&self, request: &Request) -> bool {
        self.actions.iter().any(|a| glob(a, &request.action, true))
            && self
                .resources
                .iter()
                .any(|r| glob(r, &request.resource, false))
            && self
                .condition
                .as_ref()
                .is_none_or(|c| conditions_hold(c, &request.context))
    }
}

fn texts(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(texts).collect(),
        other => panic!("not a string or list of strings: {other:?}"),
    }
}

/// IAM's `*` and `?` wildcards (actions compare case-insensitively).
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (
            pattern.to_ascii_lowercase().chars().collect(),
            text.to_ascii_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(&p, &t)
}

/// Whether every condition of a statement's `Condition` block holds.
fn conditions_hold(condition: &Value, context: &BTreeMap<String, Vec<String>>) -> bool {
    let ops = condition.as_mapping().expect("Condition is a mapping");
    ops.iter().all(|(op, keys)| {
        let op = op.as_str().expect("operator");
        let keys = keys.as_mapping().expect("operator maps keys to values");
        keys.iter().all(|(key, wanted)| {
            let key = key.as_str().expect("key").to_ascii_lowercase();
            let wanted = texts(wanted);
            let have = context.get(&key);
            holds(op, &wanted, have.map(Vec::as_slice))
        })
    })
}

fn holds(op: &str, wanted: &[String], have: Option<&[String]>) -> bool {
    let any = |f: &dyn Fn(&String) -> bool| have.is_some_and(|h| h.iter().any(f));
    match op {
        "StringEquals" => any(&|h| wanted.contains(h)),
        // Negated: holds when the key is missing, as in IAM.
        "StringNotEquals" => have.is_none_or(|h| !h.iter().any(|v| wanted.contains(v))),
        "StringLike" | "ForAnyValue:StringLike" => {
            any(&|h| wanted.iter().any(|w| glob(w, h, false)))
        }
        // ARNs compare like strings with wildcards; a missing key is not like.
        "ArnNotLike" => {
            have.is_none_or(|h| !h.iter().any(|v| wanted.iter().any(|w| glob(w, v, false))))
        }
        "StringNotEqualsIgnoreCase" => have.is_none_or(|h| {
            !h.iter()
                .any(|v| wanted.iter().any(|w| w.eq_ignore_ascii_case(v)))
        }),
        "Bool" => any(&|h| wanted.iter().any(|w| w.eq_ignore_ascii_case(h))),
        // "true": the request has no such key; "false": it has one.
        "Null" => wanted.iter().all(|w| (w == "true") == have.is_none()),
        // Every value of the request among the wanted ones; no value holds.
        "ForAllValues:StringEquals" => have.is_none_or(|h| h.iter().all(|v| wanted.contains(v))),
        other => panic!("the evaluator does not know condition operator {other}"),
    }
}

/// Parameters, pseudo parameters and conditions of one deployment.
struct Stack<'a> {
    template: &'a Value,
    params: BTreeMap<String, String>,
}

impl<'a> Stack<'a> {
    fn new(template: &'a Value, given: &[(&str, &str)], region: &str) -> Self {
        let mut params = BTreeMap::new();
        let declared = template["Parameters"].as_mapping().expect("Parameters");
        for (name, decl) in declared {
            let name = name.as_str().expect("parameter name").to_owned();
            let default = match &decl["Default"] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            };
            params.extend(default.map(|d| (name, d)));
        }
        for (k, v) in given {
            assert!(declared.contains_key(*k), "template has no parameter {k}");
            params.insert((*k).to_owned(), (*v).to_owned());
        }
        params.insert("AWS::Region".into(), region.into());
        params.insert("AWS::AccountId".into(), ACCOUNT.into());
        params.insert("AWS::Partition".into(), PARTITION.into());
        params.insert("AWS::StackName".into(), "ec2-failover".into());
        Stack { template, params }
    }

    fn reference(&self, name: &str) -> Option<Value> {
        if name == "AWS::NoValue" {
            return None;
        }
        if let Some(v) = self.params.get(name) {
            return Some(Value::String(v.clone()));
        }
        assert!(
            self.template["Resources"].get(name).is_some(),
            "Ref {name}: no parameter (without a default, give it) and no resource"
        );
        Some(Value::String(format!("<{name}>")))
    }

    fn condition(&self, name: &str) -> bool {
        let c = self.template["Conditions"]
            .get(name)
            .unwrap_or_else(|| panic!("no condition {name}"));
        self.truth(c)
    }

    fn truth(&self, v: &Value) -> bool {
        let Value::Tagged(t) = v else {
            panic!("not a condition function: {v:?}")
        };
        let args = t.value.as_sequence();
        match t.tag.to_string().trim_start_matches('!') {
            "Equals" => {
                let a = args.expect("Equals [a, b]");
                self.render(&a[0]) == self.render(&a[1])
            }
            "Not" => !self.truth(&args.expect("Not [c]")[0]),
            "And" => args.expect("And [..]").iter().all(|c| self.truth(c)),
            "Or" => args.expect("Or [..]").iter().any(|c| self.truth(c)),
            "Condition" => self.condition(t.value.as_str().expect("Condition name")),
            other => panic!("unknown condition function {other}"),
        }
    }

    /// The value as deployed; `None` for `AWS::NoValue`.
    fn render(&self, v: &Value) -> Option<Value> {
        match v {
            Value::Sequence(items) => Some(Value::Sequence(
                items.iter().filter_map(|i| self.render(i)).collect(),
            )),
            Value::Mapping(m) => Some(Value::Mapping(
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.render(v)?)))
                    .collect(),
            )),
            Value::Tagged(t) => self.function(t.tag.to_string().trim_start_matches('!'), &t.value),
            other => Some(other.clone()),
        }
    }

    fn function(&self, name: &str, arg: &Value) -> Option<Value> {
        let args = || arg.as_sequence().expect("function arguments");
        match name {
            "Ref" => self.reference(arg.as_str().expect("Ref name")),
            "If" => {
                let a = args();
                let cond = a[0].as_str().expect("If condition name");
                self.render(&a[if self.condition(cond) { 1 } else { 2 }])
            }
            "Sub" => Some(Value::String(self.sub(arg))),
            "Join" => {
                let a = args();
                let sep = self
                    .render(&a[0])
                    .and_then(|v| v.as_str().map(str::to_owned));
                let items = self.render(&a[1]).and_then(|v| v.as_sequence().cloned());
                let items: Vec<String> = items
                    .expect("Join of a list")
                    .iter()
                    .map(|i| i.as_str().expect("Join of strings").to_owned())
                    .collect();
                Some(Value::String(items.join(&sep.expect("Join separator"))))
            }
            "Select" => {
                let a = args();
                let index = a[0].as_u64().expect("Select index") as usize;
                let list = self.render(&a[1])?;
                list.as_sequence()?.get(index).cloned()
            }
            "Split" => {
                let a = args();
                let sep = a[0].as_str().expect("Split separator");
                let text = self
                    .render(&a[1])
                    .and_then(|v| v.as_str().map(str::to_owned));
                let text = text.expect("Split of a string");
                Some(Value::Sequence(
                    text.split(sep)
                        .map(|p| Value::String(p.to_owned()))
                        .collect(),
                ))
            }
            // A resource's attribute is known at deploy time only: a placeholder.
            "GetAtt" => {
                let name = arg.as_str().expect("GetAtt Resource.Attribute");
                let resource = name.split('.').next().unwrap_or_default();
                // SAM makes a function's role `<Function>Role` unless given one.
                let sam_role = resource.strip_suffix("Role").is_some_and(|f| {
                    self.template["Resources"][f]["Type"].as_str()
                        == Some("AWS::Serverless::Function")
                });
                assert!(
                    self.template["Resources"].get(resource).is_some() || sam_role,
                    "GetAtt {name}: no such resource"
                );
                Some(Value::String(format!("<{name}>")))
            }
            other => panic!("the evaluator does not render !{other}"),
        }
    }

    fn sub(&self, arg: &Value) -> String {
        let (text, vars) = match arg {
            Value::String(s) => (s.clone(), BTreeMap::new()),
            Value::Sequence(a) => {
                let vars = a[1]
                    .as_mapping()
                    .expect("Sub variables")
                    .iter()
                    .map(|(k, v)| {
                        let value = self.render(v).and_then(|v| v.as_str().map(str::to_owned));
                        (k.as_str().expect("name").to_owned(), value.expect("text"))
                    })
                    .collect();
                (a[0].as_str().expect("Sub text").to_owned(), vars)
            }
            other => panic!("malformed Sub: {other:?}"),
        };
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let end = rest[at..].find('}').expect("closing }") + at;
            let name = &rest[at + 2..end];
            let value = vars.get(name).cloned().or_else(|| {
                self.reference(name)
                    .and_then(|v| v.as_str().map(str::to_owned))
            });
            out.push_str(&value.unwrap_or_else(|| panic!("Sub: unknown ${{{name}}}")));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

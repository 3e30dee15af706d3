//! Reading raw variables: empty values count as unset (SAM passes optional
//! parameters as ""), and each kind of value fails with the variable's name.

use super::ConfigError;

/// The variables, through a lookup, so tests and `FAILOVER_GROUPS` need not
/// touch the process environment.
pub struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { get }
    }

    pub fn optional(&self, k: &str) -> Option<String> {
        (self.get)(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, k: &'static str) -> Result<String, ConfigError> {
        self.optional(k)
            .ok_or_else(|| ConfigError::new(k, "", "is required but not set"))
    }

    /// A name EC2 is asked for by tag filter (`tag:Name`, `group-name`),
    /// which reads `*` and `?` as wildcards: `vpn*` would match every
    /// instance whose name starts with vpn, and the jobs would act on the
    /// wrong one. Such a name is refused rather than escaped: a real Name tag
    /// with a `*` is rare, and an operator who typed one more likely meant a
    /// pattern this function must not follow.
    pub fn required_name(&self, k: &'static str) -> Result<String, ConfigError> {
        let v = self.required(k)?;
        exact_name(&v).map_err(|p| ConfigError::new(k, &v, p))
    }

    /// [`Env::required_name`] for an optional name.
    pub fn optional_name(&self, k: &'static str) -> Result<Option<String>, ConfigError> {
        self.parsed(k, exact_name)
    }

    /// A whole number of `unit`, `default` when unset.
    pub fn whole(&self, k: &'static str, default: u32, unit: &str) -> Result<u32, ConfigError> {
        self.optional(k)
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    ConfigError::new(k, &v, format!("is not a whole number of {unit}"))
                })
            })
            .transpose()
            .map(|v| v.unwrap_or(default))
    }

    /// At least 1 of `unit`; `zero` says why 0 is refused.
    pub fn positive(
        &self,
        k: &'static str,
        default: u32,
        unit: &str,
        zero: &str,
    ) -> Result<u32, ConfigError> {
        match self.whole(k, default, unit)? {
            0 => Err(ConfigError::new(k, "0", zero)),
            n => Ok(n),
        }
    }

    pub fn flag(&self, k: &'static str, default: bool) -> Result<bool, ConfigError> {
        self.optional(k)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(k, &v, "is not true or false")),
            })
            .transpose()
            .map(|v| v.unwrap_or(default))
    }

    /// A comma-separated list, each item checked by `parse`, duplicates dropped.
    pub fn list<T: PartialEq>(
        &self,
        k: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, ConfigError> {
        let Some(raw) = self.optional(k) else {
            return Ok(Vec::new());
        };
        let mut items: Vec<T> = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let item = parse(part).map_err(|p| ConfigError::new(k, &raw, p))?;
            if !items.contains(&item) {
                items.push(item);
            }
        }
        Ok(items)
    }

    /// An optional value checked by `parse`; its error is the problem text.
    pub fn parsed<T>(
        &self,
        k: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.optional(k)
            .map(|v| parse(&v).map_err(|p| ConfigError::new(k, &v, p)))
            .transpose()
    }
}

/// A name with no EC2 filter wildcard in it.
pub(super) fn exact_name(v: &str) -> Result<String, String> {
    match v.chars().find(|c| matches!(c, '*' | '?')) {
        Some(c) => Err(format!(
            "contains `{c}`, which EC2 reads as a wildcard in a name filter, so it \
             could match resources that are not the appliance's; give the exact name"
        )),
        None => Ok(v.to_owned()),
    }
}

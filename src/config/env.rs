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

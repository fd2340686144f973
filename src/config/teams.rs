use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::shared::BudgetPeriod;

/// `[[teams]]`: a team of callers (JWT callers name theirs in a claim): the models its members may
/// use, its rate limits and its budget, shared by every member and, with Redis, every replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub name: String,
    /// The models (as clients name them) its members may use; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Requests per minute for the whole team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens per minute for the whole team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Spend allowed per `budget_period`, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    #[serde(default)]
    pub budget_period: BudgetPeriod,
}

/// Team names are recorded with requests and label stats: short and plain.
const MAX_NAME: usize = 64;

impl TeamConfig {
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }
}

pub(super) fn validate(teams: &[TeamConfig], origin: &str) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for (i, team) in teams.iter().enumerate() {
        let invalid = |field: &str, reason: String| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("teams[{i}].{field}"),
            reason,
        };
        let plain = |c: char| c.is_ascii_alphanumeric() || "-_.@".contains(c);
        if team.name.is_empty() || team.name.len() > MAX_NAME || !team.name.chars().all(plain) {
            return Err(invalid(
                "name",
                format!(
                    "`{}`: 1 to {MAX_NAME} letters, digits or `-_.@`",
                    team.name.escape_debug()
                ),
            ));
        }
        if !seen.insert(team.name.as_str()) {
            return Err(invalid("name", format!("`{}` is defined twice", team.name)));
        }
        if team.budget_usd.is_some_and(|b| !b.is_finite() || b < 0.0) {
            return Err(invalid("budget_usd", "must be a positive amount".into()));
        }
        for (field, limit) in [("rpm", team.rpm), ("tpm", team.tpm)] {
            if limit == Some(0) {
                return Err(invalid(
                    field,
                    "must be above 0 (leave it out for no limit)".into(),
                ));
            }
        }
    }
    Ok(())
}

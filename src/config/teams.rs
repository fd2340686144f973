use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::domain::BudgetPeriod;

/// `[[teams]]`: a team of callers (JWT callers name theirs in a claim, or are listed as members;
/// virtual keys name theirs): the models its members may use, its rate limits and its budget,
/// shared by every member and, with Redis, every replica. `/api/teams` takes the same fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub name: String,
    /// Users (as a JWT's user claim names them) who act as this team when their token names no
    /// team.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
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
        check(team).map_err(|(field, reason)| invalid(field, reason))?;
        if !seen.insert(team.name.as_str()) {
            return Err(invalid("name", format!("`{}` is defined twice", team.name)));
        }
    }
    Ok(())
}

/// Checks one team (from the configuration or the API): the field at fault and why.
pub fn check(team: &TeamConfig) -> Result<(), (&'static str, String)> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.@".contains(c);
    if team.name.is_empty() || team.name.len() > MAX_NAME || !team.name.chars().all(plain) {
        return Err((
            "name",
            format!(
                "`{}`: 1 to {MAX_NAME} letters, digits or `-_.@`",
                team.name.escape_debug()
            ),
        ));
    }
    if team.budget_usd.is_some_and(|b| !b.is_finite() || b < 0.0) {
        return Err(("budget_usd", "must be a positive amount".into()));
    }
    for (field, limit) in [("rpm", team.rpm), ("tpm", team.tpm)] {
        if limit == Some(0) {
            return Err((field, "must be above 0 (leave it out for no limit)".into()));
        }
    }
    if team.members.len() > MAX_MEMBERS
        || team
            .members
            .iter()
            .any(|m| m.is_empty() || m.len() > 128 || m.chars().any(char::is_control))
    {
        return Err((
            "members",
            format!("at most {MAX_MEMBERS} user ids of 1 to 128 printable characters"),
        ));
    }
    if team.models.len() > MAX_MEMBERS || team.models.iter().any(|m| m.len() > 256) {
        return Err(("models", format!("at most {MAX_MEMBERS} model names")));
    }
    Ok(())
}

/// Members (and models) listed per team, at most.
const MAX_MEMBERS: usize = 10_000;

/// [`check`] as one message, for the API.
pub fn validate_team(team: &TeamConfig) -> Result<(), String> {
    check(team).map_err(|(field, reason)| format!("`{field}`: {reason}"))
}

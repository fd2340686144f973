//! Virtual keys: what one may do, and how it is listed.

use serde::{Deserialize, Serialize};

/// What a virtual key may do. Sent to create a key; every field but `name` may be left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct KeySettings {
    pub name: String,
    /// Models the key may use, as the client names them; empty: all.
    pub models: Vec<String>,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    pub tpm: Option<u64>,
    /// Spend limit in USD per `budget_period`.
    pub budget_usd: Option<f64>,
    /// `day` (UTC) or `month` (UTC calendar month).
    pub budget_period: BudgetPeriod,
    /// Unix seconds after which the key stops working.
    pub expires_at: Option<u64>,
    /// The team the key belongs to: the team's models, limits and budget apply too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    Day,
    #[default]
    Month,
}

/// A virtual key as listed: never its secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    pub id: String,
    /// The secret's first characters, to recognise it.
    pub prefix: String,
    #[serde(flatten)]
    pub settings: KeySettings,
    /// Unix seconds.
    pub created_at: u64,
    pub spend_today_usd: f64,
    pub spend_month_usd: f64,
}

/// A key just created or rotated: the only time its secret is shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: KeyInfo,
    pub key: String,
}

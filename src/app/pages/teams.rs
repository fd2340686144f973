//! Teams: each team's models, limits, budget and spend, then usage per team and per user (JWT
//! callers and keys in a team) over the last 24 hours. Teams are made in the configuration or with
//! `/api/teams`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::components::status::{ErrorNote, Loading};
use crate::app::components::usage_table::UsageTable;
use crate::app::components::use_refresh;
use crate::app::format;
use crate::app::i18n::use_i18n;
use crate::domain::BudgetPeriod;
use crate::reports::UsageRow;

/// One team as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamRow {
    pub name: String,
    /// `config` or `api`.
    pub source: String,
    pub models: Vec<String>,
    pub members: usize,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub budget_usd: Option<f64>,
    pub budget_period: BudgetPeriod,
    pub spend_today_usd: f64,
    pub spend_month_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamsData {
    pub teams: Vec<TeamRow>,
    pub by_team: Vec<UsageRow>,
    pub by_user: Vec<UsageRow>,
}

#[server(prefix = "/console/fn", endpoint = "get_teams")]
pub async fn get_teams() -> Result<TeamsData, ServerFnError> {
    use crate::app::backend;
    backend::require_admin().await?;
    let state = backend::state();
    let window = backend::window("24h")?;
    let (by_team, by_user) = futures_util::try_join!(
        state.stats.breakdown(window, "team"),
        state.stats.breakdown(window, "user"),
    )
    .map_err(backend::store_error)?;
    let teams = state
        .governance
        .teams
        .list()
        .into_iter()
        .map(|(team, configured)| {
            let (today, month) = state
                .governance
                .keys
                .spend(&crate::governance::team_spender(&team.name));
            TeamRow {
                name: team.name.clone(),
                source: if configured { "config" } else { "api" }.into(),
                models: team.models.clone(),
                members: team.members.len(),
                rpm: team.rpm,
                tpm: team.tpm,
                budget_usd: team.budget_usd,
                budget_period: team.budget_period,
                spend_today_usd: today,
                spend_month_usd: month,
            }
        })
        .collect();
    Ok(TeamsData {
        teams,
        by_team,
        by_user,
    })
}

#[component]
pub fn Teams() -> impl IntoView {
    let i18n = use_i18n();
    let refresh = use_refresh();
    let data = Resource::new(move || refresh.get(), |_| get_teams());
    view! {
        <section class="page">
            <div class="page-head">
                <h1>{move || i18n.t("Teams")}</h1>
                <span class="live muted">{move || i18n.t("Live · refreshes every 5 s")}</span>
            </div>
            <p class="muted">{move || i18n.t("Teams group JWT callers and virtual keys under shared models, limits and a budget. Define them in the configuration or with /api/teams.")}</p>
            <Transition fallback=|| view! { <Loading/> }>
                {move || {
                    data.get()
                        .map(|result| match result {
                            Ok(data) => view! { <TeamsView data/> }.into_any(),
                            Err(e) => view! { <ErrorNote what="Cannot load the teams: {}" error=e/> }.into_any(),
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn TeamsView(data: TeamsData) -> impl IntoView {
    let i18n = use_i18n();
    let limit = |v: Option<u64>| v.map_or_else(|| "—".to_string(), format::int);
    let table = if data.teams.is_empty() {
        view! { <p class="muted empty">{move || i18n.t("No teams yet.")}</p> }.into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="data teams">
                    <thead>
                        <tr>
                            <th scope="col">{move || i18n.t("Team")}</th>
                            <th scope="col">{move || i18n.t("Source")}</th>
                            <th scope="col">{move || i18n.t("Models")}</th>
                            <th scope="col" class="num">{move || i18n.t("Members")}</th>
                            <th scope="col" class="num">{move || i18n.t("Requests/min")}</th>
                            <th scope="col" class="num">{move || i18n.t("Tokens/min")}</th>
                            <th scope="col" class="num">{move || i18n.t("Budget")}</th>
                            <th scope="col" class="num">{move || i18n.t("Spent today")}</th>
                            <th scope="col" class="num">{move || i18n.t("Spent this month")}</th>
                        </tr>
                    </thead>
                    <tbody>
                        {data
                            .teams
                            .into_iter()
                            .map(|t| {
                                let models = if t.models.is_empty() { "all".to_string() } else { t.models.join(", ") };
                                let budget = t.budget_usd.map_or_else(
                                    || "—".to_string(),
                                    |b| format!("{} / {}", format::usd(b), match t.budget_period { BudgetPeriod::Day => "day", BudgetPeriod::Month => "month" }),
                                );
                                view! {
                                    <tr data-team=t.name.clone()>
                                        <th scope="row">{t.name.clone()}</th>
                                        <td data-col="source">{t.source.clone()}</td>
                                        <td data-col="models">{models}</td>
                                        <td class="num" data-col="members">{format::int(t.members as u64)}</td>
                                        <td class="num" data-col="rpm">{limit(t.rpm)}</td>
                                        <td class="num" data-col="tpm">{limit(t.tpm)}</td>
                                        <td class="num" data-col="budget">{budget}</td>
                                        <td class="num" data-col="today">{format::usd(t.spend_today_usd)}</td>
                                        <td class="num" data-col="month">{format::usd(t.spend_month_usd)}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        {table}
        <h2>{move || i18n.t("Usage per team (24 h)")}</h2>
        <UsageTable first="Team" rows=data.by_team name="team"/>
        <h2>{move || i18n.t("Usage per user (24 h)")}</h2>
        <UsageTable first="User" rows=data.by_user name="user"/>
    }
}

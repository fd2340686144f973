//! Starting and stopping: configuration → store and stats → gateway → one axum router for the API
//! and the console → serve until SIGTERM/SIGINT, drain, flush stats, exit.

pub mod connections;

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};

use crate::app::{App, shell};
use crate::cli::Cli;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::state::AppState;
use crate::stats::{Stats, Store};

pub fn run(cli: &Cli) -> ExitCode {
    let (config, file) = match cli.load_config() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Rendering the console's deeper pages needs more than the default 2 MiB in debug builds.
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .expect("tokio runtime");
    let telemetry = runtime.block_on(async { crate::telemetry::init(config.log.format) });
    let result = runtime.block_on(serve(config, Some((cli.overrides(), file))));
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the shared state: the store, the stats aggregator and the gateway.
pub async fn build_state(config: Config) -> Result<AppState, String> {
    crate::stats::metrics::handle();
    crate::stats::metrics::spawn_upkeep();
    let store = Store::open(&config).await?;
    let stats = Stats::start(store, config.store.flush_interval);
    stats.set_recording(config.store.stats);
    stats.alerts().configure(&config.alerts);
    let gateway = Arc::new(Gateway::new(&config, stats.clone())?);
    let leptos_options = LeptosOptions::builder()
        .output_name("llm-bridge")
        .site_root(config.server.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.server.listen)
        .build();
    let auth = Arc::new(crate::governance::identity::Auth::new(&config.auth));
    let governance = crate::governance::Governance::open(
        &config.server.data_dir,
        stats.store().redis().cloned(),
        config.limits.clone(),
        &config.teams,
    )
    .await?;
    Ok(AppState::new(
        config,
        gateway,
        auth,
        governance,
        stats,
        leptos_options,
    ))
}

/// The whole HTTP surface: `/v1`, health and stats, then the console and its assets.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let context_state = state.clone();
    let options = (*state.leptos_options).clone();
    crate::api::routes(&state)
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(context_state.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::api::front_door,
        ))
        .layer(DefaultBodyLimit::max(state.config().server.max_body_bytes))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.config().server.client_body_timeout,
        ))
        .with_state(state)
}

/// Serves until SIGTERM/SIGINT; with `reload` (the CLI's overrides and the config file), SIGHUP and
/// changes to the file reload the configuration.
pub async fn serve(
    config: Config,
    reload: Option<(crate::config::CliOverrides, Option<std::path::PathBuf>)>,
) -> Result<(), String> {
    let listen = config.server.listen;
    let drain = config.server.drain_timeout;
    let state = build_state(config).await?;
    let stats = state.stats.clone();
    if let Some((cli, file)) = reload {
        crate::reload::spawn(state.clone(), cli, file);
    }
    let app = router(state.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    if !local.ip().is_loopback() && state.auth.is_open() {
        tracing::warn!(address = %local, "listening on a non-loopback address without authentication: anyone who can reach it can use the configured provider keys; set LLM_BRIDGE_MASTER_KEY");
    }
    if !state.auth.is_open() && !state.auth.has_master_key() && state.auth.oidc.is_none() {
        tracing::warn!(
            "JWT callers are the only way in: nobody can log in to the console or call /api; set LLM_BRIDGE_MASTER_KEY or configure [auth.oidc]"
        );
    }
    let gateway = state.gateway();
    let enabled: Vec<&str> = gateway
        .providers
        .enabled()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    tracing::info!(address = %local, store = state.stats.store().backend(), providers = ?enabled, "LLM Bridge is listening; console at http://{local}/");

    let site_root = &state.config().server.site_root;
    if !site_root.join("pkg").is_dir() {
        tracing::warn!(site_root = %site_root.display(), "the console's assets are missing (no pkg/ under the site root): the console will not load; build them with `make run` or point LLM_BRIDGE_SITE_ROOT at them");
    }
    let limits = connections::ConnectionLimits::from_config(&state.config().server);
    let stopping = async {
        shutdown_signal().await;
        state.stopping.send_replace(true);
        tracing::info!(drain_timeout = ?drain, "shutting down: no new connections, waiting for in-flight requests");
    };
    connections::serve(listener, app, limits, stopping, drain).await;
    stats.flush().await;
    state.governance.keys.refresh().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

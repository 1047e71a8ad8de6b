//! Notifications from the steps (`[notify]` in the config).
//!
//! A step arms the notifier when it has loaded its config, and tells it
//! about the record whenever it loads or saves one, so that a failure
//! anywhere later can still say which release it was. Sending never fails a
//! step and is bounded by `notify.timeout`; problems are printed as warnings.
//! Webhook URLs are masked for the runner's log as soon as they are read.

use sluice_core::config::{Config, NotifyEvent};
use sluice_core::record::Record;
use sluice_core::{Exit, Failure, env, gha};
use sluice_providers::notify::{Notification, Notifier, SCHEMA};
use std::sync::{Arc, Mutex};

struct Scope {
    notifier: Arc<Notifier>,
    warnings: Vec<String>,
    app: String,
    environment: String,
    version: Option<String>,
    commit: Option<String>,
    record_id: Option<String>,
    /// The target (of an environment of several) that stopped the deployment.
    target: Option<String>,
}

static SCOPE: Mutex<Option<Scope>> = Mutex::new(None);

/// Reads the webhook URLs (masking them) for the environment a step acts on.
pub(crate) fn arm(config: &Config, environment: &str) {
    if config.notify.webhooks.is_empty() {
        return;
    }
    let (notifier, warnings) = Notifier::from_config(&config.notify, env::var);
    for secret in notifier.secrets() {
        gha::mask(secret);
    }
    if let Ok(mut scope) = SCOPE.lock() {
        *scope = Some(Scope {
            notifier: Arc::new(notifier),
            warnings,
            app: config.app.clone(),
            environment: environment.to_owned(),
            version: None,
            commit: None,
            record_id: None,
            target: None,
        });
    }
}

/// Remembers which deployment the step is about.
pub(crate) fn about(record: &Record) {
    if let Ok(mut scope) = SCOPE.lock()
        && let Some(scope) = scope.as_mut()
    {
        scope.version = Some(record.version.clone());
        scope.commit = record.commit.clone();
        scope.record_id = Some(record.id.clone());
    }
}

/// Remembers the target (of an environment of several) that stopped the
/// deployment: every notification the step sends from now on names it.
pub(crate) fn stopped_by(target: &str) {
    if let Ok(mut scope) = SCOPE.lock()
        && let Some(scope) = scope.as_mut()
    {
        scope.target = Some(target.to_owned());
    }
}

/// Sends a notification to the webhooks that want `event`; prints how it
/// went. Never fails.
pub(crate) async fn send(step: &str, event: NotifyEvent, decision: &str, reason: &str) {
    let prepared = SCOPE.lock().ok().and_then(|mut scope| {
        let scope = scope.as_mut()?;
        let warnings = std::mem::take(&mut scope.warnings);
        let notification = Notification {
            schema: SCHEMA,
            event,
            app: scope.app.clone(),
            environment: scope.environment.clone(),
            version: scope.version.clone(),
            commit: scope.commit.clone(),
            decision: decision.to_owned(),
            reason: reason.to_owned(),
            step: step.to_owned(),
            run_url: env::run_url(),
            record_id: scope.record_id.clone(),
            at: crate::context::now(),
            target: scope.target.clone(),
        };
        Some((scope.notifier.clone(), warnings, notification))
    });
    let Some((notifier, warnings, notification)) = prepared else { return };
    for warning in warnings {
        gha::warning(&warning);
    }
    for delivery in notifier.send(&notification).await {
        match delivery.outcome {
            Ok(1) => eprintln!("notify: {} sent to ${}", event.name(), delivery.webhook),
            Ok(n) => eprintln!("notify: {} sent to ${} after {n} attempts", event.name(), delivery.webhook),
            Err(e) => gha::warning(&format!("notify: {} not delivered to ${}: {e}", event.name(), delivery.webhook)),
        }
    }
}

/// Tells the webhooks that a step stopped on an error.
pub(crate) async fn failed(step: &str, failure: &Failure) {
    let decision = if failure.exit == Exit::BAD_INPUT { "bad_input" } else { "provider_failure" };
    send(step, NotifyEvent::Failed, decision, &format!("{:#}", failure.error)).await;
}

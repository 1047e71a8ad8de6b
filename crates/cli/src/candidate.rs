//! What the candidate of a deployment is, and the check that traffic only
//! ever goes to it.
//!
//! The candidate is part of the deployment's identity (`record.candidate`):
//! the embedded router's candidate upstream URL, the ALB target group the
//! candidate is deployed into, or the CodeDeploy revision. `gate` records it
//! when it is known without asking a provider (the upstream given to it, the
//! CodeDeploy revision's digest); otherwise the first `shift-traffic` pins it
//! before any traffic moves. From then on a step routes to that candidate
//! and nothing else: never to one left on the router by an earlier
//! deployment, never to one a later flag names.
//!
//! Never moves traffic itself.

use crate::context::Context;
use anyhow::anyhow;
use sha2::{Digest, Sha256};
use sluice_core::Failure;
use sluice_core::config::RouterConfig;
use sluice_core::record::Record;

/// A candidate upstream must be an http(s) URL.
pub(crate) fn check_upstream(url: &str) -> Result<(), Failure> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    Err(Failure::input(anyhow!("--candidate-upstream {url:?} is not an http:// or https:// URL")))
}

/// The candidate `gate` records: what the flag names, else what the config
/// fixes (CodeDeploy's revision), else what the record already says (a
/// record gated again). A flag that names another candidate than the
/// record's is refused: a deployment has one candidate.
pub(crate) fn identify(ctx: &Context, record: &Record, flag: Option<&str>) -> Result<Option<String>, Failure> {
    let configured = match ctx.router_config()? {
        RouterConfig::CodeDeploy { .. } if flag.is_some() => {
            return Err(Failure::input(anyhow!(
                "environment {} uses CodeDeploy, whose revision is the candidate: drop --candidate-upstream",
                ctx.env().name
            )));
        }
        RouterConfig::CodeDeploy { appspec, s3_revision, .. } => revision(appspec.as_deref(), s3_revision.as_deref())?,
        _ => flag.map(str::to_owned),
    };
    match (&record.candidate, configured) {
        (Some(recorded), Some(wanted)) if *recorded != wanted => Err(changed(record, recorded, &wanted)),
        (Some(recorded), _) => Ok(Some(recorded.clone())),
        (None, wanted) => Ok(wanted),
    }
}

/// The refusal of a second candidate for one deployment.
pub(crate) fn changed(record: &Record, recorded: &str, wanted: &str) -> Failure {
    Failure::input(anyhow!(
        "the candidate of {} is {recorded} (recorded when the deployment started), not {wanted}: a deployment routes to one candidate; start a new deployment (gate with a new --record path) for another",
        record.subject()
    ))
}

/// CodeDeploy's revision as an identity: `s3://…` as configured, or the
/// AppSpec's digest (`appspec sha256:…`), so an AppSpec edited between the
/// gate and the shift is noticed.
pub(crate) fn revision(appspec: Option<&std::path::Path>, s3: Option<&str>) -> Result<Option<String>, Failure> {
    if let Some(s3) = s3 {
        return Ok(Some(s3.to_owned()));
    }
    let Some(path) = appspec else { return Ok(None) };
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::input(anyhow!("cannot read the AppSpec {}: {e}; fix router.appspec", path.display())))?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(format!("appspec sha256:{hex}")))
}

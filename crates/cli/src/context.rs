//! What every step loads first: flags shared by all steps, the config, the
//! environment and the record.

use anyhow::anyhow;
use clap::Args;
use jiff::Timestamp;
use sluice_analysis::{CheckKind, CheckSpec, Comparison, OnInconclusive};
use sluice_core::config::{AnalysisMode, Config, Environment, LedgerConfig, RouterConfig, SourceConfig, TargetConfig};
use sluice_core::lease::{Acquired, LEASE_SCHEMA, Lease};
use sluice_core::ledger::LedgerEntry;
use sluice_core::record::{Expect, Record};
use sluice_core::{Classify, Failure, env, gha};
#[cfg(feature = "github")]
use sluice_providers::github::GitHub;
#[cfg(feature = "github")]
use sluice_providers::github::ledger::GitHubLedger;
use sluice_providers::ledger::{LeaseState, Ledger, LedgerFailure, LedgerTarget};
use sluice_providers::retry::Backoff;
use sluice_providers::router::Router;
use std::path::{Path, PathBuf};
#[cfg(feature = "github")]
use std::sync::OnceLock;

/// Flags every step takes; each can also come from an `INPUT_*` variable.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The sluice config file.
    #[arg(long, env = "INPUT_CONFIG", default_value = "sluice.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// The environment to act on (as named in the config).
    #[arg(long, short = 'e', env = "INPUT_ENVIRONMENT", value_name = "NAME")]
    pub environment: String,
    /// The deployment record (JSON) this step reads and appends to
    /// (required, but for `rollback --live`).
    #[arg(long, env = "INPUT_RECORD", value_name = "PATH")]
    pub record: Option<PathBuf>,
    /// Print debug lines (GitHub API call counts, ...); also SLUICE_DEBUG=1.
    #[arg(long, short = 'v', env = "INPUT_VERBOSE")]
    pub verbose: bool,
}

/// The loaded config with the environment the step acts on.
pub struct Context {
    pub config: Config,
    pub env_index: usize,
    pub record_path: PathBuf,
    /// The directory of the config file: the repository checkout in CI.
    pub config_dir: PathBuf,
    /// Made on first use, so steps that need no GitHub need no token.
    #[cfg(feature = "github")]
    github: OnceLock<GitHub>,
}

impl Context {
    pub fn load(common: &Common) -> Result<Context, Failure> {
        let Some(record) = &common.record else {
            return Err(Failure::input(anyhow!(
                "--record PATH is required: the deployment record this step reads and appends to (e.g. out/dev.json)"
            )));
        };
        check_record_path(record)?;
        let ctx = Self::load_config(common, record.clone())?;
        lock_record(record)?;
        Ok(ctx)
    }

    /// Loads the config for a step that keeps no record (`rollback --live`).
    pub fn load_without_record(common: &Common) -> Result<Context, Failure> {
        Self::load_config(common, PathBuf::new())
    }

    fn load_config(common: &Common, record_path: PathBuf) -> Result<Context, Failure> {
        if common.verbose {
            gha::set_debug(true);
        }
        let config = crate::features::load(&common.config)?;
        let (env_index, _) = config.environment(&common.environment).map_err(|m| Failure::input(anyhow!(m)))?;
        crate::notify::arm(&config, &common.environment);
        let config_dir = match common.config.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(Context {
            config,
            env_index,
            record_path,
            config_dir,
            #[cfg(feature = "github")]
            github: OnceLock::new(),
        })
    }

    /// The GitHub client (one per step: its API calls are counted together
    /// and printed as a debug line when the step ends).
    #[cfg(feature = "github")]
    pub fn github(&self) -> Result<GitHub, Failure> {
        if let Some(github) = self.github.get() {
            return Ok(github.clone());
        }
        let github = GitHub::from_env(&self.config.github, crate::step_name()).bad_input()?;
        Ok(self.github.get_or_init(|| github).clone())
    }

    /// The ledger the config names.
    pub fn ledger(&self) -> Result<Ledger, Failure> {
        Ok(match &self.config.ledger {
            LedgerConfig::File { path } => Ledger::File(path.clone()),
            #[cfg(not(feature = "github"))]
            LedgerConfig::Github {} => return Err(crate::features::left_out("ledger (kind = \"github\")")),
            #[cfg(feature = "github")]
            LedgerConfig::Github {} => Ledger::GitHub(GitHubLedger {
                github: self.github()?,
                run_id: env::var(env::GITHUB_RUN_ID),
                run_url: env::run_url(),
            }),
        })
    }

    /// How GitHub shows a deployment to this environment.
    pub fn target(&self) -> LedgerTarget {
        LedgerTarget {
            environment_url: self.env().environment_url.clone(),
            production: self.env_index + 1 == self.config.environments.len(),
        }
    }

    /// Saves the record that ends a deployment together with the ledger
    /// entry it owes (`ledger_due`), then writes that entry to the ledger
    /// (the file's entry, or the GitHub deployment's final status).
    ///
    /// The caller changes the record's status and events and leaves saving
    /// to this, so the end and the debt land in one atomic save.
    pub async fn finish_ledger(&self, record: &mut Record, entry: LedgerEntry) -> Result<(), Failure> {
        record.ledger_due = Some(entry);
        self.save(record)?;
        self.settle_ledger(record, false).await
    }

    /// Writes the ledger entry the record still owes, if any, and clears it
    /// from the record. `again`: an earlier step may have written it before
    /// it was killed, so the file ledger is searched for it first (GitHub
    /// takes a repeated final status without counting it twice).
    ///
    /// The deployment has ended, so its environment lease is given up (a
    /// failure to do so is a warning: the lease expires anyway).
    pub async fn settle_ledger(&self, record: &mut Record, again: bool) -> Result<(), Failure> {
        let Some(entry) = record.ledger_due.clone() else { return Ok(()) };
        let ledger = self.ledger()?;
        if let Err(e) = ledger.release_lease(&record.app, &record.environment, &record.id) {
            gha::warning(&format!("the environment lease was not released: {e}; it expires by itself"));
        }
        for router in self.routers(Backoff::default()) {
            if let Err(e) = router.release_lease(&record.app, &record.environment, &record.id).await {
                gha::warning(&format!("the ALB listener's lease was not released: {e}; it expires by itself"));
            }
        }
        let written = again
            && match &ledger {
                Ledger::File(path) => {
                    let mut found = false;
                    sluice_core::ledger::for_each_entry(path, |e| {
                        found |= e.id == entry.id && e.outcome == entry.outcome;
                    })
                    .map_err(|e| ledger_failure(e.into(), "the ledger could not be read"))?;
                    found
                }
                #[cfg(feature = "github")]
                Ledger::GitHub(_) => false,
            };
        if !written {
            ledger.finish(record, &entry, &self.target()).await.map_err(|e| {
                ledger_failure(
                    e,
                    &format!(
                        "the deployment {} is done but its ledger entry was not written; the record keeps it: run `promote` or `rollback` on this record again to write it",
                        entry.id
                    ),
                )
            })?;
        }
        if again {
            let outcome = serde_json::to_value(entry.outcome).ok().and_then(|v| v.as_str().map(str::to_owned));
            eprintln!(
                "ledger: wrote the entry ({}) an earlier run of this deployment owed",
                outcome.unwrap_or_default()
            );
        }
        record.ledger_due = None;
        self.save(record)
    }

    /// Takes or renews this deployment's environment lease, to last
    /// `lease_timeout` from now and at least until `until`: the ledger's
    /// (the lease file, or the in-progress GitHub deployment). Says in a
    /// line for the log and summary where it stands; another deployment
    /// holding it is `Err(holder)`.
    pub async fn hold_lease(&self, record: &Record, until: Option<Timestamp>) -> Result<LeaseCheck, Failure> {
        let now = now();
        let timeout = self.config.lease_timeout_for(self.env());
        let mut expires_at = now.checked_add(timeout).unwrap_or(now);
        if let Some(until) = until.filter(|u| *u > expires_at) {
            expires_at = until;
        }
        // Who holds it, where its run is, and which record file it keeps:
        // what a person needs to find it and free the environment.
        let who = env::actor().unwrap_or_else(|| "someone".into());
        let run = env::run_url().unwrap_or_else(|| format!("process {} on {}", std::process::id(), host()));
        let path = std::path::absolute(&self.record_path).unwrap_or_else(|_| self.record_path.clone());
        let holder = format!("{who}, {run}, record {}", path.display());
        let want = Lease {
            schema: LEASE_SCHEMA.into(),
            app: record.app.clone(),
            environment: record.environment.clone(),
            record_id: record.id.clone(),
            version: record.version.clone(),
            holder,
            acquired_at: now,
            expires_at,
        };
        let until_text = expires_at.strftime("%Y-%m-%d %H:%M:%SZ");
        let grace = lease_grace(timeout);
        let ledger = self.ledger()?;
        let (state, github_deployment) = ledger
            .acquire_lease(record, &want, &self.target(), now, grace)
            .await
            .map_err(|e| ledger_failure(e, "the environment lease could not be taken"))?;
        let fresh = matches!(state, LeaseState::Held(Acquired::New | Acquired::TookOver(_)));
        let mut result = match state {
            LeaseState::Held(Acquired::New) => {
                Ok(format!("{} is now held by this deployment until {until_text}", record.environment))
            }
            LeaseState::Held(Acquired::Renewed) => Ok(format!("held by this deployment until {until_text}")),
            LeaseState::Held(Acquired::TookOver(old)) => Ok(format!(
                "took over the expired lease of {}; held by this deployment until {until_text}",
                old.describe()
            )),
            LeaseState::HeldByOther(holder) => Err(format!(
                "environment {} is held by {}: one promotion per environment at a time; wait for it to end, or if that run is dead, run `rollback --record <its record>` (the path above, or its run's record artifact) to end it and free the environment; else its lease expires at {}",
                record.environment,
                holder.describe(),
                holder.expires_at.strftime("%Y-%m-%d %H:%M:%SZ")
            )),
        };
        if result.is_ok() {
            // The router's own lease (an ALB listener's tag) too, so runs
            // with different ledgers cannot shift one listener at once;
            // with targets, every target's listener.
            let mut taken = Ok(None);
            // In the order of `routers`: the one router, else each target's.
            let env = self.env();
            let names = env.router.iter().map(|_| None).chain(env.targets.iter().map(|t| Some(t.name.as_str())));
            let mut taken_here = Vec::new();
            for (router, target) in self.routers(Backoff::default()).into_iter().zip(names) {
                taken = router.take_lease(&want, grace).await;
                if let Ok(Some(Ok(Acquired::New | Acquired::TookOver(_)))) = &taken {
                    taken_here.push(router);
                    continue;
                }
                if let (Err(e), Some(name)) = (&mut taken, target) {
                    // Which target's router could not be reached (another
                    // account without its role, a region that is down).
                    e.operation = format!("{} of target {name}", e.operation);
                }
                if matches!(taken, Err(_) | Ok(Some(Err(_)))) {
                    break;
                }
            }
            if matches!(taken, Err(_) | Ok(Some(Err(_)))) {
                // The listeners this gate took before one failed are given
                // back, so a later gate is not held off by them.
                for router in &taken_here {
                    if let Err(e) = router.release_lease(&record.app, &record.environment, &record.id).await {
                        gha::warning(&format!("a listener's lease was not given back: {e}; it expires by itself"));
                    }
                }
            }
            let refused = match &taken {
                Ok(Some(Err(holder))) => Some(format!(
                    "the ALB listener of environment {} is held by {}: one promotion per listener at a time; wait for it to end, or for its lease to expire if that run is dead",
                    record.environment,
                    holder.describe()
                )),
                Err(e) => Some(format!("the ALB listener's lease could not be taken: {e}")),
                Ok(_) => None,
            };
            if let Some(why) = &refused
                && fresh
            {
                // What was just taken in the ledger is given back.
                if let Err(e) = ledger.withdraw_lease(record, github_deployment, why, &self.target()).await {
                    gha::warning(&format!("the ledger's lease was not given back: {e}; it expires by itself"));
                }
            }
            match (taken, &mut result) {
                (Err(e), _) => return Err(e).provider_failed(),
                (Ok(Some(Ok(Acquired::TookOver(old)))), Ok(line)) => {
                    line.push_str(&format!("; took over the ALB listener's expired lease of {}", old.describe()))
                }
                (Ok(Some(Ok(_))), Ok(line)) => line.push_str("; the ALB listener's lease too"),
                (Ok(Some(Err(_))), _) => result = Err(refused.unwrap_or_default()),
                _ => {}
            }
        }
        Ok(LeaseCheck { result, github_deployment })
    }

    /// The checks that judge the candidate in this environment: the
    /// configured ones, else the built-in ones of its router
    /// ([`builtin_checks`]): the embedded router's counters, or an ALB's
    /// target groups as a CloudWatch source with `alb_traffic = true` reads
    /// them. Any other environment without checks is refused (exit 2,
    /// nothing moved), saying how to add them.
    pub fn checks(&self) -> Result<Checks, Failure> {
        self.checks_for(None)
    }

    /// [`Context::checks`] for one target of the environment (`None`: the
    /// environment's one router): the environment's checks with the
    /// target's on top, else the built-in ones of the target's router.
    pub fn checks_for(&self, target: Option<&TargetConfig>) -> Result<Checks, Failure> {
        let env = self.env();
        if self.config.analysis_for(env) == AnalysisMode::None {
            return Ok(Checks { specs: Vec::new(), builtin: false, unanalysed: true });
        }
        let (configured, sources, router, whose) = match target {
            Some(t) => (
                self.config.checks_for_target(env, t),
                self.config.sources_for_target(env, t),
                &t.router,
                format!("target {} of environment {}", t.name, env.name),
            ),
            None => {
                (self.config.checks_for(env), self.config.sources_for(env), self.router_config()?, env.name.clone())
            }
        };
        if !configured.is_empty() {
            return Ok(Checks { specs: configured, builtin: false, unanalysed: false });
        }
        match builtin_checks(router, &sources) {
            Some(specs) => Ok(Checks { specs, builtin: true, unanalysed: false }),
            None => Err(Failure::input(anyhow!(no_builtin_checks(&whose, router)))),
        }
    }

    /// [`Context::checks`] for the deployment in `record`: a CodeDeploy
    /// environment judged by its built-in checks also gets the ALB ones
    /// ([`codedeploy_alb_checks`]) when the record names the deployment
    /// group's production listener and target-group pair (found when
    /// `shift-traffic` started the deployment), so every step and interval
    /// judges the same target groups.
    ///
    /// A group that watched no alarm when the deployment started is judged
    /// by the ALB checks alone.
    pub fn checks_in(&self, record: &Record) -> Result<Checks, Failure> {
        let mut checks = self.checks()?;
        if checks.builtin
            && matches!(self.env().router, Some(RouterConfig::CodeDeploy { .. }))
            && let Some(pair) = traffic_pair(record)
        {
            if pair.alarms.is_empty() {
                checks.specs.retain(|c| c.name != CODEDEPLOY_ALARMS_CHECK);
            }
            checks.specs.extend(codedeploy_alb_checks());
        }
        Ok(checks)
    }

    /// For built-in checks that rest on something only AWS knows (a
    /// CodeDeploy deployment group's alarms and target groups), reads it
    /// before anything is judged: a group that watches no alarm is refused
    /// (exit 2), saying what to add; a failure to read it is a provider
    /// failure (exit 3). Returns, for the summary, why a CodeDeploy group's
    /// built-ins are its alarms only (it has no blue/green target-group
    /// pair, or the record names none).
    #[cfg_attr(not(feature = "aws"), allow(unused_variables))]
    pub async fn confirm_builtin(&self, checks: &Checks, record: &Record) -> Result<Option<String>, Failure> {
        if !checks.builtin {
            return Ok(None);
        }
        // A build without AWS refuses a CodeDeploy router at load.
        #[cfg(feature = "aws")]
        if let Some(router @ RouterConfig::CodeDeploy { application, deployment_group, region, .. }) =
            self.env().router.as_ref()
        {
            let aws = sluice_providers::aws::Aws::new(sluice_providers::aws::AwsSettings {
                region: region.clone(),
                role: sluice_providers::aws::AssumeRole::from_config(router.assume_role()),
                ..Default::default()
            });
            let routing = sluice_providers::aws::codedeploy::group_routing(&aws, application, deployment_group)
                .await
                .provider_failed()?;
            // Judged by the ALB checks alone: the group watched no alarm
            // when the deployment started, and the record says so.
            let alone = traffic_pair(record).is_some_and(|p| p.alarms.is_empty());
            if routing.alarms.is_empty() && !alone {
                let why = match (&routing.pair, traffic_pair(record)) {
                    (Err(why), _) => format!("and the ALB checks do not apply: {why}"),
                    (Ok(_), None) => "and the record names no replacement target group for the ALB checks: shift-traffic records it when it starts the deployment".to_owned(),
                    (Ok(_), Some(_)) => "it watched some when the deployment started, and none now".to_owned(),
                };
                return Err(Failure::input(anyhow!(no_codedeploy_alarms(
                    &self.env().name,
                    application,
                    deployment_group,
                    &why
                ))));
            }
            let why = match (&routing.pair, traffic_pair(record)) {
                (_, Some(_)) => None,
                (Err(why), None) => Some(why.clone()),
                (Ok(_), None) => Some(
                    "the record names no replacement target group (shift-traffic records it when it starts the deployment)"
                        .to_owned(),
                ),
            };
            return Ok(why.map(|why| {
                format!("The ALB checks (error rate, error rate and latency against stable) do not apply: {why}.")
            }));
        }
        Ok(None)
    }

    pub fn env(&self) -> &Environment {
        &self.config.environments[self.env_index]
    }

    /// The environment's one router (its config); an environment of
    /// targets has none, and is handled by [`crate::waves`] instead.
    pub fn router_config(&self) -> Result<&RouterConfig, Failure> {
        self.env().router.as_ref().ok_or_else(|| {
            let names: Vec<&str> = self.env().targets.iter().map(|t| t.name.as_str()).collect();
            Failure::input(anyhow!(
                "environment {} is served by several targets ({}), and this does not act on targets: it needs one router",
                self.env().name,
                names.join(", ")
            ))
        })
    }

    /// The environment's one router.
    pub fn router(&self) -> Result<Router, Failure> {
        Ok(Router::from_config(self.router_config()?, Backoff::default()))
    }

    /// Every router of the environment: its one router, or each target's
    /// in the order listed.
    pub fn routers(&self, backoff: Backoff) -> Vec<Router> {
        let env = self.env();
        env.router
            .iter()
            .chain(env.targets.iter().map(|t| &t.router))
            .map(|r| Router::from_config(r, backoff))
            .collect()
    }

    /// Whether `before` (a record's `router_before`) may be written back to
    /// the router exactly: only where the router can, and, for an ALB, only
    /// when it names the configured listener (or rule) and no target group
    /// but the configured pair. A record is never trusted: an edited one
    /// must not make a rollback forward traffic somewhere new, so it gets
    /// the plain rollback (all traffic to the stable pool) instead, with a
    /// warning; a rollback is never refused for it.
    pub fn exact_restore(&self, router: &Router, before: &sluice_core::record::RouterState) -> bool {
        match self.env().router.as_ref() {
            Some(config) => exact_restore(config, router, before, &format!("environment {}'s", self.env().name)),
            None => false,
        }
    }

    /// The router without retries, for calls that must end quickly (after a
    /// cancellation).
    pub fn router_without_retries(&self) -> Result<Router, Failure> {
        Ok(Router::from_config(self.router_config()?, Backoff::NONE))
    }

    /// Loads the record of this deployment, refusing one of another app or
    /// environment.
    pub fn load_record(&self) -> Result<Record, Failure> {
        let record = Record::load(
            &self.record_path,
            &Expect { app: Some(&self.config.app), environment: Some(&self.env().name), version: None },
        )
        .bad_input()?;
        crate::notify::about(&record);
        Ok(record)
    }

    /// Saves the record atomically; a failure to save is reported as a
    /// provider (disk) failure.
    pub fn save(&self, record: &Record) -> Result<(), Failure> {
        crate::notify::about(record);
        record.save(&self.record_path).provider_failed()
    }
}

/// Whether `before` (a record's `router_before`) may be written back to
/// `router`, configured as `config`, exactly: see [`Context::exact_restore`];
/// `whose` names the router in the warning (`environment prd's`).
pub fn exact_restore(
    config: &RouterConfig,
    router: &Router,
    before: &sluice_core::record::RouterState,
    whose: &str,
) -> bool {
    if !router.restores_exactly() {
        return false;
    }
    let RouterConfig::Alb { listener_arn, rule_arn, stable_target_group, candidate_target_group, .. } = config else {
        return true;
    };
    let resource = rule_arn.as_ref().unwrap_or(listener_arn);
    let known = |arn: &str| arn == stable_target_group || arn == candidate_target_group;
    let trusted = before.resource.as_deref() == Some(resource.as_str())
        && before.target_groups.iter().all(|t| known(&t.arn))
        && before.stable.as_deref().is_none_or(known);
    if !trusted {
        gha::warning(&format!(
            "the record's router_before names another listener or target group than {whose}; rolling back by sending all traffic to the stable pool instead of restoring it exactly"
        ));
    }
    trusted
}

/// The checks an environment is judged by.
#[derive(Clone, Debug)]
pub struct Checks {
    pub specs: Vec<CheckSpec>,
    /// sluice's own, because the config names none.
    pub builtin: bool,
    /// `analysis = "none"`: no checks, said out loud; stages only wait and a
    /// promotion is recorded as unanalysed.
    pub unanalysed: bool,
}

impl Checks {
    /// A line for the summary naming the built-in checks, when they judge.
    pub fn note(&self) -> Option<String> {
        if self.unanalysed {
            return Some(
                "This environment says `analysis = \"none\"`: the stages only wait, and a promotion is recorded as unanalysed."
                    .into(),
            );
        }
        self.builtin.then(|| {
            let names: Vec<&str> = self.specs.iter().map(|c| c.name.as_str()).collect();
            format!("The config names no checks: judged by sluice's built-in checks ({}).", names.join(", "))
        })
    }
}

/// The built-in checks of a router, for an environment that names none;
/// `None` when the router has none (it counts no traffic sluice can read).
///
/// - The embedded router: the candidate's error rate at most 5%, its error
///   rate at most one point above stable's, and its latency at most 20% or
///   10 ms above stable's, whichever allows more (Mann-Whitney), over the
///   same windows. (Without the 10 ms, a healthy candidate at 0.4 ms
///   against a stable at 0.2 ms is "100 % slower": that rolled back A/A
///   canaries on a busy machine.)
/// - An ALB with a CloudWatch source that reads its target groups'
///   traffic (`alb_traffic = true`): the same error rate and error rate
///   against stable, from the target groups' `RequestCount` and
///   `HTTPCode_Target_5XX_Count`; and `builtin-alb-latency-vs-stable`, the
///   candidate's average `TargetResponseTime` against stable's (the same
///   20% or 10 ms) in each of the latest 3 CloudWatch periods
///   (`alb latency_vs_stable`). CloudWatch keeps per-period statistics, not
///   requests, so that one is a threshold over periods, not a significance
///   test. It has no data until 3 periods hold 20 requests in both groups,
///   and never passes without (`on_inconclusive = "hold"`: a stage that
///   ends before CloudWatch published them is inconclusive, as thin
///   traffic is for the other checks); at 100% it is skipped, as the
///   comparisons are.
/// - CodeDeploy: `builtin-codedeploy-alarms`, the CloudWatch alarms its
///   deployment group watches (its alarm configuration, read every
///   interval; [`builtin_sources`] adds the CloudWatch source that reads
///   them): any alarm in `ALARM` fails; alarms without data are no data
///   (never a pass). A group that watches no alarm is refused before
///   anything is judged ([`Context::confirm_builtin`]). A group with a
///   blue/green target-group pair behind an ALB listener (ECS) also gets
///   the ALB's three checks on the replacement target group against the
///   original, once `shift-traffic` has recorded which is which
///   ([`Context::checks_in`], [`codedeploy_alb_checks`]); those depend on
///   the record, so this config-only list holds the alarms.
///
/// Every pool check needs 50 requests before any verdict; no traffic for 6
/// intervals is inconclusive (rolled back, not a failure of the release).
pub fn builtin_checks(router: &RouterConfig, sources: &[SourceConfig]) -> Option<Vec<CheckSpec>> {
    let check = builtin_check;
    let errors = || {
        vec![
            check("builtin-error-rate", CheckKind::ErrorRate { max: 0.05 }),
            check("builtin-error-rate-vs-stable", CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 })),
        ]
    };
    // The CloudWatch source that reads an ALB's target groups.
    let alb_traffic = sources.iter().find_map(|s| match s {
        SourceConfig::Cloudwatch { name, alb_traffic: true, .. } => Some(name.clone()),
        _ => None,
    });
    match router {
        RouterConfig::Local { .. } => {
            let mut checks = errors();
            checks.push(check(
                "builtin-latency-vs-stable",
                CheckKind::Compare(Comparison::Latency { tolerance: 0.2, min_difference: Some(BUILTIN_MIN_SLOWDOWN) }),
            ));
            Some(checks)
        }
        RouterConfig::Alb { .. } => Some(alb_checks(alb_traffic?)),
        RouterConfig::CodeDeploy { application, deployment_group, .. } => {
            codedeploy_alarms_query(application, deployment_group).map(|query| {
                vec![CheckSpec {
                    min_samples: 1,
                    on_inconclusive: OnInconclusive::Hold,
                    ..check(
                        CODEDEPLOY_ALARMS_CHECK,
                        CheckKind::Query {
                            source: CODEDEPLOY_ALARMS_SOURCE.into(),
                            query,
                            min: None,
                            max: Some(0.0),
                            reduce: None,
                            step: None,
                        },
                    )
                }]
            })
        }
    }
}

/// The built-in check of the given name, with the defaults every one has.
fn builtin_check(name: &str, kind: CheckKind) -> CheckSpec {
    CheckSpec {
        name: name.to_owned(),
        kind,
        min_samples: 50,
        critical: false,
        failure_limit: 1,
        inconclusive_limit: 6,
        on_inconclusive: OnInconclusive::Fail,
    }
}

/// An ALB's built-in checks, read by the CloudWatch source `source` that
/// reads its target groups' traffic ([`builtin_checks`]).
fn alb_checks(source: String) -> Vec<CheckSpec> {
    vec![
        builtin_check("builtin-error-rate", CheckKind::ErrorRate { max: 0.05 }),
        builtin_check("builtin-error-rate-vs-stable", CheckKind::Compare(Comparison::ErrorRate { tolerance: 0.01 })),
        CheckSpec {
            min_samples: 1,
            on_inconclusive: OnInconclusive::Hold,
            ..builtin_check(
                "builtin-alb-latency-vs-stable",
                CheckKind::Query {
                    source,
                    query: "alb latency_vs_stable".into(),
                    min: None,
                    max: Some(0.0),
                    reduce: None,
                    step: None,
                },
            )
        },
    ]
}

/// The ALB built-in checks of a CodeDeploy environment whose record names
/// its production listener and target-group pair: the same as an ALB's,
/// on the replacement target group (candidate) against the original
/// (stable), read by the source [`CODEDEPLOY_TRAFFIC_SOURCE`].
pub fn codedeploy_alb_checks() -> Vec<CheckSpec> {
    alb_checks(CODEDEPLOY_TRAFFIC_SOURCE.into())
}

/// The listener and target groups a record's CodeDeploy deployment routes
/// through, when `shift-traffic` found them: its `router_before`.
pub fn traffic_pair(record: &Record) -> Option<&sluice_core::record::RouterState> {
    record
        .router_before
        .as_ref()
        .filter(|b| b.kind == "codedeploy" && b.listener.is_some() && b.stable.is_some() && b.candidate.is_some())
}

/// The query of the CodeDeploy built-in check; none in a build without AWS
/// (which refuses a CodeDeploy router when it loads the config).
#[cfg(feature = "aws")]
fn codedeploy_alarms_query(application: &str, deployment_group: &str) -> Option<String> {
    Some(sluice_providers::aws::cloudwatch::group_alarms_query(application, deployment_group))
}

#[cfg(not(feature = "aws"))]
fn codedeploy_alarms_query(_application: &str, _deployment_group: &str) -> Option<String> {
    None
}

/// The name of CodeDeploy's built-in alarms check.
pub const CODEDEPLOY_ALARMS_CHECK: &str = "builtin-codedeploy-alarms";

/// The CloudWatch source sluice adds for a CodeDeploy router's built-in
/// check ([`builtin_sources`]).
pub const CODEDEPLOY_ALARMS_SOURCE: &str = "codedeploy-alarms";

/// The CloudWatch source sluice adds for a CodeDeploy router's built-in
/// ALB checks: its target groups' traffic ([`codedeploy_traffic_source`]).
pub const CODEDEPLOY_TRAFFIC_SOURCE: &str = "codedeploy-traffic";

/// The CloudWatch source that reads a CodeDeploy group's target groups'
/// traffic for [`codedeploy_alb_checks`], in the router's region and
/// account (unless the config has a source of that name): 1-minute
/// periods over the last 5 minutes, 1 minute behind the clock, as
/// CloudWatch publishes ALB metrics late.
pub fn codedeploy_traffic_source(router: &RouterConfig, configured: &[SourceConfig]) -> Option<SourceConfig> {
    match router {
        RouterConfig::CodeDeploy { region, role_arn, external_id, session_name, .. }
            if !configured.iter().any(|s| s.name() == CODEDEPLOY_TRAFFIC_SOURCE) =>
        {
            Some(SourceConfig::Cloudwatch {
                name: CODEDEPLOY_TRAFFIC_SOURCE.into(),
                region: region.clone(),
                role_arn: role_arn.clone(),
                external_id: external_id.clone(),
                session_name: session_name.clone(),
                alb_traffic: true,
                period: std::time::Duration::from_secs(60),
                lookback: std::time::Duration::from_secs(300),
                delay: std::time::Duration::from_secs(60),
            })
        }
        _ => None,
    }
}

/// The metric sources the built-in checks of `router` read beyond the
/// configured ones: for CodeDeploy, a CloudWatch source in the router's
/// region that reads its deployment group's alarms (named
/// [`CODEDEPLOY_ALARMS_SOURCE`], unless the config already has a source of
/// that name). Adding it where no built-in check asks for it changes
/// nothing: a source is only asked for its checks' queries.
pub fn builtin_sources(router: &RouterConfig, configured: &[SourceConfig]) -> Vec<SourceConfig> {
    match router {
        RouterConfig::CodeDeploy { region, role_arn, external_id, session_name, .. }
            if !configured.iter().any(|s| s.name() == CODEDEPLOY_ALARMS_SOURCE) =>
        {
            // In the router's account too: the alarms are its group's.
            vec![SourceConfig::Cloudwatch {
                name: CODEDEPLOY_ALARMS_SOURCE.into(),
                region: region.clone(),
                role_arn: role_arn.clone(),
                external_id: external_id.clone(),
                session_name: session_name.clone(),
                alb_traffic: false,
                period: std::time::Duration::from_secs(60),
                lookback: std::time::Duration::from_secs(300),
                delay: std::time::Duration::from_secs(60),
            }]
        }
        _ => Vec::new(),
    }
}

/// The slowdown the built-in latency comparison always allows.
pub const BUILTIN_MIN_SLOWDOWN: std::time::Duration = std::time::Duration::from_millis(10);

/// Why an environment without checks cannot be judged, and how to fix it.
fn no_builtin_checks(environment: &str, router: &RouterConfig) -> String {
    let add = match router {
        RouterConfig::Alb { .. } => {
            "add a CloudWatch source that reads the target groups' traffic, and sluice judges with its built-in error-rate and latency checks:\n  [[environment.source]]\n  name = \"cloudwatch\"\n  kind = \"cloudwatch\"\n  alb_traffic = true\nor add [[environment.check]] tables of your own"
        }
        _ => {
            "add [[environment.check]] (or [[defaults.check]]) tables, e.g. a CloudWatch alarm (`query = \"alarm NAME\"`) or an error-rate query"
        }
    };
    format!(
        "environment {environment} has no checks, and its {} router has no built-in ones: {add} (see docs/judging-health.md); or say analysis = \"none\" for the environment to promote without analysis",
        router.kind()
    )
}

/// Why a CodeDeploy environment without checks cannot be judged: its
/// deployment group watches no alarm. Says what to add.
#[cfg(feature = "aws")]
fn no_codedeploy_alarms(environment: &str, application: &str, group: &str, why: &str) -> String {
    let pair = format!(" ({why})");
    format!(
        "environment {environment} has no checks, and its CodeDeploy deployment group {application}/{group} watches no CloudWatch alarms, which are its built-in checks{pair}: \
         add alarms to the group (e.g. `aws deploy update-deployment-group --application-name {application} --current-deployment-group-name {group} \
         --alarm-configuration 'enabled=true,alarms=[{{name=ALARM_NAME}}]'`), or add [[environment.check]] tables of your own \
         (e.g. a CloudWatch alarm: kind = \"query\", source = a cloudwatch source, query = \"alarm NAME\", max = 0) (see docs/judging-health.md); \
         or say analysis = \"none\" for the environment to promote without analysis"
    )
}

/// Where the environment lease stands after [`Context::hold_lease`].
#[derive(Debug)]
pub struct LeaseCheck {
    /// A line for the log: held by this deployment, or `Err(holder)`.
    pub result: Result<String, String>,
    /// The GitHub deployment the lease was taken on (the GitHub ledger).
    pub github_deployment: Option<u64>,
}

/// How long past a lease's expiry others still respect it, for runners'
/// clocks that differ a little: 5 s, or a quarter of a shorter lease.
pub fn lease_grace(timeout: std::time::Duration) -> jiff::SignedDuration {
    let grace = timeout.checked_div(4).unwrap_or_default().min(std::time::Duration::from_secs(5));
    jiff::SignedDuration::try_from(grace).unwrap_or_default()
}

/// A ledger failure with what it means for the deployment, classified.
pub fn ledger_failure(error: LedgerFailure, context: &str) -> Failure {
    let input = error.is_input();
    let error = anyhow::Error::new(error).context(context.to_owned());
    if input { Failure::input(error) } else { Failure::provider(error) }
}

/// A record path must name a file (not a directory) with a JSON extension,
/// so that a slip such as `--record .` or `--record out/` cannot replace a
/// directory or a config file.
fn check_record_path(path: &Path) -> Result<(), Failure> {
    let is_json = path.extension().is_some_and(|e| e == "json");
    if path.as_os_str().is_empty() || path.is_dir() || !is_json {
        return Err(Failure::input(anyhow!(
            "--record {} must be the path of a .json file (e.g. out/dev.json)",
            path.display()
        )));
    }
    Ok(())
}

/// One step at a time on a record: an exclusive lock, held until the
/// process ends, on a file named after the record's absolute path in the
/// system's temporary folder (`sluice-locks/`), so the records' folder (an
/// artifact) gets no extra file. A second step on the same record while one
/// runs (a job run twice at once) is refused (exit 1) before it reads
/// anything, rather than both writing the record. Taken only where the
/// record's folder exists; taking it again in the same process (the
/// cancellation handler) is a no-op.
fn lock_record(path: &Path) -> Result<(), Failure> {
    use sha2::{Digest, Sha256};
    static HELD: std::sync::Mutex<Vec<(PathBuf, std::fs::File)>> = std::sync::Mutex::new(Vec::new());
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(dir) = dir.canonicalize() else { return Ok(()) };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let digest = Sha256::digest(dir.join(&name).as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let locks = std::env::temp_dir().join("sluice-locks");
    std::fs::create_dir_all(&locks)
        .map_err(|e| Failure::provider(anyhow!("cannot create the lock folder {}: {e}", locks.display())))?;
    let lock = locks.join(format!("{hex}.lock"));
    let key = std::path::absolute(&lock).unwrap_or_else(|_| lock.clone());
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    if held.iter().any(|(k, _)| *k == key) {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| Failure::provider(anyhow!("cannot open the record's lock {}: {e}", lock.display())))?;
    match file.try_lock() {
        Ok(()) => {
            held.push((key, file));
            Ok(())
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure {
            exit: sluice_core::Exit::DECLINED,
            error: anyhow!(
                "another step is working on record {} right now (the same job run twice at once?); nothing was changed: wait for it to finish, then run this step again",
                path.display()
            ),
        }),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Failure::provider(anyhow!("cannot lock the record's lock file {}: {e}", lock.display())))
        }
    }
}

/// This machine's name, for a lease held outside a workflow run.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into())
}

/// The current time (one place, so steps agree within a run).
pub fn now() -> Timestamp {
    Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::record::RouterState;
    use std::time::Duration;

    fn codedeploy() -> RouterConfig {
        RouterConfig::CodeDeploy {
            application: "shop".into(),
            deployment_group: "shop-ecs".into(),
            deployment_config: None,
            appspec: Some("appspec.yaml".into()),
            s3_revision: None,
            region: Some("eu-west-1".into()),
            role_arn: Some("arn:aws:iam::123456789012:role/deploy".into()),
            external_id: None,
            session_name: None,
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
        }
    }

    fn paired() -> RouterState {
        RouterState {
            kind: "codedeploy".into(),
            listener: Some("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc/f2f7".into()),
            stable: Some("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/73e2".into()),
            candidate: Some("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/83e2".into()),
            ..RouterState::default()
        }
    }

    #[test]
    fn only_a_codedeploy_record_with_listener_and_both_groups_names_a_pair() {
        use sluice_core::ledger::ChangeKind;
        use sluice_core::record::NewRecord;
        let new = NewRecord {
            app: "shop".into(),
            environment: "dev".into(),
            version: "v2".into(),
            commit: None,
            change: ChangeKind::Planned,
            incident: None,
            strategy: sluice_core::strategy::Strategy::AllAtOnce,
            triggered_by: None,
            run_url: None,
        };
        let mut record = Record::new(new, jiff::Timestamp::UNIX_EPOCH);
        assert!(traffic_pair(&record).is_none(), "no router_before");
        record.router_before = Some(paired());
        assert_eq!(traffic_pair(&record), Some(&paired()));
        for broken in [
            RouterState { listener: None, ..paired() },
            RouterState { candidate: None, ..paired() },
            RouterState { stable: None, ..paired() },
            RouterState { kind: "alb".into(), ..paired() },
        ] {
            record.router_before = Some(broken.clone());
            assert!(traffic_pair(&record).is_none(), "{broken:?}");
        }
    }

    #[test]
    fn codedeploys_alb_checks_read_the_traffic_source_sluice_adds_in_the_routers_account() {
        let names: Vec<String> = codedeploy_alb_checks().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["builtin-error-rate", "builtin-error-rate-vs-stable", "builtin-alb-latency-vs-stable"]);
        let latency = codedeploy_alb_checks().pop().expect("three");
        assert!(
            matches!(&latency.kind, CheckKind::Query { source, query, .. } if source == CODEDEPLOY_TRAFFIC_SOURCE && query == "alb latency_vs_stable")
        );
        let Some(SourceConfig::Cloudwatch { name, region, role_arn, alb_traffic, .. }) =
            codedeploy_traffic_source(&codedeploy(), &[])
        else {
            panic!("a CloudWatch source");
        };
        assert_eq!(name, CODEDEPLOY_TRAFFIC_SOURCE);
        assert!(alb_traffic, "it reads the pools' traffic");
        assert_eq!(region.as_deref(), Some("eu-west-1"));
        assert_eq!(role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/deploy"));
        // Not for another router, nor over a configured source of its name.
        let local = RouterConfig::Local { admin_url: "http://127.0.0.1:9000".into() };
        assert!(codedeploy_traffic_source(&local, &[]).is_none());
        let mine = codedeploy_traffic_source(&codedeploy(), &[]).expect("a source");
        assert!(codedeploy_traffic_source(&codedeploy(), &[mine]).is_none());
        // The config-only list stays the alarms: the ALB checks need the record.
        let builtin: Vec<String> =
            builtin_checks(&codedeploy(), &[]).expect("alarms").into_iter().map(|c| c.name).collect();
        assert_eq!(builtin, ["builtin-codedeploy-alarms"]);
    }
}

//! The wave runner shared by `shift-traffic` and `verify-health`: the
//! targets of a wave analysed in parallel at their weights, each on its own
//! checks; the first failure stops the wave and rolls back every target
//! that moved.

use super::*;

/// Why a wave stopped: the first target that failed.
pub(super) struct Stop {
    pub(super) target: String,
    pub(super) reason: String,
    /// `None`: a provider failed (exit 3); else the verdict.
    pub(super) verdict: Option<Verdict>,
    pub(super) cause: Option<Cause>,
}

pub(super) struct Run<'a> {
    pub(super) ctx: &'a Context,
    /// The step that runs it (`shift-traffic`, `verify-health`).
    pub(super) step: &'static str,
    pub(super) targets: &'a [Target<'a>],
    pub(super) markdown: String,
    /// Whether a failure was already acted on (every target that moved
    /// rolled back, or the rollback's own failure recorded).
    pub(super) handled: bool,
    /// `--pause-at`: the stage weight after which the next wave to run
    /// pauses for approval.
    pub(super) pause_at: Option<u8>,
}

impl<'a> Run<'a> {
    pub(super) fn target(&self, name: &str) -> Option<&'a Target<'a>> {
        self.targets.iter().find(|t| t.name() == name)
    }

    pub(super) async fn waves(&mut self, record: &mut Record) -> Result<Outcome, Failure> {
        let plan = record.strategy.plan();
        let total = plan.len();
        let waves = self.ctx.env().waves();
        let bake = self.ctx.env().bake;
        // What is left of the plan after stage `i` of wave `w`: the wave's
        // later stages, its bake, and every later wave with its bake (up to
        // a pause, which ends this run's plan).
        let pause_at = self.pause_at;
        let stages_after = |i: usize| crate::analyse::plan_after(&plan, i, pause_at, |_, _| true);
        let whole: Duration = plan.iter().map(|(_, d)| *d).sum();
        let bake_after = |w: usize| if w + 1 < waves.len() { bake.unwrap_or_default() } else { Duration::ZERO };
        let rest = |w: usize, i: usize| -> Duration {
            if pause_at.is_some() {
                return stages_after(i);
            }
            let later: Duration = (w + 1..waves.len()).map(|v| whole + bake_after(v)).sum();
            stages_after(i) + bake_after(w) + later
        };
        for (w, wave) in waves.iter().enumerate() {
            let done = wave.iter().all(|n| passed(record, n).contains(&(total - 1)));
            if done {
                eprintln!("shift-traffic: wave {} ({}) passed in an earlier run", w + 1, wave.join(", "));
                continue;
            }
            self.markdown.push_str(&format!("#### Wave {}: {}\n\n", w + 1, wave.join(", ")));
            self.set_candidates(record, wave).await?;
            for (i, (weight, duration)) in plan.iter().copied().enumerate() {
                if wave.iter().all(|n| passed(record, n).contains(&i)) {
                    continue;
                }
                let _group = sluice_core::gha::group(&format!(
                    "wave {}, stage {}/{total}: {weight}% for {}",
                    w + 1,
                    i + 1,
                    humantime::format_duration(duration)
                ));
                if let Err(holder) = self.ctx.hold_lease(record, None).await?.result {
                    let message = format!(
                        "lost the environment lease before wave {} stage {}: {holder}; stopped without touching traffic",
                        w + 1,
                        i + 1
                    );
                    record.push("shift-traffic", EventDetail::Error { message: message.clone() }, now());
                    self.ctx.save(record)?;
                    return Err(Failure { exit: Exit::DECLINED, error: anyhow!(message) });
                }
                if let Some(stop) = self.set_weights(record, wave, weight, i).await? {
                    return self.fail(record, w, stop).await;
                }
                let label = |name: &str| format!("wave {} {name} stage {}/{total} {weight}%", w + 1, i + 1);
                let after = rest(w, i);
                if let Some(stop) = self.judge(record, wave, (duration, after), Some(i), &label).await? {
                    return self.fail(record, w, stop).await;
                }
                if self.pause_at == Some(weight) {
                    return self.pause(record, w, i, weight).await;
                }
            }
            if let Some(bake) = bake.filter(|_| w + 1 < waves.len()) {
                // The waves done, judged at 100% before the next one starts.
                let baked: Vec<String> = waves[..=w].iter().flatten().cloned().collect();
                eprintln!("shift-traffic: bake {} after wave {}", humantime::format_duration(bake), w + 1);
                let label = |name: &str| format!("bake after wave {} {name}", w + 1);
                let after = rest(w, total - 1).saturating_sub(bake);
                if let Some(stop) = self.judge(record, &baked, (bake, after), None, &label).await? {
                    return self.fail(record, w, stop).await;
                }
            }
        }
        match evidence(self.ctx, record) {
            Ok(_) => {
                record.transition(Step::ShiftTraffic, Status::Verified, now()).map_err(refused)?;
                self.ctx.save(record)?;
                self.markdown.push_str(&format!(
                    "All {} waves passed; the candidate takes 100% of every target's traffic.\n\n{}",
                    waves.len(),
                    targets_table(record)
                ));
                Ok(Outcome::ok("pass").summary(&self.markdown))
            }
            Err(why) => {
                self.markdown.push_str(&format!(
                    "The plan is done, but the deployment is not verified: {why}.\n\n{}",
                    targets_table(record)
                ));
                Ok(Outcome::ok("shifted").summary(&self.markdown))
            }
        }
    }

    /// Stops after stage `i` of wave `w`: status `paused`, the environment
    /// held until the wait for approval expires; a later run (without
    /// `--pause-at`, or with it for the next wave) continues from there.
    pub(super) async fn pause(
        &mut self,
        record: &mut Record,
        w: usize,
        i: usize,
        weight: u8,
    ) -> Result<Outcome, Failure> {
        let timeout = self.ctx.config.pause_timeout_for(self.ctx.env());
        let now = now();
        let expires_at = jiff::SignedDuration::try_from(timeout)
            .ok()
            .and_then(|d| now.checked_add(d).ok())
            .unwrap_or(jiff::Timestamp::MAX);
        record.transition(Step::ShiftTraffic, Status::Paused, now).map_err(refused)?;
        record.push("shift-traffic", EventDetail::Pause { stage: i, weight, expires_at }, now);
        self.ctx.save(record)?;
        if let Err(holder) = self.ctx.hold_lease(record, Some(expires_at)).await?.result {
            sluice_core::gha::warning(&format!("the paused canary's lease could not be extended: {holder}"));
        }
        eprintln!(
            "shift-traffic: paused after wave {} stage {} ({weight}%); continue before {expires_at} or it is rolled back",
            w + 1,
            i + 1
        );
        self.markdown.push_str(&format!(
            "**Paused** after wave {} stage {} ({weight}%), waiting for approval. Run `shift-traffic` again to continue before {expires_at} (pause_timeout {}); after that every target that moved is rolled back.\n\n{}",
            w + 1,
            i + 1,
            humantime::format_duration(timeout),
            targets_table(record)
        ));
        Ok(Outcome::ok("paused").summary(&self.markdown).output("expires_at", expires_at.to_string()))
    }

    /// Puts each target's candidate in place on its router (no traffic);
    /// an ALB target's candidate is pinned from its router now. A router
    /// with traffic on another candidate is refused.
    pub(super) async fn set_candidates(&self, record: &mut Record, wave: &[String]) -> Result<(), Failure> {
        let routers: Vec<&Target> = wave.iter().filter_map(|n| self.target(n)).collect();
        let states = all(routers.iter().map(|t| t.router.state()).collect()).await;
        for (t, state) in routers.iter().zip(states) {
            let state = state.map_err(|e| Failure::provider(anyhow!("target {}: {e}", t.name())))?;
            let wanted = match record.target(t.name()).and_then(|s| s.candidate.clone()) {
                Some(wanted) => wanted,
                None => match state.candidate.clone() {
                    // The ALB's candidate target group is where the release
                    // was deployed; pinned now, before traffic moves.
                    Some(arn) if t.router.is_alb() => arn,
                    _ => {
                        return Err(Failure::provider(anyhow!("target {}: the router names no candidate", t.name())));
                    }
                },
            };
            if state.candidate.as_deref() != Some(wanted.as_str()) {
                if state.candidate_weight > 0 {
                    return Err(Failure::input(anyhow!(
                        "target {}: the router sends {}% of traffic to candidate {}, not to {}'s candidate {wanted}: roll that back first",
                        t.name(),
                        state.candidate_weight,
                        state.candidate.as_deref().unwrap_or("(none)"),
                        record.subject()
                    )));
                }
                t.router
                    .set_candidate(&wanted)
                    .await
                    .map_err(|e| Failure::provider(anyhow!("target {}: {e}", t.name())))?;
            }
            if let Some(s) = record.targets.iter_mut().find(|s| s.name == t.name()) {
                s.candidate = Some(wanted);
            }
        }
        self.ctx.save(record)
    }

    /// Sets `weight` on every target of the wave at once, each read back
    /// and recorded; the first router that failed stops the wave.
    pub(super) async fn set_weights(
        &mut self,
        record: &mut Record,
        wave: &[String],
        weight: u8,
        stage: usize,
    ) -> Result<Option<Stop>, Failure> {
        let routers: Vec<&Target> = wave.iter().filter_map(|n| self.target(n)).collect();
        let states = all(routers.iter().map(|t| t.router.set_weight(weight)).collect()).await;
        let mut stop = None;
        for (t, state) in routers.iter().zip(states) {
            match state {
                Ok(state) => {
                    let from = record.target(t.name()).map_or(0, |s| s.candidate_weight);
                    record.set_target_weight(t.name(), state.candidate_weight);
                    record.transition(Step::ShiftTraffic, Status::Shifting, now()).map_err(refused)?;
                    record.push_for(
                        "shift-traffic",
                        Some(t.name()),
                        EventDetail::Traffic { from, to: weight, stage: Some(stage) },
                        now(),
                    );
                    eprintln!("shift-traffic: target {}: candidate {from}% -> {weight}%", t.name());
                    let recorded = record.target(t.name()).and_then(|s| s.candidate.clone());
                    if let (Some(recorded), Some(routed)) = (recorded, &state.candidate)
                        && recorded != *routed
                        && stop.is_none()
                    {
                        stop = Some(Stop {
                            target: t.name().to_owned(),
                            reason: format!(
                                "its router now routes the candidate share to {routed}, not to this deployment's candidate {recorded}: something else changed the router"
                            ),
                            verdict: None,
                            cause: None,
                        });
                    }
                }
                Err(e) if stop.is_none() => {
                    stop = Some(Stop {
                        target: t.name().to_owned(),
                        reason: format!("its router failed setting {weight}%: {e}"),
                        verdict: None,
                        cause: None,
                    });
                }
                Err(e) => eprintln!("shift-traffic: target {}: {e}", t.name()),
            }
        }
        self.ctx.save(record)?;
        Ok(stop)
    }

    /// Judges every named target at once for `duration` (with `after` of
    /// the plan to come, for the display; each target with its own router,
    /// checks and sources); records each verdict; the first target that did
    /// not pass stops the deployment.
    pub(super) async fn judge(
        &mut self,
        record: &mut Record,
        names: &[String],
        (duration, after): (Duration, Duration),
        stage: Option<usize>,
        label: &dyn Fn(&str) -> String,
    ) -> Result<Option<Stop>, Failure> {
        let judged: Vec<&Target> = names.iter().filter_map(|n| self.target(n)).collect();
        if duration.is_zero() || judged.iter().all(|t| t.checks.unanalysed) {
            if !duration.is_zero() {
                eprintln!(
                    "{}: waits {} without analysis (analysis = \"none\")",
                    self.step,
                    humantime::format_duration(duration)
                );
                tokio::time::sleep(duration).await;
            }
            return Ok(None);
        }
        let ctx = self.ctx;
        let version = record.version.clone();
        let mut scopes = Vec::new();
        for t in &judged {
            let env = ctx.env();
            scopes.push(Scope {
                router: t.router.clone(),
                sources: ctx.config.sources_for_target(env, t.config),
                probes: ctx.config.probes_for_target(env, t.config),
                alb_state: None,
            });
        }
        let labels: Vec<String> = judged.iter().map(|t| label(t.name())).collect();
        // Each at the weight its router confirmed.
        let weights: Vec<u8> =
            judged.iter().map(|t| record.target(t.name()).map_or(0, |s| s.candidate_weight)).collect();
        let analyses = judged
            .iter()
            .zip(&scopes)
            .zip(&labels)
            .zip(&weights)
            .map(|(((t, scope), label), weight)| {
                analyse_in(
                    ctx,
                    scope,
                    &t.checks.specs,
                    &version,
                    *weight,
                    crate::analyse::Window { label, duration, after },
                    crate::analyse::carried_from(
                        stage.and_then(|i| i.checked_sub(1)).and_then(|p| record.stage_verdict(Some(t.name()), p)),
                    ),
                )
            })
            .collect();
        let failed = |r: &Result<AnalysisReport, Failure>| r.as_ref().map_or(true, |r| r.verdict != Verdict::Pass);
        let reports = all_until(analyses, failed).await;
        let mut stop = None;
        for ((t, report), weight) in judged.iter().zip(reports).zip(weights) {
            let Some(report) = report else {
                eprintln!("{}: target {}: its analysis was stopped: another target failed", self.step, t.name());
                continue;
            };
            match report {
                Ok(report) => {
                    summary::log_verdict(&report);
                    let title = match stage {
                        Some(i) => format!("{}, stage {}: {weight}%", t.name(), i + 1),
                        None => format!("{} at {weight}%", t.name()),
                    };
                    self.markdown.push_str(&format!("##### {title}\n\n{}\n", summary::verdict_table(&report)));
                    if report.verdict != Verdict::Pass && stop.is_none() {
                        stop = Some(Stop {
                            target: t.name().to_owned(),
                            reason: report.reason.clone(),
                            verdict: Some(report.verdict),
                            cause: report.cause,
                        });
                    }
                    record.push_for(
                        self.step,
                        Some(t.name()),
                        EventDetail::Verdict { stage, report: Box::new(report) },
                        now(),
                    );
                }
                Err(failure) if stop.is_none() => {
                    stop = Some(Stop {
                        target: t.name().to_owned(),
                        reason: format!("{:#}", failure.error),
                        verdict: None,
                        cause: None,
                    });
                }
                Err(failure) => eprintln!("shift-traffic: target {}: {:#}", t.name(), failure.error),
            }
        }
        self.ctx.save(record)?;
        Ok(stop)
    }

    /// The first failing target fails the deployment: every target that
    /// moved (its wave's and every earlier wave's) is rolled back in
    /// parallel; exit 1 on a decision, 3 when a provider failed.
    pub(super) async fn fail(&mut self, record: &mut Record, wave: usize, stop: Stop) -> Result<Outcome, Failure> {
        self.handled = true;
        crate::notify::stopped_by(&stop.target);
        let reason = format!("target {} in wave {}: {}", stop.target, wave + 1, stop.reason);
        let Some(verdict) = stop.verdict.filter(|v| *v != Verdict::Error) else {
            let failure = Failure::provider(anyhow!(reason));
            return Err(self.provider_failed(record, failure, Some(wave)).await);
        };
        let outcome = match stop.cause {
            Some(Cause::NoTraffic) => LedgerOutcome::Abandoned,
            _ => LedgerOutcome::RolledBack,
        };
        let names = to_roll_back(record, Some(wave));
        roll_back(self.ctx, record, &names, &reason, Step::ShiftTraffic, outcome).await?;
        let decision = format!("{verdict:?}").to_lowercase();
        crate::notify::send("shift-traffic", NotifyEvent::RolledBack, &decision, &reason).await;
        self.markdown.push_str(&format!(
            "**Rolled back** every target that moved ({}): {reason}\n\n{}",
            names.join(", "),
            targets_table(record)
        ));
        Ok(Outcome::new(Exit::DECLINED, decision).summary(&self.markdown).error("canary rolled back", &reason))
    }

    /// A provider failed mid-deployment: every target that moved is rolled
    /// back; exit 3 with each target's last confirmed weight named.
    pub(super) async fn provider_failed(
        &mut self,
        record: &mut Record,
        failure: Failure,
        wave: Option<usize>,
    ) -> Failure {
        self.handled = true;
        // Traffic moved and was put back: not "nothing changed" (exit 2)
        // any more, but a stop (exit 1), or a provider's failure (exit 3).
        let (exit, reason) = match failure.exit {
            Exit::PROVIDER => (Exit::PROVIDER, format!("a provider failed during the canary: {:#}", failure.error)),
            _ => (Exit::DECLINED, format!("the canary stopped: {:#}", failure.error)),
        };
        let names = to_roll_back(record, wave);
        match roll_back(self.ctx, record, &names, &reason, Step::ShiftTraffic, LedgerOutcome::RolledBack).await {
            Ok(()) => Failure {
                exit,
                error: failure.error.context(format!(
                    "every target that moved ({}) was rolled back to its previous state",
                    names.join(", ")
                )),
            },
            Err(rollback) => rollback,
        }
    }
}

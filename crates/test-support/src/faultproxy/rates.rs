//! Seeded random faults at set rates, as one [`Rule`] of the proxy, and
//! `/__faults`, the rule through which a test reads and changes the rates
//! while the proxy runs (`sluice-faultproxy`).
//!
//! Each request (of the chosen methods) draws one number from a splitmix64
//! sequence of the `--seed`; the rates, in the order drop, error, throttle,
//! slow, cut `[0, 1)` into the fault it gets. The same seed and the same
//! order of requests give the same faults.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ValueEnum;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{Action, Answer, Request, Rule, Stats};

/// How a provider says "slow down".
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Throttle {
    /// 429 with `Retry-After: 1`.
    Http,
    /// AWS query protocol (ELBv2, CloudWatch): 400, XML `Throttling`.
    AwsQuery,
    /// AWS JSON protocol (CodeDeploy): 400, `ThrottlingException`.
    AwsJson,
    /// GitHub's primary rate limit: 403 with `x-ratelimit-remaining: 0`.
    Github,
}

/// The rates in force; all in `[0, 1]`, drawn in the order drop, error,
/// throttle, slow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub throttle_rate: f64,
    #[serde(default)]
    pub slow_rate: f64,
    #[serde(default)]
    pub drop_rate: f64,
    /// Only requests with these HTTP methods draw faults (e.g. `["POST"]`
    /// breaks the writes and lets the reads through); empty: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

impl Rates {
    /// Refuses a rate outside `[0, 1]`, naming it.
    pub fn check(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("slow_rate", self.slow_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} {rate} is not in [0, 1]"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Counters {
    errors: AtomicU64,
    throttled: AtomicU64,
    slowed: AtomicU64,
    dropped: AtomicU64,
}

enum Fault {
    None,
    Drop,
    Error,
    Throttle,
    Slow,
}

/// The random faults: a [`Rule`] with the rates in force and what it did.
#[derive(Debug)]
pub struct RandomFaults {
    rates: Mutex<Rates>,
    slow: Duration,
    throttle: Throttle,
    rng: AtomicU64,
    counters: Counters,
}

impl RandomFaults {
    /// Faults at `rates` (checked by the caller), slow calls held for
    /// `slow`, throttling answered as `throttle`, draws from `seed`.
    pub fn new(rates: Rates, slow: Duration, throttle: Throttle, seed: u64) -> RandomFaults {
        RandomFaults {
            rates: Mutex::new(rates),
            slow,
            throttle,
            rng: AtomicU64::new(seed),
            counters: Counters::default(),
        }
    }

    /// Replaces the rates in force.
    pub fn set(&self, rates: Rates) {
        *self.rates.lock().unwrap_or_else(|p| p.into_inner()) = rates;
    }

    /// A uniform draw in `[0, 1)` (splitmix64 on an atomic counter).
    fn draw(&self) -> f64 {
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fault(&self, method: &Method) -> Fault {
        let rates = self.rates.lock().map(|r| r.clone()).unwrap_or_default();
        if !rates.methods.is_empty() && !rates.methods.iter().any(|m| m.eq_ignore_ascii_case(method.as_str())) {
            return Fault::None;
        }
        let x = self.draw();
        let mut edge = rates.drop_rate;
        if x < edge {
            return Fault::Drop;
        }
        edge += rates.error_rate;
        if x < edge {
            return Fault::Error;
        }
        edge += rates.throttle_rate;
        if x < edge {
            return Fault::Throttle;
        }
        edge += rates.slow_rate;
        if x < edge {
            return Fault::Slow;
        }
        Fault::None
    }

    /// The rates, the settings and what was done so far (with the proxy's
    /// own count of forwarded requests), as `GET /__faults` shows them.
    pub fn report(&self, stats: &Stats) -> serde_json::Value {
        let rates = self.rates.lock().map(|r| r.clone()).unwrap_or_default();
        let c = &self.counters;
        serde_json::json!({
            "rates": rates,
            "slow": humantime::format_duration(self.slow).to_string(),
            "throttle": self.throttle,
            "forwarded": stats.forwarded(),
            "errors": c.errors.load(Relaxed),
            "throttled": c.throttled.load(Relaxed),
            "slowed": c.slowed.load(Relaxed),
            "dropped": c.dropped.load(Relaxed),
        })
    }
}

impl Rule for RandomFaults {
    fn decide(&self, request: &Request) -> Action {
        match self.fault(&request.method) {
            Fault::None => Action::Pass,
            Fault::Drop => {
                self.counters.dropped.fetch_add(1, Relaxed);
                Action::Drop
            }
            Fault::Error => {
                self.counters.errors.fetch_add(1, Relaxed);
                Action::Respond(Answer::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "fault injected: internal error\n",
                ))
            }
            Fault::Throttle => {
                self.counters.throttled.fetch_add(1, Relaxed);
                Action::Respond(throttled(self.throttle))
            }
            Fault::Slow => {
                self.counters.slowed.fetch_add(1, Relaxed);
                Action::Slow(self.slow)
            }
        }
    }
}

/// The provider's own "slow down" answer.
fn throttled(kind: Throttle) -> Answer {
    match kind {
        Throttle::Http => {
            Answer::new(StatusCode::TOO_MANY_REQUESTS, "text/plain", "fault injected: too many requests\n")
                .with_header("retry-after", "1")
        }
        Throttle::AwsQuery => crate::aws::error_answer(false, 400, "Throttling", "Rate exceeded"),
        Throttle::AwsJson => crate::aws::error_answer(true, 400, "ThrottlingException", "Rate exceeded"),
        Throttle::Github => {
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() + 1)
                .to_string();
            Answer::new(
                StatusCode::FORBIDDEN,
                "application/json",
                r#"{"message":"API rate limit exceeded","documentation_url":"https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"}"#,
            )
            .with_header("x-ratelimit-limit", "5000")
            .with_header("x-ratelimit-remaining", "0")
            .with_header("x-ratelimit-used", "5000")
            .with_header("x-ratelimit-reset", &reset)
        }
    }
}

/// The largest `PUT /__faults` body read (64 KiB).
const MAX_CONTROL_BODY: usize = 64 * 1024;

/// `/__faults`: `GET` shows [`RandomFaults::report`], `PUT` with a
/// [`Rates`] object replaces the rates and shows the report. Put before the
/// random faults, so the control itself is never broken.
pub fn control(faults: Arc<RandomFaults>, stats: Arc<Stats>) -> impl Rule {
    move |request: &Request| {
        if request.path() != "/__faults" {
            return Action::Pass;
        }
        let refuse =
            |why: String| Action::Respond(Answer::new(StatusCode::BAD_REQUEST, "text/plain", format!("{why}\n")));
        if request.method == Method::PUT {
            if request.body.len() > MAX_CONTROL_BODY {
                return refuse("body over 64 KiB".into());
            }
            let rates: Rates = match serde_json::from_slice(&request.body) {
                Ok(rates) => rates,
                Err(e) => return refuse(e.to_string()),
            };
            if let Err(e) = rates.check() {
                return refuse(e);
            }
            faults.set(rates);
        }
        Action::Respond(Answer::new(StatusCode::OK, "application/json", format!("{}\n", faults.report(&stats))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method) -> Request {
        Request { method, uri: "/x".parse().expect("uri"), headers: Default::default(), body: Default::default() }
    }

    fn kind(action: &Action) -> &'static str {
        match action {
            Action::Pass => "pass",
            Action::Rewrite(_) => "rewrite",
            Action::Respond(_) => "respond",
            Action::Slow(_) => "slow",
            Action::Drop => "drop",
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_faults_at_about_the_set_rates() {
        let rates = Rates { error_rate: 0.2, drop_rate: 0.1, ..Rates::default() };
        let draws = |seed| {
            let faults = RandomFaults::new(rates.clone(), Duration::ZERO, Throttle::Http, seed);
            (0..2000).map(|_| kind(&faults.decide(&request(Method::GET)))).collect::<Vec<_>>()
        };
        let (a, b) = (draws(7), draws(7));
        assert_eq!(a, b);
        assert_ne!(a, draws(8));
        let share = |k| a.iter().filter(|x| **x == k).count() as f64 / a.len() as f64;
        assert!((share("respond") - 0.2).abs() < 0.05, "{}", share("respond"));
        assert!((share("drop") - 0.1).abs() < 0.05, "{}", share("drop"));
    }

    #[test]
    fn only_the_chosen_methods_draw_faults() {
        let rates = Rates { error_rate: 1.0, methods: vec!["post".into()], ..Rates::default() };
        let faults = RandomFaults::new(rates, Duration::ZERO, Throttle::Http, 1);
        assert_eq!(kind(&faults.decide(&request(Method::GET))), "pass");
        assert_eq!(kind(&faults.decide(&request(Method::POST))), "respond");
    }

    #[test]
    fn the_control_changes_rates_and_refuses_bad_ones() {
        let faults = Arc::new(RandomFaults::new(Rates::default(), Duration::ZERO, Throttle::Http, 1));
        let control = control(Arc::clone(&faults), Arc::default());
        let put = |body: &'static str| {
            let mut r = request(Method::PUT);
            r.uri = "/__faults".parse().expect("uri");
            r.body = body.into();
            match control.decide(&r) {
                Action::Respond(answer) => (answer.status, answer.text().into_owned()),
                other => panic!("{}", kind(&other)),
            }
        };
        let (status, body) = put(r#"{"error_rate":1}"#);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains(r#""error_rate":1.0"#), "{body}");
        assert_eq!(kind(&faults.decide(&request(Method::GET))), "respond");
        assert_eq!(put(r#"{"error_rate":2}"#).0, StatusCode::BAD_REQUEST);
        assert_eq!(put(r#"{"eror_rate":1}"#).0, StatusCode::BAD_REQUEST);
        assert_eq!(kind(&control.decide(&request(Method::GET))), "pass", "other paths are not the control's");
    }
}

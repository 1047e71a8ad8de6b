use super::*;
use std::path::Path;
use std::time::Duration;

const GOOD: &str = r#"
app = "shop"

[analysis]
interval = "2s"

[defaults]
strategy = { kind = "canary", stages = [10, 50, 100], stage_duration = "10s" }

[[defaults.check]]
name = "errors"
kind = "error_rate"
max = 0.01

[[environment]]
name = "dev"
router = { kind = "local", admin_url = "http://127.0.0.1:9001" }

[[environment]]
name = "prd"
soak = "10m"
router = { kind = "local", admin_url = "http://127.0.0.1:9002" }
strategy = { kind = "blue_green", bake = "1m" }
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("sluice.toml"))
}

#[test]
fn a_full_config_parses_with_inheritance() {
    let config = parse(GOOD).expect("valid");
    assert_eq!(config.app, "shop");
    assert_eq!(config.interval(), Duration::from_secs(2));
    let (i, dev) = config.environment("dev").expect("dev");
    assert_eq!(i, 0);
    assert_eq!(config.strategy_for(dev).plan().len(), 3);
    assert_eq!(config.checks_for(dev).len(), 1);
    let (_, prd) = config.environment("prd").expect("prd");
    assert_eq!(prd.soak, Duration::from_secs(600));
    assert_eq!(config.strategy_for(prd).name(), "blue_green");
    assert_eq!(config.next_environment("dev"), Some("prd"));
    assert_eq!(config.next_environment("prd"), None);
}

#[test]
fn the_interval_is_1s_where_sluice_counts_itself_else_5s() {
    let local = "app = \"a\"\n[[environment]]\nname = \"dev\"\nrouter = { kind = \"local\", admin_url = \"http://127.0.0.1:9001\" }\n";
    let config = parse(local).expect("valid");
    assert_eq!(config.interval(), Duration::from_secs(1));
    assert_eq!(config.strategy_for(&config.environments[0]).plan()[0].0, 20, "the default plan starts at 20 %");
    let set = local.replacen("app = \"a\"\n", "app = \"a\"\n[analysis]\ninterval = \"3s\"\n", 1);
    assert_eq!(parse(&set).expect("valid").interval(), Duration::from_secs(3), "a set interval wins");
    let probe = format!("{local}[[environment.probe]]\nname = \"home\"\nurl = \"http://127.0.0.1:8080/\"\n");
    assert_eq!(parse(&probe).expect("valid").interval(), Duration::from_secs(5), "a probe is asked every interval");
    let source = format!(
        "{local}[[environment.source]]\nname = \"prom\"\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:9090\"\n"
    );
    assert_eq!(parse(&source).expect("valid").interval(), Duration::from_secs(5), "a metric source is asked too");
    let alb = "app = \"a\"\n[[environment]]\nname = \"dev\"\nrouter = { kind = \"alb\", listener_arn = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/1/2\", stable_target_group = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/1\", candidate_target_group = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/2\" }\n[[environment.check]]\nname = \"p\"\nkind = \"error_rate\"\nmax = 0.01\n";
    assert_eq!(
        parse(alb).map(|c| c.interval()).map_err(|e| e.to_string()),
        Ok(Duration::from_secs(5)),
        "an AWS router"
    );
}

#[test]
fn the_default_plan_waits_five_minutes_a_stage_where_cloudwatch_judges() {
    let stage = |text: &str| {
        let config = parse(text).expect("valid");
        match config.strategy_for(&config.environments[0]) {
            Strategy::Canary { stages, stage_duration } => (stages, stage_duration),
            other => panic!("{other:?}"),
        }
    };
    let plan = vec![20, 40, 70, 100];
    let local = "app = \"a\"\n[[environment]]\nname = \"dev\"\nrouter = { kind = \"local\", admin_url = \"http://127.0.0.1:9001\" }\n";
    assert_eq!(stage(local), (plan.clone(), Duration::from_secs(60)), "sluice counts");
    let prometheus = format!(
        "{local}[[environment.source]]\nname = \"prom\"\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:9090\"\n"
    );
    assert_eq!(stage(&prometheus), (plan.clone(), Duration::from_secs(60)), "Prometheus scrapes every few seconds");
    let cloudwatch =
        format!("{local}[[environment.source]]\nname = \"cw\"\nkind = \"cloudwatch\"\nregion = \"eu-west-1\"\n");
    assert_eq!(stage(&cloudwatch), (plan.clone(), Duration::from_secs(300)), "a CloudWatch source");
    // The defaults' CloudWatch source does not serve an environment with
    // sources of its own.
    let replaced = prometheus.replacen(
        "[[environment]]",
        "[[defaults.source]]\nname = \"cw\"\nkind = \"cloudwatch\"\nregion = \"eu-west-1\"\n[[environment]]",
        1,
    );
    assert_eq!(stage(&replaced), (plan.clone(), Duration::from_secs(60)), "its own Prometheus judges");
    let inherited = local.replacen(
        "[[environment]]",
        "[[defaults.source]]\nname = \"cw\"\nkind = \"cloudwatch\"\nregion = \"eu-west-1\"\n[[environment]]",
        1,
    );
    assert_eq!(stage(&inherited), (plan.clone(), Duration::from_secs(300)), "the defaults' CloudWatch judges");
    let alb = "app = \"a\"\n[[environment]]\nname = \"dev\"\nrouter = { kind = \"alb\", listener_arn = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/1/2\", stable_target_group = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/1\", candidate_target_group = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/2\" }\n";
    assert_eq!(stage(alb), (plan.clone(), Duration::from_secs(300)), "an ALB's built-in checks read CloudWatch");
    let codedeploy = "app = \"a\"\n[[environment]]\nname = \"dev\"\nrouter = { kind = \"codedeploy\", application = \"shop\", deployment_group = \"web\", appspec = \"appspec.yaml\" }\n";
    assert_eq!(stage(codedeploy), (plan, Duration::from_secs(300)), "CodeDeploy's too");
    let written = alb.replacen(
        "app = \"a\"\n",
        "app = \"a\"\n[defaults]\nstrategy = { kind = \"canary\", stages = [10, 100], stage_duration = \"2m\" }\n",
        1,
    );
    assert_eq!(stage(&written), (vec![10, 100], Duration::from_secs(120)), "a written plan wins");
}

#[test]
fn unknown_key_points_at_its_line() {
    let text = GOOD.replace("soak = \"10m\"", "soakk = \"10m\"");
    let err = parse(&text).expect_err("unknown key");
    let (line, _) = err.location.expect("located");
    assert_eq!(text.lines().nth(line - 1), Some("soakk = \"10m\""));
    assert!(err.to_string().contains("soakk"), "{err}");
}

#[test]
fn bad_duration_says_how_to_write_one() {
    let text = GOOD.replace("soak = \"10m\"", "soak = \"ten minutes\"");
    let err = parse(&text).expect_err("bad duration");
    let shown = err.to_string();
    assert!(shown.contains("invalid duration \"ten minutes\""), "{shown}");
    assert!(shown.contains("\"30s\""), "{shown}");
}

#[test]
fn stage_weight_over_100_points_at_the_strategy() {
    let text = GOOD.replace("stage_duration = \"10s\" }", "stage_duration = \"10s\" }\n").replace(
        "strategy = { kind = \"blue_green\", bake = \"1m\" }",
        "strategy = { kind = \"canary\", stages = [10, 250], stage_duration = \"1s\" }",
    );
    let err = parse(&text).expect_err("weight out of range");
    // 250 does not fit a u8: the TOML deserialiser names it.
    assert!(err.location.is_some());
    let text = text.replace("[10, 250]", "[10, 101]");
    let err = parse(&text).expect_err("weight over 100");
    assert_eq!(err.key.as_deref(), Some("environment[1].strategy"));
    let (line, _) = err.location.expect("located");
    assert!(text.lines().nth(line - 1).is_some_and(|l| l.starts_with("strategy")), "line {line}");
    assert!(err.message.contains("above 100"), "{}", err.message);
}

#[test]
fn semantic_errors_name_the_key() {
    let cases = [
        ("name = \"dev\"", "name = \"../dev\"", "environment[0].name"),
        ("max = 0.01", "max = 1.5", "defaults.check[0]"),
        ("http://127.0.0.1:9002", "ftp://x", "environment[1].router.admin_url"),
        ("name = \"prd\"", "name = \"dev\"", "environment[1].name"),
    ];
    for (from, to, key) in cases {
        let err = parse(&GOOD.replacen(from, to, 1)).expect_err(to);
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        assert!(err.location.is_some(), "{err}");
    }
}

#[test]
fn no_environments_is_an_error() {
    let err = parse("app = \"x\"\nenvironment = []\n").expect_err("empty");
    assert!(err.message.contains("no environments"), "{err}");
}

#[test]
fn strategy_override_parses() {
    assert_eq!(
        Strategy::parse_override("canary:5,100@30s"),
        Ok(Strategy::Canary { stages: vec![5, 100], stage_duration: Duration::from_secs(30) })
    );
    assert_eq!(Strategy::parse_override("all-at-once"), Ok(Strategy::AllAtOnce));
    assert!(Strategy::parse_override("canary:50,10,100@1s").is_err());
    assert!(Strategy::parse_override("canary:10,50@1s").is_err());
    assert!(Strategy::parse_override("canary:10,100").is_err());
    assert!(Strategy::parse_override("rolling").is_err());
}

#[test]
fn pause_timeout_inherits_and_is_checked() {
    let config = parse(GOOD).expect("valid");
    let (_, dev) = config.environment("dev").expect("dev");
    assert_eq!(config.pause_timeout_for(dev), DEFAULT_PAUSE_TIMEOUT);
    let text = GOOD
        .replace("stage_duration = \"10s\" }", "stage_duration = \"10s\" }\npause_timeout = \"4h\"")
        .replace("soak = \"10m\"", "soak = \"10m\"\npause_timeout = \"30m\"");
    let config = parse(&text).expect("valid");
    let (_, dev) = config.environment("dev").expect("dev");
    let (_, prd) = config.environment("prd").expect("prd");
    assert_eq!(config.pause_timeout_for(dev), Duration::from_secs(4 * 3600));
    assert_eq!(config.pause_timeout_for(prd), Duration::from_secs(30 * 60));
    let err =
        parse(&GOOD.replace("soak = \"10m\"", "soak = \"10m\"\npause_timeout = \"10ms\"")).expect_err("too short");
    assert!(err.to_string().contains("environment[1].pause_timeout"), "{err}");
    let err = parse(&GOOD.replace("soak = \"10m\"", "soak = \"10m\"\npause_timeout = \"soon\"")).expect_err("bad");
    assert!(err.to_string().contains("invalid duration"), "{err}");
}

const GATES: &str = r#"
app = "shop"

[notify]
timeout = "5s"

[[notify.webhook]]
kind = "slack"
url_env = "SLACK_WEBHOOK_URL"
on = ["blocked", "rolled_back"]

[[notify.webhook]]
kind = "json"
url_env = "DEPLOY_WEBHOOK_URL"

[defaults.gate]
zone = "Europe/Berlin"
freeze = [{ from = "Fri 15:00", to = "Mon 08:00", name = "weekend" }]
holidays = ["2026-12-24", "2026-12-31..2027-01-01"]
sarif = { path = "reports/trivy.sarif" }

[[environment]]
name = "dev"
router = { kind = "local", admin_url = "http://127.0.0.1:9001" }

[environment.gate]
freeze = []

[[environment]]
name = "prd"
router = { kind = "local", admin_url = "http://127.0.0.1:9002" }

[environment.gate]
freeze = [
  { from = "Fri 15:00", to = "Mon 08:00", zone = "Europe/Berlin" },
  { from = "Thu 18:00", to = "Fri 09:00", zone = "America/New_York" },
]
sarif = { path = "reports/codeql.sarif", block_at = "critical", block_level = "off" }
coverage = { path = "coverage/lcov.info", min = 0.8 }
"#;

#[test]
fn gate_keys_inherit_key_by_key() {
    use sluice_analysis::gates::sarif::{BlockLevel, SecuritySeverity};
    let config = parse(GATES).expect("valid");
    let (_, dev) = config.environment("dev").expect("dev");
    let dev = config.gate_for(dev);
    assert_eq!(dev.freeze, Some(vec![]), "freeze = [] clears the default windows");
    assert_eq!(dev.holidays.as_ref().map(Vec::len), Some(2));
    assert_eq!(dev.holiday_zone(), Some("Europe/Berlin"));
    let sarif = dev.sarif.expect("inherited");
    assert_eq!((sarif.block_at, sarif.block_level), (SecuritySeverity::High, BlockLevel::Error));
    assert!(dev.coverage.is_none());
    let (_, prd) = config.environment("prd").expect("prd");
    let prd = config.gate_for(prd);
    assert_eq!(prd.freeze.as_ref().map(Vec::len), Some(2));
    assert_eq!(prd.sarif.as_ref().map(|s| s.block_at), Some(SecuritySeverity::Critical));
    assert_eq!(prd.coverage.as_ref().map(|c| c.min), Some(0.8));
    // Two zones among the windows, so holidays take the gate's zone.
    assert_eq!(prd.holiday_zone(), Some("Europe/Berlin"));
    let calendar = prd.calendar().expect("zones resolve");
    let friday_evening: jiff::Timestamp = "2026-05-08T16:00:00Z".parse().expect("ts");
    assert!(calendar.status(friday_evening).is_frozen());
    assert_eq!(config.notify.timeout, Duration::from_secs(5));
    assert_eq!(config.notify.webhooks[0].on, [NotifyEvent::Blocked, NotifyEvent::RolledBack]);
    assert_eq!(config.notify.webhooks[1].on, NotifyEvent::all());
}

fn gate_error(from: &str, to: &str) -> (ConfigError, String) {
    assert!(GATES.contains(from), "{from}");
    let text = GATES.replacen(from, to, 1);
    (parse(&text).expect_err(to), text)
}

fn line_of(err: &ConfigError, text: &str) -> String {
    let (line, _) = err.location.expect("located");
    text.lines().nth(line - 1).unwrap_or_default().to_owned()
}

#[test]
fn an_unknown_zone_points_at_its_key_and_suggests_the_near_name() {
    let (err, text) = gate_error("\"America/New_York\"", "\"America/NewYork\"");
    assert_eq!(err.key.as_deref(), Some("environment[1].gate.freeze[1].zone"));
    assert!(line_of(&err, &text).contains("America/NewYork"), "{err}");
    assert_eq!(err.message, "unknown time zone \"America/NewYork\"; did you mean \"America/New_York\"?");
    let shown = err.to_string();
    assert!(shown.starts_with("sluice.toml:36:43: `environment[1].gate.freeze[1].zone`"), "{shown}");
    let (err, _) = gate_error("zone = \"Europe/Berlin\"\n", "zone = \"Middle/Earth\"\n");
    assert_eq!(err.key.as_deref(), Some("defaults.gate.zone"));
    assert!(err.message.contains("IANA name such as \"Europe/Berlin\""), "{err}");
}

#[test]
fn bad_week_times_and_dates_point_at_their_line() {
    let (err, text) = gate_error("from = \"Thu 18:00\"", "from = \"Thu 6pm\"");
    assert!(line_of(&err, &text).contains("Thu 6pm"), "{err}");
    assert!(err.message.contains("e.g. \"Fri 15:00\""), "{err}");
    let (err, text) = gate_error("\"2026-12-24\"", "\"24.12.2026\"");
    assert!(line_of(&err, &text).starts_with("holidays"), "{err}");
    assert!(err.message.contains("YYYY-MM-DD"), "{err}");
    let (err, _) = gate_error("to = \"Fri 09:00\"", "to = \"Thu 18:00\"");
    assert_eq!(err.key.as_deref(), Some("environment[1].gate.freeze[1]"));
    assert!(err.message.contains("give it a length"), "{err}");
}

#[test]
fn zones_are_required_where_windows_and_holidays_need_them() {
    let base = "app = \"shop\"\n[[environment]]\nname = \"dev\"\nrouter = { kind = \"local\", admin_url = \"http://127.0.0.1:9001\" }\n";
    let err = parse(&format!("{base}[environment.gate]\nfreeze = [{{ from = \"Fri 15:00\", to = \"Mon 08:00\" }}]\n"))
        .expect_err("window without a zone");
    assert_eq!(err.key.as_deref(), Some("environment[0].gate.freeze[0]"));
    assert!(err.message.starts_with("this freeze window has no zone (in environment dev)"), "{err}");
    let defaults = "app = \"shop\"\n[defaults.gate]\nholidays = [\"2026-12-24\"]\n";
    let err = parse(&base.replacen("app = \"shop\"\n", defaults, 1)).expect_err("holidays without a zone");
    assert_eq!(err.key.as_deref(), Some("defaults.gate.holidays"));
    assert!(err.message.starts_with("holidays need a zone (in environment dev)"), "{err}");
    // One zone shared by every window is the holidays' zone.
    let ok = format!(
        "{base}[environment.gate]\nfreeze = [{{ from = \"Fri 15:00\", to = \"Mon 08:00\", zone = \"Asia/Tokyo\" }}]\nholidays = [\"2026-12-31\"]\n"
    );
    let config = parse(&ok).expect("valid");
    assert_eq!(config.gate_for(&config.environments[0]).holiday_zone(), Some("Asia/Tokyo"));
}

#[test]
fn evidence_gates_and_notify_are_validated() {
    let (err, _) = gate_error("min = 0.8", "min = 80");
    assert_eq!(err.key.as_deref(), Some("environment[1].gate.coverage.min"));
    assert!(err.message.contains("0.8 for 80%"), "{err}");
    let (err, text) = gate_error("block_at = \"critical\"", "block_at = \"severe\"");
    assert!(line_of(&err, &text).contains("severe"), "{err}");
    let (err, _) =
        gate_error("url_env = \"SLACK_WEBHOOK_URL\"", "url_env = \"https://hooks.slack.com/services/T0/B0/x\"");
    assert_eq!(err.key.as_deref(), Some("notify.webhook[0].url_env"));
    assert!(err.message.contains("not the URL"), "{err}");
    assert!(!err.to_string().contains("hooks.slack.com/services/T0/B0/x\n"), "the message must not repeat the URL");
    let (err, _) = gate_error("url_env = \"DEPLOY_WEBHOOK_URL\"", "url_env = \"deploy hook\"");
    assert!(err.message.contains("not an environment variable name"), "{err}");
    let (err, _) = gate_error("timeout = \"5s\"", "timeout = \"1h\"");
    assert_eq!(err.key.as_deref(), Some("notify.timeout"));
    let (err, text) = gate_error("kind = \"json\"", "kind = \"teams\"");
    assert!(line_of(&err, &text).contains("teams"), "{err}");
    let (err, text) = gate_error("min = 0.8 }", "min = 0.8, minimum = 0.9 }");
    assert!(line_of(&err, &text).contains("minimum"), "{err}");
}

#[test]
fn evidence_paths_are_relative_to_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, GATES).expect("write");
    let config = Config::load(&path).expect("loads");
    let (_, prd) = config.environment("prd").expect("prd");
    let gate = config.gate_for(prd);
    assert_eq!(gate.coverage.expect("coverage").path, dir.path().join("coverage/lcov.info"));
    assert_eq!(config.defaults.gate.sarif.expect("sarif").path, dir.path().join("reports/trivy.sarif"));
}

const GITHUB: &str = r#"
app = "shop"

[ledger]
kind = "github"

[github]
repository = "acme/shop"
write_interval = "2s"

[handoff]
kind = "dispatch"
workflow = "promote.yml"

[[environment]]
name = "dev"
router = { kind = "local", admin_url = "http://127.0.0.1:9001" }

[[environment]]
name = "prd"
environment_url = "https://shop.example"
router = { kind = "local", admin_url = "http://127.0.0.1:9002" }

[environment.gate]
required_checks = ["build", "lint"]
incident_label = "incident"
require_independent_approval = true
"#;

#[test]
fn github_keys_parse_with_their_defaults() {
    let config = parse(GITHUB).expect("valid");
    assert_eq!(config.ledger, LedgerConfig::Github {});
    assert_eq!(config.github.repository.as_deref(), Some("acme/shop"));
    assert_eq!(config.github.write_interval, Duration::from_secs(2));
    assert_eq!(config.github.max_wait, Duration::from_secs(300));
    assert_eq!(config.handoff, Handoff::Dispatch { workflow: "promote.yml".into(), git_ref: "main".into() });
    let (_, dev) = config.environment("dev").expect("dev");
    assert!(!dev.gate.uses_github());
    let (_, prd) = config.environment("prd").expect("prd");
    assert_eq!(prd.environment_url.as_deref(), Some("https://shop.example"));
    assert_eq!(prd.gate.required_checks(), ["build", "lint"]);
    assert!(prd.gate.uses_github() && prd.gate.require_independent_approval == Some(true));
    assert_eq!(parse(GOOD).expect("valid").handoff, Handoff::Output);
}

#[test]
fn github_keys_are_validated_where_they_are() {
    let cases = [
        ("repository = \"acme/shop\"", "repository = \"acme\"", "github.repository", "owner/name"),
        ("workflow = \"promote.yml\"", "workflow = \".github/workflows/promote.yml\"", "handoff.workflow", "file name"),
        (
            "environment_url = \"https://shop.example\"",
            "environment_url = \"shop.example\"",
            "environment[1].environment_url",
            "http",
        ),
        ("\"build\", \"lint\"", "\"build\", \"build\"", "environment[1].gate.required_checks", "listed twice"),
        (
            "incident_label = \"incident\"",
            "incident_label = \"a,b\"",
            "environment[1].gate.incident_label",
            "one label",
        ),
        ("write_interval = \"2s\"", "write_interval = \"5m\"", "github.write_interval", "at most 1m"),
        ("require_independent_approval = true", "require_approval = true", "", "unknown field"),
    ];
    for (from, to, key, message) in cases {
        let text = GITHUB.replace(from, to);
        let err = parse(&text).expect_err(to);
        let shown = err.to_string();
        assert!(shown.contains(message), "{to}: {shown}");
        if !key.is_empty() {
            assert_eq!(err.key.as_deref(), Some(key), "{to}: {shown}");
            assert!(err.location.is_some(), "{to}: {shown}");
        }
    }
}

const SOURCES: &str = r#"
app = "shop"

[[defaults.source]]
kind = "prometheus"
name = "prom"
url = "http://127.0.0.1:9090"

[[defaults.check]]
name = "error-ratio"
kind = "query"
source = "prom"
query = 'sum(rate(http_requests_total{status="500",version="${release}"}[${interval}]))'
max = 0.01

[[environment]]
name = "dev"
router = { kind = "local", admin_url = "http://127.0.0.1:9001" }

[[environment]]
name = "prd"
router = { kind = "local", admin_url = "http://127.0.0.1:9002" }

[[environment.source]]
kind = "prometheus"
name = "prom"
url = "http://10.0.0.1:9090/prometheus"
timeout = "2s"
"#;

#[test]
fn environments_inherit_the_default_sources_unless_they_define_their_own() {
    let config = parse(SOURCES).expect("valid");
    let (_, dev) = config.environment("dev").expect("dev");
    let (_, prd) = config.environment("prd").expect("prd");
    let url = |sources: Vec<SourceConfig>| match &sources[..] {
        [SourceConfig::Prometheus { url, timeout, .. }] => (url.clone(), *timeout),
        other => panic!("one prometheus source, got {other:?}"),
    };
    assert_eq!(url(config.sources_for(dev)), ("http://127.0.0.1:9090".into(), Duration::from_secs(5)));
    assert_eq!(url(config.sources_for(prd)), ("http://10.0.0.1:9090/prometheus".into(), Duration::from_secs(2)));
    assert_eq!(config.sources_for(dev)[0].name(), "prom");
    assert_eq!(config.sources_for(dev)[0].kind(), "prometheus");
}

#[test]
fn source_errors_name_the_key_and_line() {
    let cases = [
        // A query check's source must be defined for every environment it applies to.
        ("source = \"prom\"", "source = \"cloud\"", "defaults.check[0].source", "does not define"),
        ("url = \"http://127.0.0.1:9090\"", "url = \"127.0.0.1:9090\"", "defaults.source[0].url", "not an http"),
        ("url = \"http://127.0.0.1:9090\"", "url = \"http://x/?a=1\"", "defaults.source[0].url", "base URL"),
        (
            "name = \"prom\"\nurl = \"http://127",
            "name = \"router\"\nurl = \"http://127",
            "defaults.source[0].name",
            "embedded router",
        ),
        (
            "name = \"prom\"\nurl = \"http://127",
            "name = \"a b\"\nurl = \"http://127",
            "defaults.source[0].name",
            "contains",
        ),
        ("timeout = \"2s\"", "timeout = \"0s\"", "environment[1].source[0].timeout", "more than 0"),
        ("${interval}", "${window}", "defaults.check[0].query", "unknown placeholder ${window}"),
        ("max = 0.01", "max = 0.01\nstep = \"5s\"", "defaults.check[0]", "step applies to range queries"),
        ("max = 0.01", "max = 0.01\nmin = 0.5", "defaults.check[0]", "above max"),
    ];
    for (from, to, key, message) in cases {
        let text = SOURCES.replacen(from, to, 1);
        assert_ne!(text, SOURCES, "{from}");
        let err = parse(&text).expect_err(to);
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        assert!(err.message.contains(message), "{err}");
        let (line, _) = err.location.expect("located");
        assert!(line > 1, "{err}");
    }
}

#[test]
fn an_environment_that_drops_the_source_its_checks_need_is_refused() {
    let text = SOURCES.replace("name = \"prom\"\nurl = \"http://10.0.0.1", "name = \"other\"\nurl = \"http://10.0.0.1");
    let err = parse(&text).expect_err("prd has no prom");
    assert_eq!(err.key.as_deref(), Some("defaults.check[0].source"));
    assert!(err.message.contains("environment \"prd\" does not define (it has other)"), "{err}");
    // Two sources of one name.
    let twice =
        format!("{SOURCES}\n[[environment.source]]\nkind = \"prometheus\"\nname = \"prom\"\nurl = \"http://x\"\n");
    let err = parse(&twice).expect_err("twice");
    assert_eq!(err.key.as_deref(), Some("environment[1].source[1].name"), "{err}");
    // Unknown keys and kinds are refused with their line.
    let err = parse(&SOURCES.replace("timeout = \"2s\"", "timout = \"2s\"")).expect_err("unknown key");
    assert!(err.to_string().contains("timout"), "{err}");
    let err = parse(&SOURCES.replacen("kind = \"prometheus\"", "kind = \"graphite\"", 1)).expect_err("unknown kind");
    assert!(err.to_string().contains("graphite"), "{err}");
}

#[test]
fn query_placeholders_expand() {
    let vars = QueryVars {
        release: "v2.1".into(),
        app: "shop".into(),
        environment: "dev".into(),
        interval: Duration::from_secs(10),
    };
    assert_eq!(
        vars.expand("sum(rate(x{version=\"${release}\",app=\"${app}\",env=\"${environment}\"}[${interval}]))"),
        Ok("sum(rate(x{version=\"v2.1\",app=\"shop\",env=\"dev\"}[10s]))".into())
    );
    let half = QueryVars { interval: Duration::from_millis(1500), ..vars.clone() };
    assert_eq!(half.expand("[${interval}]"), Ok("[1500ms]".into()));
    assert_eq!(vars.expand("no placeholders {a=\"$b\"}"), Ok("no placeholders {a=\"$b\"}".into()));
    assert!(vars.expand("x ${release").expect_err("unclosed").contains("unclosed"));
    assert!(vars.expand("${version}").expect_err("unknown").contains("${version}"));
}

#[test]
fn the_config_reference_is_a_valid_config() {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"))
        .expect("docs/configuration.md");
    let section = page.split("\n## Reference\n").nth(1).expect("a reference section");
    let block = section.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).expect("a toml block");
    let config = parse(block).unwrap_or_else(|e| panic!("the config reference does not load:\n{e}"));
    let (_, dev) = config.environment("dev").expect("dev");
    assert!(config.checks_for(dev).iter().any(|c| matches!(c.kind, sluice_analysis::CheckKind::Query { .. })));
    assert_eq!(config.sources_for(dev).len(), 1);
}

const LISTENER: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";
const RULE: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
const BLUE: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/73e2d6bc24d8a067";
const GREEN: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/83e2d6bc24d8a067";

fn alb_config(router: &str) -> String {
    GOOD.replace("router = { kind = \"local\", admin_url = \"http://127.0.0.1:9002\" }", router)
}

fn alb_router(extra: &str) -> String {
    format!(
        "router = {{ kind = \"alb\", listener_arn = \"{LISTENER}\", stable_target_group = \"{BLUE}\", candidate_target_group = \"{GREEN}\"{extra} }}"
    )
}

#[test]
fn an_alb_router_parses() {
    let config =
        parse(&alb_config(&alb_router(&format!(", rule_arn = \"{RULE}\", region = \"eu-west-1\"")))).expect("valid");
    let (_, prd) = config.environment("prd").expect("prd");
    match prd.router.as_ref().expect("a router") {
        RouterConfig::Alb { rule_arn, region, .. } => {
            assert_eq!(rule_arn.as_deref(), Some(RULE));
            assert_eq!(region.as_deref(), Some("eu-west-1"));
        }
        other => panic!("not an alb router: {other:?}"),
    }
    assert_eq!(prd.router.as_ref().map(RouterConfig::kind), Some("alb"));
}

#[test]
fn alb_router_errors_name_the_key() {
    let other_listener = RULE.replace("f2f7dc8efc522ab2/9683", "aaaadc8efc522ab2/9683");
    let cases = [
        (alb_router("").replace(LISTENER, "listener/app/shop"), "environment[1].router.listener_arn", "arn:aws"),
        (
            alb_router(&format!(", rule_arn = \"{other_listener}\"")),
            "environment[1].router.rule_arn",
            "does not belong",
        ),
        (alb_router("").replace(GREEN, BLUE), "environment[1].router.candidate_target_group", "two different"),
        (
            alb_router("").replace(GREEN, &GREEN.replace("eu-west-1", "us-east-1")),
            "environment[1].router.candidate_target_group",
            "another region",
        ),
        (alb_router(", region = \"us-east-1\""), "environment[1].router.region", "not the listener's region"),
    ];
    for (router, key, words) in cases {
        let err = parse(&alb_config(&router)).expect_err(key);
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        assert!(err.message.contains(words), "{err}");
        assert!(err.location.is_some(), "{err}");
    }
    let err = parse(&alb_config(&alb_router(", weight = 3"))).expect_err("unknown key");
    assert!(err.to_string().contains("weight"), "{err}");
}

#[test]
fn a_codedeploy_router_parses_and_its_appspec_is_relative_to_the_config() {
    let router = "router = { kind = \"codedeploy\", application = \"shop\", deployment_group = \"shop-prd\", \
                  deployment_config = \"CodeDeployDefault.ECSCanary10Percent5Minutes\", appspec = \"deploy/appspec.yaml\" }";
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, alb_config(router)).expect("write");
    let config = Config::load(&path).expect("valid");
    let (_, prd) = config.environment("prd").expect("prd");
    match prd.router.as_ref().expect("a router") {
        RouterConfig::CodeDeploy { appspec, poll_interval, timeout, .. } => {
            assert_eq!(appspec.as_deref(), Some(dir.path().join("deploy/appspec.yaml").as_path()));
            assert_eq!(*poll_interval, Duration::from_secs(10));
            assert_eq!(*timeout, Duration::from_secs(3600));
        }
        other => panic!("not a codedeploy router: {other:?}"),
    }
}

#[test]
fn codedeploy_router_errors_name_the_key() {
    let base = "router = { kind = \"codedeploy\", application = \"shop\", deployment_group = \"shop-prd\"";
    let cases = [
        (format!("{base} }}"), "environment[1].router.appspec", "needs the revision"),
        (
            format!("{base}, appspec = \"a.yaml\", s3_revision = \"s3://bucket/a.zip\" }}"),
            "environment[1].router.s3_revision",
            "not both",
        ),
        (format!("{base}, s3_revision = \"s3://bucket/a.rar\" }}"), "environment[1].router.s3_revision", ".zip"),
        (
            format!("{base}, appspec = \"a.yaml\", poll_interval = \"1ms\" }}"),
            "environment[1].router.poll_interval",
            "100ms",
        ),
        (
            format!("{base}, appspec = \"a.yaml\", poll_interval = \"1m\", timeout = \"10s\" }}"),
            "environment[1].router.timeout",
            "longer",
        ),
        (
            format!("{base}, appspec = \"a.yaml\", role_arn = \"arn:aws:iam::1:role/x\" }}"),
            "environment[1].router.role_arn",
            "arn:aws:iam::123456789012:role/NAME",
        ),
    ];
    for (router, key, words) in cases {
        let err = parse(&alb_config(&router)).expect_err(key);
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        assert!(err.message.contains(words), "{err}");
    }
}

#[test]
fn a_cloudwatch_source_parses_and_its_errors_name_the_key() {
    let source = "[[environment.source]]\nkind = \"cloudwatch\"\nname = \"cw\"\nalb_traffic = true\n";
    let text = format!("{}\n{source}", alb_config(&alb_router("")));
    let config = parse(&text).expect("valid");
    let (_, prd) = config.environment("prd").expect("prd");
    match config.sources_for(prd).as_slice() {
        [SourceConfig::Cloudwatch { period, lookback, delay, alb_traffic, .. }] => {
            assert_eq!(
                (*period, *lookback, *delay),
                (Duration::from_secs(60), Duration::from_secs(300), Duration::from_secs(60))
            );
            assert!(alb_traffic);
        }
        other => panic!("one cloudwatch source: {other:?}"),
    }
    let cases = [
        (format!("{source}period = \"90s\"\n"), "environment[1].source[0].period", "whole minutes"),
        (
            format!("{source}period = \"2m\"\nlookback = \"1m\"\n"),
            "environment[1].source[0].lookback",
            "at least the period",
        ),
        (format!("{source}region = \"mars\"\n"), "environment[1].source[0].region", "not an AWS region"),
    ];
    for (source, key, words) in cases {
        let err = parse(&format!("{}\n{source}", alb_config(&alb_router("")))).expect_err(key);
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        assert!(err.message.contains(words), "{err}");
    }
    // alb_traffic needs an ALB router.
    let err = parse(&format!("{GOOD}\n{source}")).expect_err("local router");
    assert_eq!(err.key.as_deref(), Some("environment[1].source[0].alb_traffic"), "{err}");
}

#[test]
fn deployment_metrics_need_a_custom_namespace() {
    let with =
        |table: &str| format!("app = \"shop\"\n{table}\n{}", GOOD.trim_start().trim_start_matches("app = \"shop\"\n"));
    let config =
        parse(&with("[deployment_metrics]\nkind = \"cloudwatch\"\nnamespace = \"Sluice/Deployments\"")).expect("valid");
    assert!(matches!(config.deployment_metrics, Some(DeploymentMetricsConfig::Cloudwatch { .. })));
    for bad in ["AWS/Deployments", ""] {
        let err = parse(&with(&format!("[deployment_metrics]\nkind = \"cloudwatch\"\nnamespace = \"{bad}\"")))
            .expect_err(bad);
        assert_eq!(err.key.as_deref(), Some("deployment_metrics.namespace"), "{err}");
    }
}

/// Parses `text` expecting a refusal at `key` whose message holds `needle`,
/// placed on a line of the file.
fn refused_at(text: &str, key: &str, needle: &str) -> ConfigError {
    let err = parse(text).expect_err(needle);
    assert_eq!(err.key.as_deref(), Some(key), "{err}");
    assert!(err.message.contains(needle), "{err}");
    assert!(err.location.is_some(), "{err}");
    err
}

#[test]
fn plans_without_analysis_time_or_traffic_are_refused() {
    let dev_canary = |plan: &str| {
        GOOD.replace("name = \"dev\"\n", &format!("name = \"dev\"\nstrategy = {{ kind = \"canary\", {plan} }}\n"))
    };
    let cases = [
        (dev_canary("stages = [10, 100], stage_duration = \"0s\""), "environment[0].strategy", "stage_duration is 0"),
        (dev_canary("stages = [10, 100], stage_duration = \"0ms\""), "environment[0].strategy", "stage_duration is 0"),
        (dev_canary("stages = [0, 100], stage_duration = \"1m\""), "environment[0].strategy", "weight of 0"),
        (dev_canary("stages = [0, 50, 100], stage_duration = \"1m\""), "environment[0].strategy", "weight of 0"),
        (dev_canary("stages = [], stage_duration = \"1m\""), "environment[0].strategy", "at least one stage"),
        (dev_canary("stages = [10, 100], stage_duration = \"31days\""), "environment[0].strategy", "30 days"),
        (GOOD.replace("bake = \"1m\"", "bake = \"0s\""), "environment[1].strategy", "bake is 0"),
        (
            GOOD.replace("stage_duration = \"10s\"", "stage_duration = \"0s\""),
            "defaults.strategy",
            "stage_duration is 0",
        ),
        (GOOD.replace("stages = [10, 50, 100]", "stages = [0, 100]"), "defaults.strategy", "weight of 0"),
    ];
    for (text, key, needle) in &cases {
        let err = refused_at(text, key, needle);
        assert!(err.message.contains("e.g."), "the message says how to fix it: {err}");
    }
    // All at once has no stage of its own: verify-health analyses it.
    parse(&dev_canary("stages = [100], stage_duration = \"1s\"")).expect("one stage at 100");
    parse(&GOOD.replace("kind = \"blue_green\", bake = \"1m\"", "kind = \"all_at_once\"")).expect("all at once");
}

#[test]
fn strategy_overrides_obey_the_config_rules() {
    assert_eq!(Strategy::parse_override("blue-green@5m"), Ok(Strategy::BlueGreen { bake: Duration::from_secs(300) }));
    let refused = [
        ("canary:50,100@0s", "stage_duration is 0"),
        ("canary:0,100@1m", "weight of 0"),
        ("canary:0,50,100@1m", "weight of 0"),
        ("canary:50,250@1m", "above 100"),
        ("canary:100,50@1m", "rise strictly"),
        ("canary:@1m", "not a weight"),
        ("canary:50,100@-1s", "invalid duration"),
        ("blue-green@0s", "bake is 0"),
        ("blue_green@0ms", "bake is 0"),
        ("blue-green", "invalid duration"),
        ("all-at-once@5m", "takes no stages"),
        ("all-at-once:10,100", "takes no stages"),
    ];
    for (text, needle) in refused {
        let err = Strategy::parse_override(text).expect_err(text);
        assert!(err.contains(needle), "{text}: {err}");
        let fix = err.contains("canary:10,25,50,100@30s") || err.contains("write it like \"30s\"");
        assert!(fix, "{text}: says how to write one: {err}");
    }
}

#[test]
fn duplicate_check_names_are_refused_in_every_list() {
    let twice = "[[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.05\n";
    let text =
        GOOD.replace("\n[[environment]]\nname = \"dev\"", &format!("\n{twice}\n[[environment]]\nname = \"dev\""));
    refused_at(&text, "defaults.check[1].name", "\"errors\" is defined twice");
    let own = "[[environment.check]]\nname = \"latency\"\nkind = \"latency\"\npercentile = 99\nmax = \"200ms\"\n";
    let text = format!("{GOOD}{own}{own}");
    refused_at(&text, "environment[1].check[1].name", "\"latency\" is defined twice");
    // An environment's checks replace the defaults' as a whole, so a name
    // the defaults use too is no duplicate: only one list runs.
    let same = "[[environment.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.001\n";
    let config = parse(&format!("{GOOD}{same}")).expect("an environment may reuse a default check's name");
    let (_, prd) = config.environment("prd").expect("prd");
    let checks = config.checks_for(prd);
    assert_eq!(checks.len(), 1);
    assert!(matches!(checks[0].kind, sluice_analysis::CheckKind::ErrorRate { max } if max == 0.001));
}

#[test]
fn required_check_names_are_one_line() {
    let text = format!("{GOOD}[environment.gate]\nrequired_checks = [\"build\\n::error::x\"]\n");
    refused_at(&text, "environment[1].gate.required_checks", "control character");
}

#[test]
fn analysis_none_is_explicit_and_inherits() {
    let config = parse(GOOD).expect("valid");
    let (_, dev) = config.environment("dev").expect("dev");
    assert_eq!(config.analysis_for(dev), AnalysisMode::Checks);

    // An environment opts out of the defaults' checks.
    let text = GOOD.replace("name = \"dev\"\n", "name = \"dev\"\nanalysis = \"none\"\n");
    let config = parse(&text).expect("valid");
    let (_, dev) = config.environment("dev").expect("dev");
    let (_, prd) = config.environment("prd").expect("prd");
    assert_eq!(config.analysis_for(dev), AnalysisMode::None);
    assert!(config.checks_for(dev).is_empty(), "no checks are in force without analysis");
    assert_eq!(config.analysis_for(prd), AnalysisMode::Checks);
    assert_eq!(config.checks_for(prd).len(), 1);

    // The defaults say none (with no checks of their own); prd opts back in
    // with checks of its own.
    let prd_check = "[[environment.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.01\n";
    let text = GOOD
        .replace("[[defaults.check]]\nname = \"errors\"\nkind = \"error_rate\"\nmax = 0.01\n", "")
        .replace("stage_duration = \"10s\" }", "stage_duration = \"10s\" }\nanalysis = \"none\"")
        .replace("soak = \"10m\"", "soak = \"10m\"\nanalysis = \"checks\"");
    let config = parse(&format!("{text}{prd_check}")).expect("valid");
    let (_, dev) = config.environment("dev").expect("dev");
    let (_, prd) = config.environment("prd").expect("prd");
    assert_eq!(config.analysis_for(dev), AnalysisMode::None);
    assert_eq!(config.analysis_for(prd), AnalysisMode::Checks);
    assert_eq!(config.checks_for(prd).len(), 1);

    // Checks beside analysis = "none" would never run: refused, where written.
    refused_at(
        &format!("{}{prd_check}", text.replace("analysis = \"checks\"", "analysis = \"none\"")),
        "environment[1].analysis",
        "runs no checks",
    );
    refused_at(
        &format!("{}{prd_check}", text.replace("analysis = \"checks\"\n", "")),
        "environment[1].check[0]",
        "inherits analysis = \"none\"",
    );
    refused_at(
        &GOOD.replace("stage_duration = \"10s\" }", "stage_duration = \"10s\" }\nanalysis = \"none\""),
        "defaults.analysis",
        "\"errors\"",
    );
    // An environment without analysis needs no source for the defaults'
    // query checks.
    let query = "[[defaults.check]]\nname = \"q\"\nkind = \"query\"\nsource = \"prom\"\nquery = \"up\"\nmax = 1.0\n\
                 [[defaults.source]]\nkind = \"prometheus\"\nname = \"prom\"\nurl = \"http://127.0.0.1:9090\"\n\
                 [[environment]]\nname = \"stg\"\nanalysis = \"none\"\n\
                 router = { kind = \"local\", admin_url = \"http://127.0.0.1:9003\" }\n\
                 [[environment.source]]\nkind = \"prometheus\"\nname = \"other\"\nurl = \"http://127.0.0.1:9091\"\n";
    let with_stage =
        GOOD.replace("\n[[environment]]\nname = \"dev\"", &format!("\n{query}\n[[environment]]\nname = \"dev\""));
    let config = parse(&with_stage).expect("an unanalysed environment need not define the queried source");
    assert!(config.checks_for(config.environment("stg").expect("stg").1).is_empty());
    let refused = with_stage.replace("name = \"stg\"\nanalysis = \"none\"\n", "name = \"stg\"\n");
    refused_at(&refused, "defaults.check[1].source", "does not define");

    // Only the two words.
    let err = parse(&GOOD.replace("name = \"dev\"\n", "name = \"dev\"\nanalysis = \"off\"\n")).expect_err("off");
    assert!(err.message.contains("checks") && err.message.contains("none"), "{err}");
    assert!(err.location.is_some(), "{err}");
}

#[test]
fn min_final_analysis_is_configured_or_the_final_stage_or_a_minute() {
    let config = parse(GOOD).expect("valid");
    let canary = Strategy::Canary { stages: vec![10, 100], stage_duration: Duration::from_secs(90) };
    assert_eq!(config.min_final_analysis(&canary), Duration::from_secs(90));
    assert_eq!(
        config.min_final_analysis(&Strategy::BlueGreen { bake: Duration::from_secs(300) }),
        Duration::from_secs(300)
    );
    assert_eq!(config.min_final_analysis(&Strategy::AllAtOnce), DEFAULT_MIN_FINAL_ANALYSIS);
    assert_eq!(DEFAULT_MIN_FINAL_ANALYSIS, Duration::from_secs(60));

    let text = GOOD.replace("interval = \"2s\"", "interval = \"2s\"\nmin_final_analysis = \"3m\"");
    let config = parse(&text).expect("valid");
    assert_eq!(config.analysis.min_final_analysis, Some(Duration::from_secs(180)));
    for strategy in [canary, Strategy::AllAtOnce] {
        assert_eq!(config.min_final_analysis(&strategy), Duration::from_secs(180));
    }

    for (value, needle) in [("0s", "is 0"), ("1s", "shorter than one analysis interval"), ("40days", "30 days")] {
        let text = GOOD.replace("interval = \"2s\"", &format!("interval = \"2s\"\nmin_final_analysis = \"{value}\""));
        refused_at(&text, "analysis.min_final_analysis", needle);
    }
    let text = GOOD.replace("interval = \"2s\"", "interval = \"2s\"\nmin_final_analysis = \"soon\"");
    let err = parse(&text).expect_err("bad duration");
    assert!(err.message.contains("invalid duration \"soon\""), "{err}");
}

#[test]
fn committed_config_schema_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/config.v1.json");
    let text = json_schema();
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "schema/config.v1.json is out of date with the Config types; regenerate it with `SLUICE_BLESS=1 cargo test -p sluice-core committed_config_schema`"
    );
}

const ROLE: &str = "arn:aws:iam::123456789012:role/sluice-deployer";

#[test]
fn routers_and_cloudwatch_sources_assume_their_role() {
    let router = alb_router(&format!(", role_arn = \"{ROLE}\", external_id = \"shop-ci\""));
    let source = format!("[[defaults.source]]\nkind = \"cloudwatch\"\nname = \"cw\"\nrole_arn = \"{ROLE}\"\n");
    let text = alb_config(&router).replacen("[[environment]]", &format!("{source}\n[[environment]]"), 1);
    let config = parse(&text).expect("valid");
    let (_, prd) = config.environment("prd").expect("prd");
    let role = prd.router.as_ref().and_then(RouterConfig::assume_role).expect("a role");
    assert_eq!(
        role,
        crate::config::AssumeRoleConfig {
            role_arn: ROLE,
            external_id: Some("shop-ci"),
            session_name: Some("sluice-shop-prd")
        }
    );
    // A default source's session is named for the environment asking.
    for env in ["dev", "prd"] {
        let (_, e) = config.environment(env).expect(env);
        let sources = config.sources_for(e);
        let role = sources[0].assume_role().expect("a role");
        assert_eq!(role.session_name, Some(format!("sluice-shop-{env}").as_str()));
    }
    let named = alb_router(&format!(", role_arn = \"{ROLE}\", session_name = \"release-42\""));
    let config = parse(&alb_config(&named)).expect("valid");
    let (_, prd) = config.environment("prd").expect("prd");
    assert_eq!(
        prd.router.as_ref().and_then(RouterConfig::assume_role).and_then(|r| r.session_name),
        Some("release-42")
    );
    // Without role_arn, nothing is assumed.
    let config = parse(&alb_config(&alb_router(""))).expect("valid");
    let (_, prd) = config.environment("prd").expect("prd");
    assert_eq!(prd.router.as_ref().and_then(RouterConfig::assume_role), None);
}

#[test]
fn role_errors_name_the_key_and_the_shape() {
    let other_account = ROLE.replace("123456789012", "210987654321");
    let cases = [
        (
            alb_router(", role_arn = \"sluice-deployer\""),
            "environment[1].router.role_arn",
            "arn:aws:iam::123456789012:role/NAME",
        ),
        (
            alb_router(", role_arn = \"arn:aws:iam::123456789012:user/ci\""),
            "environment[1].router.role_arn",
            "arn:aws:iam::123456789012:role/NAME",
        ),
        (
            alb_router(&format!(", role_arn = \"{other_account}\"")),
            "environment[1].router.role_arn",
            "account 210987654321",
        ),
        (alb_router(", external_id = \"shop-ci\""), "environment[1].router.external_id", "only used with role_arn"),
        (
            alb_router(&format!(", role_arn = \"{ROLE}\", session_name = \"a b\"")),
            "environment[1].router.session_name",
            "role session name",
        ),
        (
            alb_router(&format!(", role_arn = \"{ROLE}\", external_id = \"x\"")),
            "environment[1].router.external_id",
            "external ID",
        ),
    ];
    for (router, key, words) in cases {
        let err = parse(&alb_config(&router)).expect_err(key);
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        assert!(err.message.contains(words), "{err}");
        assert!(err.location.is_some(), "{err}");
    }
    let source = "[[environment.source]]\nkind = \"cloudwatch\"\nname = \"cw\"\nrole_arn = \"arn:aws:iam:::role/x\"\n";
    let err = parse(&format!("{}\n{source}", alb_config(&alb_router("")))).expect_err("bad source role");
    assert_eq!(err.key.as_deref(), Some("environment[1].source[0].role_arn"), "{err}");
    assert!(err.message.contains("arn:aws:iam::123456789012:role/NAME"), "{err}");
}

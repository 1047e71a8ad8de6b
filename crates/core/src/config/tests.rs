use super::*;

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
    assert_eq!(config.analysis.interval, Duration::from_secs(2));
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
    assert_eq!(prd.gate.required_checks, ["build", "lint"]);
    assert!(prd.gate.uses_github() && prd.gate.require_independent_approval);
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

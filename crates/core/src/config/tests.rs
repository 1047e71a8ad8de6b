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
fn the_readme_config_reference_is_a_valid_config() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).expect("README");
    let section = readme.split("## Config reference").nth(1).expect("a config reference section");
    let block = section.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).expect("a toml block");
    let config = parse(block).unwrap_or_else(|e| panic!("the README's config reference does not load:\n{e}"));
    let (_, dev) = config.environment("dev").expect("dev");
    assert!(config.checks_for(dev).iter().any(|c| matches!(c.kind, sluice_analysis::CheckKind::Query { .. })));
    assert_eq!(config.sources_for(dev).len(), 1);
}

use crate::config::{Config, ConfigError, RouterConfig};
use std::path::Path;
use std::time::Duration;

const WAVES: &str = r#"
app = "shop"

[[defaults.check]]
name = "errors"
kind = "error_rate"
max = 0.01

[[environment]]
name = "dev"
router = { kind = "local", admin_url = "http://127.0.0.1:9001" }

[[environment]]
name = "prd"
waves = [["us-east-1"], ["eu-west-1", "ap-southeast-2"]]
bake = "2m"

[[environment.target]]
name = "us-east-1"
router = { kind = "local", admin_url = "http://127.0.0.1:9101" }

[[environment.target]]
name = "eu-west-1"
router = { kind = "local", admin_url = "http://127.0.0.1:9102" }

[[environment.target.check]]
name = "eu-latency"
kind = "latency"
percentile = 99
max = "300ms"

[[environment.target]]
name = "ap-southeast-2"
router = { kind = "local", admin_url = "http://127.0.0.1:9103" }

[[environment.target.check]]
name = "errors"
kind = "error_rate"
max = 0.05
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("sluice.toml"))
}

#[test]
fn targets_and_waves_parse_and_inherit_on_top_of_the_environment() {
    let config = parse(WAVES).expect("valid");
    let (_, dev) = config.environment("dev").expect("dev");
    assert!(!dev.has_targets());
    assert!(dev.waves().is_empty());
    let (_, prd) = config.environment("prd").expect("prd");
    assert!(prd.has_targets() && prd.router.is_none());
    assert_eq!(prd.waves(), vec![vec!["us-east-1".to_owned()], vec!["eu-west-1".into(), "ap-southeast-2".into()]]);
    assert_eq!(prd.bake, Some(Duration::from_secs(120)));
    assert_eq!(prd.wave_of("ap-southeast-2"), Some(1));
    let names = |t: &str| -> Vec<(String, String)> {
        let target = prd.target(t).expect("target");
        config
            .checks_for_target(prd, target)
            .into_iter()
            .map(|c| (c.name.clone(), serde_json::to_string(&c.kind).unwrap_or_default()))
            .collect()
    };
    // us-east-1: the environment's checks; eu-west-1: one more; ap: its own
    // "errors" replaces the environment's of that name.
    assert_eq!(names("us-east-1").len(), 1);
    assert_eq!(names("eu-west-1").iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["errors", "eu-latency"]);
    let ap = names("ap-southeast-2");
    assert_eq!(ap.len(), 1);
    assert!(ap[0].1.contains("0.05"), "{ap:?}");
}

#[test]
fn without_waves_each_target_is_its_own_wave_in_order() {
    let config =
        parse(&WAVES.replace("waves = [[\"us-east-1\"], [\"eu-west-1\", \"ap-southeast-2\"]]\n", "")).expect("valid");
    let (_, prd) = config.environment("prd").expect("prd");
    assert_eq!(prd.waves().len(), 3);
    assert_eq!(prd.waves()[2], vec!["ap-southeast-2".to_owned()]);
}

/// The error for `text`, which must name `key` at a line of the file and
/// say `words`.
fn refused(text: &str, key: &str, words: &str) -> ConfigError {
    let err = parse(text).expect_err(key);
    assert_eq!(err.key.as_deref(), Some(key), "{err}");
    assert!(err.message.contains(words), "{err}");
    assert!(err.location.is_some(), "no line: {err}");
    err
}

#[test]
fn bad_waves_are_refused_naming_the_key() {
    let waves = "waves = [[\"us-east-1\"], [\"eu-west-1\", \"ap-southeast-2\"]]";
    let with = |w: &str| WAVES.replace(waves, w);
    let err = refused(
        &with("waves = [[\"us-east-1\"], [\"eu-west-1\", \"ap-southeast-3\"]]"),
        "environment[1].waves",
        "\"ap-southeast-3\", which environment \"prd\" does not define",
    );
    assert!(err.to_string().contains("sluice.toml:"), "{err}");
    let err = refused(
        &with("waves = [[\"us-east-1\"], [\"eu-west-1\", \"us-east-1\"]]"),
        "environment[1].waves",
        "in wave 1 and in wave 2",
    );
    // The line shown is the `waves` key's.
    assert!(err.snippet.as_deref().is_some_and(|l| l.starts_with("waves")), "{err}");
    refused(
        &with("waves = [[\"us-east-1\", \"us-east-1\"], [\"eu-west-1\", \"ap-southeast-2\"]]"),
        "environment[1].waves",
        "twice in wave 1",
    );
    refused(
        &with("waves = [[\"us-east-1\"], [], [\"eu-west-1\", \"ap-southeast-2\"]]"),
        "environment[1].waves",
        "wave 2 is empty",
    );
    refused(&with("waves = []"), "environment[1].waves", "promotes no target");
    refused(
        &with("waves = [[\"us-east-1\"], [\"eu-west-1\"]]"),
        "environment[1].waves",
        "\"ap-southeast-2\" is in no wave",
    );
}

#[test]
fn bad_targets_are_refused_naming_the_key() {
    refused(
        &WAVES.replacen("name = \"eu-west-1\"", "name = \"us-east-1\"", 1),
        "environment[1].target[1].name",
        "defined twice",
    );
    refused(&WAVES.replacen("name = \"eu-west-1\"", "name = \"eu/west\"", 1), "environment[1].target[1].name", "");
    // Router and targets both, or neither.
    refused(
        &WAVES.replace(
            "bake = \"2m\"",
            "bake = \"2m\"\nrouter = { kind = \"local\", admin_url = \"http://127.0.0.1:9100\" }",
        ),
        "environment[1].target",
        "not both",
    );
    refused(
        &WAVES.replace("router = { kind = \"local\", admin_url = \"http://127.0.0.1:9001\" }", ""),
        "environment[0].router",
        "has no router",
    );
    // waves and bake only order targets.
    refused(
        &WAVES.replace("name = \"dev\"", "name = \"dev\"\nwaves = [[\"a\"]]"),
        "environment[0].waves",
        "one router",
    );
    refused(&WAVES.replace("bake = \"2m\"", "bake = \"0s\""), "environment[1].bake", "more than 0");
    // A target's router, checks and probes are checked where they are.
    refused(
        &WAVES.replace("http://127.0.0.1:9102", "ftp://x"),
        "environment[1].target[1].router.admin_url",
        "not an http",
    );
    refused(&WAVES.replace("max = 0.05", "max = 5.0"), "environment[1].target[2].check[0]", "ratio");
    refused(
        &WAVES.replace("http://127.0.0.1:9103", "http://127.0.0.1:9101/"),
        "environment[1].target[2].router",
        "same router",
    );
    let err = parse(&WAVES.replace("percentile = 99", "percentile = 99\nweight = 2")).expect_err("unknown key");
    assert_eq!(err.key.as_deref(), Some("environment[1].target[1].check[0].weight"), "{err}");
}

#[test]
fn a_target_query_needs_a_source_in_force_for_it() {
    let text = WAVES.replace(
        "[[environment.target.check]]\nname = \"eu-latency\"",
        "[[environment.target.source]]\nkind = \"prometheus\"\nname = \"prom\"\nurl = \"http://127.0.0.1:9090\"\n\n\
         [[environment.target.check]]\nname = \"eu-queue\"\nkind = \"query\"\nsource = \"prom\"\nquery = \"up\"\nmax = 1.0\n\n\
         [[environment.target.check]]\nname = \"eu-latency\"",
    );
    let config = parse(&text).expect("the eu target's own source answers its query");
    let (_, prd) = config.environment("prd").expect("prd");
    let eu = prd.target("eu-west-1").expect("eu");
    assert_eq!(config.sources_for_target(prd, eu).len(), 1);
    assert!(config.sources_for_target(prd, prd.target("us-east-1").expect("us")).is_empty());
    // The same query on a target without the source is refused there.
    let text = text.replace(
        "name = \"errors\"\nkind = \"error_rate\"\nmax = 0.05",
        "name = \"ap-queue\"\nkind = \"query\"\nsource = \"prom\"\nquery = \"up\"\nmax = 1.0",
    );
    refused(&text, "environment[1].target[2].check[0].source", "does not define");
}

#[test]
fn a_codedeploy_target_is_refused_for_now() {
    let text = WAVES.replace(
        "router = { kind = \"local\", admin_url = \"http://127.0.0.1:9103\" }",
        "router = { kind = \"codedeploy\", application = \"shop\", deployment_group = \"ap\", appspec = \"a.yaml\" }",
    );
    refused(&text, "environment[1].target[2].router", "codedeploy");
}

#[test]
fn a_target_of_the_readme_shape_round_trips() {
    let config = parse(WAVES).expect("valid");
    let (_, prd) = config.environment("prd").expect("prd");
    assert!(matches!(prd.target("us-east-1").map(|t| &t.router), Some(RouterConfig::Local { .. })));
    let text = toml::to_string(&config).expect("serialise");
    assert_eq!(Config::parse(&text, Path::new("x.toml")).expect("again"), config);
}

#[test]
fn the_docs_waves_example_loads() {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/waves.md"))
        .expect("docs/waves.md");
    let block = page.split("```toml partial\n").nth(1).and_then(|b| b.split("```").next()).expect("a toml block");
    let config = parse(&format!("app = \"shop\"\n{block}"))
        .unwrap_or_else(|e| panic!("the waves example of docs/waves.md does not load:\n{e}"));
    let (_, prd) = config.environment("prd").expect("prd");
    assert_eq!(
        prd.waves(),
        vec![vec!["us-east-1".to_owned()], vec!["eu-west-1".to_owned(), "ap-southeast-2".to_owned()]]
    );
    assert_eq!(prd.bake, Some(Duration::from_secs(300)));
    assert!(matches!(prd.target("us-east-1").map(|t| &t.router), Some(RouterConfig::Alb { .. })));
    let eu = prd.target("eu-west-1").expect("eu");
    assert_eq!(config.checks_for_target(prd, eu).len(), 1);
}

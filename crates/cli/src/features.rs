//! What this build of the steps can do: the `aws` and `github` features of
//! `sluice-providers`, passed through by this crate (both on by default and
//! in every released binary; `scripts/demo.sh` builds without them).
//!
//! Every step loads its config through [`load`], which refuses a config
//! that names a provider this build left out (exit 2, naming the key),
//! before anything is built from it or changed. A path with no config key
//! (`dora-report --source github`) is refused with [`left_out`]. Never
//! ignores such a key, and never refuses anything in a full build.

use anyhow::anyhow;
use sluice_core::config::Config;
use sluice_core::{Classify, Failure};
use std::path::Path;

/// The config at `path`, checked by its loader and against this build's
/// providers ([`sluice_providers::features::check`]).
pub(crate) fn load(path: &Path) -> Result<Config, Failure> {
    let config = Config::load(path).bad_input()?;
    sluice_providers::features::check(&config).map_err(|e| Failure::input(anyhow!("{}: {e}", path.display())))?;
    Ok(config)
}

/// The refusal of `what` (a flag, a key) that needs the GitHub providers, in
/// a build without them: exit 2.
#[cfg(not(feature = "github"))]
pub(crate) fn left_out(what: &str) -> Failure {
    Failure::input(anyhow!(
        "{what}: this sluice was built without GitHub support; build with `--features github` (or the released binary)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Exit;

    const ALB: &str = r#"
app = "shop"

[ledger]
kind = "file"
path = "ledger.jsonl"

[[environment]]
name = "dev"
router = { kind = "local", admin_url = "http://127.0.0.1:9001" }

[[environment]]
name = "prd"
router = { kind = "alb", listener_arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2", stable_target_group = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/73e2d6bc24d8a067", candidate_target_group = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/73e2d6bc24d8a068" }
"#;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, text).expect("the config is written");
        (dir, path)
    }

    /// A lean build refuses an ALB router with exit 2 and names the key and
    /// the way out; a build with AWS support loads the same config. Runs in
    /// both builds (scripts/test.sh tests the lean one too).
    #[test]
    fn an_alb_router_needs_the_aws_feature() {
        let (_dir, path) = write(ALB);
        match (load(&path), sluice_providers::features::AWS) {
            (Ok(config), true) => assert_eq!(config.environments.len(), 2),
            (Ok(_), false) => panic!("a build without AWS support loaded an ALB router"),
            (Err(failure), true) => panic!("a build with AWS support refused: {:#}", failure.error),
            (Err(failure), false) => {
                assert_eq!(failure.exit, Exit::BAD_INPUT);
                assert_eq!(
                    failure.error.to_string(),
                    format!(
                        "{}: `environment[1].router` (kind = \"alb\"): this sluice was built without AWS support; \
                         build with `--features aws` (or the released binary)",
                        path.display()
                    )
                );
            }
        }
    }

    /// The GitHub keys name themselves too: the ledger first, then the
    /// gate's checks, in the order the config reads.
    #[test]
    fn github_keys_need_the_github_feature() {
        let text = ALB.replace("kind = \"file\"\npath = \"ledger.jsonl\"", "kind = \"github\"").replace(
            "name = \"prd\"\n",
            "name = \"prd\"\ngate = { required_checks = [\"ci\"], incident_label = \"incident\" }\n",
        );
        let (_dir, path) = write(&text);
        let config = Config::load(&path).expect("the loader takes it");
        let keys: Vec<(String, &str)> =
            sluice_providers::features::refusals(&config).into_iter().map(|u| (u.key, u.feature)).collect();
        assert_eq!(
            keys,
            [
                ("ledger".to_owned(), "github"),
                ("environment[1].router".to_owned(), "aws"),
                ("environment[1].gate.required_checks".to_owned(), "github"),
                ("environment[1].gate.incident_label".to_owned(), "github"),
            ]
        );
        match (load(&path), sluice_providers::features::AWS && sluice_providers::features::GITHUB) {
            (Ok(_), true) => {}
            (Ok(_), false) => panic!("a build without AWS or GitHub support loaded an ALB router and a github ledger"),
            (Err(failure), true) => panic!("a full build refused: {:#}", failure.error),
            (Err(failure), false) => {
                assert_eq!(failure.exit, Exit::BAD_INPUT);
                let message = failure.error.to_string();
                if !sluice_providers::features::GITHUB {
                    assert!(message.contains("`ledger` (kind = \"github\"): this sluice was built without GitHub support; build with `--features github`"), "{message}");
                } else {
                    assert!(message.contains("`environment[1].router`"), "{message}");
                }
            }
        }
    }
}

//! Shape checks of AWS names in the config: ARNs and regions. Only the
//! shape; whether the resource exists is for the provider to find out.

/// The parts of an ARN: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Parses `text` as an ARN of `service` whose resource starts with
    /// `resource_prefix`, with a message that shows the expected form.
    pub fn parse(text: &'a str, service: &str, resource_prefix: &str) -> Result<Arn<'a>, String> {
        let example = format!("arn:aws:{service}:eu-west-1:123456789012:{resource_prefix}...");
        let bad = |why: &str| format!("{text:?} is not a {service} ARN ({why}); write it like {example:?}");
        let mut parts = text.splitn(6, ':');
        let mut next = || parts.next().unwrap_or_default();
        let (arn, partition, svc, region, account, resource) = (next(), next(), next(), next(), next(), next());
        if arn != "arn" || !partition.starts_with("aws") {
            return Err(bad("it must start with arn:aws"));
        }
        if svc != service {
            return Err(bad(&format!("service {svc:?}")));
        }
        check_region(region).map_err(|m| bad(&m))?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the account must be 12 digits"));
        }
        if !resource.starts_with(resource_prefix) || resource.len() == resource_prefix.len() {
            return Err(bad(&format!("the resource must start with {resource_prefix:?}")));
        }
        if resource.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains spaces"));
        }
        Ok(Arn { partition, service: svc, region, account, resource })
    }
}

/// The role a router or CloudWatch source assumes in its own account
/// (`role_arn`, `external_id`, `session_name`), as written in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssumeRoleConfig<'a> {
    pub role_arn: &'a str,
    pub external_id: Option<&'a str>,
    /// `None` until [`crate::config::Config::load`] fills in the default.
    pub session_name: Option<&'a str>,
}

impl<'a> AssumeRoleConfig<'a> {
    pub(crate) fn of(
        role_arn: &'a Option<String>,
        external_id: &'a Option<String>,
        session_name: &'a Option<String>,
    ) -> Option<AssumeRoleConfig<'a>> {
        Some(AssumeRoleConfig {
            role_arn: role_arn.as_deref()?,
            external_id: external_id.as_deref(),
            session_name: session_name.as_deref(),
        })
    }
}

/// The shape of an IAM role ARN, shown in every refusal of one.
pub const ROLE_ARN_SHAPE: &str = "arn:aws:iam::123456789012:role/NAME";

/// Checks that `text` is an IAM role ARN,
/// `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`, and gives its account.
pub fn check_role_arn(text: &str) -> Result<&str, String> {
    let bad = |why: &str| format!("{text:?} is not an IAM role ARN ({why}); write it like {ROLE_ARN_SHAPE:?}");
    let mut parts = text.splitn(6, ':');
    let mut next = || parts.next().unwrap_or_default();
    let (arn, partition, service, region, account, resource) = (next(), next(), next(), next(), next(), next());
    if arn != "arn" || !partition.starts_with("aws") {
        return Err(bad("it must start with arn:aws"));
    }
    if service != "iam" {
        return Err(bad(&format!("service {service:?}, not \"iam\"")));
    }
    if !region.is_empty() {
        return Err(bad("IAM ARNs have no region: write \"iam::\" before the account"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the account must be 12 digits"));
    }
    let name = resource.strip_prefix("role/").ok_or_else(|| bad("the resource must start with \"role/\""))?;
    let name_ok =
        |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !name.split('/').all(name_ok) || name.len() > 512 {
        return Err(bad("the role name must be letters, digits and +=,.@_- (a path separated by '/')"));
    }
    Ok(account)
}

/// Checks a role session name as STS takes it: 2 to 64 of letters, digits
/// and `+=,.@_-`.
pub fn check_session_name(name: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&name.len()) && name.chars().all(session_char);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a role session name: 2 to 64 letters, digits and +=,.@_- (e.g. \"sluice-shop-prd\")"
        ))
    }
}

fn session_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// The default role session name, `sluice-APP-ENVIRONMENT`, made to fit
/// what STS takes (other characters become `-`, cut at 64).
pub fn default_session_name(app: &str, environment: &str) -> String {
    format!("sluice-{app}-{environment}").chars().map(|c| if session_char(c) { c } else { '-' }).take(64).collect()
}

/// An AWS region name such as `eu-west-1` or `us-gov-east-1`.
pub fn check_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if ok { Ok(()) } else { Err(format!("{region:?} is not an AWS region such as \"eu-west-1\"")) }
}

/// Splits `s3://BUCKET/KEY` into bucket, key and CodeDeploy bundle type
/// (`zip`, `tar` or `tgz`, from the key's extension).
pub fn parse_s3_revision(text: &str) -> Result<(String, String, &'static str), String> {
    let hint = "write it like \"s3://my-bucket/releases/shop-1.2.3.zip\"";
    let rest = text.strip_prefix("s3://").ok_or_else(|| format!("{text:?} is not an s3:// URL; {hint}"))?;
    let (bucket, key) = rest.split_once('/').ok_or_else(|| format!("{text:?} has no key after the bucket; {hint}"))?;
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return Err(format!(
            "{bucket:?} is not an S3 bucket name (3-63 lowercase letters, digits, '-' and '.'); {hint}"
        ));
    }
    let bundle = if key.ends_with(".zip") {
        "zip"
    } else if key.ends_with(".tar") {
        "tar"
    } else if key.ends_with(".tar.gz") || key.ends_with(".tgz") {
        "tgz"
    } else {
        return Err(format!(
            "{key:?} must end in .zip, .tar, .tar.gz or .tgz (the bundle type CodeDeploy needs); {hint}"
        ));
    };
    Ok((bucket.to_owned(), key.to_owned(), bundle))
}

#[cfg(test)]
mod tests {
    #[test]
    fn s3_revisions() {
        assert_eq!(
            super::parse_s3_revision("s3://my-bucket/releases/shop-1.2.3.tar.gz"),
            Ok(("my-bucket".into(), "releases/shop-1.2.3.tar.gz".into(), "tgz"))
        );
        for bad in ["my-bucket/x.zip", "s3://my-bucket", "s3://B/x.zip", "s3://my-bucket/x.rar"] {
            assert!(super::parse_s3_revision(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn role_arns() {
        assert_eq!(check_role_arn("arn:aws:iam::111111111111:role/deployer"), Ok("111111111111"));
        assert_eq!(check_role_arn("arn:aws-us-gov:iam::111111111111:role/ci/sluice-deployer"), Ok("111111111111"));
        let cases = [
            ("deployer", "arn:aws"),
            ("arn:aws:sts::111111111111:role/deployer", "service \"sts\""),
            ("arn:aws:iam:us-east-1:111111111111:role/deployer", "no region"),
            ("arn:aws:iam::1111:role/deployer", "12 digits"),
            ("arn:aws:iam::111111111111:user/deployer", "role/"),
            ("arn:aws:iam::111111111111:role/", "role name"),
            ("arn:aws:iam::111111111111:role/de ployer", "role name"),
        ];
        for (text, why) in cases {
            let err = check_role_arn(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains(ROLE_ARN_SHAPE), "{err}");
        }
    }

    #[test]
    fn session_names() {
        assert_eq!(default_session_name("shop", "prd"), "sluice-shop-prd");
        assert_eq!(default_session_name("a b", "prd"), "sluice-a-b-prd");
        assert_eq!(default_session_name(&"x".repeat(100), "prd").len(), 64);
        assert_eq!(check_session_name(&default_session_name(&"x".repeat(100), "prd")), Ok(()));
        for bad in ["x", "with space", &"y".repeat(65)] {
            assert!(check_session_name(bad).is_err(), "{bad}");
        }
    }

    const LISTENER: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";

    #[test]
    fn parses_a_listener_arn() {
        let arn = Arn::parse(LISTENER, "elasticloadbalancing", "listener/app/").expect("valid");
        assert_eq!(arn.region, "eu-west-1");
        assert_eq!(arn.account, "123456789012");
        assert_eq!(arn.resource, "listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2");
    }

    #[test]
    fn names_what_is_wrong() {
        let cases = [
            ("listener/app/shop", "arn:aws"),
            ("arn:aws:ec2:eu-west-1:123456789012:listener/app/x", "service \"ec2\""),
            ("arn:aws:elasticloadbalancing:eu-west:123456789012:listener/app/x", "not an AWS region"),
            ("arn:aws:elasticloadbalancing:eu-west-1:1234:listener/app/x", "12 digits"),
            ("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/x/1", "must start with"),
        ];
        for (text, why) in cases {
            let err = Arn::parse(text, "elasticloadbalancing", "listener/app/").expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/..."), "{err}");
        }
    }

    #[test]
    fn regions() {
        for ok in ["eu-west-1", "us-gov-east-1", "ap-southeast-3"] {
            assert_eq!(check_region(ok), Ok(()), "{ok}");
        }
        for bad in ["", "eu", "eu-west", "EU-WEST-1", "eu-west-x", "eu--1"] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
    }
}

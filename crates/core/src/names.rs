//! Names that end up in records, ledgers, file names and URLs: app,
//! environment and version. Kept to a safe alphabet so no name can carry a
//! path trick, a newline or markup into a summary.

/// Checks a name: 1 to 128 of ASCII letters, digits, `.`, `_`, `-` and `+`,
/// not starting with `.` or `-`.
pub fn check(what: &str, name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+');
    if name.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if name.len() > 128 {
        return Err(format!("{what} is longer than 128 characters"));
    }
    if let Some(bad) = name.chars().find(|c| !ok_char(*c)) {
        return Err(format!("{what} {name:?} contains {bad:?}; use letters, digits, '.', '_', '-' and '+' only"));
    }
    if name.starts_with(['.', '-']) {
        return Err(format!("{what} {name:?} must not start with '.' or '-'"));
    }
    Ok(())
}

/// Checks a label sluice keeps and shows but never builds a path or URL
/// from (an incident id, an actor, a check's name, a router's pool): 1 to
/// 1024 characters, none of them a control character (no newline can start
/// a workflow command in a log).
pub fn check_label(what: &str, text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if text.len() > 1024 {
        return Err(format!("{what} is longer than 1024 characters"));
    }
    if let Some(bad) = text.chars().find(|c| c.is_control()) {
        let shown: String = text.chars().take(60).collect();
        return Err(format!("{what} {shown:?} contains the control character {bad:?}; write it on one line"));
    }
    Ok(())
}

/// Checks a commit SHA: 7 to 64 hex digits.
pub fn check_commit(commit: &str) -> Result<(), String> {
    if (7..=64).contains(&commit.len()) && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("commit {commit:?} is not a SHA (7 to 64 hex digits)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_names() {
        for name in ["dev", "prd-eu.1", "v1.2.3", "1.0.0+build.5", "shop_api"] {
            assert_eq!(check("name", name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_path_tricks_and_markup() {
        for name in ["", "../etc", "a/b", "a\nb", "-rf", ".hidden", "x|y", "é"] {
            assert!(check("name", name).is_err(), "{name:?} accepted");
        }
    }

    #[test]
    fn labels_are_one_bounded_line() {
        assert_eq!(check_label("incident", "INC-42: checkout down"), Ok(()));
        for bad in ["", "a\nb", "::error::x\r", &"x".repeat(1025)] {
            assert!(check_label("incident", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn commits_are_hex() {
        assert!(check_commit("abc1234").is_ok());
        assert!(check_commit("xyz1234").is_err());
        assert!(check_commit("abc").is_err());
    }
}

use super::*;

const LCOV: &str = include_str!("../../../testdata/lcov.info");
const COVERAGE_PY: &str = include_str!("../../../testdata/coverage-py.xml");
const COBERTURA_JAVA: &str = include_str!("../../../testdata/cobertura-java.xml");

#[test]
fn lcov_merges_records_of_one_file_and_counts_summaries_without_da() {
    let c = parse(LCOV, None).expect("parses");
    assert_eq!(c.format, Format::Lcov);
    // cart.rs 10/10 (line 19 hit by the second record), checkout.rs 12/20,
    // pricing.rs 8/8, generated.rs 5/5 from LF/LH.
    assert_eq!(c.lines, Some((43, 35)));
    let cart = c.files.iter().find(|f| f.path.ends_with("src/cart.rs")).expect("cart");
    assert_eq!((cart.valid, cart.covered), (10, 10));
    assert!(judge(&c, 0.8).passed);
    assert_eq!(judge(&c, 0.8).detail, "line coverage 81.3% (35 of 43 lines, lcov), at least 80.0% required");
}

#[test]
fn lcov_below_the_minimum_names_the_files_with_most_uncovered_lines() {
    let c = parse(LCOV, None).expect("parses");
    let judgment = judge(&c, 0.9);
    assert!(!judgment.passed);
    assert_eq!(
        judgment.detail,
        "line coverage 81.3% (35 of 43 lines, lcov) is below the required 90.0%; 4 more lines need to run; \
         most uncovered: /home/runner/work/shop/shop/src/checkout.rs (8 of 20 uncovered)"
    );
}

#[test]
fn coverage_py_totals_come_from_the_root() {
    let c = parse(COVERAGE_PY, None).expect("parses");
    assert_eq!(c.format, Format::Cobertura);
    assert_eq!(c.lines, Some((50, 33)));
    let judgment = judge(&c, 0.8);
    assert!(!judgment.passed);
    assert_eq!(
        judgment.detail,
        "line coverage 66.0% (33 of 50 lines, Cobertura) is below the required 80.0%; 7 more lines need to run; \
         most uncovered: shop/checkout.py (13 of 24 uncovered), shop/cart.py (4 of 24 uncovered)"
    );
}

#[test]
fn classic_cobertura_counts_class_lines_once_not_method_lines_again() {
    let c = parse(COBERTURA_JAVA, None).expect("parses");
    // No lines-valid on the root: the <line>s of the classes, merged per
    // file (Cart and its inner class Cart$Line share Cart.java).
    assert_eq!(c.lines, Some((40, 30)));
    let cart = c.files.iter().find(|f| f.path == "com/shop/Cart.java").expect("cart");
    assert_eq!((cart.valid, cart.covered), (25, 15));
    assert!(judge(&c, 0.75).passed);
    assert!(!judge(&c, 0.76).passed);
}

#[test]
fn a_rate_only_report_is_judged_by_its_rate() {
    let c = parse(r#"<coverage line-rate="0.912" branch-rate="0" version="1"><packages/></coverage>"#, None)
        .expect("parses");
    assert_eq!(c.lines, None);
    assert_eq!(judge(&c, 0.9).detail, "line coverage 91.2% (Cobertura line-rate), at least 90.0% required");
}

#[test]
fn percentages_round_down_so_a_miss_never_shows_as_the_minimum() {
    assert_eq!(percent(0.79999), "79.9%");
    assert_eq!(percent(0.8), "80.0%");
    assert_eq!(percent(1.0), "100.0%");
}

#[test]
fn empty_reports_block_and_say_so() {
    for (text, format) in [
        ("", "lcov"),
        ("TN:\nend_of_record\n", "lcov"),
        ("<coverage lines-valid=\"0\" lines-covered=\"0\"/>", "Cobertura"),
    ] {
        let c = parse(text, None).expect("parses");
        let judgment = judge(&c, 0.5);
        assert!(!judgment.passed, "{text:?}");
        assert!(
            judgment.detail.starts_with(&format!("the {format} report is empty (no lines)")),
            "{}",
            judgment.detail
        );
    }
}

#[test]
fn malformed_reports_are_refused_with_a_line_number() {
    let err = parse("SF:a.rs\nDA:x,1\nend_of_record\n", None).expect_err("bad DA");
    assert_eq!(err, "line 2: \"DA:x,1\" is not DA:<line>,<hits> inside an SF record");
    let err = parse("this is not coverage\n", None).expect_err("prose");
    assert!(err.starts_with("line 1:"), "{err}");
    let err = parse("<coverage line-rate=\"0.5\">\n<packages>\n</coverage>", None).expect_err("mismatched tags");
    assert!(err.starts_with("not valid XML at line 3"), "{err}");
    let err = parse("<report><counter/></report>", None).expect_err("JaCoCo is not Cobertura");
    assert!(err.contains("no <coverage> element"), "{err}");
    let err = parse(
        "<coverage>\n<packages><package><classes><class filename=\"a\"><lines>\n<line number=\"1\" hits=\"many\"/>",
        None,
    )
    .expect_err("bad hits");
    assert!(err.contains("hits=\"many\" is not a number"), "{err}");
}

#[test]
fn the_format_can_be_forced() {
    assert!(parse(COVERAGE_PY, Some(Format::Lcov)).is_err());
    assert_eq!(parse(LCOV, Some(Format::Lcov)).expect("parses").lines, Some((43, 35)));
}

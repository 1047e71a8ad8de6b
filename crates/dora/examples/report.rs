//! Stand-in for the `dora-report` binary, for benchmarks and trying things:
//! `report LEDGER [--env ENV]... [--app APP]... [--since TS] [--until TS] [--out DIR]`.
//!
//! Prints the text report (first 60 lines) on stdout, the time taken on
//! stderr, and with `--out` writes report.json, report.md and trend.svg.

use std::path::PathBuf;
use std::time::Instant;

use sluice_dora::{Filter, Options, report_file, to_json, to_markdown, to_svg, to_terminal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut ledger = None;
    let mut out: Option<PathBuf> = None;
    let mut filter = Filter::default();
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--env" => filter.environments.push(value()?),
            "--app" => filter.apps.push(value()?),
            "--since" => filter.since = Some(value()?.parse()?),
            "--until" => filter.until = Some(value()?.parse()?),
            "--out" => out = Some(value()?.into()),
            _ if ledger.is_none() => ledger = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a}").into()),
        }
    }
    let Some(ledger) = ledger else {
        eprintln!("usage: report LEDGER [--env ENV]... [--app APP]... [--since TS] [--until TS] [--out DIR]");
        std::process::exit(2);
    };
    let opts = Options { filter, ..Options::default() };

    let t0 = Instant::now();
    let (report, torn) = report_file(&ledger, &opts)?;
    if let Some(torn) = torn {
        eprintln!("warning: {torn}");
    }
    let t_compute = t0.elapsed();
    let t1 = Instant::now();
    let (json, md, svg, text) = (to_json(&report), to_markdown(&report), to_svg(&report), to_terminal(&report));
    let t_render = t1.elapsed();
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("report.json"), &json)?;
        std::fs::write(dir.join("report.md"), &md)?;
        std::fs::write(dir.join("trend.svg"), &svg)?;
    }
    for l in text.lines().take(60) {
        println!("{l}");
    }
    eprintln!(
        "read+compute {:.3}s, render {:.3}s; {} groups; json {} B, markdown {} B, svg {} B",
        t_compute.as_secs_f64(),
        t_render.as_secs_f64(),
        report.groups.len(),
        json.len(),
        md.len(),
        svg.len()
    );
    Ok(())
}

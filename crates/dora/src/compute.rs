//! The entry point from ledger entries to a [`Report`]: the options of a
//! report, and [`compute`] over entries already in memory (or streamed).
//! The definitions are in [`crate::definitions`]; reading a ledger file in
//! parallel is [`crate::report_file`]'s.

use std::borrow::Borrow;
use std::time::Duration;

use sluice_core::ledger::LedgerEntry;

pub(crate) use crate::accumulate::{Accumulator, FastView};
use crate::read::Filter;
use crate::report::Report;

/// How to compute a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Apps, environments (empty = all) and the window. The window selects by
    /// `finished_at`; entries outside it still count as context (an earlier
    /// deployment's commits, a later rollback of a deployment in the window).
    pub filter: Filter,
    /// A hotfix attempt that starts within this time after a promoted
    /// deployment finished marks that deployment as failed. Default 24 hours.
    pub hotfix_window: Duration,
    /// Rows of deployment history kept per environment. Default 20.
    pub history_limit: usize,
    /// Environments in promotion order (dev, tst, prd): the report lists them
    /// so; environments not named here follow, by name.
    pub environment_order: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            filter: Filter::default(),
            hotfix_window: Duration::from_secs(24 * 3600),
            history_limit: 20,
            environment_order: Vec::new(),
        }
    }
}

/// Computes the report from entries in any order.
///
/// `entries` may be a `Vec<LedgerEntry>`, a slice iterator, or a stream that
/// was already checked for errors.
pub fn compute<I>(entries: I, opts: &Options) -> Report
where
    I: IntoIterator,
    I::Item: Borrow<LedgerEntry>,
{
    let mut acc = Accumulator::new(opts);
    for (seq, entry) in entries.into_iter().enumerate() {
        acc.push(entry.borrow(), seq as u64);
    }
    acc.finish()
}

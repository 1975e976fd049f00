//! [`Case`]: one row of the table.

use crate::context::{Context, Failed};
use crate::expect::{Expect, Observed};

/// What a case's run function returns: the observation of the trap its
/// [`Expect`] describes, or why the case could not be set up.
pub type Outcome = Result<Observed, Failed>;

/// One conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// The stable ID, `MSG-<AREA>-<NNN>` (see README.md): never reused,
    /// never renumbered.
    pub id: &'static str,
    /// The rule, in one line.
    pub rule: &'static str,
    /// The ABI.md section the rule comes from, e.g. `4.1`.
    pub section: &'static str,
    /// The decisions of ABI.md §9 (`D1`..`D12`) the case checks.
    pub decisions: &'static [&'static str],
    /// The registers (and buffer bytes) of the observed trap.
    pub expect: Expect,
    /// Sets up the case, performs the trap and returns what it saw; other
    /// checks along the way are recorded with [`Context::check`].
    pub run: fn(&mut Context) -> Outcome,
}

impl core::fmt::Debug for Case {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .field("rule", &self.rule)
            .field("section", &self.section)
            .field("decisions", &self.decisions)
            .finish_non_exhaustive()
    }
}

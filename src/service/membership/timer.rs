//! The moments at which a contact's time-relative conditions flip, loaded a window ahead.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use crate::domain::{ContactId, WorkspaceId};

/// Due moments, in time order, for the window up to `loaded_through`.
#[derive(Default)]
pub(super) struct Timer {
    due: BTreeMap<DateTime<Utc>, HashSet<(WorkspaceId, ContactId)>>,
    /// Every flip up to here is scheduled (later ones are found by the next window's scan).
    pub(super) loaded_through: Option<DateTime<Utc>>,
}

impl Timer {
    /// Schedules a flip of `contact` at `at`, if it falls inside the loaded window.
    pub(super) fn schedule(
        &mut self,
        at: DateTime<Utc>,
        workspace: &WorkspaceId,
        contact: ContactId,
    ) {
        if self.loaded_through.is_some_and(|through| at <= through) {
            self.due
                .entry(at)
                .or_default()
                .insert((workspace.clone(), contact));
        }
    }

    /// Removes and returns every flip at or before `now`, earliest first.
    pub(super) fn take_due(
        &mut self,
        now: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, WorkspaceId, ContactId)> {
        let later = match now.checked_add_signed(chrono::TimeDelta::nanoseconds(1)) {
            Some(after) => self.due.split_off(&after),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut self.due, later);
        due.into_iter()
            .flat_map(|(at, contacts)| {
                let mut contacts: Vec<_> = contacts.into_iter().collect();
                contacts.sort();
                contacts
                    .into_iter()
                    .map(move |(workspace, contact)| (at, workspace, contact))
            })
            .collect()
    }

    /// The earliest scheduled flip.
    pub(super) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.due.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_come_due_in_time_order_and_only_inside_the_window() {
        let base: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let second = |s: i64| base + chrono::TimeDelta::seconds(s);
        let workspace = WorkspaceId::default();
        let (a, b, c) = (
            ContactId::generate(),
            ContactId::generate(),
            ContactId::generate(),
        );
        let mut timer = Timer {
            loaded_through: Some(second(60)),
            ..Timer::default()
        };
        timer.schedule(second(30), &workspace, a);
        timer.schedule(second(10), &workspace, b);
        timer.schedule(second(90), &workspace, c);
        assert_eq!(timer.next_due(), Some(second(10)));
        assert!(timer.take_due(second(9)).is_empty());
        let due = timer.take_due(second(30));
        assert_eq!(
            due,
            vec![
                (second(10), workspace.clone(), b),
                (second(30), workspace, a)
            ]
        );
        assert_eq!(
            timer.next_due(),
            None,
            "the flip beyond the window was not kept"
        );
    }
}

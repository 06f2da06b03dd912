//! What a segment may refer to, as one caller sees it: the workspace's attributes and saved
//! segments, with the fields outside the caller's policy (and, without `pii:read`, the
//! sensitive attributes) refused.

use qwry_segment::{Catalog, Field, FieldType};

use super::compiled::{CompiledSegment, CompiledWorkspace};
use crate::domain::{Caller, FieldPolicy, Scope};

/// A compiled workspace seen through one caller's eyes.
pub struct CallerCatalog<'a> {
    workspace: &'a CompiledWorkspace,
    policy: &'a FieldPolicy,
    reads_sensitive: bool,
}

impl<'a> CallerCatalog<'a> {
    /// `workspace` as `caller` sees it.
    pub fn new(workspace: &'a CompiledWorkspace, caller: &'a Caller) -> Self {
        Self {
            workspace,
            policy: &caller.policy,
            reads_sensitive: caller.allows(Scope::PiiRead),
        }
    }

    /// The compiled workspace.
    pub fn workspace(&self) -> &'a CompiledWorkspace {
        self.workspace
    }

    /// The compiled saved segment `slug`.
    pub fn segment(&self, slug: &str) -> Option<&'a CompiledSegment> {
        self.workspace.segments.get(slug)
    }

    /// Whether the caller may not read `field`: outside its policy, or sensitive without
    /// `pii:read`. Such fields cannot be tested, and their values are masked in segment text.
    pub fn hides(&self, field: &Field) -> bool {
        let outside_policy = !self.policy.allows_field(field);
        outside_policy || (self.workspace.is_sensitive(field) && !self.reads_sensitive)
    }
}

impl Catalog for CallerCatalog<'_> {
    fn attribute_type(&self, name: &str) -> Option<FieldType> {
        self.workspace.attributes.get(name).copied()
    }

    fn attribute_names(&self) -> Vec<String> {
        self.workspace.attributes.keys().cloned().collect()
    }

    fn segment_exists(&self, slug: &str) -> bool {
        self.workspace.segments.contains_key(slug)
    }

    fn purpose_exists(&self, name: &str) -> bool {
        self.workspace.state.purpose(name).is_some()
    }

    fn purpose_names(&self) -> Vec<String> {
        self.workspace.purpose_names()
    }

    fn field_approved(&self, field: &Field) -> bool {
        self.policy.allows_field(field)
    }

    fn attribute_sensitive(&self, name: &str) -> bool {
        self.workspace.sensitive.contains(name)
    }

    fn reads_sensitive(&self) -> bool {
        self.reads_sensitive
    }
}

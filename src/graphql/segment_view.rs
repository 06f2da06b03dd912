//! A saved segment as the API shows it. Its fields resolve in the segments root (`members`
//! pages contacts), so that this type can be named by the contact view without a cycle.

use crate::domain::SavedSegment;

/// A saved segment.
#[derive(Clone)]
pub struct SegmentView(pub SavedSegment);

impl SegmentView {
    /// Where it sits in a list of segments (by slug), as a cursor holds it.
    pub fn page_key(&self) -> String {
        self.0.slug.as_str().to_owned()
    }
}

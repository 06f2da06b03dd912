//! A saved segment as the API shows it. Its fields resolve in the segments root (`members`
//! pages contacts), so that this type can be named by the contact view without a cycle.

use crate::domain::SavedSegment;

/// A saved segment.
pub struct SegmentView(pub SavedSegment);

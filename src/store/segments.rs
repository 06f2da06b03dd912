//! Saved segments.

use chrono::{DateTime, Utc};
use surrealdb::types::{Array, RecordId, RecordIdKey, SurrealValue};

use super::{Store, StoreError};
use crate::domain::{SavedSegment, Slug, Text, WorkspaceId};

const SEGMENT_TABLE: &str = "segment";

fn segment_key(workspace: &WorkspaceId, slug: &Slug) -> RecordId {
    let parts = vec![workspace.as_str().to_owned(), slug.as_str().to_owned()];
    RecordId::new(SEGMENT_TABLE, RecordIdKey::Array(Array::from(parts)))
}

#[derive(Debug, SurrealValue)]
struct SegmentRecord {
    id: RecordId,
    workspace: String,
    slug: String,
    name: String,
    description: Option<String>,
    text: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl SegmentRecord {
    fn from_segment(segment: &SavedSegment) -> Self {
        Self {
            id: segment_key(&segment.workspace, &segment.slug),
            workspace: segment.workspace.as_str().to_owned(),
            slug: segment.slug.as_str().to_owned(),
            name: segment.name.as_str().to_owned(),
            description: segment.description.as_ref().map(|d| d.as_str().to_owned()),
            text: segment.text.clone(),
            created_at: segment.created_at,
            updated_at: segment.updated_at,
        }
    }

    fn into_segment(self) -> SavedSegment {
        SavedSegment {
            workspace: WorkspaceId::from_trusted(self.workspace),
            slug: Slug::from_trusted(self.slug),
            name: Text::from_trusted(self.name),
            description: self.description.map(Text::from_trusted),
            text: self.text,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Store {
    /// The saved segment `slug`.
    pub async fn segment(
        &self,
        workspace: &WorkspaceId,
        slug: &Slug,
    ) -> Result<Option<SavedSegment>, StoreError> {
        let record: Option<SegmentRecord> = self
            .db
            .select(segment_key(workspace, slug))
            .await
            .map_err(StoreError::from_surreal)?;
        Ok(record.map(SegmentRecord::into_segment))
    }

    /// Every saved segment of the workspace, by slug.
    pub async fn segments(&self, workspace: &WorkspaceId) -> Result<Vec<SavedSegment>, StoreError> {
        let records: Vec<SegmentRecord> = self
            .workspace_records(SEGMENT_TABLE, workspace, "slug")
            .await?;
        Ok(records
            .into_iter()
            .map(SegmentRecord::into_segment)
            .collect())
    }

    /// Creates or replaces a saved segment.
    pub async fn put_segment(&self, segment: &SavedSegment) -> Result<(), StoreError> {
        let record = SegmentRecord::from_segment(segment);
        self.write_record("UPSERT", record.id.clone(), record).await
    }

    /// Deletes a saved segment; returns whether it existed.
    pub async fn delete_segment(
        &self,
        workspace: &WorkspaceId,
        slug: &Slug,
    ) -> Result<bool, StoreError> {
        let mut response = self
            .db
            .query("DELETE $id RETURN BEFORE")
            .bind(("id", segment_key(workspace, slug)))
            .await
            .map_err(StoreError::from_surreal)?;
        let deleted: Vec<SegmentRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(!deleted.is_empty())
    }
}

//! Saved segments.

use chrono::{DateTime, Utc};
use surrealdb::types::{Array, RecordId, RecordIdKey, SurrealValue};

use super::catalog_versions::CatalogWrite;
use super::{Store, StoreError};
use crate::domain::{SavedSegment, Sealer, Slug, Text, WorkspaceId};

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
    /// Whether `text` is sealed (it names sensitive values).
    sealed_text: Option<bool>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Where a saved segment's sealed text belongs, for the sealer's associated data.
fn text_place(slug: &str) -> String {
    format!("segment/{slug}")
}

impl SegmentRecord {
    fn from_segment(
        segment: &SavedSegment,
        sealer: Option<&dyn Sealer>,
    ) -> Result<Self, StoreError> {
        let text = if segment.names_sensitive_values {
            let sealer = sealer.ok_or(StoreError::NoEncryptionKey)?;
            sealer
                .seal_text(
                    &segment.workspace,
                    &text_place(segment.slug.as_str()),
                    &segment.text,
                )
                .map_err(StoreError::Seal)?
        } else {
            segment.text.clone()
        };
        Ok(Self {
            id: segment_key(&segment.workspace, &segment.slug),
            workspace: segment.workspace.as_str().to_owned(),
            slug: segment.slug.as_str().to_owned(),
            name: segment.name.as_str().to_owned(),
            description: segment.description.as_ref().map(|d| d.as_str().to_owned()),
            text,
            sealed_text: Some(segment.names_sensitive_values),
            created_at: segment.created_at,
            updated_at: segment.updated_at,
        })
    }

    fn into_segment(self, sealer: Option<&dyn Sealer>) -> Result<SavedSegment, StoreError> {
        let workspace = WorkspaceId::from_trusted(self.workspace);
        let sealed = self.sealed_text.unwrap_or(false);
        let text = if sealed {
            let sealer = sealer.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "segment `{}` is sealed and no key is loaded",
                    self.slug
                ))
            })?;
            sealer
                .open_text(&workspace, &text_place(&self.slug), &self.text)
                .map_err(|error| StoreError::Corrupt(format!("segment `{}`: {error}", self.slug)))?
        } else {
            self.text
        };
        Ok(SavedSegment {
            workspace,
            slug: Slug::from_trusted(self.slug),
            name: Text::from_trusted(self.name),
            description: self.description.map(Text::from_trusted),
            text,
            names_sensitive_values: sealed,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
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
        record
            .map(|record| record.into_segment(self.sealer().map(|s| s.as_ref())))
            .transpose()
    }

    /// Every saved segment of the workspace, by slug.
    pub async fn segments(&self, workspace: &WorkspaceId) -> Result<Vec<SavedSegment>, StoreError> {
        let records: Vec<SegmentRecord> = self
            .workspace_records(SEGMENT_TABLE, workspace, "slug")
            .await?;
        let sealer = self.sealer().map(|s| s.as_ref());
        records
            .into_iter()
            .map(|record| record.into_segment(sealer))
            .collect()
    }

    /// Creates or replaces a saved segment.
    pub async fn put_segment(&self, segment: &SavedSegment) -> Result<(), StoreError> {
        let record = SegmentRecord::from_segment(segment, self.sealer().map(|s| s.as_ref()))?;
        self.write_catalog_record(&segment.workspace, "UPSERT", record.id.clone(), record)
            .await
    }

    /// Deletes a saved segment; returns whether it existed.
    pub async fn delete_segment(
        &self,
        workspace: &WorkspaceId,
        slug: &Slug,
    ) -> Result<bool, StoreError> {
        let key = segment_key(workspace, slug);
        let existing: Option<SegmentRecord> = self
            .db
            .select(key.clone())
            .await
            .map_err(StoreError::from_surreal)?;
        if existing.is_none() {
            return Ok(false);
        }
        let mut write = CatalogWrite::new(workspace);
        let record = write.bind(key);
        write.statement(format!("DELETE {record} RETURN NONE"));
        self.commit_catalog(write).await?;
        Ok(true)
    }
}

//! Data subject requests: everything held about one contact, in one JSON document (fields with
//! sensitive values opened, identities, aliases, merge history with its snapshots, segments,
//! conversations and events).

use chrono::Utc;
use serde_json::{Value as Json, json};

use super::export::contact_json;
use super::sensitive::Revealer;
use crate::domain::{
    Caller, Contact, ContactId, Conversation, Event, Identity, MergeRecord, WorkspaceId,
};
use crate::service::activity::ActivityService;
use crate::service::contacts::ContactService;
use crate::service::error::ServiceError;
use crate::service::merges::MergeService;
use crate::service::segments::SegmentService;

/// Builds the data-subject export of a contact.
#[derive(Clone)]
pub struct SubjectService {
    contacts: ContactService,
    merges: MergeService,
    segments: SegmentService,
    activity: ActivityService,
    revealer: Revealer,
}

impl SubjectService {
    /// Exports over the contact, merge and segment use cases; `revealer` opens sensitive values.
    pub fn new(
        contacts: ContactService,
        merges: MergeService,
        segments: SegmentService,
        activity: ActivityService,
        revealer: Revealer,
    ) -> Self {
        Self {
            contacts,
            merges,
            segments,
            activity,
            revealer,
        }
    }

    /// Everything held about contact `id` (or the contact it was merged into); NOT_FOUND if
    /// neither exists in `workspace`.
    pub async fn export(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
    ) -> Result<Json, ServiceError> {
        let contact = self.contacts.get(workspace, id).await?;
        let identities = self.contacts.identities(workspace, &contact.id).await?;
        let merged_from = self.contacts.merged_from(workspace, &contact.id).await?;
        let merges = self.merges.history(workspace, &contact.id).await?;
        let operator = Caller::operator(workspace.clone(), "subject");
        let segments = self.segments.segments_of(&contact, &operator);
        let conversations = self
            .activity
            .all_conversations(workspace, &contact.id)
            .await?;
        let events = self.activity.all_events(workspace, &contact.id).await?;
        Ok(json!({
            "exportedAt": Utc::now().to_rfc3339(),
            "contact": self.contact(&contact),
            "createdBy": contact.written_by.as_ref().map(|w| w.created_by.as_str()),
            "updatedBy": contact.written_by.as_ref().map(|w| w.updated_by.as_str()),
            "identities": identities.iter().map(identity_json).collect::<Vec<_>>(),
            "mergedFrom": merged_from.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "merges": merges.iter().map(|merge| self.merge_json(merge)).collect::<Vec<_>>(),
            "segments": segments.iter().map(|s| s.slug.as_str().to_owned()).collect::<Vec<_>>(),
            "conversations": conversations.iter().map(conversation_json).collect::<Vec<_>>(),
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
        }))
    }

    fn contact(&self, contact: &Contact) -> Json {
        contact_json(&self.revealer.contact(contact.clone()))
    }

    fn merge_json(&self, merge: &MergeRecord) -> Json {
        json!({
            "id": merge.id.to_string(),
            "survivorId": merge.survivor.to_string(),
            "absorbedId": merge.absorbed.to_string(),
            "actor": merge.actor,
            "reason": merge.reason,
            "mergedAt": merge.merged_at.to_rfc3339(),
            "survivorBefore": self.contact(&merge.survivor_before),
            "absorbedBefore": self.contact(&merge.absorbed_before),
            "survivorAfter": self.contact(&merge.survivor_after),
            "movedIdentities": merge.moved_identities.iter().map(identity_json).collect::<Vec<_>>(),
            "undoneAt": merge.undone_at.map(|at| at.to_rfc3339()),
            "undoneBy": merge.undone_by,
        })
    }
}

fn identity_json(identity: &Identity) -> Json {
    json!({
        "kind": identity.key.kind.as_str(),
        "value": identity.key.value,
        "provenance": identity.provenance.as_str(),
        "createdAt": identity.created_at.to_rfc3339(),
    })
}

fn conversation_json(conversation: &Conversation) -> Json {
    json!({
        "id": conversation.id.as_str(),
        "channel": conversation.channel.as_ref().map(|t| t.as_str()),
        "startedAt": conversation.started_at.to_rfc3339(),
        "endedAt": conversation.ended_at.map(|at| at.to_rfc3339()),
        "summary": conversation.summary,
        "outcome": conversation.outcome.as_ref().map(|t| t.as_str()),
        "recordedAt": conversation.recorded_at.to_rfc3339(),
    })
}

fn event_json(event: &Event) -> Json {
    json!({
        "id": event.id.as_str(),
        "name": event.name.as_str(),
        "at": event.at.to_rfc3339(),
        "properties": event.properties,
        "recordedAt": event.recorded_at.to_rfc3339(),
    })
}

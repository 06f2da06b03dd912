//! The import planner, a pure function: rows of a batch, read once against the store (who
//! holds their identities, and those contacts), become the writes to commit, split into parts
//! over disjoint contacts and identities, with the outcome of every row.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::report::{BatchOutcome, ImportOptions, MatchBy, RowError};
use crate::domain::{
    Contact, ContactFields, ContactId, DomainError, FieldChange, Identity, IdentityKey,
    IdentityKind, ParsedRow, Provenance, WorkspaceId, changes_any, state_consents,
};
use crate::service::claims::{Claim, contact_point_claims};
use crate::service::consents::origin;
use crate::service::suppression::{patch_keys, suppressed};
use crate::store::{HeldIdentity, WriteBatch};

/// The fewest written rows worth a transaction of their own when a batch is split.
const MIN_PART_ROWS: usize = 100;

/// What a batch is planned against: who holds the rows' identities, and those contacts.
#[derive(Debug, Default)]
pub(super) struct Reads {
    /// Holders of the identities the rows name.
    pub holders: HashMap<IdentityKey, HeldIdentity>,
    /// The contacts holding them.
    pub contacts: HashMap<ContactId, Contact>,
    /// The rows' identifiers that belong to erased people (their rows fail with SUPPRESSED).
    pub suppressed: HashSet<IdentityKey>,
}

/// The identifiers a row names: its external id, and the email and phone it sets.
pub(super) fn row_keys(row: &ParsedRow) -> Vec<IdentityKey> {
    let mut keys = patch_keys(&row.patch);
    if let Some(external_id) = &row.external_id {
        keys.push(IdentityKey {
            kind: IdentityKind::ExternalId,
            value: external_id.as_str().to_owned(),
        });
    }
    keys
}

/// Plans `rows` into `workspace` against `reads`, in at most `parallelism` parts.
pub(super) fn plan(
    workspace: &WorkspaceId,
    rows: &[ParsedRow],
    reads: &Reads,
    options: ImportOptions,
    blocked: &[String],
    parallelism: usize,
    now: DateTime<Utc>,
) -> Plan {
    let part_count = (rows.len() / MIN_PART_ROWS).clamp(1, parallelism.max(1));
    let mut parts: Vec<PartBuilder> = (0..part_count)
        .map(|_| PartBuilder::new(workspace))
        .collect();
    let mut written = 0usize;
    let mut outcome = BatchOutcome::default();
    let mut deferred = Vec::new();
    let mut touched: HashSet<ContactId> = HashSet::new();
    for (index, row) in rows.iter().enumerate() {
        if let Some(key) = row_keys(row)
            .into_iter()
            .find(|key| reads.suppressed.contains(key))
        {
            outcome
                .failures
                .push(RowError::from_service(row.line, suppressed(key.kind)));
            continue;
        }
        let target = find_target(row, options.match_by, &reads.holders, &reads.contacts);
        let existing = match target {
            Ok(existing) => existing,
            Err(conflict) => {
                outcome.failures.push(conflict);
                continue;
            }
        };
        if let Some(contact) = existing
            && !touched.insert(contact.id)
        {
            deferred.push(index);
            continue;
        }
        // The row's external id goes onto a contact that has none (a new one, or one matched
        // by email or phone).
        let takes_external_id = row.external_id.is_some()
            && existing.is_none_or(|contact| contact.fields.external_id.is_none());
        // A row that re-sends what is stored (a nightly sync's usual row) is decided without
        // building the contact it would give. Every row past this changes its contact: it
        // creates one, gives it an external id, or carries a patch that changes it.
        if let Some(contact) = existing
            && !takes_external_id
            && !row.patch.changes(&contact.fields)
            && !changes_any(&contact.consents, &row.consents, now)
        {
            outcome.unchanged += 1;
            continue;
        }
        let before = existing.map(|contact| &contact.fields);
        let mut fields = row
            .patch
            .apply_to(before.unwrap_or(&ContactFields::default()));
        if takes_external_id {
            fields.external_id = row.external_id.clone();
        }
        let claims = match contact_point_claims(&fields, before, Provenance::Imported, blocked) {
            Ok(claims) => claims,
            Err(error) => {
                outcome
                    .failures
                    .push(RowError::from_service(row.line, error.into()));
                continue;
            }
        };
        let mut contact = match existing {
            Some(existing) => Contact {
                fields,
                updated_at: now.max(existing.updated_at),
                revision: existing.revision + 1,
                ..existing.clone()
            },
            None => Contact::new(workspace.clone(), fields, now),
        };
        let staged = stage_row_claims(&contact, claims, &reads.holders, now);
        if let Some(taken) = staged.external_id_taken {
            outcome.failures.push(RowError::conflict(
                row.line,
                format!("external id `{taken}` already belongs to another contact"),
            ));
            continue;
        }
        // An email or phone another contact holds is not taken: the field keeps its value,
        // so it always agrees with the identities the contact holds.
        let taken: Vec<RowError> = staged
            .taken
            .iter()
            .map(|key| {
                RowError::conflict(
                    row.line,
                    format!(
                        "{} `{}` already identifies another contact; the row was imported without it",
                        key.kind.as_str(),
                        key.value
                    ),
                )
            })
            .collect();
        for key in &staged.taken {
            match key.kind {
                IdentityKind::Email => {
                    contact.fields.email = before.and_then(|b| b.email.clone());
                }
                IdentityKind::Phone => {
                    contact.fields.phone = before.and_then(|b| b.phone.clone());
                }
                IdentityKind::AnonymousId | IdentityKind::ExternalId => {}
            }
        }
        contact.record_sources(
            before.unwrap_or(&ContactFields::default()),
            Provenance::Imported,
        );
        let consented = !state_consents(
            &mut contact.consents,
            &row.consents,
            &origin(now, Provenance::Imported, None),
            contact.revision,
        )
        .is_empty();
        if before == Some(&contact.fields) && !consented {
            outcome.unchanged += 1;
            outcome.conflicts.extend(taken);
            continue;
        }
        let part = &mut parts[written % part_count];
        written += 1;
        part.rows.push(index);
        match existing {
            Some(existing) => {
                part.batch.replace_contact(&mut contact, existing.revision);
                part.outcome.updated += 1;
            }
            None => part.outcome.created += 1,
        }
        part.identities.extend(
            staged
                .create
                .into_iter()
                .map(|identity| (contact.id, identity)),
        );
        part.outcome.conflicts.extend(taken);
        if existing.is_none() {
            part.created.push(contact);
        }
    }
    Plan {
        settled: outcome,
        parts: parts
            .into_iter()
            .filter(|part| !part.rows.is_empty())
            .map(PartBuilder::finish)
            .collect(),
        deferred,
    }
}

/// The writes planned for rows against one read of the store.
pub(super) struct Plan {
    /// Outcomes of the rows that write nothing (unchanged or failed).
    pub settled: BatchOutcome,
    /// The writes, split into parts over disjoint contacts and identities.
    pub parts: Vec<PlannedPart>,
    /// Rows (by index) that reach a contact another row already changes; they wait for the
    /// next batch.
    pub deferred: Vec<usize>,
}

/// One transaction's share of a plan.
pub(super) struct PlannedPart {
    pub batch: WriteBatch,
    /// What the part does once committed.
    pub outcome: BatchOutcome,
    /// Its rows (by index), planned again if the commit loses a race.
    pub rows: Vec<usize>,
}

/// A part being planned: contacts and identities are created with one statement each.
struct PartBuilder {
    batch: WriteBatch,
    created: Vec<Contact>,
    identities: Vec<(ContactId, Identity)>,
    outcome: BatchOutcome,
    rows: Vec<usize>,
}

impl PartBuilder {
    fn new(workspace: &WorkspaceId) -> Self {
        Self {
            batch: WriteBatch::new(workspace),
            created: Vec::new(),
            identities: Vec::new(),
            outcome: BatchOutcome::default(),
            rows: Vec::new(),
        }
    }

    fn finish(mut self) -> PlannedPart {
        let created: HashSet<ContactId> = self.created.iter().map(|c| c.id).collect();
        let (of_created, of_existing): (Vec<_>, Vec<_>) = self
            .identities
            .into_iter()
            .partition(|(owner, _)| created.contains(owner));
        self.batch.create_contacts(&mut self.created, &of_created);
        self.batch.create_identities(&of_existing);
        PlannedPart {
            batch: self.batch,
            outcome: self.outcome,
            rows: self.rows,
        }
    }
}

/// The identities a row names: its external id, email and phone.
pub(super) fn row_identities(row: &ParsedRow) -> Vec<IdentityKey> {
    let mut keys = Vec::new();
    if let Some(external_id) = &row.external_id {
        keys.push(IdentityKey::from_trusted(
            IdentityKind::ExternalId,
            external_id.as_str().to_owned(),
        ));
    }
    if let FieldChange::Set(email) = &row.patch.email {
        keys.push(IdentityKey::from_trusted(
            IdentityKind::Email,
            email.as_str().to_owned(),
        ));
    }
    if let FieldChange::Set(phone) = &row.patch.phone {
        keys.push(IdentityKey::from_trusted(
            IdentityKind::Phone,
            phone.as_str().to_owned(),
        ));
    }
    keys
}

/// The identities that find a row's target contact: its external id, and the identity it is
/// matched by.
pub(super) fn target_keys(row: &ParsedRow, match_by: MatchBy) -> Vec<IdentityKey> {
    let mut keys = Vec::new();
    if let Some(external_id) = &row.external_id {
        keys.push(IdentityKey::from_trusted(
            IdentityKind::ExternalId,
            external_id.as_str().to_owned(),
        ));
    }
    keys.extend(match_key(row, match_by));
    keys
}

/// The row's other identities whose holders planning needs, once `reads` holds its
/// [`target_keys`] (`read`): all of them, except those its target contact already has as the
/// same field value. Those are unchanged, so the row never claims them: a re-import whose rows
/// change nothing reads no identity but the external id.
pub(super) fn claim_keys(
    row: &ParsedRow,
    match_by: MatchBy,
    reads: &Reads,
    read: &HashSet<IdentityKey>,
) -> Vec<IdentityKey> {
    let target = find_target(row, match_by, &reads.holders, &reads.contacts)
        .ok()
        .flatten();
    row_identities(row)
        .into_iter()
        .filter(|key| !read.contains(key))
        .filter(|key| target.is_none_or(|contact| !has_as_field(contact, key)))
        .collect()
}

/// Whether `key` is the value of `contact`'s field of its kind.
fn has_as_field(contact: &Contact, key: &IdentityKey) -> bool {
    let fields = &contact.fields;
    let value = match key.kind {
        IdentityKind::ExternalId => fields.external_id.as_ref().map(|id| id.as_str()),
        IdentityKind::Email => fields.email.as_ref().map(|email| email.as_str()),
        IdentityKind::Phone => fields.phone.as_ref().map(|phone| phone.as_str()),
        IdentityKind::AnonymousId => None,
    };
    value == Some(key.value.as_str())
}

/// The identity a row is matched by when it has no known external id.
fn match_key(row: &ParsedRow, match_by: MatchBy) -> Option<IdentityKey> {
    let kind = match match_by {
        MatchBy::ExternalId => return None,
        MatchBy::Email => IdentityKind::Email,
        MatchBy::Phone => IdentityKind::Phone,
    };
    row_identities(row).into_iter().find(|key| key.kind == kind)
}

/// The contact a row updates (`None`: it creates one), or why it cannot be imported.
fn find_target<'a>(
    row: &ParsedRow,
    match_by: MatchBy,
    holders: &HashMap<IdentityKey, HeldIdentity>,
    contacts: &'a HashMap<ContactId, Contact>,
) -> Result<Option<&'a Contact>, RowError> {
    let holder_of = |key: &IdentityKey| {
        holders
            .get(key)
            .and_then(|held| contacts.get(&held.contact))
    };
    if let Some(external_id) = &row.external_id {
        let key =
            IdentityKey::from_trusted(IdentityKind::ExternalId, external_id.as_str().to_owned());
        if let Some(contact) = holder_of(&key) {
            return Ok(Some(contact));
        }
    }
    let Some(key) = match_key(row, match_by) else {
        if row.external_id.is_none() {
            let needed = match match_by {
                MatchBy::ExternalId => "`externalId`",
                MatchBy::Email => "`externalId` or `email`",
                MatchBy::Phone => "`externalId` or `phone`",
            };
            return Err(RowError::from_service(
                row.line,
                DomainError::invalid("externalId", format!("the row has no {needed} to match by"))
                    .into(),
            ));
        }
        return Ok(None);
    };
    let Some(contact) = holder_of(&key) else {
        return Ok(None);
    };
    match (&row.external_id, &contact.fields.external_id) {
        (Some(mine), Some(theirs)) if mine != theirs => Err(RowError::conflict(
            row.line,
            format!(
                "{} `{}` belongs to the contact with external id `{theirs}`, not `{mine}`",
                key.kind.as_str(),
                key.value
            ),
        )),
        _ => Ok(Some(contact)),
    }
}

/// What a row's claims do.
struct StagedClaims {
    create: Vec<Identity>,
    taken: Vec<IdentityKey>,
    external_id_taken: Option<String>,
}

fn stage_row_claims(
    contact: &Contact,
    claims: Vec<Claim>,
    holders: &HashMap<IdentityKey, HeldIdentity>,
    now: DateTime<Utc>,
) -> StagedClaims {
    let mut staged = StagedClaims {
        create: Vec::new(),
        taken: Vec::new(),
        external_id_taken: None,
    };
    for claim in claims {
        match holders.get(&claim.key) {
            None => staged.create.push(Identity {
                key: claim.key,
                provenance: claim.provenance,
                created_at: now,
            }),
            Some(held) if held.contact == contact.id => {}
            Some(_) if claim.key.kind == IdentityKind::ExternalId => {
                staged.external_id_taken = Some(claim.key.value);
            }
            Some(_) => staged.taken.push(claim.key),
        }
    }
    staged
}

/// Splits rows into groups in which no two rows name the same identity, keeping their order,
/// so that each group can be planned against one read of the store.
pub(super) fn without_shared_identities(rows: Vec<ParsedRow>) -> Vec<Vec<ParsedRow>> {
    let mut groups: Vec<Vec<ParsedRow>> = Vec::new();
    let mut seen: HashSet<IdentityKey> = HashSet::new();
    let mut current = Vec::new();
    for row in rows {
        let keys = row_identities(&row);
        if keys.iter().any(|key| seen.contains(key)) {
            groups.push(std::mem::take(&mut current));
            seen.clear();
        }
        seen.extend(keys);
        current.push(row);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{
        AttributeDefinition, AttributeName, AttributeRegistry, AttributeType, Email, ExternalId,
        ImportRow, MergeRule,
    };
    use crate::service::import::report::ImportFormat;

    fn registry() -> AttributeRegistry {
        AttributeRegistry::new([AttributeDefinition {
            workspace: WorkspaceId::default(),
            name: AttributeName::parse("plan").unwrap(),
            value_type: AttributeType::String,
            description: None,
            merge_rule: MergeRule::Survivor,
            sensitive: false,
            created_at: Utc::now(),
        }])
    }

    fn row(line: u64, values: serde_json::Value) -> ParsedRow {
        ImportRow {
            line,
            values: values.as_object().unwrap().clone(),
            text_cells: false,
        }
        .parse(&registry())
        .unwrap()
    }

    fn options(match_by: MatchBy) -> ImportOptions {
        ImportOptions {
            format: ImportFormat::Ndjson,
            match_by,
            dry_run: false,
        }
    }

    /// A stored contact holding its external id and, if given, an email.
    fn known(reads: &mut Reads, external_id: Option<&str>, email: Option<&str>) -> ContactId {
        let fields = ContactFields {
            external_id: external_id.map(|id| ExternalId::parse(id).unwrap()),
            email: email.map(|e| Email::parse(e).unwrap()),
            ..ContactFields::default()
        };
        let contact = Contact::new(WorkspaceId::default(), fields, Utc::now());
        let id = contact.id;
        let keys = [
            external_id.map(|v| (IdentityKind::ExternalId, v)),
            email.map(|v| (IdentityKind::Email, v)),
        ];
        for (kind, value) in keys.into_iter().flatten() {
            let key = IdentityKey::from_trusted(kind, value.to_owned());
            let identity = Identity {
                key: key.clone(),
                provenance: Provenance::Api,
                created_at: Utc::now(),
            };
            reads.holders.insert(
                key,
                HeldIdentity {
                    identity,
                    contact: id,
                },
            );
        }
        reads.contacts.insert(id, contact);
        id
    }

    fn planned(rows: &[ParsedRow], reads: &Reads, match_by: MatchBy, parallelism: usize) -> Plan {
        let workspace = WorkspaceId::default();
        plan(
            &workspace,
            rows,
            reads,
            options(match_by),
            &[],
            parallelism,
            Utc::now(),
        )
    }

    fn written(plan: &Plan) -> (u64, u64) {
        plan.parts.iter().fold((0, 0), |(created, updated), part| {
            (
                created + part.outcome.created,
                updated + part.outcome.updated,
            )
        })
    }

    #[test]
    fn new_rows_are_created_in_parts_over_disjoint_rows() {
        let rows: Vec<ParsedRow> = (0..250)
            .map(|n| row(n + 1, json!({ "externalId": format!("u{n}") })))
            .collect();
        let plan = planned(&rows, &Reads::default(), MatchBy::ExternalId, 4);
        assert_eq!(
            plan.parts.len(),
            2,
            "250 rows make two parts of at least 100"
        );
        assert_eq!(written(&plan), (250, 0));
        let mut indices: Vec<usize> = plan.parts.iter().flat_map(|p| p.rows.clone()).collect();
        indices.sort_unstable();
        assert_eq!(
            indices,
            (0..250).collect::<Vec<_>>(),
            "each row in exactly one part"
        );
        assert_eq!(
            planned(&rows[..50], &Reads::default(), MatchBy::ExternalId, 4)
                .parts
                .len(),
            1
        );
    }

    #[test]
    fn known_contacts_are_updated_unless_nothing_changes() {
        let mut reads = Reads::default();
        known(&mut reads, Some("u1"), Some("ada@example.com"));
        let same = row(1, json!({ "externalId": "u1", "email": "ada@example.com" }));
        let plan = planned(&[same], &reads, MatchBy::ExternalId, 1);
        assert_eq!(plan.settled.unchanged, 1);
        assert!(plan.parts.is_empty());
        let changed = row(1, json!({ "externalId": "u1", "plan": "pro" }));
        assert_eq!(
            written(&planned(&[changed], &reads, MatchBy::ExternalId, 1)),
            (0, 1)
        );
    }

    #[test]
    fn only_identities_a_row_could_claim_are_read_after_its_target() {
        let email = |value: &str| IdentityKey::from_trusted(IdentityKind::Email, value.to_owned());
        let external =
            |value: &str| IdentityKey::from_trusted(IdentityKind::ExternalId, value.to_owned());
        let mut reads = Reads::default();
        known(&mut reads, Some("u1"), Some("ada@example.com"));
        let same = row(1, json!({ "externalId": "u1", "email": "ada@example.com" }));
        let moved = row(
            2,
            json!({ "externalId": "u1", "email": "ada@work.example" }),
        );
        let new = row(3, json!({ "externalId": "u2", "email": "bob@example.com" }));
        let targets: HashSet<IdentityKey> = [&same, &moved, &new]
            .into_iter()
            .flat_map(|row| target_keys(row, MatchBy::ExternalId))
            .collect();
        assert_eq!(targets, HashSet::from([external("u1"), external("u2")]));
        let claims = |row: &ParsedRow| claim_keys(row, MatchBy::ExternalId, &reads, &targets);
        assert_eq!(
            claims(&same),
            [],
            "the target's own email is never claimed again"
        );
        assert_eq!(claims(&moved), [email("ada@work.example")]);
        assert_eq!(claims(&new), [email("bob@example.com")]);
        // Matched by email: the email finds the target.
        let by_email = row(4, json!({ "email": "ada@example.com", "name": "Ada" }));
        assert_eq!(
            target_keys(&by_email, MatchBy::Email),
            [email("ada@example.com")]
        );
    }

    #[test]
    fn a_second_row_reaching_the_same_contact_waits_for_the_next_batch() {
        let mut reads = Reads::default();
        known(&mut reads, Some("u1"), Some("ada@example.com"));
        let rows = [
            row(1, json!({ "externalId": "u1", "plan": "pro" })),
            row(2, json!({ "email": "ada@example.com", "plan": "free" })),
        ];
        let plan = planned(&rows, &reads, MatchBy::Email, 1);
        assert_eq!(plan.deferred, vec![1]);
        assert_eq!(written(&plan), (0, 1));
    }

    #[test]
    fn an_email_another_contact_holds_is_left_out_and_reported() {
        let mut reads = Reads::default();
        known(&mut reads, Some("u1"), Some("ada@example.com"));
        let rows = [row(
            7,
            json!({ "externalId": "u2", "email": "ada@example.com", "plan": "pro" }),
        )];
        let plan = planned(&rows, &reads, MatchBy::ExternalId, 1);
        assert_eq!(written(&plan), (1, 0));
        let conflicts = &plan.parts[0].outcome.conflicts;
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].line, 7);
        assert!(conflicts[0].message.contains("imported without it"));
    }

    #[test]
    fn rows_without_their_match_key_fail_and_mismatched_ids_conflict() {
        let mut reads = Reads::default();
        known(&mut reads, Some("u1"), Some("ada@example.com"));
        let keyless = planned(
            &[row(3, json!({ "plan": "pro" }))],
            &reads,
            MatchBy::ExternalId,
            1,
        );
        assert_eq!(keyless.settled.failures[0].code, "INVALID_INPUT");
        let other = row(4, json!({ "externalId": "u9", "email": "ada@example.com" }));
        let mismatch = planned(&[other], &reads, MatchBy::Email, 1);
        assert_eq!(mismatch.settled.failures[0].code, "CONFLICT");
    }

    #[test]
    fn rows_naming_the_same_identity_go_to_different_groups() {
        let rows = vec![
            row(1, json!({ "externalId": "a", "email": "x@example.com" })),
            row(2, json!({ "externalId": "b" })),
            row(3, json!({ "externalId": "c", "email": "x@example.com" })),
        ];
        let groups = without_shared_identities(rows);
        let lines: Vec<Vec<u64>> = groups
            .iter()
            .map(|group| group.iter().map(|row| row.line).collect())
            .collect();
        assert_eq!(lines, vec![vec![1, 2], vec![3]]);
    }
}

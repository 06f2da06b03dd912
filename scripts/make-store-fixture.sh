#!/usr/bin/env bash
# Writes the store fixture of a migration test: a small store written by the release given as
# $1 (a `qwry-contacts` binary), archived to $2 (a .tar.gz of its DATA_DIR).
# The fixture of schema version 1 (tests/fixtures/store-schema-1.tar.gz) was written this way
# by the previous stop's release build (main at about df78e85), before schema versions were kept;
# tests/fixtures/store-schema-2.tar.gz by the release build of bb484a4 (schema version 2);
# tests/fixtures/store-schema-4.tar.gz by the release build of 2e46b27 (schema version 4) with
# WITH_WEBHOOK=1: an endpoint that refuses connections, so the store holds webhook deliveries
# attempted once and waiting for their retry, and others waiting behind them.
# It speaks the 0.9 API of those releases (positional mutation arguments, bare results); a
# release of the 1.0 contract (CHANGELOG.md) needs the input/payload forms.
set -euo pipefail
binary=$1
archive=$2
data_dir=$(mktemp -d)
port=18100
key=fixture-admin-key-0123456789abcdef
WEBHOOK_ALLOW_PRIVATE_TARGETS=true DATA_DIR=$data_dir ADMIN_API_KEY=$key LISTEN_ADDR=127.0.0.1:$port "$binary" > "$data_dir.log" 2>&1 &
service=$!
trap 'kill $service 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
  sleep 0.2
done
gql() {
  curl -fs -H "authorization: Bearer $key" -H 'content-type: application/json' \
    --data "$(jq -n --arg q "$1" '{query: $q}')" "http://127.0.0.1:$port/graphql"
}
id_of() { jq -r "$1"; }
gql 'mutation { defineAttribute(input: { name: "plan", type: STRING }) { name } }' > /dev/null
if [ "${WITH_WEBHOOK:-}" = 1 ]; then
  # Port 9 (discard) on loopback refuses connections: every attempt fails and is retried.
  gql 'mutation { createWebhook(input: { url: "http://127.0.0.1:9/hooks", events: [CONTACT_CHANGED] }) { webhook { id } } }' > /dev/null
fi
ada=$(gql 'mutation { upsertContact(input: { externalId: "u1", email: "ada@example.com", name: "Ada", attributes: { plan: "pro" } }) { id } }' | id_of .data.upsertContact.id)
gql 'mutation { upsertContact(input: { externalId: "u2", email: "bob@example.com", phone: "+14155550100" }) { id } }' > /dev/null
visitor=$(gql 'mutation { trackVisitor(input: { anonymousId: "visitor-1", email: "cy@example.com" }) { id } }' | id_of .data.trackVisitor.id)
gql "mutation { mergeContacts(survivorId: \"$ada\", absorbedId: \"$visitor\") { id } }" > /dev/null
gone=$(gql 'mutation { upsertContact(input: { externalId: "u3", email: "gone@example.com" }) { id } }' | id_of .data.upsertContact.id)
gql "mutation { deleteContact(id: \"$gone\") }" > /dev/null
gql 'mutation { trackVisitor(input: { anonymousId: "visitor-2" }) { id } }' > /dev/null
if [ "${WITH_WEBHOOK:-}" = 1 ]; then
  sleep 2 # the first attempts fail and are logged
fi
kill -TERM $service
wait $service || true
trap - EXIT
tar -C "$data_dir" -czf "$archive" .
rm -rf "$data_dir" "$data_dir.log"
echo "wrote $archive"

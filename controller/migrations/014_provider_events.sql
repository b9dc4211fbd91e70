-- 014_provider_events.sql - provider feedback in the delivery record
-- (issue 16, docs/providers.md).
--
-- provider_id: on "delivered" events, the provider's message id from its
-- 250 reply (SES "250 Ok <id>", SendGrid "queued as <id>"): what the
-- provider's webhook events name, so they join to the message.
ALTER TABLE events ADD COLUMN provider_id text NOT NULL DEFAULT '';
CREATE INDEX events_provider_id ON events (provider_id)
	WHERE provider_id <> '';

-- One row per provider event as the webhook delivered it.  UNIQUE on the
-- provider's event id: a webhook the provider retries (or an attacker
-- replays) stores nothing twice.  queue_id '' is an event whose message
-- sluice does not know (kept, counted in /metrics); the rest also become
-- rows of events (node_id 0, node_name "<provider>/<hook>", seq = id) so
-- trace and log show them beside the node's own.
CREATE TABLE provider_events (
	id		bigserial PRIMARY KEY,
	provider	text NOT NULL,
	hook		text NOT NULL,
	event_id	text NOT NULL,
	kind		text NOT NULL,
	recipient	text NOT NULL,
	provider_id	text NOT NULL,
	message_id	text NOT NULL,
	queue_id	text NOT NULL,
	type		text NOT NULL,
	diagnostic	text NOT NULL,
	at		timestamptz NOT NULL,
	received_at	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (provider, hook, event_id)
);
CREATE INDEX provider_events_unknown ON provider_events (received_at)
	WHERE queue_id = '';

-- Mailgun webhook tokens seen: a token is signed once, so a second use
-- is a replay.  Rows older than a day are dropped (the replay window is
-- far shorter).
CREATE TABLE hook_tokens (
	provider	text NOT NULL,
	hook		text NOT NULL,
	token		text NOT NULL,
	seen_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (provider, hook, token)
);
CREATE INDEX hook_tokens_seen ON hook_tokens (seen_at);

-- 001_initial.sql - nodes, immutable policy versions with a one-row head,
-- and the delivery event record.  Applied by store_migrate() inside one
-- transaction under an advisory lock; never edit a migration once released,
-- add the next number instead.

CREATE TABLE nodes (
	id			bigserial PRIMARY KEY,
	name			text NOT NULL UNIQUE,
	-- sha256 hex of the enrollment token; the token itself is never stored
	token_digest		text NOT NULL,
	address			text NOT NULL DEFAULT '',
	software_version	text NOT NULL DEFAULT '',
	policy_version		bigint NOT NULL DEFAULT 0,
	policy_from_cache	boolean NOT NULL DEFAULT false,
	-- packed sluice.QueueMetrics of the latest heartbeat
	metrics			bytea,
	draining		boolean NOT NULL DEFAULT false,
	-- bumped on every drain/resume: the id of the command sent to the node
	drain_seq		bigint NOT NULL DEFAULT 0,
	created_at		timestamptz NOT NULL DEFAULT now(),
	hello_at		timestamptz,
	last_heartbeat_at	timestamptz
);

-- Every policy version is an immutable snapshot: a packed sluice.Policy
-- with its version field set.  Secrets are inside (hop secrets must stay
-- reversible: nodes AUTH upstream with them; user passwords are scrypt).
CREATE TABLE policy_versions (
	version		bigint PRIMARY KEY CHECK (version > 0),
	created_at	timestamptz NOT NULL DEFAULT now(),
	identity	text NOT NULL,
	summary		text NOT NULL,
	snapshot	bytea NOT NULL
);

-- The head: exactly one row, the current version (0: no policy yet).
-- An apply locks it FOR UPDATE, so applies are serialised fleet-wide.
CREATE TABLE policy_head (
	one	boolean PRIMARY KEY DEFAULT true CHECK (one),
	version	bigint NOT NULL DEFAULT 0
);
INSERT INTO policy_head DEFAULT VALUES;

-- Delivery record: one row per node event, idempotent per (node, seq).
-- node_name is kept so the record outlives a removed node.
CREATE TABLE events (
	id		bigserial PRIMARY KEY,
	node_id		bigint NOT NULL,
	node_name	text NOT NULL,
	seq		bigint NOT NULL,
	at		timestamptz NOT NULL,
	kind		text NOT NULL,
	queue_id	text NOT NULL,
	message_id	text NOT NULL DEFAULT '',
	client		text NOT NULL DEFAULT '',
	auth_user	text NOT NULL DEFAULT '',
	sender		text NOT NULL DEFAULT '',
	recipients	text[] NOT NULL DEFAULT '{}',
	recipient	text NOT NULL DEFAULT '',
	size		bigint NOT NULL DEFAULT 0,
	hop		text NOT NULL DEFAULT '',
	host		text NOT NULL DEFAULT '',
	code		integer NOT NULL DEFAULT 0,
	enhanced	text NOT NULL DEFAULT '',
	reply		text NOT NULL DEFAULT '',
	duration_ms	integer NOT NULL DEFAULT 0,
	tls		boolean NOT NULL DEFAULT false,
	received_at	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (node_id, seq)
);
CREATE INDEX events_queue_id ON events (queue_id);
CREATE INDEX events_message_id ON events (message_id) WHERE message_id <> '';
CREATE INDEX events_at ON events (at);

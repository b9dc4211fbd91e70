-- 002_fleet.sql - fleet operations: per-minute metrics history, alerts
-- raised once fleet-wide, and queue commands delivered with heartbeats.

-- One row per node and minute: counter increments seen in that minute
-- (from consecutive heartbeats; a restarted node's counters start again)
-- and the queue gauges of the minute's last heartbeat.  Rows older than
-- the controller's metrics_retention_minutes are deleted.
CREATE TABLE node_minutes (
	node_id			bigint NOT NULL REFERENCES nodes ON DELETE CASCADE,
	minute			timestamptz NOT NULL,
	connections		bigint NOT NULL DEFAULT 0,
	accepted		bigint NOT NULL DEFAULT 0,
	refused			bigint NOT NULL DEFAULT 0,
	delivered		bigint NOT NULL DEFAULT 0,
	deferred_attempts	bigint NOT NULL DEFAULT 0,
	bounced			bigint NOT NULL DEFAULT 0,
	auth_failures		bigint NOT NULL DEFAULT 0,
	messages		bigint NOT NULL DEFAULT 0,
	oldest_age_s		bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (node_id, minute)
);

-- An alert is open while cleared_at is NULL.  The partial unique index
-- is what makes "raised once" hold with several controllers: a raise is
-- INSERT ... ON CONFLICT DO NOTHING against it.
CREATE TABLE alerts (
	id		bigserial PRIMARY KEY,
	kind		text NOT NULL,
	subject		text NOT NULL,
	message		text NOT NULL,
	raised_at	timestamptz NOT NULL DEFAULT now(),
	cleared_at	timestamptz,
	raised_by	text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX alerts_open ON alerts (kind, subject)
	WHERE cleared_at IS NULL;
CREATE INDEX alerts_raised_at ON alerts (raised_at);

-- Queue commands: one row per target node.  Sent with every heartbeat
-- reply until the node's result arrives (the node answers a repeated id
-- with its remembered result), then done.
CREATE TABLE commands (
	id		bigserial PRIMARY KEY,
	node_id		bigint NOT NULL REFERENCES nodes ON DELETE CASCADE,
	node_name	text NOT NULL,
	kind		integer NOT NULL,
	queue_id	text NOT NULL DEFAULT '',
	state		text NOT NULL DEFAULT '',
	domain		text NOT NULL DEFAULT '',
	lim		integer NOT NULL DEFAULT 0,
	created_at	timestamptz NOT NULL DEFAULT now(),
	sent_at		timestamptz,
	done_at		timestamptz,
	-- packed sluice.CommandResult
	result		bytea
);
CREATE INDEX commands_pending ON commands (node_id) WHERE done_at IS NULL;

-- 005_record_integrity.sql - a delivery record nothing can stop (issue 11).
-- raw: the packed sluice.Event as the node sent it, kept only when one of
-- its text fields was not UTF-8 (the text columns then hold it with \xHH
-- escapes): lossless, and NULL for every ordinary event.
ALTER TABLE events ADD COLUMN raw bytea;

-- An event the store could not take (the reason is PostgreSQL's message):
-- kept whole, never blocking the node's later events.  Raises the
-- events_quarantined alert for its node while it is newer than a day.
CREATE TABLE events_quarantine (
	id		bigserial PRIMARY KEY,
	node_id		bigint NOT NULL,
	node_name	text NOT NULL,
	seq		bigint NOT NULL,
	raw		bytea NOT NULL,
	reason		text NOT NULL,
	quarantined_at	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (node_id, seq)
);
CREATE INDEX events_quarantine_at ON events_quarantine (quarantined_at);

-- The node's own heartbeat interval: silent_after defaults to three of it.
ALTER TABLE nodes ADD COLUMN heartbeat_ms integer NOT NULL DEFAULT 0;
-- A node's silent period (health_silent_after() in controller/health.c):
-- the configured one, else three heartbeats, at least 2 s.
CREATE FUNCTION sluice_silent_after(configured_ms bigint, heartbeat_ms integer)
RETURNS interval LANGUAGE sql IMMUTABLE AS $$
	SELECT make_interval(secs => (CASE WHEN configured_ms > 0
	    THEN configured_ms
	    ELSE greatest(2000,
	        3 * (CASE WHEN heartbeat_ms > 0 THEN heartbeat_ms ELSE 2000 END))
	    END) / 1000.0)
$$;

-- 003_events_by_day.sql - the delivery record partitioned by day (UTC) so
-- retention is a cheap DROP of whole partitions.  Day partitions are made
-- ahead of time by the controllers' health tick (sluice_events_partition);
-- events_default catches what falls outside them (a node's clock far off,
-- rows from before this migration).  Idempotency is now UNIQUE (node_id,
-- seq, at): a unique key of a partitioned table must hold its partition
-- key, and a replayed event carries the same seq and the same time.

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey
	TO events_unpartitioned_pkey;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_node_id_seq_key
	TO events_unpartitioned_node_id_seq_key;
ALTER INDEX events_queue_id RENAME TO events_unpartitioned_queue_id;
ALTER INDEX events_message_id RENAME TO events_unpartitioned_message_id;
ALTER INDEX events_at RENAME TO events_unpartitioned_at;
-- keep the id sequence: ids stay increasing across the change
ALTER SEQUENCE events_id_seq OWNED BY NONE;

CREATE TABLE events (
	id		bigint NOT NULL DEFAULT nextval('events_id_seq'),
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
	PRIMARY KEY (id, at),
	UNIQUE (node_id, seq, at)
) PARTITION BY RANGE (at);
ALTER SEQUENCE events_id_seq OWNED BY events.id;
CREATE INDEX events_queue_id ON events (queue_id);
CREATE INDEX events_message_id ON events (message_id) WHERE message_id <> '';
CREATE INDEX events_at ON events (at);
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- The partition of one UTC day, made if missing.
CREATE FUNCTION sluice_events_partition(day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	name text := 'events_d' || to_char(day, 'YYYYMMDD');
BEGIN
	IF to_regclass(name) IS NULL THEN
		EXECUTE format('CREATE TABLE %I PARTITION OF events'
		    ' FOR VALUES FROM (%L) TO (%L)', name,
		    day::timestamp AT TIME ZONE 'UTC',
		    (day + 1)::timestamp AT TIME ZONE 'UTC');
	END IF;
END $$;

-- Drops the day partitions wholly older than `days` days and deletes the
-- same range from the default partition.  Returns the partitions dropped.
CREATE FUNCTION sluice_events_expire(days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	cutoff date := (now() AT TIME ZONE 'UTC')::date - days;
	part record;
	n integer := 0;
BEGIN
	FOR part IN SELECT c.relname FROM pg_inherits i
	    JOIN pg_class c ON c.oid = i.inhrelid
	    WHERE i.inhparent = 'events'::regclass
	    AND c.relname ~ '^events_d[0-9]{8}$'
	    AND to_date(substr(c.relname, 9), 'YYYYMMDD') < cutoff
	LOOP
		EXECUTE format('DROP TABLE %I', part.relname);
		n := n + 1;
	END LOOP;
	DELETE FROM events_default
	    WHERE at < cutoff::timestamp AT TIME ZONE 'UTC';
	RETURN n;
END $$;

-- Yesterday to the day after tomorrow exist before the first insert.
SELECT sluice_events_partition((now() AT TIME ZONE 'UTC')::date + d)
	FROM generate_series(-1, 2) d;

INSERT INTO events SELECT * FROM events_unpartitioned;
DROP TABLE events_unpartitioned;
-- store_event_insert skips a (node, seq) stored at any time
CREATE INDEX events_node_seq ON events (node_id, seq);

-- 015_events_search.sql - indexes for `log --to` and `log --status` on a
-- large delivery record (issue 17, docs/capacity.md).
--
-- `log --to ADDR` is a case-insensitive substring match on the recipient
-- of delivery events and the recipients of "received" events: a trigram
-- index (pg_trgm, shipped with PostgreSQL; a trusted extension, so the
-- database's owner may create it) serves LIKE '%addr%' on one expression
-- of both.  The function is IMMUTABLE (array_to_string of text[] is) so
-- it can be indexed; store_event_log uses the same expression.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE FUNCTION sluice_event_rcpts(recipient text, recipients text[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT lower(recipient || ' ' || array_to_string(recipients, ' ')) $$;

CREATE INDEX events_rcpt_trgm ON events
	USING gin (sluice_event_rcpts(recipient, recipients) gin_trgm_ops);

-- `log --status KIND`: the newest events of one kind, an index walk
-- instead of a scan of every row for a rare kind (bounced).
CREATE INDEX events_kind_at ON events (kind, at);

-- Redundant: the UNIQUE (node_id, seq, at) index serves every lookup by
-- (node_id, seq) and max(seq) by node_id (its leading columns).
DROP INDEX IF EXISTS events_node_seq;

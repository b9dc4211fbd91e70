-- 008_event_webhooks.sql - sluice's own outbound event webhooks (issue 16,
-- docs/webhooks.md): a durable outbox of delivery events per endpoint.
--
-- An endpoint's filters live here (the controllers write them from their
-- config at start, store_outbox_endpoint()); its URL and secret stay in
-- the controllers' config.  Every stored event that passes an endpoint's
-- filters is enqueued by a statement trigger on events, so in the very
-- transaction that stores it, whatever statement stored it (multi-row
-- INSERT, COPY, the quarantine path's one-by-one inserts): a replayed
-- event is not inserted again (NOT EXISTS / ON CONFLICT) and so is not
-- enqueued again.  Event kinds are data: '{}' takes every kind, including
-- ones added later (provider_*).

CREATE TABLE webhook_endpoints (
	name		text PRIMARY KEY,
	kinds		text[] NOT NULL DEFAULT '{}',	-- '{}': every kind
	senders		text[] NOT NULL DEFAULT '{}',	-- 'd', '*.d'; '{}': any
	sent		bigint NOT NULL DEFAULT 0,	-- events delivered
	failed		bigint NOT NULL DEFAULT 0,	-- POSTs that failed
	failures	integer NOT NULL DEFAULT 0,	-- consecutive
	failing_since	timestamptz,
	retry_at	timestamptz NOT NULL DEFAULT now(),
	last_error	text NOT NULL DEFAULT '',
	updated_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_outbox (
	id		bigserial PRIMARY KEY,
	endpoint	text NOT NULL
			REFERENCES webhook_endpoints ON DELETE CASCADE,
	event_id	bigint NOT NULL,	-- events (id, at)
	event_at	timestamptz NOT NULL,
	queued_at	timestamptz NOT NULL DEFAULT now(),
	attempts	integer NOT NULL DEFAULT 0
);
CREATE INDEX webhook_outbox_endpoint ON webhook_outbox (endpoint, id);

-- "a@Example.COM" or "<a@example.com>" -> "example.com"; NULL without @.
CREATE FUNCTION sluice_sender_domain(sender text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT lower(rtrim(substring(sender FROM '@([^@]*)$'), '>'))
$$;

-- Whether a domain passes a sender filter: '{}' passes everything, 'd'
-- passes d, '*.d' passes every subdomain of d (not d itself).
CREATE FUNCTION sluice_webhook_sender_ok(patterns text[], domain text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
	SELECT cardinality(patterns) = 0 OR EXISTS (
	    SELECT 1 FROM unnest(patterns) p
	    WHERE domain = p OR (left(p, 2) = '*.' AND
	        length(domain) > length(p) - 1 AND
	        right(domain, length(p) - 1) = substr(p, 2)))
$$;

CREATE FUNCTION sluice_webhook_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO webhook_outbox (endpoint, event_id, event_at)
	SELECT w.name, n.id, n.at FROM new_events n
	JOIN webhook_endpoints w
	    ON (cardinality(w.kinds) = 0 OR n.kind = ANY (w.kinds))
	    AND sluice_webhook_sender_ok(w.senders,
	        sluice_sender_domain(n.sender))
	ORDER BY n.id;
	RETURN NULL;
END $$;

CREATE TRIGGER events_webhook_outbox AFTER INSERT ON events
	REFERENCING NEW TABLE AS new_events
	FOR EACH STATEMENT EXECUTE FUNCTION sluice_webhook_enqueue();

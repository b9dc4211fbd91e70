-- 016_provider_rejoin.sql - provider events that came before their
-- message's record are joined later (issue 16, docs/providers.md).
--
-- tag: sluice's queue id as the event's metadata named it ('' none),
-- kept so a later pass can join by it as the first ingest would have.
-- checked_at: when the re-join pass last looked at an unknown event (NULL
-- not yet); the pass takes the never checked, then the least recently
-- checked first, so events that never join (mail sluice did not send) do
-- not starve the rest.
ALTER TABLE provider_events ADD COLUMN tag text NOT NULL DEFAULT '';
ALTER TABLE provider_events ADD COLUMN checked_at timestamptz;
DROP INDEX provider_events_unknown;
CREATE INDEX provider_events_unknown ON provider_events
	(checked_at NULLS FIRST, id) WHERE queue_id = '';

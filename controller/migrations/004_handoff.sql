-- 004_handoff.sql - `node drain NAME --handoff`: the draining node hands
-- its queue to the other live nodes instead of delivering it itself.
ALTER TABLE nodes ADD COLUMN handoff boolean NOT NULL DEFAULT false;

-- 011_shadow.sql - shadow redundancy (issue 13, docs/redundancy.md): where
-- each node accepts its peers' shadow copies, and the nodes declared lost
-- (by `sluicectl node lost`, by `node remove`, or silent beyond
-- redundancy_lost_after_seconds), whose copies their holders promote.
-- By name, not node id: a removed node's row is gone, its copies are not.
ALTER TABLE nodes ADD COLUMN shadow_address text NOT NULL DEFAULT '';
CREATE TABLE lost_nodes (
	name text PRIMARY KEY,
	lost_at timestamptz NOT NULL DEFAULT now(),
	reason text NOT NULL DEFAULT ''
);

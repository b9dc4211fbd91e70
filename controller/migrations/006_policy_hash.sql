-- 006_policy_hash.sql - a policy version is its number and its content: a
-- failover to a lagging standby can lose a version and the next apply
-- reuses its number with other content.  The hash of the stored snapshot
-- tells the two apart (docs/control-plane.md, "Policy identity").
ALTER TABLE policy_versions ADD COLUMN content_hash text
	GENERATED ALWAYS AS (encode(sha256(snapshot), 'hex')) STORED;
-- Set by a controller that sees a node run a version whose content this
-- database does not have (the node fetches the policy then); cleared when
-- the node fetches.  Raised as the alert policy_mismatch.
ALTER TABLE nodes ADD COLUMN policy_mismatch text NOT NULL DEFAULT '';

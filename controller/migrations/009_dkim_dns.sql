-- 009_dkim_dns.sql - what the controller last found published for each
-- DKIM key of the head policy (issue 14, controller/dkim_watch.c): one row
-- per <selector>._domainkey.<domain>, status ok / mismatch / missing, the
-- reason, and the run that checked it (rows of keys no longer in the
-- policy are dropped at the end of a run).  alert.c raises
-- dkim_dns_mismatch / dkim_dns_missing from it.  A DNS error keeps the
-- last status.
CREATE TABLE dkim_dns (
	name text PRIMARY KEY,
	status text NOT NULL,
	detail text NOT NULL DEFAULT '',
	run bigint NOT NULL,
	checked_at timestamptz NOT NULL DEFAULT now()
);

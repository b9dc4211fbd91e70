-- 012_console.sql - the web console (issue 18): operator accounts, their
-- sessions, and the audit history of actions taken through the console
-- and of operator-account changes made with sluicectl.  Sessions live
-- here so every controller of a fleet accepts the same cookie.

CREATE TABLE console_operators (
	name		text PRIMARY KEY,
	role		text NOT NULL CHECK (role IN ('viewer', 'operator')),
	-- $scrypt$ln=..,r=..,p=..$salt$key (lib/passwd.c); never returned
	password_hash	text NOT NULL,
	failed_logins	integer NOT NULL DEFAULT 0,
	locked_until	timestamptz,
	created_at	timestamptz NOT NULL DEFAULT now(),
	last_login_at	timestamptz
);

-- The cookie is a random token; only its sha256 is stored.  csrf is the
-- per-session token every state-changing request must echo in a header.
CREATE TABLE console_sessions (
	token_digest	text PRIMARY KEY,
	operator	text NOT NULL REFERENCES console_operators (name)
			    ON DELETE CASCADE,
	csrf		text NOT NULL,
	peer		text NOT NULL DEFAULT '',
	created_at	timestamptz NOT NULL DEFAULT now(),
	last_seen_at	timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- Who did what: one row per console action (login, logout, refused
-- login, lockout, queue command) and per operator-account change.
CREATE TABLE audit_log (
	id		bigserial PRIMARY KEY,
	at		timestamptz NOT NULL DEFAULT now(),
	identity	text NOT NULL,
	action		text NOT NULL,
	detail		text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);

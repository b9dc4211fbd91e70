-- 007_event_dkim.sql - what DKIM did to a message (issue 14): on a
-- "received" event "example.com:r1,e1" (signed: d= and selectors), "none"
-- (signing failed, sent unsigned) or "" (no key); on delivery events the
-- signatures the message carries.  Numbered 007: 006 is taken by a change
-- in flight (policy hash).
ALTER TABLE events ADD COLUMN dkim text NOT NULL DEFAULT '';

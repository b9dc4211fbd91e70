/* policy_secret.h - secrets in policy snapshots.  Pure: no I/O.
 * Stored snapshots carry hop secrets, user password hashes and DKIM keys;
 * admin replies carry them redacted (empty, has_* = true), and an apply
 * may keep a stored secret by sending it empty with has_* / keep_secret. */
#ifndef SLUICE_POLICY_SECRET_H
#define SLUICE_POLICY_SECRET_H

#include "policy_check.h"
#include "proto.h"

/* Blanks every secret in place, setting has_secret/has_password/has_key. */
void policy_secret_redact(Sluice__Policy *);
/* Fills kept secrets of p from cur (the head; NULL: none) by name, clears
 * keep_secret, sets the has_* flags.  p must come from
 * sluice__policy__unpack (strings are replaced with malloc'd copies).
 * 0, or -1 with *err naming the element (a user with no password, ENOMEM). */
int policy_secret_merge(
    Sluice__Policy *p, const Sluice__Policy *cur, struct policy_error *err);

#endif

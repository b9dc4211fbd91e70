/* rewrite.h - the From: rewrite of a user's rewrite_from (issue 15):
 * the address of the header block's From: field becomes a verified
 * identity, the display name stays.  Pure: the caller (smtp_session.c)
 * collects the header block and streams the result to the spool. */
#ifndef SLUICE_NODE_REWRITE_H
#define SLUICE_NODE_REWRITE_H

#include <stddef.h>

/* hdr: the message's header block (CRLF lines, up to and including the
 * empty line when there is one).  Returns a malloc'd copy with the first
 * From: field (and its continuation lines) replaced by
 * "From: DISPLAY <addr>" (or "From: addr" without a display name), and
 * its length in *outlen; NULL when there is no From: field (nothing to
 * rewrite) or no memory. */
char *rewrite_from(
    const char *hdr, size_t len, const char *addr, size_t *outlen);

#endif

/* text_escape.h - pure: peer-supplied text that is not UTF-8 made storable.
 * PostgreSQL text columns take UTF-8 only; a Message-ID, an address, an
 * upstream reply, a HELO name or an AUTH user can carry any bytes.  The
 * store escapes such a value at its boundary (store.c) so a row is never
 * refused for its encoding; the delivery record keeps the raw bytes too
 * (store_event.c).  No I/O; tests/store/test_text_escape.c has the table. */
#ifndef SLUICE_TEXT_ESCAPE_H
#define SLUICE_TEXT_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* Valid UTF-8 as PostgreSQL accepts it (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
bool text_is_utf8(const char *s);
/* A malloc'd copy of s where every octet that is not part of a valid UTF-8
 * sequence becomes \xHH (two upper-case hex digits); valid sequences,
 * backslashes included, are kept.  The result is always valid UTF-8.
 * NULL on ENOMEM. */
char *text_escape(const char *s);

#endif

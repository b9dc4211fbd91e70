/* authwatch.h - AUTH failures per client IP and per user over the last
 * minute, for the controller's "AUTH failure burst" alerts.  The SMTP
 * sessions record (loop thread), the uplink reads the worst offenders
 * (its own thread): a mutex guards the table.  Bounded: at most
 * AUTHWATCH_MAX_KEYS subjects; the oldest is evicted first. */
#ifndef SLUICE_AUTHWATCH_H
#define SLUICE_AUTHWATCH_H

#include <stddef.h>
#include <stdint.h>

#define AUTHWATCH_MAX_KEYS 4096
#define AUTHWATCH_WINDOW_S 60

struct authwatch;

struct authwatch_top {
	char kind[8]; /* "ip" or "user" */
	char subject[128];
	uint64_t failures; /* within the window ending now */
};

struct authwatch *authwatch_new(void);
void authwatch_free(struct authwatch *);
/* One failed AUTH from ip, naming user (NULL or "" when unknown). */
void authwatch_failure(
    struct authwatch *, const char *ip, const char *user, int64_t now);
/* Up to max subjects with the most failures in the window, most first. */
size_t authwatch_top(
    struct authwatch *, int64_t now, struct authwatch_top *out, size_t max);

#endif

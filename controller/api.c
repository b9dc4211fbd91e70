/* api.c - helpers shared by api_node.c and api_admin.c: error replies,
 * rate-limited warnings about peers, sanitising peer text for logs. */
#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define API_WARN_PER_SECOND 10

void
api_error_set(struct api_error *e, const char *code, const char *fmt, ...)
{
	va_list ap;

	snprintf(e->code, sizeof(e->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

void
api_error_store(struct api_error *e, int rc)
{
	switch (rc) {
	case STORE_UNAVAILABLE:
		api_error_set(e, "unavailable",
		    "The controller's database is unavailable; try again "
		    "shortly.");
		break;
	case STORE_INVALID:
		api_error_set(e, "bad_request",
		    "The database refused the request's data (invalid "
		    "text or a number out of range).");
		break;
	case STORE_NOT_FOUND:
		api_error_set(e, "not_found", "No such object.");
		break;
	case STORE_EXISTS:
		api_error_set(e, "exists", "The object already exists.");
		break;
	default:
		api_error_set(e, "internal",
		    "The controller failed to run the request; see its log.");
		break;
	}
}

bool
api_ready(const struct api *a, struct api_error *e)
{
	if (a->is_ready == NULL || atomic_load(a->is_ready))
		return true;
	api_error_set(e, "unavailable",
	    "The controller's store is unavailable: PostgreSQL is not "
	    "reachable yet; try again shortly.");
	return false;
}

void
api_warn(struct api *a, const struct rpc_peer *peer, const char *fmt, ...)
{
	char line[512], who[96];
	va_list ap;
	time_t now = time(NULL);

	if (now != a->warn_window_at) {
		if (a->warn_dropped > 0)
			log_warnx("%s: %d more warnings about peers "
			          "suppressed",
			    a->endpoint, a->warn_dropped);
		a->warn_window_at = now;
		a->warn_count = 0;
		a->warn_dropped = 0;
	}
	if (++a->warn_count > API_WARN_PER_SECOND) {
		a->warn_dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s peer=%s", a->endpoint, line,
	    api_peer(peer, who, sizeof(who)));
}

const char *
api_printable(const char *in, char *out, size_t len)
{
	size_t i;

	for (i = 0; in != NULL && in[i] != '\0' && i < 64 && i + 1 < len; i++)
		out[i] = (in[i] > 0x20 && in[i] < 0x7f) ? in[i] : '?';
	out[i] = '\0';
	return out;
}

const char *
api_peer(const struct rpc_peer *p, char *out, size_t len)
{
	if (p->uid >= 0)
		snprintf(out, len, "local uid %" PRId64, p->uid);
	else if (p->addr[0] != '\0')
		snprintf(out, len, "%s", p->addr);
	else
		snprintf(out, len, "unknown");
	return out;
}

void
api_cache_free(struct api *a)
{
	if (a->budget_policy != NULL)
		sluice__policy__free_unpacked(a->budget_policy, NULL);
	a->budget_policy = NULL;
	a->budget_version = 0;
}

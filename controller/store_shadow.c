/* store_shadow.c - queries for shadow redundancy (issue 13,
 * docs/redundancy.md): the nodes' shadow addresses, the choice of each
 * node's shadow peer, and the nodes declared lost.  Called by api_node.c,
 * api_admin.c and alert.c; errors as in store.h. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int
store_shadow_address(struct store *s, uint64_t id, const char *address)
{
	char idb[24];
	const char *vals[2] = {idb, address};

	snprintf(idb, sizeof(idb), "%" PRIu64, id);
	/* written only when it changes: a heartbeat costs no extra row
	 * version */
	return store_run(s,
	    "UPDATE nodes SET shadow_address = $2"
	    " WHERE id = $1 AND shadow_address <> $2",
	    2, vals);
}

int
store_shadow_peer(struct store *s, uint64_t self, int64_t silent_after_ms,
    char *name, size_t namelen, char *address, size_t addrlen)
{
	char ib[24], sb[24];
	const char *vals[2] = {ib, sb};
	PGresult *res;
	int rc;

	snprintf(ib, sizeof(ib), "%" PRIu64, self);
	snprintf(sb, sizeof(sb), "%" PRId64, silent_after_ms);
	name[0] = address[0] = '\0';
	/* The ring in name order: the first candidate after our name, else
	 * the first one (wrapping).  Each live node is then the peer of
	 * exactly one other, and a change of membership moves one or two
	 * assignments, not all of them. */
	if ((res = store_exec(s,
	         "SELECT c.name, c.shadow_address FROM nodes c, nodes me"
	         " WHERE me.id = $1 AND c.id <> $1 AND c.shadow_address <> ''"
	         " AND NOT c.draining AND c.last_heartbeat_at >"
	         " now() - sluice_silent_after($2::bigint, c.heartbeat_ms)"
	         " AND NOT EXISTS (SELECT 1 FROM lost_nodes l"
	         "  WHERE l.name = c.name)"
	         " ORDER BY c.name > me.name DESC, c.name LIMIT 1",
	         2, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	if (PQntuples(res) == 1) {
		snprintf(name, namelen, "%s", PQgetvalue(res, 0, 0));
		snprintf(address, addrlen, "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return STORE_OK;
}

int
store_shadow_lost(struct store *s, store_name_cb cb, void *arg)
{
	PGresult *res;
	int rc, i, stop = 0;

	if ((res = store_exec(s, "SELECT name FROM lost_nodes ORDER BY name", 0,
	         NULL, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && stop == 0; i++)
		stop = cb(arg, PQgetvalue(res, i, 0));
	PQclear(res);
	return STORE_OK;
}

int
store_node_lost(struct store *s, const char *name, const char *reason,
    bool must_exist, bool *added)
{
	const char *vals[3] = {name, reason, must_exist ? "t" : "f"};
	PGresult *res;
	int rc;

	*added = false;
	if ((res = store_exec(s,
	         "INSERT INTO lost_nodes (name, reason)"
	         " SELECT $1, $2 WHERE NOT $3::boolean OR EXISTS"
	         " (SELECT 1 FROM nodes WHERE name = $1)"
	         " ON CONFLICT (name) DO NOTHING RETURNING name",
	         3, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	*added = PQntuples(res) == 1;
	PQclear(res);
	if (*added || !must_exist)
		return STORE_OK;
	/* already lost, or no such node */
	if ((res = store_exec(s, "SELECT 1 FROM nodes WHERE name = $1", 1, vals,
	         NULL, NULL, &rc)) == NULL)
		return rc;
	rc = PQntuples(res) == 1 ? STORE_OK : STORE_NOT_FOUND;
	PQclear(res);
	return rc;
}

/* cmd_route_explain.c - `sluicectl route explain ADDRESS|DOMAIN [--from S]
 * [--user U] [--listener L] [--client IP]`: the dry run an operator wants
 * before and after a change.  Which route the mail takes (the same
 * matching as the nodes: lib/route_match.c) and why, every other route
 * and why it lost (a condition not met, or less specific), the hop
 * groups in failover order, each hop's share of its group by weight, and
 * each hop's health right now as the nodes last reported it (circuit
 * open or closed, recent failures). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "hop_preset.h"
#include "output.h"
#include "route_match.h"

struct hop_health {
	size_t up;         /* up nodes with metrics */
	size_t reporting;  /* of those, the ones that used (report) the hop */
	size_t open;       /* of those, with the circuit open */
	size_t throttled;  /* ... with the hop paused (throttled) */
	size_t alerting;   /* ... with a credentials/account alert */
	uint64_t failures; /* recent failures, summed */
	uint32_t window_s; /* longest provider throttle window */
	char open_on[256]; /* names of nodes with it open */
	char thr_on[256];  /* ... throttled */
	char alert_on[256];
	char alert_scope[16];
	size_t fleet;      /* ... paused fleet-wide by the controller */
	char fleet_by[64]; /* the node that met the throttle */
};

static void
name_add(char *buf, size_t len, const char *name)
{
	size_t l = strlen(buf);

	snprintf(buf + l, len - l, "%s%s", l ? "," : "", name);
}

static void
health_of(
    const Sluice__NodeListReply *nl, const char *hop, struct hop_health *h)
{
	size_t i, k;

	memset(h, 0, sizeof(*h));
	for (i = 0; i < nl->n_nodes; i++) {
		const Sluice__NodeStatus *n = nl->nodes[i];
		if (strcmp(n->state, "up") != 0 &&
		    strcmp(n->state, "draining") != 0)
			continue;
		if (n->metrics == NULL)
			continue;
		h->up++;
		for (k = 0; k < n->metrics->n_hops; k++) {
			const Sluice__HopMetrics *m = n->metrics->hops[k];
			if (strcmp(m->name, hop) != 0)
				continue;
			h->reporting++;
			h->failures += m->recent_failures;
			if (m->circuit_open) {
				h->open++;
				name_add(
				    h->open_on, sizeof(h->open_on), n->name);
			}
			if (m->throttled) {
				h->throttled++;
				name_add(h->thr_on, sizeof(h->thr_on), n->name);
				if (m->throttle_window_s > h->window_s)
					h->window_s = m->throttle_window_s;
			}
			if (m->fleet_paused) {
				h->fleet++;
				snprintf(h->fleet_by, sizeof(h->fleet_by), "%s",
				    m->fleet_paused_by);
			}
			if (m->alert_scope[0] != '\0') {
				h->alerting++;
				name_add(
				    h->alert_on, sizeof(h->alert_on), n->name);
				snprintf(h->alert_scope, sizeof(h->alert_scope),
				    "%s", m->alert_scope);
			}
		}
	}
}

/* "on every node" only when every up node used the hop and says so;
 * when only some nodes used it, they are named. */
static void
health_where(const struct hop_health *h, size_t count, const char *names,
    char *buf, size_t len)
{
	if (count == h->reporting && count == h->up)
		snprintf(buf, len, "on every node");
	else if (count == h->reporting)
		snprintf(buf, len, "on %s (the only node%s that used it)",
		    names, count == 1 ? "" : "s");
	else
		snprintf(buf, len, "on %s", names);
}

static void
health_text(const struct hop_health *h, char *buf, size_t len)
{
	char where[400];
	size_t off = 0;

	buf[0] = '\0';
	if (h->reporting == 0) {
		snprintf(buf, len, "no reports yet");
		return;
	}
	if (h->open > 0) {
		health_where(h, h->open, h->open_on, where, sizeof(where));
		off +=
		    (size_t)snprintf(buf + off, len - off, "%scircuit open %s",
		        h->open == h->reporting ? "DOWN: " : "", where);
	}
	if (h->fleet > 0 && off < len) {
		/* The controller spread it: every node holds back. */
		if (h->window_s > 0)
			off += (size_t)snprintf(buf + off, len - off,
			    "%sPAUSED fleet-wide (throttled on %s, provider "
			    "window %us)",
			    off ? "; " : "", h->fleet_by,
			    (unsigned)h->window_s);
		else
			off += (size_t)snprintf(buf + off, len - off,
			    "%sPAUSED fleet-wide (throttled on %s)",
			    off ? "; " : "", h->fleet_by);
	} else if (h->throttled > 0 && off < len) {
		health_where(h, h->throttled, h->thr_on, where, sizeof(where));
		if (h->window_s > 0)
			off += (size_t)snprintf(buf + off, len - off,
			    "%sPAUSED (throttled, provider window %us) %s",
			    off ? "; " : "", (unsigned)h->window_s, where);
		else
			off += (size_t)snprintf(buf + off, len - off,
			    "%sPAUSED (throttled) %s", off ? "; " : "", where);
	}
	if (h->alerting > 0 && off < len) {
		health_where(h, h->alerting, h->alert_on, where, sizeof(where));
		off += (size_t)snprintf(buf + off, len - off, "%sALERT %s %s",
		    off ? "; " : "", h->alert_scope, where);
	}
	if (off > 0)
		return;
	if (h->failures > 0)
		snprintf(buf, len, "ok, %llu recent failures",
		    (unsigned long long)h->failures);
	else
		snprintf(buf, len, "ok");
}

/* Why route r is not the one mail of c takes (chosen: the one it takes). */
static void
candidate_why(const Sluice__Policy *p, const Sluice__Route *r,
    const Sluice__Route *chosen, const struct route_ctx *c, char *buf,
    size_t len)
{
	int d = route_mismatch(r, c);

	switch (d) {
	case -1:
		if (r == chosen)
			snprintf(buf, len, "CHOSEN: matches; %u condition%s",
			    route_nconds(r), route_nconds(r) == 1 ? "" : "s");
		else if (route_is_default(p, chosen))
			snprintf(buf, len,
			    "matches, but user %s's default route applies "
			    "where only * matches",
			    c->user);
		else
			snprintf(buf, len,
			    "matches, but the chosen route is more specific "
			    "(%u condition%s against %u)",
			    route_nconds(chosen),
			    route_nconds(chosen) == 1 ? "" : "s",
			    route_nconds(r));
		break;
	case ROUTE_DIM_DOMAIN:
		snprintf(buf, len, "recipient domain %s is not %s", c->domain,
		    r->pattern);
		break;
	case ROUTE_DIM_SENDER:
		snprintf(buf, len, "sender <%s> is not %s",
		    c->sender != NULL ? c->sender : "", r->sender);
		break;
	case ROUTE_DIM_USER:
		if (c->user == NULL || c->user[0] == '\0')
			snprintf(buf, len,
			    "not submitted by user %s (no --user)", r->user);
		else
			snprintf(
			    buf, len, "user %s is not %s", c->user, r->user);
		break;
	case ROUTE_DIM_LISTENER:
		if (c->listener == NULL || c->listener[0] == '\0')
			snprintf(buf, len, "not on listener %s (no --listener)",
			    r->listener);
		else
			snprintf(buf, len, "listener %s is not %s", c->listener,
			    r->listener);
		break;
	default:
		if (c->family == 0)
			snprintf(buf, len, "client not in %s (no --client)",
			    r->client);
		else
			snprintf(buf, len, "client is not in %s", r->client);
		break;
	}
}

static void
candidates(struct ctl *ctl, struct json *j, const Sluice__Policy *p,
    const Sluice__Route *chosen, const struct route_ctx *c)
{
	struct table t;
	char name[300], why[400];
	size_t i;

	if (ctl->json)
		json_array_begin(j, "candidates");
	else {
		printf("\nroutes considered (most specific match wins; "
		       "docs/delivery.md):\n");
		table_init(&t, 2, "ROUTE", "VERDICT");
	}
	for (i = 0; i < p->n_routes; i++) {
		route_describe(p->routes[i], name, sizeof(name));
		candidate_why(p, p->routes[i], chosen, c, why, sizeof(why));
		if (ctl->json) {
			json_object_begin(j, NULL);
			json_str(j, "route", name);
			json_bool(j, "matched",
			    route_mismatch(p->routes[i], c) == -1);
			json_bool(j, "chosen", p->routes[i] == chosen);
			json_str(j, "why", why);
			json_object_end(j);
		} else
			table_row(&t, name, why);
	}
	if (ctl->json)
		json_array_end(j);
	else
		table_print(&t, stdout);
}

int
cmd_route_explain(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "route explain ADDRESS|DOMAIN [--from S] [--user U] "
	    "[--listener L] [--client IP]";
	Sluice__Policy *p;
	Sluice__AdminReply *nl;
	const Sluice__Route *r;
	const char *domain, *client = NULL;
	struct route_ctx c;
	struct table t;
	struct json j;
	char name[300];
	size_t g, k;
	int i;

	if (argc < 1 || argv[0][0] == '-')
		ctl_usage(use);
	memset(&c, 0, sizeof(c));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			c.sender = argv[++i];
		else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			c.user = argv[++i];
		else if (strcmp(argv[i], "--listener") == 0 && i + 1 < argc)
			c.listener = argv[++i];
		else if (strcmp(argv[i], "--client") == 0 && i + 1 < argc) {
			client = argv[++i];
			route_ctx_client(&c, client);
			if (c.family == 0)
				ctl_die("--client '%s' is not an IP address",
				    client);
		} else
			ctl_usage(use);
	}
	if (c.sender != NULL && strcmp(c.sender, "<>") == 0)
		c.sender = "";
	domain =
	    strrchr(argv[0], '@') != NULL ? strrchr(argv[0], '@') + 1 : argv[0];
	if (*domain == '\0')
		ctl_die("'%s' has no domain", argv[0]);
	c.domain = domain;
	p = admin_policy_get(ctl, 0);
	nl = admin_node_list(ctl);
	r = route_select(p, &c);
	if (r != NULL && route_is_default(p, r))
		snprintf(
		    name, sizeof(name), "default route of user %s", c.user);
	else if (r != NULL)
		route_describe(r, name, sizeof(name));
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_str(&j, "recipient", argv[0]);
		json_str(&j, "domain", domain);
		if (c.sender != NULL)
			json_str(&j, "sender", c.sender);
		if (c.user != NULL)
			json_str(&j, "user", c.user);
		if (c.listener != NULL)
			json_str(&j, "listener", c.listener);
		if (client != NULL)
			json_str(&j, "client", client);
		json_uint(&j, "policy_version", p->version);
		if (r == NULL)
			json_null(&j, "route");
		else {
			json_str(&j, "route", r->pattern);
			json_str(&j, "route_name", name);
			json_bool(&j, "user_default", route_is_default(p, r));
		}
		candidates(ctl, &j, p, r, &c);
		json_array_begin(&j, "groups");
	} else if (r == NULL) {
		printf("%s: no route matches domain %s in policy version %llu; "
		       "mail to it is deferred until one does\n",
		    argv[0], domain, (unsigned long long)p->version);
		candidates(ctl, &j, p, r, &c);
	} else {
		printf("%s: route '%s' (policy version %llu), hop groups in "
		       "failover order:\n",
		    argv[0], name, (unsigned long long)p->version);
		table_init(&t, 7, "GROUP", "HOP", "WEIGHT", "SHARE", "TARGET",
		    "TLS", "HEALTH");
	}
	for (g = 0; r != NULL && g < r->n_groups; g++) {
		const Sluice__HopGroup *grp = r->groups[g];
		unsigned total = 0;

		for (k = 0; k < grp->n_hops; k++) {
			const Sluice__Hop *h = route_hop(p, grp->hops[k]);
			total += h != NULL && h->weight ? h->weight : 1;
		}
		if (ctl->json) {
			json_object_begin(&j, NULL);
			json_array_begin(&j, "hops");
		}
		for (k = 0; k < grp->n_hops; k++) {
			const Sluice__Hop *h = route_hop(p, grp->hops[k]);
			unsigned w = h != NULL && h->weight ? h->weight : 1;
			struct hop_health hh;
			char gbuf[24], wbuf[16], sbuf[16], target[300],
			    health[1200];

			health_of(nl->node_list, grp->hops[k], &hh);
			health_text(&hh, health, sizeof(health));
			if (h == NULL) /* the built-in hop "mx" */
				snprintf(
				    target, sizeof(target), "MX of %s", domain);
			else
				snprintf(target, sizeof(target), "%s:%u",
				    h->host, h->port);
			if (ctl->json) {
				json_object_begin(&j, NULL);
				json_str(&j, "name", grp->hops[k]);
				json_str(&j, "target", target);
				json_str(&j, "tls",
				    h != NULL ? hop_tls_name(h->tls)
				              : "starttls");
				json_uint(&j, "weight", w);
				json_uint(&j, "share_percent",
				    (uint64_t)(100 * w / total));
				json_str(&j, "health", health);
				json_uint(&j, "nodes_reporting", hh.reporting);
				json_uint(&j, "nodes_circuit_open", hh.open);
				json_uint(&j, "nodes_up", hh.up);
				json_uint(&j, "nodes_throttled", hh.throttled);
				json_uint(&j, "nodes_fleet_paused", hh.fleet);
				json_uint(&j, "nodes_alerting", hh.alerting);
				json_object_end(&j);
				continue;
			}
			snprintf(gbuf, sizeof(gbuf), "%zu", g + 1);
			snprintf(wbuf, sizeof(wbuf), "%u", w);
			snprintf(sbuf, sizeof(sbuf), "%u%%", 100 * w / total);
			table_row(&t, k == 0 ? gbuf : "", grp->hops[k], wbuf,
			    sbuf, target,
			    h != NULL ? hop_tls_name(h->tls) : "starttls",
			    health);
		}
		if (ctl->json) {
			json_array_end(&j);
			json_object_end(&j);
		}
	}
	if (ctl->json) {
		json_array_end(&j);
		json_object_end(&j);
	} else if (r != NULL) {
		table_print(&t, stdout);
		candidates(ctl, &j, p, r, &c);
	}
	sluice__admin_reply__free_unpacked(nl, NULL);
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

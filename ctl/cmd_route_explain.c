/* cmd_route_explain.c - `sluicectl route explain ADDRESS|DOMAIN`: the dry
 * run an operator wants before and after a change.  Which route the
 * recipient domain takes (the same matching as the nodes: lib/
 * route_match.c), its hop groups in failover order, each hop's share of
 * its group by weight, and each hop's health right now as the nodes last
 * reported it (circuit open or closed, recent failures). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "hop_preset.h"
#include "output.h"
#include "route_match.h"

struct hop_health {
	size_t reporting;  /* up nodes that report this hop */
	size_t open;       /* of those, with the circuit open */
	uint64_t failures; /* recent failures, summed */
	char open_on[256]; /* names of nodes with it open */
};

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
		for (k = 0; k < n->metrics->n_hops; k++) {
			const Sluice__HopMetrics *m = n->metrics->hops[k];
			if (strcmp(m->name, hop) != 0)
				continue;
			h->reporting++;
			h->failures += m->recent_failures;
			if (m->circuit_open) {
				size_t l = strlen(h->open_on);
				h->open++;
				snprintf(h->open_on + l, sizeof(h->open_on) - l,
				    "%s%s", l ? "," : "", n->name);
			}
		}
	}
}

static void
health_text(const struct hop_health *h, char *buf, size_t len)
{
	if (h->reporting == 0)
		snprintf(buf, len, "no reports yet");
	else if (h->open == h->reporting)
		snprintf(buf, len, "DOWN: circuit open on every node");
	else if (h->open > 0)
		snprintf(buf, len, "circuit open on %s", h->open_on);
	else if (h->failures > 0)
		snprintf(buf, len, "ok, %llu recent failures",
		    (unsigned long long)h->failures);
	else
		snprintf(buf, len, "ok");
}

int
cmd_route_explain(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	Sluice__AdminReply *nl;
	const Sluice__Route *r;
	const char *domain;
	struct table t;
	struct json j;
	size_t g, k;

	if (argc != 1 || argv[0][0] == '-')
		ctl_usage("route explain ADDRESS|DOMAIN");
	domain =
	    strrchr(argv[0], '@') != NULL ? strrchr(argv[0], '@') + 1 : argv[0];
	if (*domain == '\0')
		ctl_die("'%s' has no domain", argv[0]);
	p = admin_policy_get(ctl, 0);
	nl = admin_node_list(ctl);
	r = route_match(p, domain);
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_str(&j, "recipient", argv[0]);
		json_str(&j, "domain", domain);
		json_uint(&j, "policy_version", p->version);
		if (r == NULL)
			json_null(&j, "route");
		else
			json_str(&j, "route", r->pattern);
		json_array_begin(&j, "groups");
	} else if (r == NULL) {
		printf("%s: no route matches domain %s in policy version %llu; "
		       "mail to it is deferred until one does\n",
		    argv[0], domain, (unsigned long long)p->version);
	} else {
		printf("%s: route '%s' (policy version %llu), hop groups in "
		       "failover order:\n",
		    argv[0], r->pattern, (unsigned long long)p->version);
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
			    health[320];

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
	} else if (r != NULL)
		table_print(&t, stdout);
	sluice__admin_reply__free_unpacked(nl, NULL);
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

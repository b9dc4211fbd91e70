/* cmd_alerts.c - `sluicectl alerts [--open] [--limit N]`: open alerts
 * first (oldest first), then the most recently cleared ones.  Alerts are
 * raised and cleared by the controllers' health tick (controller/alert.c);
 * thresholds are policy limits (`sluicectl limit list`, alert_*). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "output.h"

int
cmd_alerts(struct ctl *ctl, int argc, char **argv)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__AlertsRequest ar = SLUICE__ALERTS_REQUEST__INIT;
	Sluice__AdminReply *r;
	const Sluice__AlertsReply *al;
	struct table t;
	struct json j;
	char raised[32], cleared[32];
	uint64_t v;
	size_t i, nopen = 0;
	int a;

	for (a = 0; a < argc; a++) {
		if (strcmp(argv[a], "--open") == 0)
			ar.open_only = true;
		else if (strcmp(argv[a], "--limit") == 0 && a + 1 < argc &&
		         ctl_parse_u64(argv[a + 1], 1000, &v) == 0) {
			ar.limit = (uint32_t)v;
			a++;
		} else
			ctl_usage("alerts [--open] [--limit N]");
	}
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_ALERTS;
	req.alerts = &ar;
	r = admin_call(ctl, &req, NULL);
	if (r->body_case != SLUICE__ADMIN_REPLY__BODY_ALERTS ||
	    r->alerts == NULL)
		ctl_die("controller sent an unexpected reply to alerts");
	al = r->alerts;
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_array_begin(&j, "alerts");
		for (i = 0; i < al->n_alerts; i++)
			json_alert(&j, al->alerts[i]);
		json_array_end(&j);
		json_object_end(&j);
		sluice__admin_reply__free_unpacked(r, NULL);
		return 0;
	}
	for (i = 0; i < al->n_alerts; i++)
		nopen += al->alerts[i]->cleared_at == 0;
	if (al->n_alerts == 0) {
		printf("no alerts\n");
		sluice__admin_reply__free_unpacked(r, NULL);
		return 0;
	}
	printf(
	    "%zu open, %zu recently cleared\n\n", nopen, al->n_alerts - nopen);
	table_init(&t, 5, "RAISED", "CLEARED", "KIND", "SUBJECT", "MESSAGE");
	for (i = 0; i < al->n_alerts; i++) {
		const Sluice__Alert *x = al->alerts[i];
		fmt_time(x->raised_at, raised, sizeof(raised));
		if (x->cleared_at != 0)
			fmt_time(x->cleared_at, cleared, sizeof(cleared));
		else
			snprintf(cleared, sizeof(cleared), "OPEN");
		table_row(&t, raised, cleared, x->kind, x->subject, x->message);
	}
	table_print(&t, stdout);
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}

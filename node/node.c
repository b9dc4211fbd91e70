/* node.c - sluice-node main: read the config, bind the SMTP listeners,
 * drop privileges, open the journal and the spool, start from the cached
 * policy when there is one, start the uplink, run the event loop.
 *
 * The node holds no configuration of its own beyond identity, controller
 * endpoints, listeners and paths: policy comes from the controller. */
#include "node.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authwatch.h"
#include "config.h"
#include "control.h"
#include "delivery.h"
#include "journal.h"
#include "log.h"
#include "mailbox.h"
#include "metrics.h"
#include "policy.h"
#include "policy_check.h"
#include "shadow.h"
#include "quota.h"
#include "signer.h"
#include "smtp_server.h"
#include "sched_slice.h"
#include "spool.h"
#include "uplink.h"

static const char *const node_config_keys[] = {"spool", "hostname", "user",
    "journal_retention_s", "journal_retention_mb", "sched_slice_us", NULL};

static bool
node_key_known(const char *key)
{
	const char *const *lists[] = {node_config_keys, uplink_config_keys,
	    smtp_server_config_keys, metrics_config_keys, delivery_config_keys,
	    shadow_config_keys};
	size_t i, j;

	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		for (j = 0; lists[i][j] != NULL; j++)
			if (strcmp(lists[i][j], key) == 0)
				return true;
	return false;
}

static int
node_configure(struct node *n, const struct config *c, char *err, size_t errlen)
{
	static char host[256];
	int64_t hb;
	size_t i;

	for (i = 0; i < c->n; i++)
		if (!node_key_known(c->entries[i].key)) {
			snprintf(err, errlen, "%s:%d: unknown key '%s'",
			    c->path, c->entries[i].line, c->entries[i].key);
			return -1;
		}
	n->conf = c;
	if ((n->name = config_get(c, "name")) == NULL ||
	    policy_check_name(n->name) == -1) {
		snprintf(err, errlen,
		    "%s: 'name' missing or not a valid "
		    "node name",
		    c->path);
		return -1;
	}
	if ((n->spool_dir = config_get(c, "spool")) == NULL) {
		snprintf(err, errlen, "%s: 'spool' directory missing", c->path);
		return -1;
	}
	if ((n->hostname = config_get(c, "hostname")) == NULL) {
		if (gethostname(host, sizeof(host) - 1) == -1)
			snprintf(host, sizeof(host), "localhost");
		n->hostname = host;
	}
	if (config_get_int(c, "heartbeat_ms", 2000, &hb, err, errlen) == -1)
		return -1;
	if (hb < 50 || hb > 600000) {
		snprintf(err, errlen, "%s: heartbeat_ms must be 50..600000",
		    c->path);
		return -1;
	}
	n->heartbeat_ms = (int)hb;
	/* Acknowledged events kept for a database failover that loses them
	 * (docs/operations.md, "PostgreSQL high availability"). */
	if (config_get_int(c, "journal_retention_s", 900, &n->retention_s, err,
	        errlen) == -1 ||
	    config_get_int(c, "journal_retention_mb", 64, &n->retention_mb, err,
	        errlen) == -1)
		return -1;
	if (n->retention_s < 0 || n->retention_s > 7 * 86400 ||
	    n->retention_mb < 0 || n->retention_mb > 65536) {
		snprintf(err, errlen,
		    "%s: journal_retention_s must be 0..604800 and "
		    "journal_retention_mb 0..65536",
		    c->path);
		return -1;
	}
	/* The CPU slice asked for the node's threads (lib/sched_slice.c);
	 * 0, the default: the kernel's.  A short one trims the accept tail
	 * on a busy machine and costs throughput (docs/operations.md). */
	if (config_get_int(
	        c, "sched_slice_us", 0, &n->sched_slice_us, err, errlen) == -1)
		return -1;
	if (n->sched_slice_us != 0 &&
	    (n->sched_slice_us < 100 || n->sched_slice_us > 100000)) {
		snprintf(err, errlen,
		    "%s: sched_slice_us must be 0 or 100..100000", c->path);
		return -1;
	}
	return 0;
}

/* Started as root with "user = NAME": the listeners are bound, now become
 * that user.  The spool directory is handed to it first. */
static int
node_drop_privileges(struct node *n, char *err, size_t errlen)
{
	const char *user = config_get(n->conf, "user");
	struct passwd *pw;

	if (user == NULL || geteuid() != 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "user '%s' does not exist", user);
		return -1;
	}
	if (chown(n->spool_dir, pw->pw_uid, pw->pw_gid) == -1) {
		snprintf(
		    err, errlen, "chown %s: %s", n->spool_dir, strerror(errno));
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1) {
		snprintf(err, errlen, "cannot drop privileges to %s: %s", user,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) != -1) {
		snprintf(err, errlen, "privileges not dropped");
		return -1;
	}
	log_info(
	    "node %s: running as %s (uid %d)", n->name, user, (int)pw->pw_uid);
	return 0;
}

static void
node_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct node *n = arg;

	(void)what;
	log_info("node %s: signal %d, stopping", n->name, (int)sig);
	event_base_loopbreak(n->base);
}

static void
usage(void)
{
	fprintf(stderr, "usage: sluice-node --config FILE [--check-config] "
	                "[--debug]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 'C'},
	    {"debug", no_argument, NULL, 'd'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct node n;
	struct config *conf;
	struct event *ev_term, *ev_int;
	struct policy *cached = NULL;
	struct metrics *metrics = NULL;
	const char *path = NULL;
	bool check = false, debug = false;
	char err[512];
	int ch, rv = 1;

	while ((ch = getopt_long(argc, argv, "c:CdV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'V':
			printf("sluice-node %s\n", SLUICE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (path == NULL || optind != argc)
		usage();
	log_init("sluice-node", debug);
	/* Smart-host secrets live in this process's memory (the policy
	 * snapshot): no core dumps, no ptrace by other processes of the same
	 * user.  A debugger as root still works. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		log_warn("prctl(PR_SET_DUMPABLE)");
	memset(&n, 0, sizeof(n));
	if ((conf = config_load(path, err, sizeof(err))) == NULL ||
	    node_configure(&n, conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "sluice-node: %s\n", err);
		config_free(conf);
		return 1;
	}
	if (check) {
		/* Listeners, TLS material and the controller endpoints
		 * too (the same refusals as at start), without a socket. */
		if (smtp_server_check_config(conf, err, sizeof(err)) == -1 ||
		    uplink_check_config(conf, err, sizeof(err)) == -1 ||
		    shadow_check_config(conf, err, sizeof(err)) == -1) {
			fprintf(stderr, "sluice-node: %s\n", err);
			config_free(conf);
			return 1;
		}
		printf("sluice-node: %s: configuration ok\n", path);
		config_free(conf);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Before any thread starts: they inherit it (the loop, the spool's
	 * flush worker and the journal's syncer are what a 250 waits on). */
	sched_slice_configure((unsigned)n.sched_slice_us);
	if (sched_slice_apply() == -1)
		log_warn("sched_slice_us %lld", (long long)n.sched_slice_us);
	evthread_use_pthreads();
	if ((n.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((n.mailbox = mailbox_new(n.base)) == NULL)
		fatalx("mailbox_new: out of memory");
	if (mkdir(n.spool_dir, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "sluice-node: spool %s: %s\n", n.spool_dir,
		    strerror(errno));
		goto out;
	}
	n.policy = policy_empty();
	if ((n.authwatch = authwatch_new()) == NULL)
		fatalx("authwatch_new: out of memory");
	if ((n.quota = quota_new()) == NULL)
		fatalx("quota_new: out of memory");
	if ((n.smtp = smtp_server_open(&n, err, sizeof(err))) == NULL) {
		fprintf(stderr, "sluice-node: %s\n", err);
		goto out;
	}
	if ((metrics = metrics_open(&n, err, sizeof(err))) == NULL) {
		fprintf(stderr, "sluice-node: %s\n", err);
		goto out;
	}
	if (node_drop_privileges(&n, err, sizeof(err)) == -1) {
		fprintf(stderr, "sluice-node: %s\n", err);
		goto out;
	}
	if ((n.journal = journal_open(n.spool_dir)) != NULL)
		journal_set_retention(n.journal, n.retention_s * 1000,
		    (size_t)n.retention_mb * 1024 * 1024);
	if (n.journal == NULL ||
	    (n.spool = spool_open(n.base, n.spool_dir, &n.stats)) == NULL) {
		fprintf(stderr, "sluice-node: cannot open spool %s (see log)\n",
		    n.spool_dir);
		goto out;
	}
	/* Received events are durable with their messages (smtp_session.c) */
	spool_set_sync_hooks(
	    n.spool, journal_sync_begin, journal_sync_end, n.journal);
	if ((n.control = control_open(&n)) == NULL) {
		fprintf(stderr, "sluice-node: out of memory\n");
		goto out;
	}
	if ((cached = uplink_load_cache(n.spool_dir)) != NULL)
		control_install(n.control, cached, true);
	if ((n.delivery = delivery_open(&n, err, sizeof(err))) == NULL) {
		fprintf(stderr, "sluice-node: %s\n", err);
		goto out;
	}
	/* Before the uplink (it reports the shadow address) and after the
	 * delivery engine (copies in flight gate it). */
	if ((n.shadow = shadow_open(&n, err, sizeof(err))) == NULL) {
		fprintf(stderr, "sluice-node: %s\n", err);
		goto out;
	}
	if (control_start(n.control, err, sizeof(err)) == -1) {
		fprintf(stderr, "sluice-node: %s\n", err);
		goto out;
	}
	ev_term = evsignal_new(n.base, SIGTERM, node_on_signal, &n);
	ev_int = evsignal_new(n.base, SIGINT, node_on_signal, &n);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	log_info("node %s: started, version %s, policy version %" PRIu64 "%s",
	    n.name, SLUICE_VERSION, policy_version(n.policy),
	    cached != NULL ? " (cached)" : "");
	event_base_dispatch(n.base);
	rv = control_refused(n.control) ? 1 : 0;
	if (rv != 0)
		fprintf(stderr,
		    "sluice-node: node '%s' was refused by the "
		    "controller (not enrolled, or wrong token)\n",
		    n.name);
	event_free(ev_term);
	event_free(ev_int);
out:
	/* The uplink thread first, then what it posted, then its target. */
	control_stop(n.control);
	mailbox_free(n.mailbox);
	control_close(n.control);
	metrics_close(metrics);
	smtp_server_close(n.smtp);
	shadow_close(n.shadow);
	n.shadow = NULL;
	delivery_close(n.delivery);
	spool_close(n.spool);
	journal_close(n.journal);
	policy_unref(n.policy);
	signer_free(n.signer);
	authwatch_free(n.authwatch);
	quota_free(n.quota);
	if (n.base != NULL)
		event_base_free(n.base);
	config_free(conf);
	return rv;
}

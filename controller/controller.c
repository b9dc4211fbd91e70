/* controller.c - sluice-controller main: reads the config, applies the
 * schema migrations, then serves the node endpoint and the admin endpoint
 * on one thread each, every thread with its own PostgreSQL connection.
 * SIGTERM/SIGINT stop both loops and the process exits 0.  Nothing is kept
 * on disk: several controllers may serve one database. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "api.h"
#include "config.h"
#include "console.h"
#include "dkim_watch.h"
#include "log.h"
#include "hooks_http.h"
#include "metrics_http.h"
#include "outbox.h"
#include "rpc.h"
#include "store.h"
#include "webhook.h"

static volatile sig_atomic_t controller_stop;

struct controller_endpoint {
	const char *url;
	struct rpc_server *srv;
	struct api api;
	rpc_handler handler;
	pthread_t thread;
};

static void
controller_on_signal(int sig)
{
	(void)sig;
	controller_stop = 1;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: sluice-controller --config FILE [--database CONNINFO] "
	    "[--debug]\n");
	exit(2);
}

static void *
controller_serve(void *arg)
{
	struct controller_endpoint *ep = arg;

	rpc_server_serve(ep->srv, ep->handler, &ep->api, &controller_stop);
	return NULL;
}

static void
controller_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !controller_stop)
		;
}

/* The health thread: alerts, history retention, command expiry. */
struct controller_health {
	struct store *store;
	struct alert_config cf;
	int interval_ms;
	pthread_t thread;
};

static void *
controller_health(void *arg)
{
	struct controller_health *h = arg;
	int slept;

	while (!controller_stop) {
		alert_tick(h->store, &h->cf);
		for (slept = 0; slept < h->interval_ms && !controller_stop;
		     slept += 100)
			controller_sleep_ms(h->interval_ms - slept < 100
			                        ? h->interval_ms - slept
			                        : 100);
	}
	return NULL;
}

/* Waits for PostgreSQL (it may start after us) and migrates the schema. */
static int
controller_migrate(struct store *st)
{
	int rc, backoff = 100;
	bool said = false;

	while (!controller_stop) {
		if ((rc = store_migrate(st)) == STORE_OK)
			return 0;
		if (rc != STORE_UNAVAILABLE)
			return -1;
		if (!said)
			log_info("waiting for PostgreSQL; both endpoints "
			         "answer \"unavailable\" meanwhile");
		said = true;
		controller_sleep_ms(backoff);
		backoff = backoff < 2000 ? backoff * 2 : 2000;
	}
	return -1;
}

/* The event webhooks (docs/webhooks.md): every `event_webhook` line and
 * the keys that tune them.  -1 with the reason logged. */
static int
controller_outbox(
    const struct config *cf, struct outbox **obp, int64_t *alert_after_s)
{
	struct outbox_endpoint *eps = NULL;
	struct outbox_config oc;
	int64_t retry_max_s, timeout_s;
	const char *line;
	char err[512];
	size_t n, i, k;
	int rc = -1;

	if (config_get_int(cf, "event_webhook_retry_max_s", 300, &retry_max_s,
	        err, sizeof(err)) == -1 ||
	    config_get_int(cf, "event_webhook_timeout_s", 10, &timeout_s, err,
	        sizeof(err)) == -1 ||
	    config_get_int(cf, "event_webhook_alert_after_s", 300,
	        alert_after_s, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	if (retry_max_s < 1 || retry_max_s > 86400 || timeout_s < 1 ||
	    timeout_s > 300 || *alert_after_s < 1) {
		log_warnx("%s: event_webhook_retry_max_s (1..86400), "
		          "event_webhook_timeout_s (1..300) or "
		          "event_webhook_alert_after_s (1..) out of range",
		    cf->path);
		return -1;
	}
	for (n = 0; config_get_nth(cf, "event_webhook", n) != NULL; n++)
		;
	if (n == 0)
		return 0;
	if ((eps = calloc(n, sizeof(*eps))) == NULL) {
		log_warnx("out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		line = config_get_nth(cf, "event_webhook", i);
		if (outbox_format_endpoint(line, &eps[i], err, sizeof(err)) ==
		    -1) {
			log_warnx("%s: %s", cf->path, err);
			goto done;
		}
		for (k = 0; k < i; k++)
			if (strcmp(eps[k].name, eps[i].name) == 0) {
				log_warnx("%s: event_webhook %s: the name is "
				          "used twice",
				    cf->path, eps[i].name);
				goto done;
			}
	}
	oc.retry_max_ms = retry_max_s * 1000;
	oc.timeout_s = (int)timeout_s;
	oc.poll_ms = 250;
	if ((*obp = outbox_new(eps, n, &oc, err, sizeof(err))) == NULL) {
		log_warnx("%s: %s", cf->path, err);
		goto done;
	}
	rc = 0;
done:
	free(eps);
	return rc;
}

int
main(int argc, char *argv[])
{
	static const char *const allowed[] = {"database", "node_listen",
	    "admin_listen", "silent_after_ms", "metrics_listen",
	    "metrics_retention_minutes", "health_interval_ms",
	    "command_timeout_s", "tls_ca", "tls_cert_key", "admin_ca",
	    "tls_cert", "tls_key", "insecure", "alert_webhook",
	    "events_retention_days", "event_webhook",
	    "event_webhook_retry_max_s", "event_webhook_timeout_s",
	    "event_webhook_alert_after_s", "resolver", "dkim_check_interval_s",
	    "console_listen", "console_cert", "console_key", "console_ca",
	    "console_session_idle_s", "console_session_max_s",
	    "console_lockout_failures", "console_lockout_s", "console_poll_ms",
	    "hooks_listen", "hooks_tls_cert", "hooks_tls_key",
	    "hooks_max_age_s", "hooks_sns_max_age_s", "hooks_sns_cert_host",
	    "hooks_sns_ca", "hooks_rejoin_s", NULL};
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"database", required_argument, NULL, 'd'},
	    {"debug", no_argument, NULL, 'D'},
	    {NULL, 0, NULL, 0},
	};
	static atomic_bool store_ready;
	struct controller_endpoint eps[2];
	struct rpc_tls tls[2]; /* node, admin: docs/security.md */
	struct controller_health health;
	struct dkim_watch dkim = {0};
	struct metrics_http *mh = NULL;
	struct hooks_http_config hcf;
	struct hooks_http *hh = NULL;
	struct store *hh_store = NULL;
	struct console_config console_cf;
	struct console *console = NULL;
	struct webhook *hook = NULL;
	struct outbox *ob = NULL;
	struct store *mh_store = NULL;
	char who[64];
	int64_t retention, interval, cmd_timeout, ev_days, dkim_interval;
	const struct config_entry *bad;
	struct config *cf;
	struct sigaction sa;
	const char *conf = NULL, *database = NULL;
	char err[512];
	int64_t silent_after_ms;
	bool debug = false;
	int ch, i, status = 1;

	while ((ch = getopt_long(argc, argv, "c:d:D", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'd':
			database = optarg;
			break;
		case 'D':
			debug = true;
			break;
		default:
			usage();
		}
	}
	if (conf == NULL || optind != argc)
		usage();
	log_init("sluice-controller", debug);
	/* Smart-host secrets live in this process's memory (the policy
	 * snapshot): no core dumps, no ptrace by other processes of the same
	 * user.  A debugger as root still works. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		log_warn("prctl(PR_SET_DUMPABLE)");

	if ((cf = config_load(conf, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		return 1;
	}
	if ((bad = config_unknown(cf, allowed)) != NULL) {
		log_warnx("%s:%d: unknown key '%s'", conf, bad->line, bad->key);
		goto out;
	}
	if (database == NULL)
		database = config_get(cf, "database");
	memset(eps, 0, sizeof(eps));
	eps[0].url = config_get(cf, "node_listen");
	eps[1].url = config_get(cf, "admin_listen");
	if (database == NULL || eps[0].url == NULL || eps[1].url == NULL) {
		log_warnx("%s: database, node_listen and admin_listen are "
		          "required",
		    conf);
		goto out;
	}
	/* Unset (0): three of each node's own heartbeat intervals. */
	if (config_get_int(cf, "silent_after_ms", 0, &silent_after_ms, err,
	        sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto out;
	}
	if (config_get(cf, "silent_after_ms") != NULL && silent_after_ms <= 0) {
		log_warnx("%s: silent_after_ms must be positive", conf);
		goto out;
	}
	if (config_get_int(cf, "metrics_retention_minutes", 7 * 24 * 60,
	        &retention, err, sizeof(err)) == -1 ||
	    config_get_int(cf, "health_interval_ms", 1000, &interval, err,
	        sizeof(err)) == -1 ||
	    config_get_int(cf, "command_timeout_s", 300, &cmd_timeout, err,
	        sizeof(err)) == -1 ||
	    config_get_int(cf, "events_retention_days", 0, &ev_days, err,
	        sizeof(err)) == -1 ||
	    config_get_int(cf, "dkim_check_interval_s", 3600, &dkim_interval,
	        err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto out;
	}
	if (retention < 1 || retention > 10 * 366 * 24 * 60 || interval < 50 ||
	    interval > 600000 || cmd_timeout < 1 || cmd_timeout > 86400 ||
	    ev_days < 0 || ev_days > 100000 || dkim_interval < 1 ||
	    dkim_interval > 7 * 86400) {
		log_warnx("%s: metrics_retention_minutes (1..), "
		          "health_interval_ms (50..600000), command_timeout_s "
		          "(1..86400), events_retention_days (0..) or "
		          "dkim_check_interval_s (1..604800) out of range",
		    conf);
		goto out;
	}
	if (console_config_read(cf, &console_cf, err, sizeof(err)) == -1) {
		log_warnx("%s: %s", conf, err);
		goto out;
	}
	memset(&health, 0, sizeof(health));
	memset(&dkim, 0, sizeof(dkim));
	dkim.resolver = config_get(cf, "resolver");
	dkim.interval_ms = dkim_interval * 1000;
	dkim.stop = &controller_stop;
	if (config_get(cf, "alert_webhook") != NULL &&
	    (hook = webhook_new(
	         config_get(cf, "alert_webhook"), err, sizeof(err))) == NULL) {
		log_warnx("%s: %s", conf, err);
		goto out;
	}
	health.cf.webhook = hook;
	if (controller_outbox(cf, &ob, &health.cf.webhook_alert_after_s) == -1)
		goto out;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = controller_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	eps[0].api.endpoint = "node";
	eps[0].handler = api_node_handle;
	eps[1].api.endpoint = "admin";
	eps[1].handler = api_admin_handle;
	for (i = 0; i < 2; i++) {
		eps[i].api.silent_after_ms = silent_after_ms;
		if ((eps[i].api.store =
		            store_new(database, eps[i].api.endpoint)) == NULL) {
			log_warnx("out of memory");
			goto stores;
		}
	}
	/* Nodes and remote admins: mutual TLS, each with its own CA (a
	 * node's certificate must not open the admin endpoint). */
	memset(tls, 0, sizeof(tls));
	tls[0].ca_file = config_get(cf, "tls_ca");
	tls[0].cert_key_file = tls[1].cert_key_file =
	    config_get(cf, "tls_cert_key");
	tls[0].cert_file = tls[1].cert_file = config_get(cf, "tls_cert");
	tls[0].key_file = tls[1].key_file = config_get(cf, "tls_key");
	tls[0].keys = "tls_ca and tls_cert_key (or tls_cert and tls_key)";
	tls[1].ca_file = config_get(cf, "admin_ca");
	tls[1].keys = "admin_ca and tls_cert_key (or tls_cert and tls_key)";
	/* insecure is for nodes only: remote admin is mutual TLS or nothing */
	tls[0].insecure = config_get(cf, "insecure") != NULL &&
	                  strcmp(config_get(cf, "insecure"), "yes") == 0;
	/* The admin socket is the access control: owner only. */
	if ((eps[0].srv = rpc_server_open_tls(
	         eps[0].url, 0, &tls[0], err, sizeof(err))) == NULL ||
	    (eps[1].srv = rpc_server_open_tls(
	         eps[1].url, 0600, &tls[1], err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		goto servers;
	}
	if (config_get(cf, "metrics_listen") != NULL &&
	    ((mh_store = store_new(database, "metrics")) == NULL ||
	        (mh = metrics_http_start(config_get(cf, "metrics_listen"),
	             mh_store, silent_after_ms, &controller_stop, err,
	             sizeof(err))) == NULL)) {
		log_warnx("%s", mh_store == NULL ? "out of memory" : err);
		goto servers;
	}
	/* The web console (off unless console_listen is set). */
	if (console_cf.listen != NULL &&
	    (console = console_start(&console_cf, database, silent_after_ms,
	         &store_ready, &controller_stop, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		goto servers;
	}
	/* Provider webhooks (issue 16): off unless hooks_listen is set. */
	memset(&hcf, 0, sizeof(hcf));
	hcf.listen = config_get(cf, "hooks_listen");
	hcf.cert = config_get(cf, "hooks_tls_cert");
	hcf.key = config_get(cf, "hooks_tls_key");
	hcf.sns_cert_host = config_get(cf, "hooks_sns_cert_host");
	hcf.sns_ca = config_get(cf, "hooks_sns_ca");
	if (config_get_int(cf, "hooks_max_age_s", 600, &hcf.max_age_s, err,
	        sizeof(err)) == -1 ||
	    config_get_int(cf, "hooks_sns_max_age_s", 3600, &hcf.sns_max_age_s,
	        err, sizeof(err)) == -1 ||
	    config_get_int(cf, "hooks_rejoin_s", 10, &hcf.rejoin_s, err,
	        sizeof(err)) == -1 ||
	    hcf.max_age_s < 1 || hcf.sns_max_age_s < 1 || hcf.rejoin_s < 0) {
		log_warnx("%s: hooks_max_age_s and hooks_sns_max_age_s: "
		          "positive seconds; hooks_rejoin_s: seconds, 0 off",
		    conf);
		goto servers;
	}
	if (hcf.listen != NULL &&
	    ((hh_store = store_new(database, "hooks")) == NULL ||
	        (hh = hooks_http_start(&hcf, hh_store, &controller_stop, err,
	             sizeof(err))) == NULL)) {
		log_warnx("%s", hh_store == NULL ? "out of memory" : err);
		goto servers;
	}
	if ((health.store = store_new(database, "health")) == NULL ||
	    (dkim.store = store_new(database, "dkim")) == NULL) {
		log_warnx("out of memory");
		goto servers;
	}
	/* The config is valid and the endpoints listen: serve them while
	 * PostgreSQL is still away ("unavailable" at once, not silence). */
	for (i = 0; i < 2; i++) {
		eps[i].api.is_ready = &store_ready;
		if ((errno = pthread_create(
		         &eps[i].thread, NULL, controller_serve, &eps[i])) != 0)
			fatalx("pthread_create: %s", strerror(errno));
	}
	if (controller_migrate(health.store) == -1) {
		if (!controller_stop)
			log_warnx("cannot prepare the database schema; "
			          "exiting");
		status = controller_stop ? 0 : 1;
		controller_stop = 1;
		for (i = 0; i < 2; i++)
			pthread_join(eps[i].thread, NULL);
		goto servers;
	}
	atomic_store(&store_ready, true);
	outbox_start(ob, database, &controller_stop);
	snprintf(who, sizeof(who), "controller pid %ld", (long)getpid());
	health.cf.silent_after_ms = silent_after_ms;
	health.cf.retention_minutes = retention;
	health.cf.command_timeout_s = cmd_timeout;
	health.cf.events_retention_days = ev_days;
	health.cf.who = who;
	health.interval_ms = (int)interval;
	health.cf.interval_ms = interval;
	if ((errno = pthread_create(
	         &health.thread, NULL, controller_health, &health)) != 0)
		fatalx("pthread_create: %s", strerror(errno));
	if (dkim_watch_start(&dkim) == -1)
		fatalx("pthread_create: %s", strerror(errno));
	log_info("controller started node_listen=%s admin_listen=%s "
	         "silent_after_ms=%lld version=%s",
	    eps[0].url, eps[1].url, (long long)silent_after_ms, SLUICE_VERSION);
	for (i = 0; i < 2; i++)
		pthread_join(eps[i].thread, NULL);
	pthread_join(health.thread, NULL);
	dkim_watch_join(&dkim);
	log_info("controller stopped");
	status = 0;
servers:
	controller_stop = 1;
	metrics_http_stop(mh);
	console_stop(console);
	hooks_http_stop(hh);
	store_free(hh_store);
	store_free(mh_store);
	store_free(health.store);
	store_free(dkim.store);
	for (i = 0; i < 2; i++)
		rpc_server_close(eps[i].srv);
stores:
	for (i = 0; i < 2; i++) {
		store_free(eps[i].api.store);
		api_cache_free(&eps[i].api);
	}
out:
	controller_stop = 1;
	outbox_free(ob);
	webhook_free(hook);
	config_free(cf);
	return status;
}

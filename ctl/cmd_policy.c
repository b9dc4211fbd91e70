/* cmd_policy.c - the element commands: network, user, hop, route and
 * limit add/del/set/list.  Every change is a read-modify-write of the whole
 * policy: get the head, edit it in memory, check it locally for a good
 * message, apply it with the version read as base; if someone else applied
 * in between the controller answers "conflict" and the cycle runs again.
 * The controller's own validation stays authoritative. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cidr.h"
#include "hop_oauth.h"
#include "hop_preset.h"
#include "limit_table.h"
#include "oauth_conf.h"
#include "output.h"
#include "passwd.h"
#include "policy_check.h"
#include "policy_edit.h"
#include "policy_json.h"
#include "route_match.h"
#include "xmalloc.h"

#define APPLY_TRIES     4 /* the first try and three retries */
#define LINE_MAX_SECRET 4096

/* An edit changes p or dies with a one-line reason; msg says what it did
 * ("network 10.0.0.0/8 allowed"). */
typedef void (*edit_fn)(Sluice__Policy *p, void *arg, char *msg, size_t msglen);

static int
mutate(struct ctl *ctl, edit_fn edit, void *arg)
{
	struct policy_error perr;
	Sluice__Policy *p;
	uint64_t base, version = 0;
	bool changed = false;
	char msg[256], why[512];
	int attempt;

	for (attempt = 0; attempt < APPLY_TRIES; attempt++) {
		p = admin_policy_get(ctl, 0);
		base = p->version;
		msg[0] = '\0';
		edit(p, arg, msg, sizeof(msg));
		policy_mark_kept(p);
		if (policy_check(p, POLICY_CHECK_APPLY, &perr) == -1)
			ctl_die("%s", perr.msg);
		switch (admin_policy_apply(
		    ctl, p, base, &version, &changed, why, sizeof(why))) {
		case ADMIN_APPLIED:
			sluice__policy__free_unpacked(p, NULL);
			goto done;
		case ADMIN_CONFLICT:
			sluice__policy__free_unpacked(p, NULL);
			continue;
		case ADMIN_INVALID:
			ctl_die("%s", why);
		}
	}
	ctl_die("the policy kept changing under this command (%d tries); "
	        "run it again",
	    APPLY_TRIES);
done:
	if (ctl->json) {
		struct json j;
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", version);
		json_bool(&j, "changed", changed);
		json_str(&j, "summary", ctl->summary);
		json_object_end(&j);
	} else if (changed)
		printf("%s: policy version %" PRIu64 "\n", msg, version);
	else
		printf("no changes (version %" PRIu64 ")\n", version);
	return 0;
}

int
ctl_policy_mutate(struct ctl *ctl, ctl_edit_fn edit, void *arg)
{
	return mutate(ctl, edit, arg);
}

/* Reads one line from stdin: a password or secret, never echoed. */
static void
read_stdin_line(const char *what, char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, stdin) == NULL)
		ctl_die("no %s on stdin", what);
	n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n + 1 == len && !feof(stdin))
		ctl_die("%s on stdin is too long", what);
	buf[n] = '\0';
	if (n == 0)
		ctl_die("empty %s on stdin", what);
}

static Sluice__Policy *
read_policy(struct ctl *ctl)
{
	return admin_policy_get(ctl, 0);
}

/* ------------------------------------------------------------ networks */

struct net_arg {
	char cidr[64];
	int action; /* 0 allow, 1 deny, 2 delete */
};

static void
net_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct net_arg *a = arg;
	int i = policy_find_network(p, a->cidr);

	if (a->action == 2) {
		if (i < 0)
			ctl_die("network %s is not in the policy", a->cidr);
		policy_del_network(p, (size_t)i);
		snprintf(msg, msglen, "network %s removed", a->cidr);
		return;
	}
	if (i >= 0) {
		if (p->networks[i]->deny == (a->action == 1))
			return; /* already so: the apply is a no-op */
		policy_del_network(p, (size_t)i);
	}
	policy_add_network(p, a->cidr, a->action == 1);
	snprintf(msg, msglen, "network %s %s", a->cidr,
	    a->action == 1 ? "denied" : "allowed");
}

static int
net_cmd(struct ctl *ctl, int argc, char **argv, int action, const char *use)
{
	struct net_arg a;
	struct cidr c;
	char why[200];

	if (argc != 1)
		ctl_usage(use);
	if (cidr_parse(argv[0], &c, why, sizeof(why)) == -1)
		ctl_die("%s", why);
	cidr_format(&c, a.cidr, sizeof(a.cidr));
	a.action = action;
	return mutate(ctl, net_edit, &a);
}

int
cmd_network_allow(struct ctl *ctl, int argc, char **argv)
{
	return net_cmd(ctl, argc, argv, 0, "network allow CIDR");
}

int
cmd_network_deny(struct ctl *ctl, int argc, char **argv)
{
	return net_cmd(ctl, argc, argv, 1, "network deny CIDR");
}

int
cmd_network_del(struct ctl *ctl, int argc, char **argv)
{
	return net_cmd(ctl, argc, argv, 2, "network del CIDR");
}

int
cmd_network_list(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	struct table t;
	struct json j;
	size_t i;

	(void)argv;
	if (argc != 0)
		ctl_usage("network list");
	p = read_policy(ctl);
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", p->version);
		policy_json_networks(&j, p);
		json_object_end(&j);
	} else if (p->n_networks == 0)
		printf("no networks: only authenticated clients may relay\n");
	else {
		table_init(&t, 2, "NETWORK", "ACTION");
		for (i = 0; i < p->n_networks; i++)
			table_row(&t, p->networks[i]->cidr,
			    p->networks[i]->deny ? "deny" : "allow");
		table_print(&t, stdout);
	}
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

/* --------------------------------------------------------------- users */

struct user_arg {
	const char *name;
	char hash[PASSWD_HASH_MAX]; /* "" : keep */
	char **senders;
	size_t n_senders;
	bool has_rate;
	uint32_t rate;
	bool del;
	struct ctl_user_quota quota; /* issue 15 */
};

/* --quota-hour-msgs and friends: the User fields in proto order. */
static const char *const user_quota_flags[4] = {"--quota-hour-msgs",
    "--quota-hour-rcpts", "--quota-day-msgs", "--quota-day-rcpts"};

static uint32_t *
user_quota_field(Sluice__User *u, int k)
{
	return k == 0   ? &u->quota_hour_msgs
	       : k == 1 ? &u->quota_hour_rcpts
	       : k == 2 ? &u->quota_day_msgs
	                : &u->quota_day_rcpts;
}

bool
ctl_user_quota_flag(struct ctl_user_quota *q, int argc, char **argv, int *i)
{
	uint64_t v;
	int k;

	for (k = 0; k < 4; k++) {
		if (strcmp(argv[*i], user_quota_flags[k]) != 0 ||
		    *i + 1 >= argc)
			continue;
		if (ctl_parse_u64(argv[++*i], UINT32_MAX, &v) == -1)
			ctl_die("%s must be a whole number (0: no quota), "
			        "not '%s'",
			    user_quota_flags[k], argv[*i]);
		q->has[k] = true;
		q->v[k] = (uint32_t)v;
		return true;
	}
	return false;
}

void
ctl_user_quota_apply(struct Sluice__User *u, const struct ctl_user_quota *q)
{
	int k;

	for (k = 0; k < 4; k++)
		if (q->has[k])
			*user_quota_field(u, k) = q->v[k];
}

static void
user_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct user_arg *a = arg;
	Sluice__User *u;
	int i = policy_find_user(p, a->name);
	size_t k;

	if (a->del) {
		if (i < 0)
			ctl_die("no user named '%s'", a->name);
		policy_del_user(p, (size_t)i);
		snprintf(msg, msglen, "user %s removed", a->name);
		return;
	}
	if (i < 0) {
		if (a->hash[0] == '\0')
			ctl_die(
			    "user %s needs a password: use --password-stdin",
			    a->name);
		u = policy_add_user(p, a->name);
		snprintf(msg, msglen, "user %s added", a->name);
	} else {
		u = p->users[i];
		snprintf(msg, msglen, "user %s updated", a->name);
	}
	if (a->hash[0] != '\0')
		policy_set_str(&u->password_hash, a->hash);
	u->has_password = true;
	if (a->n_senders > 0) {
		for (k = 0; k < u->n_senders; k++)
			free(u->senders[k]);
		u->n_senders = 0;
		for (k = 0; k < a->n_senders; k++)
			policy_strv_add(
			    &u->senders, &u->n_senders, a->senders[k]);
	}
	if (a->has_rate)
		u->rate_per_minute = a->rate;
	ctl_user_quota_apply(u, &a->quota);
}

int
cmd_user_add(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "user add NAME --password-stdin [--sender PATTERN]... [--rate N]\n"
	    "\t[--quota-hour-msgs N] [--quota-hour-rcpts N] "
	    "[--quota-day-msgs N] [--quota-day-rcpts N]";
	struct user_arg a;
	char pw[LINE_MAX_SECRET];
	bool pw_stdin = false;
	uint64_t v;
	int i, rc;

	memset(&a, 0, sizeof(a));
	if (argc < 1 || argv[0][0] == '-')
		ctl_usage(use);
	a.name = argv[0];
	a.senders = xcalloc((size_t)argc, sizeof(char *));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0)
			pw_stdin = true;
		else if (strcmp(argv[i], "--sender") == 0 && i + 1 < argc) {
			if (policy_check_sender(argv[++i]) == -1)
				ctl_die("bad sender pattern '%s' (use *, "
				        "*@domain or local@domain)",
				    argv[i]);
			a.senders[a.n_senders++] = argv[i];
		} else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
			if (ctl_parse_u64(argv[++i], UINT32_MAX, &v) == -1)
				ctl_die("--rate must be a whole number of "
				        "messages per minute, not '%s'",
				    argv[i]);
			a.has_rate = true;
			a.rate = (uint32_t)v;
		} else if (ctl_user_quota_flag(&a.quota, argc, argv, &i))
			continue;
		else if (strcmp(argv[i], "--password") == 0)
			ctl_die("passwords are not taken on the command line "
			        "(they leak into ps and shell history): use "
			        "--password-stdin");
		else
			ctl_usage(use);
	}
	if (policy_check_name(a.name) == -1)
		ctl_die("user name '%.64s' must be 1-64 characters of letters, "
		        "digits and ._@+-",
		    a.name);
	if (pw_stdin) {
		read_stdin_line("password", pw, sizeof(pw));
		rc = passwd_hash(pw, a.hash, sizeof(a.hash));
		explicit_bzero(pw, sizeof(pw));
		if (rc == -1)
			ctl_die("cannot hash the password");
	}
	rc = mutate(ctl, user_edit, &a);
	free(a.senders);
	return rc;
}

int
cmd_user_del(struct ctl *ctl, int argc, char **argv)
{
	struct user_arg a;

	if (argc != 1)
		ctl_usage("user del NAME");
	memset(&a, 0, sizeof(a));
	a.name = argv[0];
	a.del = true;
	return mutate(ctl, user_edit, &a);
}

static void
join(char *buf, size_t len, char *const *v, size_t n, const char *sep)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(
		    buf + off, len - off, "%s%s", i ? sep : "", v[i]);
}

/* "10/50 an hour, 100/- a day", "-": the quotas of u. */
static void
user_quota_text(const Sluice__User *u, char *buf, size_t len)
{
	char v[4][16];
	int k;

	for (k = 0; k < 4; k++) {
		uint32_t q = k == 0   ? u->quota_hour_msgs
		             : k == 1 ? u->quota_hour_rcpts
		             : k == 2 ? u->quota_day_msgs
		                      : u->quota_day_rcpts;
		if (q == 0)
			snprintf(v[k], sizeof(v[k]), "-");
		else
			snprintf(v[k], sizeof(v[k]), "%" PRIu32, q);
	}
	if (u->quota_hour_msgs == 0 && u->quota_hour_rcpts == 0 &&
	    u->quota_day_msgs == 0 && u->quota_day_rcpts == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s/%s an hour, %s/%s a day", v[0], v[1],
		    v[2], v[3]);
}

int
cmd_user_list(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	struct table t;
	struct json j;
	char senders[512], rate[32], quota[96];
	size_t i;

	(void)argv;
	if (argc != 0)
		ctl_usage("user list");
	p = read_policy(ctl);
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", p->version);
		policy_json_users(&j, p);
		json_object_end(&j);
	} else if (p->n_users == 0)
		printf("no users\n");
	else {
		table_init(&t, 5, "USER", "RATE/MIN", "PASSWORD", "SENDERS",
		    "QUOTA MSGS/RCPTS");
		for (i = 0; i < p->n_users; i++) {
			const Sluice__User *u = p->users[i];
			join(senders, sizeof(senders), u->senders, u->n_senders,
			    " ");
			if (u->rate_per_minute == 0)
				snprintf(rate, sizeof(rate), "default");
			else
				snprintf(rate, sizeof(rate), "%" PRIu32,
				    u->rate_per_minute);
			user_quota_text(u, quota, sizeof(quota));
			table_row(&t, u->name, rate,
			    u->has_password ? "set" : "none", senders, quota);
		}
		table_print(&t, stdout);
	}
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

/* ---------------------------------------------------------------- hops */

struct hop_arg {
	Sluice__Hop *hop; /* built from the flags */
	bool secret_given;
	bool del;
	const char *name;
};

static const char *
route_using(const Sluice__Policy *p, const char *hop)
{
	size_t i, j, k;

	for (i = 0; i < p->n_routes; i++)
		for (j = 0; j < p->routes[i]->n_groups; j++)
			for (k = 0; k < p->routes[i]->groups[j]->n_hops; k++)
				if (strcmp(p->routes[i]->groups[j]->hops[k],
				        hop) == 0)
					return p->routes[i]->pattern;
	return NULL;
}

static Sluice__Hop *
hop_dup(const Sluice__Hop *src)
{
	size_t len = protobuf_c_message_get_packed_size(&src->base);
	uint8_t *buf = xcalloc(1, len + 1);
	Sluice__Hop *h;

	protobuf_c_message_pack(&src->base, buf);
	h = sluice__hop__unpack(NULL, len, buf);
	explicit_bzero(buf, len);
	free(buf);
	if (h == NULL)
		ctl_die("out of memory");
	return h;
}

static void
hop_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct hop_arg *a = arg;
	Sluice__Hop *h;
	const char *route, *missing;
	int i = policy_find_hop(p, a->name);

	if (a->del) {
		if (i < 0)
			ctl_die("no hop named '%s'", a->name);
		if ((route = route_using(p, a->name)) != NULL)
			ctl_die("hop '%s' is used by route '%s': change or "
			        "delete the route first",
			    a->name, route);
		policy_del_hop(p, (size_t)i);
		snprintf(msg, msglen, "hop %s removed", a->name);
		return;
	}
	h = hop_dup(a->hop);
	/* Replacing a hop keeps its stored secret unless a new one is
	 * given, as long as it still authenticates. */
	if (i >= 0 && !a->secret_given && p->hops[i]->has_secret &&
	    h->auth_user[0] != '\0') {
		h->has_secret = true;
		h->keep_secret = true;
		/* the kept credential's kind and, for a service account,
		 * its client_email come with it */
		if (h->oauth2[0] != '\0' &&
		    strcmp(h->oauth2, p->hops[i]->oauth2) == 0) {
			h->oauth2_cert = p->hops[i]->oauth2_cert;
			if (h->oauth2_client_id[0] == '\0')
				policy_set_str(&h->oauth2_client_id,
				    p->hops[i]->oauth2_client_id);
		}
	}
	/* A cloud relay refuses mail without its credentials (issue 10):
	 * refuse the hop instead (a stored secret counts). */
	if (h->oauth2[0] != '\0') {
		char buf[200];
		const char *why =
		    oauth_conf_problem(h, h->has_secret, buf, sizeof(buf));

		if (why != NULL)
			ctl_die("hop %s: %s", a->name, why);
	} else if (h->preset[0] != '\0' &&
	           (missing = hop_preset_missing(h->preset,
	                h->auth_user[0] != '\0', h->has_secret)) != NULL)
		ctl_die(
		    "hop %s: preset %s needs %s", a->name, h->preset, missing);
	if (i >= 0) {
		sluice__hop__free_unpacked(p->hops[i], NULL);
		p->hops[i] = h;
		snprintf(msg, msglen, "hop %s updated", a->name);
	} else {
		p->hops =
		    xreallocarray(p->hops, p->n_hops + 1, sizeof(*p->hops));
		p->hops[p->n_hops++] = h;
		snprintf(msg, msglen, "hop %s added", a->name);
	}
}

static void
free_str(char *s)
{
	if (s != protobuf_c_empty_string)
		free(s);
}

static uint32_t
flag_u32(const char *flag, const char *v, uint32_t max)
{
	uint64_t x;

	if (ctl_parse_u64(v, max, &x) == -1)
		ctl_die("%s must be a whole number 0..%" PRIu32 ", not '%s'",
		    flag, max, v);
	return (uint32_t)x;
}

int
cmd_hop_add(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "hop add NAME --host H --port P --tls none|starttls|require|smtps "
	    "[--user U --secret-stdin] [--preset "
	    "sendgrid|ses|mailgun|m365|google] "
	    "[--region R] [--eu] [--max-conn N] [--rate R] [--weight W] "
	    "[--max-rcpt N] [--max-size BYTES] [--no-verify] "
	    "[--oauth2 m365|google [--tenant T] [--client-id ID] "
	    "[--client-secret-stdin | --cert-key-file PEM | "
	    "--service-account-file JSON] [--impersonate USER] "
	    "[--token-url URL] [--scope S]]";
	Sluice__Hop hop = SLUICE__HOP__INIT;
	struct hop_arg a;
	const char *preset = NULL, *region = NULL, *host = NULL, *user = NULL;
	const char *tls = NULL, *port = NULL, *maxconn = NULL, *rate = NULL;
	const char *weight = NULL, *maxrcpt = NULL, *maxsize = NULL;
	const char *oauth2 = NULL, *tenant = NULL, *client_id = NULL;
	const char *cert_key = NULL, *sa_file = NULL, *token_url = NULL;
	const char *scope = NULL, *impersonate = NULL;
	bool eu = false, noverify = false, secret_stdin = false;
	char why[256], secret[LINE_MAX_SECRET];
	uint64_t v;
	int i, rc;

	if (argc < 1 || argv[0][0] == '-')
		ctl_usage(use);
	memset(&a, 0, sizeof(a));
	a.name = argv[0];
	for (i = 1; i < argc; i++) {
		const char *f = argv[i], **dst = NULL;
		if (strcmp(f, "--eu") == 0)
			eu = true;
		else if (strcmp(f, "--no-verify") == 0)
			noverify = true;
		else if (strcmp(f, "--secret-stdin") == 0 ||
		         strcmp(f, "--client-secret-stdin") == 0)
			secret_stdin = true;
		else if (strcmp(f, "--oauth2") == 0)
			dst = &oauth2;
		else if (strcmp(f, "--tenant") == 0)
			dst = &tenant;
		else if (strcmp(f, "--client-id") == 0)
			dst = &client_id;
		else if (strcmp(f, "--cert-key-file") == 0)
			dst = &cert_key;
		else if (strcmp(f, "--service-account-file") == 0)
			dst = &sa_file;
		else if (strcmp(f, "--token-url") == 0)
			dst = &token_url;
		else if (strcmp(f, "--scope") == 0)
			dst = &scope;
		else if (strcmp(f, "--impersonate") == 0)
			dst = &impersonate;
		else if (strcmp(f, "--secret") == 0)
			ctl_die("secrets are not taken on the command line: "
			        "use --secret-stdin");
		else if (strcmp(f, "--host") == 0)
			dst = &host;
		else if (strcmp(f, "--port") == 0)
			dst = &port;
		else if (strcmp(f, "--tls") == 0)
			dst = &tls;
		else if (strcmp(f, "--user") == 0)
			dst = &user;
		else if (strcmp(f, "--preset") == 0)
			dst = &preset;
		else if (strcmp(f, "--region") == 0)
			dst = &region;
		else if (strcmp(f, "--max-conn") == 0)
			dst = &maxconn;
		else if (strcmp(f, "--rate") == 0)
			dst = &rate;
		else if (strcmp(f, "--weight") == 0)
			dst = &weight;
		else if (strcmp(f, "--max-rcpt") == 0)
			dst = &maxrcpt;
		else if (strcmp(f, "--max-size") == 0)
			dst = &maxsize;
		else
			ctl_usage(use);
		if (dst != NULL) {
			if (i + 1 >= argc)
				ctl_die("%s needs a value", f);
			*dst = argv[++i];
		}
	}
	if (policy_check_name(a.name) == -1)
		ctl_die("hop name '%.64s' must be 1-64 characters of letters, "
		        "digits and ._@+-",
		    a.name);
	policy_set_str(&hop.name, a.name);
	if (preset != NULL) {
		if (hop_preset_apply(
		        &hop, preset, region, eu, why, sizeof(why)) == -1)
			ctl_die("%s", why);
	} else if (region != NULL || eu)
		ctl_die("--region and --eu go with --preset");
	else if (strcmp(a.name, "mx") != 0 && oauth2 == NULL &&
	         (host == NULL || port == NULL || tls == NULL))
		ctl_die("hop add needs --host, --port and --tls (or --preset)");
	if (oauth2 != NULL) {
		/* --oauth2 m365 alone is the m365 preset with XOAUTH2 */
		if (hop_oauth_kind(&hop, oauth2, why, sizeof(why)) == -1)
			ctl_die("%s", why);
	} else if (tenant != NULL || client_id != NULL || cert_key != NULL ||
	           sa_file != NULL || token_url != NULL || scope != NULL ||
	           impersonate != NULL)
		ctl_die(
		    "--tenant, --client-id, --cert-key-file, "
		    "--service-account-file, --impersonate, --token-url and "
		    "--scope go with --oauth2 m365|google");
	if (host != NULL)
		policy_set_str(&hop.host, host);
	if (port != NULL)
		hop.port = flag_u32("--port", port, 65535);
	if (tls != NULL) {
		if (hop_tls_parse(tls, &hop.tls) == -1)
			ctl_die("--tls must be none, starttls, require or "
			        "smtps, not '%s'",
			    tls);
		hop.verify_cert = hop_tls_verify_default(hop.tls);
	}
	if (noverify)
		hop.verify_cert = false;
	if (user != NULL)
		policy_set_str(&hop.auth_user, user);
	if (impersonate != NULL) {
		if (user != NULL && strcmp(user, impersonate) != 0)
			ctl_die("--impersonate is the AUTH user: give it or "
			        "--user, not both");
		policy_set_str(&hop.auth_user, impersonate);
	}
	if (tenant != NULL)
		policy_set_str(&hop.oauth2_tenant, tenant);
	if (client_id != NULL)
		policy_set_str(&hop.oauth2_client_id, client_id);
	if (token_url != NULL)
		policy_set_str(&hop.oauth2_token_url, token_url);
	if (scope != NULL)
		policy_set_str(&hop.oauth2_scope, scope);
	if ((secret_stdin != 0) + (cert_key != NULL) + (sa_file != NULL) > 1)
		ctl_die("give one of --client-secret-stdin, --cert-key-file, "
		        "--service-account-file");
	if (cert_key != NULL) {
		if (strcmp(hop.oauth2, "m365") != 0)
			ctl_die("--cert-key-file goes with --oauth2 m365");
		if (hop_oauth_cert_key_file(&hop, cert_key, why, sizeof(why)) ==
		    -1)
			ctl_die("%s", why);
		a.secret_given = true;
	}
	if (sa_file != NULL) {
		if (strcmp(hop.oauth2, "google") != 0)
			ctl_die("--service-account-file goes with --oauth2 "
			        "google");
		if (hop_oauth_service_account_file(
		        &hop, sa_file, why, sizeof(why)) == -1)
			ctl_die("%s", why);
		a.secret_given = true;
	}
	if (maxconn != NULL)
		hop.max_conn = flag_u32("--max-conn", maxconn, 10000);
	if (rate != NULL)
		hop.rate_per_minute = flag_u32("--rate", rate, UINT32_MAX);
	if (weight != NULL)
		hop.weight = flag_u32("--weight", weight, 1000);
	if (maxrcpt != NULL)
		hop.max_rcpt = flag_u32("--max-rcpt", maxrcpt, UINT32_MAX);
	if (maxsize != NULL) {
		if (ctl_parse_u64(maxsize, UINT64_MAX, &v) == -1)
			ctl_die("--max-size must be a whole number of bytes, "
			        "not '%s'",
			    maxsize);
		hop.max_size = v;
	}
	if (secret_stdin) {
		if (hop.auth_user[0] == '\0')
			ctl_die("--secret-stdin needs --user (the AUTH user)");
		read_stdin_line("secret", secret, sizeof(secret));
		policy_set_str(&hop.secret, secret);
		explicit_bzero(secret, sizeof(secret));
		hop.has_secret = true;
		a.secret_given = true;
	}
	a.hop = &hop;
	rc = mutate(ctl, hop_edit, &a);
	explicit_bzero(hop.secret, strlen(hop.secret));
	/* hop is on the stack: free only its strings. */
	free_str(hop.name);
	free_str(hop.host);
	free_str(hop.auth_user);
	free_str(hop.secret);
	free_str(hop.preset);
	free_str(hop.oauth2);
	free_str(hop.oauth2_tenant);
	free_str(hop.oauth2_client_id);
	free_str(hop.oauth2_token_url);
	free_str(hop.oauth2_scope);
	return rc;
}

int
cmd_hop_del(struct ctl *ctl, int argc, char **argv)
{
	struct hop_arg a;

	if (argc != 1)
		ctl_usage("hop del NAME");
	memset(&a, 0, sizeof(a));
	a.name = argv[0];
	a.del = true;
	return mutate(ctl, hop_edit, &a);
}

int
cmd_hop_list(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	struct table t;
	struct json j;
	char addr[300], conn[16], rate[16], weight[16];
	size_t i;

	(void)argv;
	if (argc != 0)
		ctl_usage("hop list");
	p = read_policy(ctl);
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", p->version);
		policy_json_hops(&j, p);
		json_object_end(&j);
	} else if (p->n_hops == 0)
		printf("no hops\n");
	else {
		table_init(&t, 8, "HOP", "ADDRESS", "TLS", "USER", "SECRET",
		    "CONN", "RATE", "WEIGHT");
		for (i = 0; i < p->n_hops; i++) {
			const Sluice__Hop *h = p->hops[i];
			if (h->host[0] == '\0')
				snprintf(addr, sizeof(addr), "(MX lookup)");
			else
				snprintf(addr, sizeof(addr), "%s:%" PRIu32,
				    h->host, h->port);
			snprintf(conn, sizeof(conn), "%" PRIu32,
			    h->max_conn ? h->max_conn : 10);
			if (h->rate_per_minute == 0)
				snprintf(rate, sizeof(rate), "-");
			else
				snprintf(rate, sizeof(rate), "%" PRIu32 "/m",
				    h->rate_per_minute);
			snprintf(weight, sizeof(weight), "%" PRIu32,
			    h->weight ? h->weight : 1);
			char tlsb[32];
			snprintf(tlsb, sizeof(tlsb), "%s%s",
			    hop_tls_name(h->tls),
			    h->verify_cert == hop_tls_verify_default(h->tls)
			        ? ""
			    : h->verify_cert ? ",verify"
			                     : ",noverify");
			table_row(&t, h->name, addr, tlsb,
			    h->auth_user[0] ? h->auth_user : "-",
			    !h->has_secret         ? "-"
			    : h->oauth2[0] == '\0' ? "stored"
			    : h->oauth2_cert       ? "oauth2 cert"
			    : strcmp(h->oauth2, "google") == 0
			        ? "oauth2 key"
			        : "oauth2 secret",
			    conn, rate, weight);
		}
		table_print(&t, stdout);
	}
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

/* -------------------------------------------------------------- routes */

struct route_arg {
	Sluice__Route match; /* pattern and conditions */
	int ngroups;
	char **groups; /* "a,b" per group */
	bool del;
};

static void
route_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct route_arg *a = arg;
	Sluice__Route *r;
	Sluice__HopGroup *g;
	char *copy, *tok, *save, name[300];
	int i = policy_find_route_like(p, &a->match), k;

	route_describe(&a->match, name, sizeof(name));
	if (a->del) {
		if (i < 0)
			ctl_die("no route '%s'", name);
		policy_del_route(p, (size_t)i);
		snprintf(msg, msglen, "route %s removed", name);
		return;
	}
	if (i >= 0) {
		r = p->routes[i];
		policy_route_clear(r);
		snprintf(msg, msglen, "route %s updated", name);
	} else {
		r = policy_add_route(p, a->match.pattern);
		policy_set_str(&r->sender, a->match.sender);
		policy_set_str(&r->user, a->match.user);
		policy_set_str(&r->listener, a->match.listener);
		policy_set_str(&r->client, a->match.client);
		snprintf(msg, msglen, "route %s added", name);
	}
	for (k = 0; k < a->ngroups; k++) {
		g = policy_route_add_group(r);
		copy = xstrdup(a->groups[k]);
		for (tok = strtok_r(copy, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save))
			policy_strv_add(&g->hops, &g->n_hops, tok);
		free(copy);
		if (g->n_hops == 0)
			ctl_die("empty hop group '%s'", a->groups[k]);
	}
}

/* PATTERN [--from S] [--user U] [--listener L] [--client CIDR] [HOPS]...:
 * the conditions go to a->match, the rest (hop groups) stay in argv
 * order in a->groups. */
static void
route_args(struct route_arg *a, int argc, char **argv, const char *use)
{
	static char canon[64];
	struct cidr c;
	char why[200];
	int i;

	memset(a, 0, sizeof(*a));
	sluice__route__init(&a->match);
	if (argc < 1 || argv[0][0] == '-')
		ctl_usage(use);
	if (policy_check_pattern(argv[0]) == -1)
		ctl_die("route pattern '%s' must be *, *.domain or domain",
		    argv[0]);
	a->match.pattern = argv[0];
	a->groups = xcalloc((size_t)argc, sizeof(char *));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
			a->match.sender = argv[++i];
			if (!route_sender_syntax(a->match.sender))
				ctl_die("--from '%s' must be local@domain, "
				        "*@domain or *@*.domain",
				    a->match.sender);
		} else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			a->match.user = argv[++i];
		else if (strcmp(argv[i], "--listener") == 0 && i + 1 < argc)
			a->match.listener = argv[++i];
		else if (strcmp(argv[i], "--client") == 0 && i + 1 < argc) {
			if (cidr_parse(argv[++i], &c, why, sizeof(why)) == -1)
				ctl_die("--client: %s", why);
			cidr_format(&c, canon, sizeof(canon));
			a->match.client = canon;
		} else if (argv[i][0] == '-')
			ctl_usage(use);
		else
			a->groups[a->ngroups++] = argv[i];
	}
}

int
cmd_route_set(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "route set PATTERN [--from S] [--user U] [--listener L] "
	    "[--client CIDR] HOP[,HOP...] [HOP[,HOP...]]...";
	struct route_arg a;
	int rc;

	route_args(&a, argc, argv, use);
	if (a.ngroups == 0)
		ctl_usage(use);
	rc = mutate(ctl, route_edit, &a);
	free(a.groups);
	return rc;
}

int
cmd_route_del(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "route del PATTERN [--from S] [--user U] [--listener L] "
	    "[--client CIDR]";
	struct route_arg a;
	int rc;

	route_args(&a, argc, argv, use);
	if (a.ngroups != 0)
		ctl_usage(use);
	a.del = true;
	rc = mutate(ctl, route_edit, &a);
	free(a.groups);
	return rc;
}

int
cmd_route_list(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	struct table t;
	struct json j;
	char buf[1024], g[512], name[300];
	size_t i, k, off;

	(void)argv;
	if (argc != 0)
		ctl_usage("route list");
	p = read_policy(ctl);
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", p->version);
		policy_json_routes(&j, p);
		json_object_end(&j);
	} else if (p->n_routes == 0)
		printf("no routes: mail cannot be delivered anywhere\n");
	else {
		/* Equal-priority hops joined by ",", failover by " > ". */
		table_init(&t, 2, "ROUTE (pattern and conditions)",
		    "HOPS (a,b share load; > fails over)");
		for (i = 0; i < p->n_routes; i++) {
			const Sluice__Route *r = p->routes[i];
			buf[0] = '\0';
			for (k = 0, off = 0;
			     k < r->n_groups && off < sizeof(buf); k++) {
				join(g, sizeof(g), r->groups[k]->hops,
				    r->groups[k]->n_hops, ",");
				off += (size_t)snprintf(buf + off,
				    sizeof(buf) - off, "%s%s", k ? " > " : "",
				    g);
			}
			route_describe(r, name, sizeof(name));
			table_row(&t, name, buf);
		}
		table_print(&t, stdout);
	}
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

/* -------------------------------------------------------------- limits */

struct limit_arg {
	const struct limit_def *def;
	int64_t value;
};

static void
limit_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct limit_arg *a = arg;

	policy_set_limit(p, a->def->key, a->value);
	snprintf(msg, msglen, "limit %s = %" PRId64 "%s", a->def->key, a->value,
	    a->value == a->def->def ? " (default)" : "");
}

int
cmd_limit_set(struct ctl *ctl, int argc, char **argv)
{
	struct limit_arg a;
	char keys[1024], err[256];
	size_t i, off = 0;

	if (argc != 2)
		ctl_usage("limit set KEY VALUE");
	if ((a.def = limit_find(argv[0])) == NULL) {
		for (i = 0; i < limit_count && off < sizeof(keys); i++)
			off += (size_t)snprintf(keys + off, sizeof(keys) - off,
			    "%s%s", i ? ", " : "", limit_table[i].key);
		ctl_die("unknown limit '%s' (known: %s)", argv[0], keys);
	}
	if (limit_parse(a.def, argv[1], &a.value, err, sizeof(err)) == -1)
		ctl_die("%s", err);
	return mutate(ctl, limit_edit, &a);
}

int
cmd_limit_list(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	struct table t;
	struct json j;
	char val[32], def[32];
	size_t i;

	(void)argv;
	if (argc != 0)
		ctl_usage("limit list");
	p = read_policy(ctl);
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", p->version);
		json_array_begin(&j, "limits");
		for (i = 0; i < limit_count; i++) {
			const struct limit_def *d = &limit_table[i];
			json_object_begin(&j, NULL);
			json_str(&j, "key", d->key);
			json_int(&j, "value", limit_get(p, d->key));
			json_int(&j, "default", d->def);
			json_int(&j, "min", d->min);
			json_int(&j, "max", d->max);
			json_bool(
			    &j, "is_default", policy_find_limit(p, d->key) < 0);
			json_str(&j, "help", d->help);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
	} else {
		table_init(&t, 4, "LIMIT", "VALUE", "DEFAULT", "MEANING");
		for (i = 0; i < limit_count; i++) {
			const struct limit_def *d = &limit_table[i];
			limit_format(
			    d, limit_get(p, d->key), val, sizeof(val) - 1);
			if (policy_find_limit(p, d->key) >= 0)
				strcat(val, "*");
			limit_format(d, d->def, def, sizeof(def));
			table_row(&t, d->key, val, def, d->help);
		}
		table_print(&t, stdout);
		printf("(* set away from the default)\n");
	}
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

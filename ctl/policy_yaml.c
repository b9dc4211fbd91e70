/* policy_yaml.c - YAML policy files (see policy_yaml.h).  Parsing loads
 * libyaml's document tree, whose nodes carry their source line, and walks
 * it section by section; every error is one line naming file and line.
 * Emitting writes YAML by hand so the layout stays the documented one. */
#include "policy_yaml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cidr.h"
#include "hop_oauth.h"
#include "hop_preset.h"
#include "limit_table.h"
#include "passwd.h"
#include "policy_edit.h"
#include "xmalloc.h"

#define SECRET_MAX 4096 /* longest secret or password read */

enum {
	SEC_NETWORKS,
	SEC_USERS,
	SEC_HOPS,
	SEC_ROUTES,
	SEC_LIMITS,
	SEC_DKIM,
	SEC_N
};
static const char *const sec_names[SEC_N] = {
    "networks", "users", "hops", "routes", "limits", "dkim"};

struct policy_lines {
	int *line[SEC_N];
	size_t n[SEC_N];
	bool has_dkim; /* the file has a dkim: key */
	bool has_suppression_mode;
};

struct yp {
	yaml_document_t doc;
	const char *fname;
	char *err;
	size_t errlen;
	struct policy_lines *lines;
	Sluice__Policy *p;
};

static int yerr(struct yp *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
yerr(struct yp *y, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(y->err, y->errlen, "%s:%zu: %s", y->fname,
	    (size_t)n->start_mark.line + 1, msg);
	return -1;
}

static void
record(struct yp *y, int sec, const yaml_node_t *n)
{
	struct policy_lines *l = y->lines;

	l->line[sec] = xreallocarray(l->line[sec], l->n[sec] + 1, sizeof(int));
	l->line[sec][l->n[sec]++] = (int)n->start_mark.line + 1;
}

static yaml_node_t *
node(struct yp *y, int id)
{
	return yaml_document_get_node(&y->doc, id);
}

static const char *
ntype(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a single value";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "empty";
	}
}

static int
want(struct yp *y, const yaml_node_t *n, yaml_node_type_t t, const char *what)
{
	static const char *const names[] = {
	    "nothing", "a single value", "a list", "a mapping"};

	if (n->type == t)
		return 0;
	return yerr(y, n, "%s must be %s, not %s", what, names[t], ntype(n));
}

static bool
is_null(const yaml_node_t *n)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

static int
str(struct yp *y, const yaml_node_t *n, const char *what, const char **out)
{
	if (want(y, n, YAML_SCALAR_NODE, what) == -1)
		return -1;
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return yerr(y, n, "%s contains a NUL byte", what);
	*out = (const char *)n->data.scalar.value;
	return 0;
}

static int
u64(struct yp *y, const yaml_node_t *n, const char *what, uint64_t max,
    uint64_t *out)
{
	const char *s;
	char *end;
	unsigned long long v;

	if (str(y, n, what, &s) == -1)
		return -1;
	if (s[0] == '-')
		return yerr(y, n, "%s must not be negative (%.32s)", what, s);
	if (s[0] < '0' || s[0] > '9' ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return yerr(
		    y, n, "%s must be a whole number, not '%.32s'", what, s);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return yerr(
		    y, n, "%s must be a whole number, not '%.32s'", what, s);
	if (errno != 0 || v > max)
		return yerr(y, n, "%s must be at most %" PRIu64, what, max);
	*out = v;
	return 0;
}

static int
u32(struct yp *y, const yaml_node_t *n, const char *what, uint32_t *out)
{
	uint64_t v;

	if (u64(y, n, what, UINT32_MAX, &v) == -1)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
boolean(struct yp *y, const yaml_node_t *n, const char *what, bool *out)
{
	const char *s;

	if (str(y, n, what, &s) == -1)
		return -1;
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0)
		*out = true;
	else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0)
		*out = false;
	else
		return yerr(
		    y, n, "%s must be true or false, not '%.32s'", what, s);
	return 0;
}

/* A mapping as (key, value) pairs with keys checked against `allowed`
 * (NULL-terminated); duplicates and unknown keys are errors. */
struct kv {
	const char *key;
	yaml_node_t *keynode;
	yaml_node_t *val;
};

static int
pairs(struct yp *y, const yaml_node_t *m, const char *what,
    const char *const *allowed, struct kv *out, size_t max, size_t *np)
{
	yaml_node_pair_t *pr;
	size_t n = 0, i;
	const char *k;

	if (want(y, m, YAML_MAPPING_NODE, what) == -1)
		return -1;
	for (pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *kn = node(y, pr->key), *vn = node(y, pr->value);
		if (str(y, kn, "a key", &k) == -1)
			return -1;
		if (allowed != NULL) {
			for (i = 0; allowed[i] != NULL; i++)
				if (strcmp(allowed[i], k) == 0)
					break;
			if (allowed[i] == NULL)
				return yerr(y, kn, "unknown key '%.64s' in %s",
				    k, what);
		}
		for (i = 0; i < n; i++)
			if (strcmp(out[i].key, k) == 0)
				return yerr(
				    y, kn, "key '%.64s' given twice", k);
		if (n == max)
			return yerr(y, kn, "too many keys in %s", what);
		out[n].key = k;
		out[n].keynode = kn;
		out[n].val = vn;
		n++;
	}
	*np = n;
	return 0;
}

static yaml_node_t *
get(struct kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].val;
	return NULL;
}

/* Iterate a sequence; a null value is an empty list. */
#define SEQ_EACH(y, seq, it)                                                   \
	for (yaml_node_item_t *it = (seq)->type == YAML_SEQUENCE_NODE          \
	                                ? (seq)->data.sequence.items.start     \
	                                : NULL;                                \
	     it != NULL && it < (seq)->data.sequence.items.top; it++)

static int
seq_or_null(struct yp *y, const yaml_node_t *n, const char *what)
{
	if (is_null(n))
		return 0;
	return want(y, n, YAML_SEQUENCE_NODE, what);
}

/* Reads the first line of a file or an environment variable: the secret
 * or password, resolved here so it never has to be written in the file. */
static int
read_secret(
    struct yp *y, const yaml_node_t *n, bool is_env, char *out, size_t outlen)
{
	const char *src, *v;
	FILE *f;
	size_t len;

	if (str(y, n, is_env ? "an environment variable name" : "a file name",
	        &src) == -1)
		return -1;
	if (is_env) {
		if ((v = getenv(src)) == NULL || v[0] == '\0')
			return yerr(
			    y, n, "environment variable %.64s is not set", src);
		if (strlen(v) >= outlen)
			return yerr(y, n, "secret in %.64s is too long", src);
		strcpy(out, v);
	} else {
		if ((f = fopen(src, "r")) == NULL)
			return yerr(y, n, "cannot read %.200s: %s", src,
			    strerror(errno));
		if (fgets(out, (int)outlen, f) == NULL)
			out[0] = '\0';
		fclose(f);
	}
	len = strcspn(out, "\r\n");
	out[len] = '\0';
	if (len == 0)
		return yerr(y, n, "%.200s is empty", src);
	return 0;
}

static int
parse_networks(struct yp *y, const yaml_node_t *m)
{
	static const char *const keys[] = {"allow", "deny", NULL};
	static const char *const order[] = {"allow", "deny"};
	struct kv kv[2];
	size_t n, i;
	const char *s;
	struct cidr c;
	char why[200], canon[64];

	if (is_null(m))
		return 0;
	if (pairs(y, m, "networks", keys, kv, 2, &n) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		yaml_node_t *seq = get(kv, n, order[i]);
		if (seq == NULL)
			continue;
		if (seq_or_null(y, seq, order[i]) == -1)
			return -1;
		SEQ_EACH(y, seq, it)
		{
			yaml_node_t *e = node(y, *it);
			if (str(y, e, "a network", &s) == -1)
				return -1;
			if (cidr_parse(s, &c, why, sizeof(why)) == -1)
				return yerr(y, e, "%s", why);
			cidr_format(&c, canon, sizeof(canon));
			policy_add_network(y->p, canon, i == 1);
			record(y, SEC_NETWORKS, e);
		}
	}
	return 0;
}

static int parse_group(struct yp *, Sluice__Route *, const yaml_node_t *);

/* hold, rewrite_sender, rewrite_from and the default route (issue 15). */
static int
parse_user_routing(struct yp *y, Sluice__User *u, struct kv *kv, size_t n)
{
	yaml_node_t *v;
	const char *s;
	bool hold;

	if ((v = get(kv, n, "hold")) != NULL) {
		if (boolean(y, v, "hold", &hold) == -1)
			return -1;
		u->hold = hold;
	}
	if ((v = get(kv, n, "rewrite_sender")) != NULL) {
		if (str(y, v, "rewrite_sender", &s) == -1)
			return -1;
		policy_set_str(&u->rewrite_sender, s);
	}
	if ((v = get(kv, n, "rewrite_from")) != NULL) {
		if (str(y, v, "rewrite_from", &s) == -1)
			return -1;
		policy_set_str(&u->rewrite_from, s);
	}
	if ((v = get(kv, n, "route")) == NULL || is_null(v))
		return 0;
	if (want(y, v, YAML_SEQUENCE_NODE, "route (hop groups)") == -1)
		return -1;
	u->default_route = policy_user_route(u);
	SEQ_EACH(y, v, it)
	{
		if (parse_group(y, u->default_route, node(y, *it)) == -1)
			return -1;
	}
	return 0;
}

/* A user's quotas (issue 15): quota: {hour_msgs: N, hour_rcpts: N,
 * day_msgs: N, day_rcpts: N}; a missing key or 0 is no quota. */
static int
parse_user_quota(struct yp *y, const yaml_node_t *m, Sluice__User *u)
{
	static const char *const keys[] = {
	    "hour_msgs", "hour_rcpts", "day_msgs", "day_rcpts", NULL};
	uint32_t *f[4] = {&u->quota_hour_msgs, &u->quota_hour_rcpts,
	    &u->quota_day_msgs, &u->quota_day_rcpts};
	struct kv kv[4];
	yaml_node_t *v;
	size_t n;
	int k;

	if (pairs(y, m, "a user's quota", keys, kv, 4, &n) == -1)
		return -1;
	for (k = 0; k < 4; k++)
		if ((v = get(kv, n, keys[k])) != NULL &&
		    u32(y, v, keys[k], f[k]) == -1)
			return -1;
	return 0;
}

static int
parse_user(struct yp *y, const yaml_node_t *m)
{
	static const char *const keys[] = {"name", "senders", "rate_per_minute",
	    "password_file", "password_env", "password_hash", "hold",
	    "rewrite_sender", "rewrite_from", "route", "quota", NULL};
	struct kv kv[12];
	yaml_node_t *v, *pf, *pe, *ph;
	Sluice__User *u;
	const char *s;
	char pw[SECRET_MAX], hash[PASSWD_HASH_MAX];
	size_t n;

	if (pairs(y, m, "a user", keys, kv, 12, &n) == -1)
		return -1;
	if ((v = get(kv, n, "name")) == NULL)
		return yerr(y, m, "user has no name");
	if (str(y, v, "name", &s) == -1)
		return -1;
	u = policy_add_user(y->p, s);
	record(y, SEC_USERS, m);
	if ((v = get(kv, n, "senders")) != NULL) {
		if (v->type == YAML_SCALAR_NODE) {
			if (str(y, v, "senders", &s) == -1)
				return -1;
			policy_strv_add(&u->senders, &u->n_senders, s);
		} else if (seq_or_null(y, v, "senders") == -1)
			return -1;
		SEQ_EACH(y, v, it)
		{
			if (str(y, node(y, *it), "a sender", &s) == -1)
				return -1;
			policy_strv_add(&u->senders, &u->n_senders, s);
		}
	}
	if ((v = get(kv, n, "rate_per_minute")) != NULL &&
	    u32(y, v, "rate_per_minute", &u->rate_per_minute) == -1)
		return -1;
	if (parse_user_routing(y, u, kv, n) == -1)
		return -1;
	if ((v = get(kv, n, "quota")) != NULL &&
	    parse_user_quota(y, v, u) == -1)
		return -1;
	pf = get(kv, n, "password_file");
	pe = get(kv, n, "password_env");
	ph = get(kv, n, "password_hash");
	if ((pf != NULL) + (pe != NULL) + (ph != NULL) > 1)
		return yerr(y, m,
		    "user '%s': give one of password_file, password_env, "
		    "password_hash",
		    u->name);
	u->has_password = true;
	if (ph != NULL) {
		if (str(y, ph, "password_hash", &s) == -1)
			return -1;
		policy_set_str(&u->password_hash, s);
	} else if (pf != NULL || pe != NULL) {
		if (read_secret(y, pf ? pf : pe, pe != NULL, pw, sizeof(pw)) ==
		    -1)
			return -1;
		if (passwd_hash(pw, hash, sizeof(hash)) == -1) {
			explicit_bzero(pw, sizeof(pw));
			return yerr(
			    y, pf ? pf : pe, "cannot hash the password");
		}
		explicit_bzero(pw, sizeof(pw));
		policy_set_str(&u->password_hash, hash);
	}
	/* else: an empty hash with has_password keeps the stored one */
	return 0;
}

/* The XOAUTH2 keys of a hop (after oauth2 and user). */
static int
parse_hop_oauth(
    struct yp *y, const yaml_node_t *m, Sluice__Hop *h, struct kv *kv, size_t n)
{
	static const char *const strs[] = {
	    "tenant", "client_id", "token_url", "scope"};
	char **field[4] = {&h->oauth2_tenant, &h->oauth2_client_id,
	    &h->oauth2_token_url, &h->oauth2_scope};
	const yaml_node_t *v;
	const char *s;
	char why[300];
	size_t i;

	for (i = 0; i < 4; i++) {
		if ((v = get(kv, n, strs[i])) == NULL)
			continue;
		if (str(y, v, strs[i], &s) == -1)
			return -1;
		policy_set_str(field[i], s);
	}
	if ((v = get(kv, n, "impersonate")) != NULL) {
		if (str(y, v, "impersonate", &s) == -1)
			return -1;
		if (h->auth_user[0] != '\0' && strcmp(h->auth_user, s) != 0)
			return yerr(y, v,
			    "hop '%s': impersonate is the AUTH user: give it "
			    "or user, not both",
			    h->name);
		policy_set_str(&h->auth_user, s);
	}
	if ((v = get(kv, n, "cert_key")) != NULL) {
		if (str(y, v, "cert_key", &s) == -1)
			return -1;
		if (strcmp(s, "keep") != 0)
			return yerr(y, v,
			    "hop '%s': cert_key takes only keep (the stored "
			    "one); a new one goes in cert_key_file",
			    h->name);
		h->keep_secret = h->has_secret = h->oauth2_cert = true;
	}
	if ((v = get(kv, n, "cert_key_file")) != NULL) {
		if (str(y, v, "cert_key_file", &s) == -1)
			return -1;
		if (hop_oauth_cert_key_file(h, s, why, sizeof(why)) == -1)
			return yerr(y, v, "hop '%s': %s", h->name, why);
	}
	if ((v = get(kv, n, "service_account_file")) != NULL) {
		if (str(y, v, "service_account_file", &s) == -1)
			return -1;
		if (hop_oauth_service_account_file(h, s, why, sizeof(why)) ==
		    -1)
			return yerr(y, v, "hop '%s': %s", h->name, why);
	}
	if (h->oauth2[0] == '\0' &&
	    (h->oauth2_cert || h->oauth2_tenant[0] != '\0' ||
	        h->oauth2_client_id[0] != '\0' ||
	        h->oauth2_token_url[0] != '\0' || h->oauth2_scope[0] != '\0' ||
	        get(kv, n, "impersonate")))
		return yerr(y, m,
		    "hop '%s': tenant, client_id, token_url, scope, cert_key, "
		    "service_account_file and impersonate go with oauth2: "
		    "m365|google",
		    h->name);
	return 0;
}

static int
parse_hop(struct yp *y, const yaml_node_t *m)
{
	static const char *const keys[] = {"name", "preset", "region", "eu",
	    "host", "port", "tls", "verify_cert", "user", "secret",
	    "secret_file", "secret_env", "max_conn", "rate_per_minute",
	    "weight", "max_rcpt", "max_size", "oauth2", "tenant", "client_id",
	    "token_url", "scope", "cert_key", "cert_key_file",
	    "service_account_file", "impersonate", NULL};
	struct kv kv[30];
	yaml_node_t *v, *sv, *sf, *se;
	Sluice__Hop *h;
	const char *s, *region = NULL;
	char why[200], secret[SECRET_MAX];
	bool eu = false, verify;
	size_t n;

	if (pairs(y, m, "a hop", keys, kv, 30, &n) == -1)
		return -1;
	if ((v = get(kv, n, "name")) == NULL)
		return yerr(y, m, "hop has no name");
	if (str(y, v, "name", &s) == -1)
		return -1;
	h = policy_add_hop(y->p, s);
	record(y, SEC_HOPS, m);
	if ((v = get(kv, n, "region")) != NULL &&
	    str(y, v, "region", &region) == -1)
		return -1;
	if ((v = get(kv, n, "eu")) != NULL && boolean(y, v, "eu", &eu) == -1)
		return -1;
	if ((v = get(kv, n, "preset")) != NULL) {
		if (str(y, v, "preset", &s) == -1)
			return -1;
		/* An explicit host (as export writes) stands in for the
		 * region: the preset's host is overridden below anyway. */
		if (region == NULL && get(kv, n, "host") != NULL)
			region = "from-host";
		if (hop_preset_apply(h, s, region, eu, why, sizeof(why)) == -1)
			return yerr(y, v, "hop '%s': %s", h->name, why);
	} else if (region != NULL || eu)
		return yerr(
		    y, m, "hop '%s': region and eu go with a preset", h->name);
	if ((v = get(kv, n, "oauth2")) != NULL) {
		if (str(y, v, "oauth2", &s) == -1)
			return -1;
		if (hop_oauth_kind(h, s, why, sizeof(why)) == -1)
			return yerr(y, v, "hop '%s': %s", h->name, why);
	}
	if ((v = get(kv, n, "host")) != NULL) {
		if (str(y, v, "host", &s) == -1)
			return -1;
		policy_set_str(&h->host, s);
	}
	if ((v = get(kv, n, "port")) != NULL &&
	    u32(y, v, "port", &h->port) == -1)
		return -1;
	if ((v = get(kv, n, "tls")) != NULL) {
		if (str(y, v, "tls", &s) == -1)
			return -1;
		if (hop_tls_parse(s, &h->tls) == -1)
			return yerr(y, v,
			    "tls must be none, starttls, require or smtps, "
			    "not '%.32s'",
			    s);
	}
	verify = hop_tls_verify_default(h->tls);
	if ((v = get(kv, n, "verify_cert")) != NULL &&
	    boolean(y, v, "verify_cert", &verify) == -1)
		return -1;
	h->verify_cert = verify;
	if ((v = get(kv, n, "user")) != NULL) {
		if (str(y, v, "user", &s) == -1)
			return -1;
		policy_set_str(&h->auth_user, s);
	}
	if ((v = get(kv, n, "max_conn")) != NULL &&
	    u32(y, v, "max_conn", &h->max_conn) == -1)
		return -1;
	if ((v = get(kv, n, "rate_per_minute")) != NULL &&
	    u32(y, v, "rate_per_minute", &h->rate_per_minute) == -1)
		return -1;
	if ((v = get(kv, n, "weight")) != NULL &&
	    u32(y, v, "weight", &h->weight) == -1)
		return -1;
	if ((v = get(kv, n, "max_rcpt")) != NULL &&
	    u32(y, v, "max_rcpt", &h->max_rcpt) == -1)
		return -1;
	if ((v = get(kv, n, "max_size")) != NULL &&
	    u64(y, v, "max_size", UINT64_MAX, &h->max_size) == -1)
		return -1;
	if (parse_hop_oauth(y, m, h, kv, n) == -1)
		return -1;
	sv = get(kv, n, "secret");
	sf = get(kv, n, "secret_file");
	se = get(kv, n, "secret_env");
	if ((sv != NULL) + (sf != NULL) + (se != NULL) +
	        (get(kv, n, "cert_key") != NULL) +
	        (get(kv, n, "cert_key_file") != NULL) +
	        (get(kv, n, "service_account_file") != NULL) >
	    1)
		return yerr(y, m,
		    "hop '%s': give one of secret, secret_file, secret_env, "
		    "cert_key, cert_key_file, service_account_file",
		    h->name);
	if (sv != NULL) {
		if (str(y, sv, "secret", &s) == -1)
			return -1;
		if (strcmp(s, "keep") == 0)
			h->keep_secret = true;
		else
			policy_set_str(&h->secret, s);
		h->has_secret = true;
	} else if (sf != NULL || se != NULL) {
		if (read_secret(y, sf ? sf : se, se != NULL, secret,
		        sizeof(secret)) == -1)
			return -1;
		policy_set_str(&h->secret, secret);
		explicit_bzero(secret, sizeof(secret));
		h->has_secret = true;
	}
	return 0;
}

static int
parse_group(struct yp *y, Sluice__Route *r, const yaml_node_t *g)
{
	Sluice__HopGroup *grp = policy_route_add_group(r);
	const char *s;

	/* A bare name is a group of one. */
	if (g->type == YAML_SCALAR_NODE) {
		if (str(y, g, "a hop", &s) == -1)
			return -1;
		policy_strv_add(&grp->hops, &grp->n_hops, s);
		return 0;
	}
	if (want(y, g, YAML_SEQUENCE_NODE, "a hop group") == -1)
		return -1;
	SEQ_EACH(y, g, it)
	{
		if (str(y, node(y, *it), "a hop", &s) == -1)
			return -1;
		policy_strv_add(&grp->hops, &grp->n_hops, s);
	}
	return 0;
}

static int
parse_route(struct yp *y, const yaml_node_t *m)
{
	static const char *const keys[] = {
	    "pattern", "groups", "sender", "user", "listener", "client", NULL};
	static const char *const conds[] = {
	    "sender", "user", "listener", "client"};
	struct kv kv[6];
	yaml_node_t *v;
	Sluice__Route *r;
	const char *s;
	char **field[4];
	size_t n;

	if (pairs(y, m, "a route", keys, kv, 6, &n) == -1)
		return -1;
	if ((v = get(kv, n, "pattern")) == NULL)
		return yerr(y, m, "route has no pattern");
	if (str(y, v, "pattern", &s) == -1)
		return -1;
	r = policy_add_route(y->p, s);
	record(y, SEC_ROUTES, m);
	field[0] = &r->sender;
	field[1] = &r->user;
	field[2] = &r->listener;
	field[3] = &r->client;
	for (size_t c = 0; c < 4; c++) {
		if ((v = get(kv, n, conds[c])) == NULL)
			continue;
		if (str(y, v, conds[c], &s) == -1)
			return -1;
		if (c == 3 && s[0] != '\0') {
			struct cidr net;
			char why[200], canon[64];
			if (cidr_parse(s, &net, why, sizeof(why)) == -1)
				return yerr(y, v, "%s", why);
			cidr_format(&net, canon, sizeof(canon));
			s = canon;
			policy_set_str(field[c], s);
			continue;
		}
		policy_set_str(field[c], s);
	}
	if ((v = get(kv, n, "groups")) == NULL)
		return yerr(y, m, "route '%s' has no groups", r->pattern);
	if (want(y, v, YAML_SEQUENCE_NODE, "groups") == -1)
		return -1;
	SEQ_EACH(y, v, it)
	{
		if (parse_group(y, r, node(y, *it)) == -1)
			return -1;
	}
	return 0;
}

static int
parse_limits(struct yp *y, const yaml_node_t *m)
{
	const struct limit_def *d;
	struct kv kv[64];
	uint64_t v;
	size_t n, i;

	if (is_null(m))
		return 0;
	if (pairs(y, m, "limits", NULL, kv, 64, &n) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if ((d = limit_find(kv[i].key)) == NULL)
			return yerr(y, kv[i].keynode,
			    "unknown limit '%.64s' (see: sluicectl limit list)",
			    kv[i].key);
		if (d->names != NULL) {
			/* a named setting: "redundancy: peer" */
			const char *sv;
			char why[256];
			int64_t iv;

			if (str(y, kv[i].val, kv[i].key, &sv) == -1)
				return -1;
			if (limit_parse(d, sv, &iv, why, sizeof(why)) == -1)
				return yerr(y, kv[i].val, "%s", why);
			v = (uint64_t)iv;
		} else if (u64(y, kv[i].val, kv[i].key, INT64_MAX, &v) == -1)
			return -1;
		if ((int64_t)v < d->min || (int64_t)v > d->max)
			return yerr(y, kv[i].val,
			    "limit %s must be between %" PRId64 " and %" PRId64
			    ", not %" PRIu64,
			    d->key, d->min, d->max, v);
		/* A policy lists only limits away from their default. */
		if ((int64_t)v == d->def)
			continue;
		policy_add_limit(y->p, d->key, (int64_t)v);
		record(y, SEC_LIMITS, kv[i].keynode);
	}
	return 0;
}

/* A whole PEM file (private_key_file), at most DKIM_PEM_MAX octets. */
#define DKIM_PEM_MAX 16384
static int
read_pem(struct yp *y, const yaml_node_t *n, char **out)
{
	const char *src;
	char *buf;
	size_t len;
	FILE *f;

	if (str(y, n, "a file name", &src) == -1)
		return -1;
	if ((f = fopen(src, "r")) == NULL)
		return yerr(
		    y, n, "cannot read %.200s: %s", src, strerror(errno));
	buf = xcalloc(1, DKIM_PEM_MAX + 1);
	len = fread(buf, 1, DKIM_PEM_MAX + 1, f);
	fclose(f);
	if (len == 0 || len > DKIM_PEM_MAX) {
		free(buf);
		return yerr(y, n, "%.200s is %s", src,
		    len == 0 ? "empty" : "too long for a private key");
	}
	*out = buf;
	return 0;
}

/* A DKIM key.  The private key is `keep` (the stored one, by domain and
 * selector), a literal PEM or private_key_file; sluicectl derives the
 * algorithm and public key from it (cmd_policy_file.c). */
static int
parse_dkim(struct yp *y, const yaml_node_t *m)
{
	static const char *const keys[] = {"domain", "selector", "algorithm",
	    "public_key", "required", "subdomains", "headers", "private_key",
	    "private_key_file", "canon", NULL};
	struct kv kv[11];
	yaml_node_t *v, *pk, *pf;
	Sluice__DkimKey *k;
	const char *s;
	char *pem = NULL;
	size_t n;
	bool b;

	if (pairs(y, m, "a DKIM key", keys, kv, 11, &n) == -1)
		return -1;
	if ((v = get(kv, n, "domain")) == NULL)
		return yerr(y, m, "DKIM key has no domain");
	k = xcalloc(1, sizeof(*k));
	sluice__dkim_key__init(k);
	y->p->dkim =
	    xreallocarray(y->p->dkim, y->p->n_dkim + 1, sizeof(*y->p->dkim));
	y->p->dkim[y->p->n_dkim++] = k;
	record(y, SEC_DKIM, m);
	if (str(y, v, "domain", &s) == -1)
		return -1;
	policy_set_str(&k->domain, s);
	if ((v = get(kv, n, "selector")) == NULL)
		return yerr(y, m, "DKIM key for %.100s has no selector", s);
	if (str(y, v, "selector", &s) == -1)
		return -1;
	policy_set_str(&k->selector, s);
	if ((v = get(kv, n, "algorithm")) != NULL) {
		if (str(y, v, "algorithm", &s) == -1)
			return -1;
		policy_set_str(&k->algorithm, s);
	}
	if ((v = get(kv, n, "public_key")) != NULL) {
		if (str(y, v, "public_key", &s) == -1)
			return -1;
		policy_set_str(&k->public_key, s);
	}
	if ((v = get(kv, n, "required")) != NULL) {
		if (boolean(y, v, "required", &b) == -1)
			return -1;
		k->required = b;
	}
	if ((v = get(kv, n, "subdomains")) != NULL) {
		if (boolean(y, v, "subdomains", &b) == -1)
			return -1;
		k->subdomains = b;
	}
	if ((v = get(kv, n, "canon")) != NULL) {
		if (str(y, v, "canon", &s) == -1)
			return -1;
		/* the default is written as nothing: one form per policy */
		policy_set_str(
		    &k->canon, strcmp(s, "relaxed/relaxed") == 0 ? "" : s);
	}
	if ((v = get(kv, n, "headers")) != NULL) {
		if (seq_or_null(y, v, "headers") == -1)
			return -1;
		SEQ_EACH(y, v, it)
		{
			if (str(y, node(y, *it), "a header name", &s) == -1)
				return -1;
			policy_strv_add(&k->headers, &k->n_headers, s);
		}
	}
	pk = get(kv, n, "private_key");
	pf = get(kv, n, "private_key_file");
	if ((pk == NULL) == (pf == NULL))
		return yerr(y, m,
		    "DKIM key %.64s._domainkey.%.100s: give one of "
		    "private_key (keep or a PEM) and private_key_file",
		    k->selector, k->domain);
	if (pk != NULL) {
		if (str(y, pk, "private_key", &s) == -1)
			return -1;
		if (strcmp(s, "keep") != 0)
			policy_set_str(&k->private_key, s);
	} else {
		if (read_pem(y, pf, &pem) == -1)
			return -1;
		policy_set_str(&k->private_key, pem);
		explicit_bzero(pem, strlen(pem));
		free(pem);
	}
	k->has_key = true; /* "" + has_key: keep the stored key */
	return 0;
}

static int
parse_list(struct yp *y, const yaml_node_t *seq, const char *what,
    int (*fn)(struct yp *, const yaml_node_t *))
{
	if (seq_or_null(y, seq, what) == -1)
		return -1;
	SEQ_EACH(y, seq, it)
	{
		if (fn(y, node(y, *it)) == -1)
			return -1;
	}
	return 0;
}

static int
parse_root(struct yp *y, const yaml_node_t *root)
{
	static const char *const keys[] = {"networks", "users", "hops",
	    "routes", "limits", "dkim", "suppression_mode", NULL};
	struct kv kv[7];
	const char *s;
	yaml_node_t *v;
	size_t n;

	if (root == NULL || is_null(root))
		return 0; /* an empty file is the empty policy */
	if (pairs(y, root, "the policy", keys, kv, 7, &n) == -1)
		return -1;
	if ((v = get(kv, n, "networks")) != NULL && parse_networks(y, v) == -1)
		return -1;
	if ((v = get(kv, n, "users")) != NULL &&
	    parse_list(y, v, "users", parse_user) == -1)
		return -1;
	if ((v = get(kv, n, "hops")) != NULL &&
	    parse_list(y, v, "hops", parse_hop) == -1)
		return -1;
	if ((v = get(kv, n, "routes")) != NULL &&
	    parse_list(y, v, "routes", parse_route) == -1)
		return -1;
	if ((v = get(kv, n, "limits")) != NULL && parse_limits(y, v) == -1)
		return -1;
	if ((v = get(kv, n, "dkim")) != NULL) {
		y->lines->has_dkim = true;
		if (parse_list(y, v, "dkim", parse_dkim) == -1)
			return -1;
	}
	/* Issue 16: refuse (550 at RCPT) or bounce (accept, DSN); a file
	 * without the key keeps the stored mode. */
	if ((v = get(kv, n, "suppression_mode")) != NULL) {
		if (str(y, v, "suppression_mode", &s) == -1)
			return -1;
		if (strcmp(s, "refuse") != 0 && strcmp(s, "bounce") != 0)
			return yerr(y, v,
			    "suppression_mode '%.32s' is not refuse or bounce",
			    s);
		y->lines->has_suppression_mode = true;
		policy_set_str(&y->p->suppression_mode, s);
	}
	return 0;
}

/* A libyaml error names the line where the construct it was reading
 * starts (libyaml's context mark: an unclosed "[" is found lines later, at
 * the next key), then what went wrong and where:
 *   p.yaml:2: did not find expected ',' or ']' at line 3 (while parsing
 *   a flow sequence that starts here) */
static void
yaml_error(
    const yaml_parser_t *parser, const char *fname, char *err, size_t errlen)
{
	size_t line = (size_t)parser->problem_mark.line + 1;
	size_t start = (size_t)parser->context_mark.line + 1;
	const char *problem =
	    parser->problem ? parser->problem : "malformed YAML";

	if (parser->context == NULL)
		snprintf(err, errlen, "%s:%zu: %s", fname, line, problem);
	else if (start < line)
		snprintf(err, errlen,
		    "%s:%zu: %s at line %zu (%s that starts "
		    "here)",
		    fname, start, problem, line, parser->context);
	else
		snprintf(err, errlen, "%s:%zu: %s (%s)", fname, line, problem,
		    parser->context);
}

Sluice__Policy *
policy_yaml_parse(const char *text, size_t len, const char *fname,
    struct policy_lines **linesp, char *err, size_t errlen)
{
	yaml_parser_t parser;
	struct yp y;
	yaml_document_t extra;
	int rc;

	memset(&y, 0, sizeof(y));
	y.fname = fname;
	y.err = err;
	y.errlen = errlen;
	if (!yaml_parser_initialize(&parser)) {
		snprintf(
		    err, errlen, "%s: cannot start the YAML parser", fname);
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &y.doc)) {
		yaml_error(&parser, fname, err, errlen);
		yaml_parser_delete(&parser);
		return NULL;
	}
	/* One document per file: a second one would be silently ignored. */
	if (yaml_document_get_root_node(&y.doc) != NULL) {
		if (!yaml_parser_load(&parser, &extra)) {
			yaml_error(&parser, fname, err, errlen);
			yaml_document_delete(&y.doc);
			yaml_parser_delete(&parser);
			return NULL;
		}
		if (yaml_document_get_root_node(&extra) != NULL) {
			snprintf(err, errlen,
			    "%s:%zu: only one YAML document per policy file",
			    fname, (size_t)extra.start_mark.line + 1);
			yaml_document_delete(&extra);
			yaml_document_delete(&y.doc);
			yaml_parser_delete(&parser);
			return NULL;
		}
		yaml_document_delete(&extra);
	}
	yaml_parser_delete(&parser);
	y.lines = xcalloc(1, sizeof(*y.lines));
	y.p = policy_new();
	rc = parse_root(&y, yaml_document_get_root_node(&y.doc));
	yaml_document_delete(&y.doc);
	if (rc == -1) {
		sluice__policy__free_unpacked(y.p, NULL);
		policy_lines_free(y.lines);
		return NULL;
	}
	if (linesp != NULL)
		*linesp = y.lines;
	else
		policy_lines_free(y.lines);
	return y.p;
}

Sluice__Policy *
policy_yaml_load(
    const char *path, struct policy_lines **linesp, char *err, size_t errlen)
{
	Sluice__Policy *p;
	FILE *f;
	char *buf;
	size_t len = 0, n;
	const char *name = path;

	if (strcmp(path, "-") == 0) {
		f = stdin;
		name = "<stdin>";
	} else if ((f = fopen(path, "r")) == NULL) {
		snprintf(
		    err, errlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = xcalloc(1, POLICY_YAML_MAX + 1);
	while ((n = fread(buf + len, 1, POLICY_YAML_MAX + 1 - len, f)) > 0)
		len += n;
	if (ferror(f) || len > POLICY_YAML_MAX) {
		snprintf(err, errlen, "%s: %s", name,
		    ferror(f) ? strerror(errno)
		              : "larger than 4 MB, not a policy file");
		if (f != stdin)
			fclose(f);
		free(buf);
		return NULL;
	}
	if (f != stdin)
		fclose(f);
	p = policy_yaml_parse(buf, len, name, linesp, err, errlen);
	free(buf);
	return p;
}

int
policy_lines_get(const struct policy_lines *l, const char *section, int index)
{
	int i;

	if (l == NULL || section == NULL || index < 0)
		return 0;
	for (i = 0; i < SEC_N; i++)
		if (strcmp(sec_names[i], section) == 0)
			return (size_t)index < l->n[i] ? l->line[i][index] : 0;
	return 0;
}

bool
policy_lines_has_suppression_mode(const struct policy_lines *l)
{
	return l != NULL && l->has_suppression_mode;
}

bool
policy_lines_has_dkim(const struct policy_lines *l)
{
	return l != NULL && l->has_dkim;
}

void
policy_lines_free(struct policy_lines *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < SEC_N; i++)
		free(l->line[i]);
	free(l);
}

void
policy_yaml_error(const struct policy_lines *l, const char *fname,
    const char *section, int index, const char *msg, char *out, size_t outlen)
{
	int line = policy_lines_get(l, section, index);

	if (line > 0)
		snprintf(out, outlen, "%s:%d: %s", fname, line, msg);
	else
		snprintf(out, outlen, "%s: %s", fname, msg);
}

/* ------------------------------------------------------------ emitting */

struct out {
	char *buf;
	size_t len;
	size_t cap;
};

static void outf(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		o->cap = (o->cap + (size_t)n) * 2;
		o->buf = xreallocarray(o->buf, o->cap, 1);
	}
}

/* Plain YAML scalar when unambiguous, else double-quoted and escaped. */
static void
scalar(struct out *o, const char *s)
{
	static const char *const reserved[] = {"true", "false", "yes", "no",
	    "on", "off", "null", "y", "n", "~", NULL};
	bool plain = s[0] != '\0';
	char *end;
	size_t i;

	for (i = 0; s[i] != '\0' && plain; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') ||
		        strchr("._/+-", s[i]) != NULL))
			plain = false;
	if (plain && (s[0] == '-' || s[0] == '.'))
		plain = false;
	if (plain) {
		(void)strtod(s, &end);
		if (*end == '\0')
			plain = false;
		for (i = 0; reserved[i] != NULL; i++)
			if (strcasecmp(reserved[i], s) == 0)
				plain = false;
	}
	if (plain) {
		outf(o, "%s", s);
		return;
	}
	outf(o, "\"");
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			outf(o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			outf(o, "\\x%02x", c);
		else
			outf(o, "%c", c);
	}
	outf(o, "\"");
}

static void
emit_networks(struct out *o, const Sluice__Policy *p)
{
	size_t i, k;
	int deny;

	if (p->n_networks == 0)
		return;
	outf(o, "networks:\n");
	for (deny = 0; deny < 2; deny++) {
		for (i = 0, k = 0; i < p->n_networks; i++) {
			if (p->networks[i]->deny != deny)
				continue;
			outf(o, "%s",
			    k++ == 0 ? (deny ? "  deny: [" : "  allow: [")
			             : ", ");
			scalar(o, p->networks[i]->cidr);
		}
		if (k > 0)
			outf(o, "]\n");
	}
}

/* Only the quotas that are set (issue 15). */
static void
emit_user_quota(struct out *o, const Sluice__User *u)
{
	static const char *const keys[4] = {
	    "hour_msgs", "hour_rcpts", "day_msgs", "day_rcpts"};
	const uint32_t v[4] = {u->quota_hour_msgs, u->quota_hour_rcpts,
	    u->quota_day_msgs, u->quota_day_rcpts};
	int k;

	if (v[0] == 0 && v[1] == 0 && v[2] == 0 && v[3] == 0)
		return;
	outf(o, "    quota:\n");
	for (k = 0; k < 4; k++)
		if (v[k] != 0)
			outf(o, "      %s: %" PRIu32 "\n", keys[k], v[k]);
}

static void
emit_groups(struct out *o, const Sluice__Route *r)
{
	size_t j, k;

	outf(o, "[");
	for (j = 0; j < r->n_groups; j++) {
		outf(o, "%s[", j ? ", " : "");
		for (k = 0; k < r->groups[j]->n_hops; k++) {
			outf(o, "%s", k ? ", " : "");
			scalar(o, r->groups[j]->hops[k]);
		}
		outf(o, "]");
	}
	outf(o, "]\n");
}

static void
emit_user_routing(struct out *o, const Sluice__User *u)
{
	if (u->hold)
		outf(o, "    hold: true                 # queued until "
		        "`queue release`\n");
	if (u->rewrite_sender[0] != '\0') {
		outf(o, "    rewrite_sender: ");
		scalar(o, u->rewrite_sender);
		outf(o, "\n");
	}
	if (u->rewrite_from[0] != '\0') {
		outf(o, "    rewrite_from: ");
		scalar(o, u->rewrite_from);
		outf(o, "\n");
	}
	if (u->default_route != NULL && u->default_route->n_groups > 0) {
		outf(o, "    route: ");
		emit_groups(o, u->default_route);
	}
}

static void
emit_users(struct out *o, const Sluice__Policy *p)
{
	const Sluice__User *u;
	size_t i, j;

	if (p->n_users == 0)
		return;
	outf(o, "users:\n");
	for (i = 0; i < p->n_users; i++) {
		u = p->users[i];
		outf(o, "  - name: ");
		scalar(o, u->name);
		outf(o, "\n    senders: [");
		for (j = 0; j < u->n_senders; j++) {
			outf(o, "%s", j ? ", " : "");
			scalar(o, u->senders[j]);
		}
		outf(o, "]\n");
		if (u->rate_per_minute != 0)
			outf(o, "    rate_per_minute: %" PRIu32 "\n",
			    u->rate_per_minute);
		emit_user_routing(o, u);
		emit_user_quota(o, u);
		if (!u->has_password && u->password_hash[0] == '\0')
			outf(o, "    # no password stored: add password_file "
			        "or password_env\n");
		/* else: omitted = keep the stored password */
	}
}

static void
emit_hop_oauth(struct out *o, const Sluice__Hop *h)
{
	static const char *const keys[] = {
	    "oauth2", "tenant", "client_id", "token_url", "scope"};
	const char *vals[5] = {h->oauth2, h->oauth2_tenant, h->oauth2_client_id,
	    h->oauth2_token_url, h->oauth2_scope};
	size_t i;

	for (i = 0; i < 5; i++) {
		if (vals[i][0] == '\0')
			continue;
		outf(o, "    %s: ", keys[i]);
		scalar(o, vals[i]);
		outf(o, "\n");
	}
}

static void
emit_hop(struct out *o, const Sluice__Hop *h)
{
	Sluice__Hop base = SLUICE__HOP__INIT;
	char why[128];

	outf(o, "  - name: ");
	scalar(o, h->name);
	outf(o, "\n");
	if (strcmp(h->name, "mx") == 0 && h->host[0] == '\0') {
		/* the direct-MX hop: only its caps are settable */
	} else {
		if (h->preset[0] != '\0') {
			outf(o, "    preset: ");
			scalar(o, h->preset);
			outf(o, "\n");
			/* The preset's caps are the baseline; the region only
			 * changes the host, which is written anyway. */
			(void)hop_preset_apply(
			    &base, h->preset, "x", false, why, sizeof(why));
		}
		outf(o, "    host: ");
		scalar(o, h->host);
		outf(o, "\n    port: %" PRIu32 "\n    tls: %s\n", h->port,
		    hop_tls_name(h->tls));
		if (h->verify_cert != hop_tls_verify_default(h->tls))
			outf(o, "    verify_cert: %s\n",
			    h->verify_cert ? "true" : "false");
	}
	if (h->auth_user[0] != '\0') {
		outf(o, "    user: ");
		scalar(o, h->auth_user);
		outf(o, "\n");
	}
	emit_hop_oauth(o, h);
	if (!(h->has_secret || h->secret[0] != '\0' || h->keep_secret))
		;
	else if (h->oauth2_cert)
		outf(o, "    cert_key: keep    # stored; replace with "
		        "cert_key_file to change\n");
	else if (strcmp(h->oauth2, "google") == 0)
		outf(o, "    secret: keep    # the service account's key; "
		        "replace with service_account_file to change\n");
	else
		outf(o, "    secret: keep    # stored; replace with secret_env "
		        "or secret_file to change\n");
	/* a preset's budgets are the baseline (m365: 3 connections, 30 a
	 * minute): written when overridden, 0 included */
	if (h->max_conn != base.max_conn)
		outf(o, "    max_conn: %" PRIu32 "\n", h->max_conn);
	if (h->rate_per_minute != base.rate_per_minute)
		outf(o, "    rate_per_minute: %" PRIu32 "\n",
		    h->rate_per_minute);
	if (h->weight != 0)
		outf(o, "    weight: %" PRIu32 "\n", h->weight);
	if (h->max_rcpt != base.max_rcpt)
		outf(o, "    max_rcpt: %" PRIu32 "\n", h->max_rcpt);
	if (h->max_size != base.max_size)
		outf(o, "    max_size: %" PRIu64 "\n", h->max_size);
	if (base.host != NULL && base.host != protobuf_c_empty_string)
		free(base.host);
	if (base.auth_user != NULL && base.auth_user != protobuf_c_empty_string)
		free(base.auth_user);
	if (base.preset != NULL && base.preset != protobuf_c_empty_string)
		free(base.preset);
}

static void
emit_routes(struct out *o, const Sluice__Policy *p)
{
	const Sluice__Route *r;
	size_t i;

	if (p->n_routes == 0)
		return;
	outf(o, "routes:\n");
	for (i = 0; i < p->n_routes; i++) {
		r = p->routes[i];
		outf(o, "  - pattern: ");
		scalar(o, r->pattern);
		outf(o, "\n");
		if (r->sender[0] != '\0') {
			outf(o, "    sender: ");
			scalar(o, r->sender);
			outf(o, "\n");
		}
		if (r->user[0] != '\0') {
			outf(o, "    user: ");
			scalar(o, r->user);
			outf(o, "\n");
		}
		if (r->listener[0] != '\0') {
			outf(o, "    listener: ");
			scalar(o, r->listener);
			outf(o, "\n");
		}
		if (r->client[0] != '\0') {
			outf(o, "    client: ");
			scalar(o, r->client);
			outf(o, "\n");
		}
		outf(o, "    groups: ");
		emit_groups(o, r);
	}
}

static void
emit_dkim(struct out *o, const Sluice__Policy *p)
{
	const Sluice__DkimKey *k;

	if (p->n_dkim == 0)
		return;
	outf(o, "dkim:\n");
	for (size_t i = 0; i < p->n_dkim; i++) {
		k = p->dkim[i];
		outf(o, "  - domain: ");
		scalar(o, k->domain);
		outf(o, "\n    selector: ");
		scalar(o, k->selector);
		outf(o, "\n");
		if (k->algorithm[0] != '\0') {
			outf(o, "    algorithm: ");
			scalar(o, k->algorithm);
			outf(o, "\n");
		}
		if (k->required)
			outf(o, "    required: true\n");
		if (k->subdomains)
			outf(o, "    subdomains: true\n");
		if (k->canon[0] != '\0') {
			outf(o, "    canon: ");
			scalar(o, k->canon);
			outf(o, "\n");
		}
		if (k->n_headers > 0) {
			outf(o, "    headers: [");
			for (size_t j = 0; j < k->n_headers; j++) {
				outf(o, "%s", j ? ", " : "");
				scalar(o, k->headers[j]);
			}
			outf(o, "]\n");
		}
		if (k->public_key[0] != '\0') {
			outf(o, "    public_key: ");
			scalar(o, k->public_key);
			outf(o, "\n");
		}
		if (k->has_key || k->private_key[0] != '\0')
			outf(o, "    private_key: keep    # stored; replace "
			        "with private_key_file to change\n");
		else
			outf(o, "    # no private key stored: add "
			        "private_key_file\n");
	}
}

char *
policy_yaml_emit(const Sluice__Policy *p)
{
	struct out o = {NULL, 0, 0};
	size_t i;

	o.cap = 4096;
	o.buf = xcalloc(1, o.cap);
	outf(&o, "# sluice policy, version %" PRIu64 "\n", p->version);
	emit_networks(&o, p);
	emit_users(&o, p);
	if (p->n_hops > 0) {
		outf(&o, "hops:\n");
		for (i = 0; i < p->n_hops; i++)
			emit_hop(&o, p->hops[i]);
	}
	emit_routes(&o, p);
	if (p->n_limits > 0) {
		outf(&o, "limits:\n");
		for (i = 0; i < p->n_limits; i++) {
			const struct limit_def *d =
			    limit_find(p->limits[i]->key);
			char v[32];

			if (d != NULL)
				limit_format(
				    d, p->limits[i]->value, v, sizeof(v));
			else
				snprintf(v, sizeof(v), "%" PRId64,
				    p->limits[i]->value);
			outf(&o, "  %s: %s\n", p->limits[i]->key, v);
		}
	}
	emit_dkim(&o, p);
	if (p->suppression_mode[0] != '\0')
		outf(&o,
		    "# suppressed recipients: refuse (550 at RCPT) or bounce "
		    "(accept, DSN)\nsuppression_mode: %s\n",
		    p->suppression_mode);
	return o.buf;
}

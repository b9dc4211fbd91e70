/* cmd_dkim.c - DKIM keys in the policy: dkim add, list, del, rotate and
 * dns.  Private keys go from here to the controller once (generated here
 * or read from stdin) and are never printed: the controller redacts them
 * in every reply, like hop secrets, and an apply keeps a stored key by its
 * domain and selector.  What is public - the algorithm and the p= of the
 * DNS record - is stored beside it, so `dkim dns` needs no secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "admin.h"
#include "dkim_dns.h"
#include "dkim_key.h"
#include "output.h"
#include "policy_check.h"
#include "policy_edit.h"
#include "sluicectl.h"
#include "xmalloc.h"

#define DNS_CHUNK 255 /* RFC 1035 3.3.14: one character-string */

static Sluice__DkimKey *
dkim_find(
    const Sluice__Policy *p, const char *domain, const char *selector, int *idx)
{
	for (size_t i = 0; i < p->n_dkim; i++)
		if (strcasecmp(p->dkim[i]->domain, domain) == 0 &&
		    strcasecmp(p->dkim[i]->selector, selector) == 0) {
			if (idx != NULL)
				*idx = (int)i;
			return p->dkim[i];
		}
	return NULL;
}

static void
check_names(const char *domain, const char *selector)
{
	Sluice__Policy t = SLUICE__POLICY__INIT;
	Sluice__DkimKey k = SLUICE__DKIM_KEY__INIT, *kp = &k;
	struct policy_error e;

	k.domain = (char *)(uintptr_t)domain;
	k.selector = (char *)(uintptr_t)(selector ? selector : "s");
	t.dkim = &kp;
	t.n_dkim = 1;
	if (policy_check(&t, POLICY_CHECK_APPLY, &e) == -1)
		ctl_die("%s", e.msg);
}

/* A key to add, built from flags; pem is the secret. */
struct dkim_arg {
	const char *domain;
	const char *selector;
	char alg[16];
	char *pem;
	char *pub;
	bool required, subdomains;
	const char *canon; /* NULL: the domain's, else the default */
	char **headers;
	size_t nheaders;
	bool del_all; /* del without --selector */
};

static void
dkim_append(Sluice__Policy *p, const struct dkim_arg *a)
{
	Sluice__DkimKey *k = xcalloc(1, sizeof(*k));

	sluice__dkim_key__init(k);
	k->domain = xstrdup(a->domain);
	k->selector = xstrdup(a->selector);
	k->private_key = xstrdup(a->pem);
	k->has_key = true;
	k->algorithm = xstrdup(a->alg);
	k->public_key = xstrdup(a->pub);
	k->required = a->required;
	k->subdomains = a->subdomains;
	k->canon = xstrdup(a->canon != NULL ? a->canon : "");
	for (size_t i = 0; i < a->nheaders; i++)
		policy_strv_add(&k->headers, &k->n_headers, a->headers[i]);
	p->dkim = xreallocarray(p->dkim, p->n_dkim + 1, sizeof(*p->dkim));
	p->dkim[p->n_dkim++] = k;
}

static void
add_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct dkim_arg *a = arg;

	if (dkim_find(p, a->domain, a->selector, NULL) != NULL)
		ctl_die("DKIM key %s._domainkey.%s exists: pick another "
		        "selector, or use dkim rotate",
		    a->selector, a->domain);
	/* required, subdomains and canon are per domain: keep them
	 * consistent (a key added without --canon takes the domain's) */
	for (size_t i = 0; i < p->n_dkim; i++)
		if (strcasecmp(p->dkim[i]->domain, a->domain) == 0) {
			p->dkim[i]->required = a->required;
			p->dkim[i]->subdomains = a->subdomains;
			if (a->canon != NULL)
				policy_set_str(&p->dkim[i]->canon, a->canon);
			else
				a->canon = p->dkim[i]->canon;
		}
	dkim_append(p, a);
	snprintf(msg, msglen, "DKIM key %s._domainkey.%s (%s) added",
	    a->selector, a->domain, a->alg);
}

/* Prints the record to publish, split in DNS character-strings. */
static void
print_dns(
    const char *selector, const char *domain, const char *alg, const char *pub)
{
	char *txt;
	size_t n, off;

	if (pub[0] == '\0') {
		printf("; %s._domainkey.%s: no public key stored (added by an "
		       "older sluicectl); add the key again\n",
		    selector, domain);
		return;
	}
	txt = dkim_key_txt(alg[0] != '\0' ? alg : "rsa", pub);
	if (txt == NULL)
		ctl_die("out of memory");
	printf("%s._domainkey.%s. IN TXT", selector, domain);
	for (n = strlen(txt), off = 0; off < n; off += DNS_CHUNK)
		printf(" \"%.*s\"", DNS_CHUNK, txt + off);
	printf("\n");
	free(txt);
}

static char *
read_pem_stdin(void)
{
	char *buf = xcalloc(1, DKIM_KEY_PEM_MAX + 1);
	size_t n = fread(buf, 1, DKIM_KEY_PEM_MAX + 1, stdin);

	if (n > DKIM_KEY_PEM_MAX)
		ctl_die("the key on stdin is longer than %d bytes",
		    DKIM_KEY_PEM_MAX);
	if (n == 0)
		ctl_die("no key on stdin (PEM expected)");
	buf[n] = '\0';
	return buf;
}

static void
free_arg(struct dkim_arg *a)
{
	if (a->pem != NULL) {
		explicit_bzero(a->pem, strlen(a->pem));
		free(a->pem);
	}
	free(a->pub);
	free(a->headers);
}

/* Generates (alg) or reads the key and derives its public half. */
static void
load_key(struct dkim_arg *a, const char *alg, bool from_stdin)
{
	char err[256], got[16];

	if (from_stdin)
		a->pem = read_pem_stdin();
	else if ((a->pem = dkim_key_generate(alg, err, sizeof(err))) == NULL)
		ctl_die("%s", err);
	if (dkim_key_inspect(a->pem, got, &a->pub, err, sizeof(err)) == -1)
		ctl_die("%s", err);
	if (from_stdin && alg != NULL && strcmp(alg, got) != 0)
		ctl_die("--algorithm %s but the key on stdin is %s", alg, got);
	snprintf(a->alg, sizeof(a->alg), "%s", got);
}

int
cmd_dkim_add(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "dkim add DOMAIN --selector S [--algorithm rsa|ed25519] "
	    "[--generate | --key-stdin] [--required] [--subdomains] "
	    "[--canon relaxed/relaxed|simple/simple|relaxed/simple] "
	    "[--header NAME]...";
	struct dkim_arg a;
	const char *alg = NULL;
	bool gen = false, in = false;
	int rc;

	if (argc < 1 || argv[0][0] == '-')
		ctl_usage(use);
	memset(&a, 0, sizeof(a));
	a.domain = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i];
		if (strcmp(f, "--generate") == 0)
			gen = true;
		else if (strcmp(f, "--key-stdin") == 0)
			in = true;
		else if (strcmp(f, "--required") == 0)
			a.required = true;
		else if (strcmp(f, "--subdomains") == 0)
			a.subdomains = true;
		else if (i + 1 < argc && strcmp(f, "--selector") == 0)
			a.selector = argv[++i];
		else if (i + 1 < argc && strcmp(f, "--algorithm") == 0)
			alg = argv[++i];
		else if (i + 1 < argc && strcmp(f, "--canon") == 0) {
			a.canon = argv[++i];
			if (strcmp(a.canon, "relaxed/relaxed") == 0)
				a.canon = ""; /* the default, stored as "" */
			else if (strcmp(a.canon, "simple/simple") != 0 &&
			         strcmp(a.canon, "relaxed/simple") != 0)
				ctl_die("--canon must be relaxed/relaxed, "
				        "simple/simple or relaxed/simple, not "
				        "'%.32s'",
				    a.canon);
		} else if (i + 1 < argc && strcmp(f, "--header") == 0) {
			a.headers = xreallocarray(
			    a.headers, a.nheaders + 1, sizeof(*a.headers));
			a.headers[a.nheaders++] = argv[++i];
		} else if (strcmp(f, "--key") == 0)
			ctl_die("keys are not taken on the command line: use "
			        "--key-stdin");
		else
			ctl_usage(use);
	}
	if (a.selector == NULL)
		ctl_die("dkim add needs --selector");
	if (gen && in)
		ctl_die("--generate and --key-stdin exclude each other");
	if (alg != NULL && strcmp(alg, "rsa") != 0 &&
	    strcmp(alg, "ed25519") != 0)
		ctl_die("--algorithm must be rsa or ed25519, not '%s'", alg);
	check_names(a.domain, a.selector);
	load_key(&a, in ? alg : (alg != NULL ? alg : "rsa"), in);
	rc = ctl_policy_mutate(ctl, add_edit, &a);
	if (!ctl->json) {
		printf("publish this record before the key signs mail that "
		       "must verify:\n");
		print_dns(a.selector, a.domain, a.alg, a.pub);
	}
	free_arg(&a);
	return rc;
}

static void
del_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct dkim_arg *a = arg;
	size_t i, j, n = 0;

	for (i = 0, j = 0; i < p->n_dkim; i++) {
		Sluice__DkimKey *k = p->dkim[i];
		if (strcasecmp(k->domain, a->domain) == 0 &&
		    (a->del_all || strcasecmp(k->selector, a->selector) == 0)) {
			sluice__dkim_key__free_unpacked(k, NULL);
			n++;
		} else
			p->dkim[j++] = k;
	}
	p->n_dkim = j;
	if (n == 0) {
		if (a->del_all)
			ctl_die("no DKIM key for %s", a->domain);
		ctl_die("no DKIM key %s._domainkey.%s", a->selector, a->domain);
	}
	if (a->del_all)
		snprintf(
		    msg, msglen, "%zu DKIM key(s) of %s removed", n, a->domain);
	else
		snprintf(msg, msglen, "DKIM key %s._domainkey.%s removed",
		    a->selector, a->domain);
}

int
cmd_dkim_del(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] = "dkim del DOMAIN [--selector S]";
	struct dkim_arg a;

	memset(&a, 0, sizeof(a));
	if (argc == 1)
		a.del_all = true;
	else if (argc == 3 && strcmp(argv[1], "--selector") == 0)
		a.selector = argv[2];
	else
		ctl_usage(use);
	if (argv[0][0] == '-')
		ctl_usage(use);
	a.domain = argv[0];
	return ctl_policy_mutate(ctl, del_edit, &a);
}

/* rotate: one new key per algorithm the domain signs with */
struct rotate_arg {
	const char *domain;
	const char *selector; /* given, or NULL: made up */
	const char *alg;      /* given, or NULL: each one present */
	struct dkim_arg keys[2];
	size_t nkeys;
};

static void
rotate_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct rotate_arg *r = arg;
	size_t n = 0;

	for (size_t i = 0; i < r->nkeys; i++) {
		if (dkim_find(p, r->domain, r->keys[i].selector, NULL) != NULL)
			ctl_die("DKIM key %s._domainkey.%s exists: give "
			        "another --selector",
			    r->keys[i].selector, r->domain);
		dkim_append(p, &r->keys[i]);
		n += snprintf(msg + n, msglen > n ? msglen - n : 0, "%s%s",
		    i == 0 ? "DKIM keys of " : ",", r->keys[i].selector);
	}
	snprintf(msg + n, msglen > n ? msglen - n : 0,
	    " added for %s; the old selectors keep signing until removed",
	    r->domain);
}

int
cmd_dkim_rotate(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "dkim rotate DOMAIN [--selector S] [--algorithm rsa|ed25519]";
	struct rotate_arg r;
	Sluice__Policy *p;
	const Sluice__DkimKey *last[2] = {NULL, NULL};
	char base[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	memset(&r, 0, sizeof(r));
	if (argc < 1 || argv[0][0] == '-')
		ctl_usage(use);
	r.domain = argv[0];
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--selector") == 0)
			r.selector = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--algorithm") == 0)
			r.alg = argv[++i];
		else
			ctl_usage(use);
	}
	if (r.alg != NULL && strcmp(r.alg, "rsa") != 0 &&
	    strcmp(r.alg, "ed25519") != 0)
		ctl_die("--algorithm must be rsa or ed25519, not '%s'", r.alg);
	p = admin_policy_get(ctl, 0);
	for (size_t i = 0; i < p->n_dkim; i++)
		if (strcasecmp(p->dkim[i]->domain, r.domain) == 0)
			last[strcmp(p->dkim[i]->algorithm, "ed25519") == 0] =
			    p->dkim[i];
	if (last[0] == NULL && last[1] == NULL)
		ctl_die("no DKIM key for %s to rotate: use dkim add", r.domain);
	gmtime_r(&now, &tm);
	strftime(base, sizeof(base), "%Y%m%d", &tm);
	for (int k = 0; k < 2; k++) {
		const char *alg = k == 0 ? "rsa" : "ed25519";
		struct dkim_arg *a = &r.keys[r.nkeys];
		char sel[64];

		if (r.alg != NULL ? strcmp(r.alg, alg) != 0 : last[k] == NULL)
			continue;
		if (r.selector != NULL && r.nkeys > 0)
			ctl_die("%s signs with RSA and Ed25519: give "
			        "--algorithm with --selector",
			    r.domain);
		/* r20261206, e20261206, then r20261206b ... */
		snprintf(sel, sizeof(sel), "%c%s", alg[0], base);
		for (char c = 'b';
		     r.selector == NULL &&
		     dkim_find(p, r.domain, sel, NULL) != NULL && c <= 'z';
		     c++)
			snprintf(sel, sizeof(sel), "%c%s%c", alg[0], base, c);
		a->domain = r.domain;
		a->selector = xstrdup(r.selector != NULL ? r.selector : sel);
		check_names(r.domain, a->selector);
		if (last[k] == NULL)
			last[k] = last[1 - k];
		a->required = last[k]->required;
		a->subdomains = last[k]->subdomains;
		a->canon = last[k]->canon;
		a->headers = xcalloc(last[k]->n_headers + 1, sizeof(char *));
		for (size_t h = 0; h < last[k]->n_headers; h++)
			a->headers[h] = xstrdup(last[k]->headers[h]);
		a->nheaders = last[k]->n_headers;
		load_key(a, alg, false);
		r.nkeys++;
	}
	rc = ctl_policy_mutate(ctl, rotate_edit, &r);
	if (!ctl->json) {
		printf("publish, then remove the old selectors with "
		       "`sluicectl dkim del %s --selector OLD` once mail "
		       "signed with them has been delivered:\n",
		    r.domain);
		for (size_t i = 0; i < r.nkeys; i++)
			print_dns(r.keys[i].selector, r.domain, r.keys[i].alg,
			    r.keys[i].pub);
	}
	for (size_t i = 0; i < r.nkeys; i++) {
		for (size_t h = 0; h < r.keys[i].nheaders; h++)
			free(r.keys[i].headers[h]);
		free((char *)(uintptr_t)r.keys[i].selector);
		free_arg(&r.keys[i]);
	}
	sluice__policy__free_unpacked(p, NULL);
	return rc;
}

int
cmd_dkim_list(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	const char *dom = argc == 1 ? argv[0] : NULL;

	if (argc > 1 || (dom != NULL && dom[0] == '-'))
		ctl_usage("dkim list [DOMAIN]");
	p = admin_policy_get(ctl, 0);
	if (ctl->json) {
		struct json j;
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", p->version);
		json_array_begin(&j, "dkim");
		for (size_t i = 0; i < p->n_dkim; i++) {
			const Sluice__DkimKey *k = p->dkim[i];
			if (dom != NULL && strcasecmp(k->domain, dom) != 0)
				continue;
			json_object_begin(&j, NULL);
			json_str(&j, "domain", k->domain);
			json_str(&j, "selector", k->selector);
			json_str(&j, "algorithm", k->algorithm);
			json_bool(&j, "has_key", k->has_key);
			json_bool(&j, "required", k->required);
			json_bool(&j, "subdomains", k->subdomains);
			json_str(&j, "canon",
			    k->canon[0] ? k->canon : "relaxed/relaxed");
			json_str(&j, "public_key", k->public_key);
			json_array_begin(&j, "headers");
			for (size_t h = 0; h < k->n_headers; h++)
				json_str(&j, NULL, k->headers[h]);
			json_array_end(&j);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
	} else {
		struct table t;
		table_init(&t, 6, "DOMAIN", "SELECTOR", "ALGORITHM", "KEY",
		    "POLICY", "HEADERS");
		for (size_t i = 0; i < p->n_dkim; i++) {
			const Sluice__DkimKey *k = p->dkim[i];
			char pol[64], hdrs[512] = "default";
			size_t n = 0;
			if (dom != NULL && strcasecmp(k->domain, dom) != 0)
				continue;
			snprintf(pol, sizeof(pol), "%s%s%s%s",
			    k->required ? "required" : "optional",
			    k->subdomains ? ",subdomains" : "",
			    k->canon[0] ? "," : "", k->canon);
			for (size_t h = 0; h < k->n_headers && n < sizeof(hdrs);
			     h++)
				n += snprintf(hdrs + n, sizeof(hdrs) - n,
				    "%s%s", h ? ":" : "", k->headers[h]);
			table_row(&t, k->domain, k->selector,
			    k->algorithm[0] ? k->algorithm : "?",
			    k->has_key ? "stored" : "missing", pol, hdrs);
		}
		table_print(&t, stdout);
	}
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

/* check: each stored key against its published record. */
int
cmd_dkim_check(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "dkim check DOMAIN [--selector S] [--resolver IP[:PORT],...]";
	const char *sel = NULL, *servers = NULL;
	Sluice__Policy *p;
	struct table t;
	struct json j;
	size_t n = 0, bad = 0;

	if (argc < 1 || argv[0][0] == '-')
		ctl_usage(use);
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--selector") == 0)
			sel = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--resolver") == 0)
			servers = argv[++i];
		else
			ctl_usage(use);
	}
	p = admin_policy_get(ctl, 0);
	if (ctl->json) {
		json_init(&j, stdout);
		json_array_begin(&j, NULL);
	} else
		table_init(&t, 3, "RECORD", "STATUS", "DETAIL");
	for (size_t i = 0; i < p->n_dkim; i++) {
		const Sluice__DkimKey *k = p->dkim[i];
		char name[600], err[300] = "", *txt = NULL;
		const char *status = "ok", *why = "";

		if (strcasecmp(k->domain, argv[0]) != 0 ||
		    (sel && strcasecmp(k->selector, sel) != 0))
			continue;
		n++;
		snprintf(name, sizeof(name), "%s._domainkey.%s", k->selector,
		    k->domain);
		switch (dkim_dns_txt(servers, name, &txt, err, sizeof(err))) {
		case DKIM_DNS_FOUND:
			if (k->public_key[0] == '\0') {
				status = "unknown";
				why = "no public key stored (added by an older "
				      "sluicectl)";
			} else if ((why = dkim_dns_compare(txt, k->algorithm,
			                k->public_key)) != NULL)
				status = "mismatch";
			else
				why = "published record matches the key";
			break;
		case DKIM_DNS_NONE:
			status = "missing";
			why = "no TXT record: publish `sluicectl dkim dns`";
			break;
		case DKIM_DNS_ERROR:
			status = "error";
			why = err;
			break;
		}
		bad += strcmp(status, "ok") != 0;
		if (ctl->json) {
			json_object_begin(&j, NULL);
			json_str(&j, "name", name);
			json_str(&j, "status", status);
			json_str(&j, "detail", why);
			json_object_end(&j);
		} else
			table_row(&t, name, status, why);
		free(txt);
	}
	if (ctl->json) {
		json_array_end(&j);
		printf("\n");
	} else
		table_print(&t, stdout);
	sluice__policy__free_unpacked(p, NULL);
	if (n == 0)
		ctl_die("no DKIM key for %s", argv[0]);
	if (bad > 0)
		ctl_die("%zu of %zu DKIM record(s) of %s do not match the "
		        "stored keys",
		    bad, n, argv[0]);
	return 0;
}

int
cmd_dkim_dns(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	const char *sel = NULL;
	size_t n = 0;

	if (argc == 3 && strcmp(argv[1], "--selector") == 0)
		sel = argv[2];
	else if (argc != 1)
		ctl_usage("dkim dns DOMAIN [--selector S]");
	p = admin_policy_get(ctl, 0);
	if (ctl->json) {
		struct json j;
		json_init(&j, stdout);
		json_array_begin(&j, NULL);
		for (size_t i = 0; i < p->n_dkim; i++) {
			const Sluice__DkimKey *k = p->dkim[i];
			char name[600], *txt;
			if (strcasecmp(k->domain, argv[0]) != 0 ||
			    (sel && strcasecmp(k->selector, sel) != 0) ||
			    k->public_key[0] == '\0')
				continue;
			snprintf(name, sizeof(name), "%s._domainkey.%s",
			    k->selector, k->domain);
			txt =
			    dkim_key_txt(k->algorithm[0] ? k->algorithm : "rsa",
			        k->public_key);
			json_object_begin(&j, NULL);
			json_str(&j, "name", name);
			json_str(&j, "type", "TXT");
			json_str(&j, "value", txt != NULL ? txt : "");
			json_object_end(&j);
			free(txt);
			n++;
		}
		json_array_end(&j);
		printf("\n");
	} else
		for (size_t i = 0; i < p->n_dkim; i++) {
			const Sluice__DkimKey *k = p->dkim[i];
			if (strcasecmp(k->domain, argv[0]) != 0 ||
			    (sel && strcasecmp(k->selector, sel) != 0))
				continue;
			print_dns(k->selector, k->domain, k->algorithm,
			    k->public_key);
			n++;
		}
	sluice__policy__free_unpacked(p, NULL);
	if (n == 0) {
		if (sel != NULL)
			ctl_die("no DKIM key %s._domainkey.%s", sel, argv[0]);
		ctl_die("no DKIM key for %s", argv[0]);
	}
	return 0;
}

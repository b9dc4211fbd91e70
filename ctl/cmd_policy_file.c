/* cmd_policy_file.c - the whole-policy commands: export, show, apply, diff
 * and history.  A policy file is one new version, applied atomically, or
 * nothing changes; every error in it names its line (policy_yaml.c records
 * the lines, this file maps policy_check's and the controller's
 * "<section> #<n>: " errors back to them). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin.h"
#include "dkim_key.h"
#include "hop_preset.h"
#include "output.h"
#include "policy_check.h"
#include "policy_diff.h"
#include "policy_edit.h"
#include "policy_json.h"
#include "policy_yaml.h"
#include "xmalloc.h"

#define APPLY_TRIES 4

static void
json_policy(const Sluice__Policy *p)
{
	struct json j;
	size_t i;

	json_init(&j, stdout);
	json_object_begin(&j, NULL);
	json_uint(&j, "version", p->version);
	policy_json_networks(&j, p);
	policy_json_users(&j, p);
	policy_json_hops(&j, p);
	policy_json_routes(&j, p);
	json_object_begin(&j, "limits");
	for (i = 0; i < p->n_limits; i++)
		json_int(&j, p->limits[i]->key, p->limits[i]->value);
	json_object_end(&j);
	json_object_end(&j);
}

static void
print_policy(struct ctl *ctl, const Sluice__Policy *p)
{
	char *y;

	if (ctl->json) {
		json_policy(p);
		return;
	}
	y = policy_yaml_emit(p);
	fputs(y, stdout);
	free(y);
}

int
cmd_policy_export(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;

	(void)argv;
	if (argc != 0)
		ctl_usage("policy export");
	p = admin_policy_get(ctl, 0);
	print_policy(ctl, p);
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

int
cmd_policy_show(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	uint64_t v = 0;

	if (argc == 2 && strcmp(argv[0], "--version") == 0) {
		if (ctl_parse_u64(argv[1], UINT64_MAX, &v) == -1 || v == 0)
			ctl_die("--version must be a version number, not '%s'",
			    argv[1]);
	} else if (argc != 0)
		ctl_usage("policy show [--version N]");
	p = admin_policy_get(ctl, v);
	if (v != 0 && p->version != v)
		ctl_die("no policy version %" PRIu64, v);
	print_policy(ctl, p);
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

static void
print_diff(struct ctl *ctl, const struct policy_diff *d, uint64_t version,
    bool dry_run)
{
	struct json j;
	size_t i;
	char op[2] = {0, 0};

	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", version);
		json_array_begin(&j, "changes");
		for (i = 0; i < d->n; i++) {
			op[0] = d->v[i].op;
			json_object_begin(&j, NULL);
			json_str(&j, "op", op);
			json_str(&j, "kind", d->v[i].kind);
			json_str(&j, "name", d->v[i].name);
			json_str(&j, "detail", d->v[i].detail);
			json_object_end(&j);
		}
		json_array_end(&j);
		if (dry_run)
			json_bool(&j, "dry_run", true);
		json_object_end(&j);
		return;
	}
	if (d->n == 0) {
		printf("no changes (version %" PRIu64 ")\n", version);
		return;
	}
	for (i = 0; i < d->n; i++) {
		const struct policy_change *c = &d->v[i];
		if (c->detail[0] == '\0')
			printf("%c %s %s\n", c->op, c->kind, c->name);
		else if (c->op == '~')
			printf("%c %s %s: %s\n", c->op, c->kind, c->name,
			    c->detail);
		else
			printf("%c %s %s (%s)\n", c->op, c->kind, c->name,
			    c->detail);
	}
}

/* "hops #2: hop 'x' ..." from the controller: map to the file's line. */
static void
die_invalid(
    const struct policy_lines *lines, const char *fname, const char *msg)
{
	char section[32], out[768];
	const char *rest;
	int n = 0, used = 0;

	if (sscanf(msg, "%31[a-z] #%d: %n", section, &n, &used) == 2 &&
	    used > 0 && n > 0) {
		rest = msg + used;
		policy_yaml_error(
		    lines, fname, section, n - 1, rest, out, sizeof(out));
		ctl_die("%s", out);
	}
	ctl_die("%s: %s", fname, msg);
}

/* The file's DKIM keys: a private key given is checked and its public
 * half derived here; `private_key: keep` needs a stored key (whose public
 * half it takes when the file leaves it out).  cur NULL: offline, keep
 * is not checked. */
static void
dkim_resolve(const char *file, Sluice__Policy *p, const Sluice__Policy *cur,
    struct policy_lines *lines)
{
	char msg[512], err[768], alg[16], *pub;

	for (size_t i = 0; i < p->n_dkim; i++) {
		Sluice__DkimKey *k = p->dkim[i];
		const Sluice__DkimKey *c = NULL;

		for (size_t j = 0; cur != NULL && j < cur->n_dkim; j++)
			if (strcasecmp(cur->dkim[j]->domain, k->domain) == 0 &&
			    strcasecmp(cur->dkim[j]->selector, k->selector) ==
			        0)
				c = cur->dkim[j];
		if (k->private_key[0] != '\0') {
			if (dkim_key_inspect(k->private_key, alg, &pub, msg,
			        sizeof(msg)) == -1)
				goto bad;
			if (k->algorithm[0] != '\0' &&
			    strcmp(k->algorithm, alg) != 0) {
				snprintf(msg, sizeof(msg),
				    "algorithm %s but the key is %s",
				    k->algorithm, alg);
				free(pub);
				goto bad;
			}
			policy_set_str(&k->algorithm, alg);
			policy_set_str(&k->public_key, pub);
			free(pub);
			continue;
		}
		if (cur == NULL)
			continue; /* offline: keep is apply's to check */
		if (c == NULL || !c->has_key) {
			snprintf(msg, sizeof(msg),
			    "'private_key: keep' but no key is stored for "
			    "%s._domainkey.%s (use private_key_file)",
			    k->selector, k->domain);
			goto bad;
		}
		if (k->algorithm[0] == '\0')
			policy_set_str(&k->algorithm, c->algorithm);
		if (k->public_key[0] == '\0')
			policy_set_str(&k->public_key, c->public_key);
		continue;
	bad:
		snprintf(err, sizeof(err), "DKIM key %s._domainkey.%s: %s",
		    k->selector, k->domain, msg);
		policy_yaml_error(
		    lines, file, "dkim", (int)i, err, msg, sizeof(msg));
		ctl_die("%s", msg);
	}
}

/* A cloud relay refuses mail without its credentials (issue 10): a hop
 * of the file with a preset must have them, as `hop add --preset` must
 * ("secret: keep" counts; apply checks that a secret is stored). */
static void
preset_check(
    const char *file, const Sluice__Policy *p, const struct policy_lines *lines)
{
	char msg[300], err[768];
	const char *missing;
	size_t i;

	for (i = 0; i < p->n_hops; i++) {
		const Sluice__Hop *h = p->hops[i];

		if (h->preset[0] == '\0' || h->oauth2[0] != '\0' ||
		    (missing = hop_preset_missing_field(h->preset,
		         h->auth_user[0] != '\0', h->has_secret)) == NULL)
			continue;
		snprintf(msg, sizeof(msg), "hop '%s': preset %s needs %s",
		    h->name, h->preset, missing);
		policy_yaml_error(
		    lines, file, "hops", (int)i, msg, err, sizeof(err));
		ctl_die("%s", err);
	}
}

/* FILE on its own, before any controller is asked: YAML and every rule
 * policy_check knows, errors with line numbers.  What needs the stored
 * policy (secret: keep, private_key: keep, users without a password) is
 * load_checked's. */
static Sluice__Policy *
load_file(const char *file, struct policy_lines **lines)
{
	struct policy_error perr;
	Sluice__Policy *p;
	char err[768];

	if ((p = policy_yaml_load(file, lines, err, sizeof(err))) == NULL)
		ctl_die("%s", err);
	preset_check(file, p, *lines);
	if (policy_lines_has_dkim(*lines))
		dkim_resolve(file, p, NULL, *lines);
	if (policy_check(p, POLICY_CHECK_APPLY, &perr) == -1) {
		policy_yaml_error(*lines, file, perr.section, perr.index,
		    perr.msg, err, sizeof(err));
		ctl_die("%s", err);
	}
	return p;
}

/* Exits on any error in FILE, offline. */
static void
check_file(const char *file)
{
	struct policy_lines *lines = NULL;
	Sluice__Policy *p = load_file(file, &lines);

	policy_lines_free(lines);
	sluice__policy__free_unpacked(p, NULL);
}

/* Loads FILE against the current policy, checked with line numbers.  A
 * file without a dkim: section keeps the stored DKIM keys. */
static Sluice__Policy *
load_checked(
    const char *file, const Sluice__Policy *cur, struct policy_lines **lines)
{
	struct policy_error perr;
	Sluice__Policy *p;
	char err[768];
	size_t i;
	int c;

	if ((p = policy_yaml_load(file, lines, err, sizeof(err))) == NULL)
		ctl_die("%s", err);
	preset_check(file, p, *lines);
	if (policy_lines_has_dkim(*lines))
		dkim_resolve(file, p, cur, *lines);
	for (i = 0; !policy_lines_has_dkim(*lines) && i < cur->n_dkim; i++) {
		Sluice__Policy tmp = SLUICE__POLICY__INIT;
		Sluice__Policy *d;
		tmp.n_dkim = 1;
		tmp.dkim = &cur->dkim[i];
		d = policy_dup(&tmp);
		p->dkim =
		    xreallocarray(p->dkim, p->n_dkim + 1, sizeof(*p->dkim));
		p->dkim[p->n_dkim++] = d->dkim[0];
		d->n_dkim = 0;
		sluice__policy__free_unpacked(d, NULL);
	}
	if (!policy_lines_has_suppression_mode(*lines))
		policy_set_str(&p->suppression_mode, cur->suppression_mode);
	/* Provider hooks and the suppression list are managed by `hook` and
	 * `suppress` (and the controller), not by policy files: an apply
	 * keeps the stored ones. */
	if (cur->n_provider_hooks > 0 || cur->n_suppressions > 0) {
		Sluice__Policy tmp = SLUICE__POLICY__INIT;
		Sluice__Policy *d;

		tmp.n_provider_hooks = cur->n_provider_hooks;
		tmp.provider_hooks = cur->provider_hooks;
		tmp.n_suppressions = cur->n_suppressions;
		tmp.suppressions = cur->suppressions;
		d = policy_dup(&tmp);
		p->provider_hooks = d->provider_hooks;
		p->n_provider_hooks = d->n_provider_hooks;
		p->suppressions = d->suppressions;
		p->n_suppressions = d->n_suppressions;
		d->provider_hooks = NULL;
		d->n_provider_hooks = 0;
		d->suppressions = NULL;
		d->n_suppressions = 0;
		sluice__policy__free_unpacked(d, NULL);
	}
	for (i = 0; i < p->n_hops; i++) {
		if (!p->hops[i]->keep_secret)
			continue;
		c = policy_find_hop(cur, p->hops[i]->name);
		if (c < 0 || !cur->hops[c]->has_secret) {
			snprintf(perr.msg, sizeof(perr.msg),
			    "hop '%s': 'secret: keep' but no secret is stored "
			    "for it (use secret_env or secret_file)",
			    p->hops[i]->name);
			policy_yaml_error(*lines, file, "hops", (int)i,
			    perr.msg, err, sizeof(err));
			ctl_die("%s", err);
		}
	}
	if (policy_check(p, POLICY_CHECK_APPLY, &perr) == -1) {
		policy_yaml_error(*lines, file, perr.section, perr.index,
		    perr.msg, err, sizeof(err));
		ctl_die("%s", err);
	}
	for (i = 0; i < p->n_users; i++) {
		if (p->users[i]->password_hash[0] != '\0')
			continue;
		if (policy_find_user(cur, p->users[i]->name) < 0) {
			snprintf(perr.msg, sizeof(perr.msg),
			    "user '%s' is new and needs password_file or "
			    "password_env",
			    p->users[i]->name);
			policy_yaml_error(*lines, file, "users", (int)i,
			    perr.msg, err, sizeof(err));
			ctl_die("%s", err);
		}
	}
	return p;
}

static const char *
file_arg(int argc, char **argv, bool *dry_run, const char *use)
{
	const char *file = NULL;
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (dry_run != NULL && strcmp(argv[i], "--dry-run") == 0)
			*dry_run = true;
		else
			ctl_usage(use);
	}
	if (file == NULL)
		ctl_usage(use);
	return file;
}

/* policy check -f FILE: offline, no controller. */
int
cmd_policy_check(struct ctl *ctl, int argc, char **argv)
{
	const char *file = file_arg(argc, argv, NULL, "policy check -f FILE");
	struct policy_lines *lines = NULL;
	Sluice__Policy *p;
	struct json j;

	p = load_file(file, &lines);
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_str(&j, "file", file);
		json_bool(&j, "ok", true);
		json_uint(&j, "networks", p->n_networks);
		json_uint(&j, "users", p->n_users);
		json_uint(&j, "hops", p->n_hops);
		json_uint(&j, "routes", p->n_routes);
		json_object_end(&j);
	} else
		printf("%s: ok (%zu networks, %zu users, %zu hops, %zu "
		       "routes)\n",
		    file, p->n_networks, p->n_users, p->n_hops, p->n_routes);
	policy_lines_free(lines);
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

int
cmd_policy_diff(struct ctl *ctl, int argc, char **argv)
{
	const char *file = file_arg(argc, argv, NULL, "policy diff -f FILE");
	struct policy_lines *lines = NULL;
	Sluice__Policy *cur, *p;
	struct policy_diff d;

	check_file(file); /* errors in the file need no controller */
	cur = admin_policy_get(ctl, 0);
	p = load_checked(file, cur, &lines);
	policy_diff(cur, p, &d);
	print_diff(ctl, &d, cur->version, false);
	policy_diff_free(&d);
	policy_lines_free(lines);
	sluice__policy__free_unpacked(p, NULL);
	sluice__policy__free_unpacked(cur, NULL);
	return 0;
}

int
cmd_policy_apply(struct ctl *ctl, int argc, char **argv)
{
	bool dry_run = false, changed = false;
	const char *file =
	    file_arg(argc, argv, &dry_run, "policy apply -f FILE [--dry-run]");
	struct policy_lines *lines = NULL;
	Sluice__Policy *cur, *p;
	struct policy_diff d;
	uint64_t version = 0;
	char why[512];
	int attempt;

	check_file(file); /* errors in the file need no controller */
	for (attempt = 0; attempt < APPLY_TRIES; attempt++) {
		cur = admin_policy_get(ctl, 0);
		p = load_checked(file, cur, &lines);
		policy_diff(cur, p, &d);
		if (dry_run) {
			print_diff(ctl, &d, cur->version, true);
			if (!ctl->json && d.n > 0)
				printf("dry run: %zu change(s), nothing "
				       "applied\n",
				    d.n);
			goto out;
		}
		switch (admin_policy_apply(ctl, p, cur->version, &version,
		    &changed, why, sizeof(why))) {
		case ADMIN_APPLIED:
			goto applied;
		case ADMIN_CONFLICT:
			policy_diff_free(&d);
			policy_lines_free(lines);
			lines = NULL;
			sluice__policy__free_unpacked(p, NULL);
			sluice__policy__free_unpacked(cur, NULL);
			continue;
		case ADMIN_INVALID:
			die_invalid(lines, file, why);
		}
	}
	ctl_die("the policy kept changing under this apply (%d tries); run "
	        "it again",
	    APPLY_TRIES);
applied:
	if (ctl->json) {
		struct json j;
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", version);
		json_bool(&j, "changed", changed);
		json_uint(&j, "changes", changed ? d.n : 0);
		json_object_end(&j);
	} else if (!changed)
		printf("no changes (version %" PRIu64 ")\n", version);
	else {
		print_diff(ctl, &d, version, false);
		printf("applied: policy version %" PRIu64 "\n", version);
	}
out:
	policy_diff_free(&d);
	policy_lines_free(lines);
	sluice__policy__free_unpacked(p, NULL);
	sluice__policy__free_unpacked(cur, NULL);
	return 0;
}

int
cmd_policy_history(struct ctl *ctl, int argc, char **argv)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__Empty empty = SLUICE__EMPTY__INIT;
	Sluice__AdminReply *r;
	Sluice__PolicyHistoryReply *h;
	struct table t;
	struct json j;
	char ver[24], when[32];
	size_t i;

	(void)argv;
	if (argc != 0)
		ctl_usage("policy history");
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_POLICY_HISTORY;
	req.policy_history = &empty;
	r = admin_call(ctl, &req, NULL);
	if (r->body_case != SLUICE__ADMIN_REPLY__BODY_POLICY_HISTORY ||
	    r->policy_history == NULL)
		ctl_die(
		    "controller sent an unexpected reply to policy history");
	h = r->policy_history;
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_array_begin(&j, "versions");
		for (i = 0; i < h->n_versions; i++) {
			json_object_begin(&j, NULL);
			json_uint(&j, "version", h->versions[i]->version);
			json_int(&j, "created_at", h->versions[i]->created_at);
			json_str(&j, "identity", h->versions[i]->identity);
			json_str(&j, "summary", h->versions[i]->summary);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
	} else if (h->n_versions == 0)
		printf("no policy versions yet\n");
	else {
		table_init(&t, 4, "VERSION", "CREATED", "IDENTITY", "SUMMARY");
		for (i = 0; i < h->n_versions; i++) {
			snprintf(ver, sizeof(ver), "%" PRIu64,
			    h->versions[i]->version);
			fmt_time(
			    h->versions[i]->created_at, when, sizeof(when));
			table_row(&t, ver, when, h->versions[i]->identity,
			    h->versions[i]->summary);
		}
		table_print(&t, stdout);
	}
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}

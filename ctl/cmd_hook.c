/* cmd_hook.c - `sluicectl hook add|del|list` (provider webhook accounts)
 * and `sluicectl suppress list|add|del` (the suppression list), both
 * parts of the policy (issue 16, docs/providers.md).  Secrets (Mailgun
 * signing key, Basic password, path token) come on stdin, never argv;
 * lists show "stored" for them. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "output.h"
#include "policy_check.h"
#include "policy_edit.h"
#include "sluicectl.h"
#include "xmalloc.h"

#define HOOK_SECRET_MAX 4096

struct hook_arg {
	const char *provider, *name, *key;
	char secret[HOOK_SECRET_MAX];
	char token[HOOK_SECRET_MAX];
	bool engagement, suppress, tag, del;
};

static int
hook_find(const Sluice__Policy *p, const char *provider, const char *name)
{
	size_t i;

	for (i = 0; i < p->n_provider_hooks; i++)
		if (strcmp(p->provider_hooks[i]->provider, provider) == 0 &&
		    strcmp(p->provider_hooks[i]->name, name) == 0)
			return (int)i;
	return -1;
}

static void
hook_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct hook_arg *a = arg;
	Sluice__ProviderHook *h;
	int i = hook_find(p, a->provider, a->name);
	size_t k;

	if (a->del) {
		if (i < 0)
			ctl_die("hook %s/%s is not in the policy", a->provider,
			    a->name);
		sluice__provider_hook__free_unpacked(
		    p->provider_hooks[i], NULL);
		for (k = (size_t)i; k + 1 < p->n_provider_hooks; k++)
			p->provider_hooks[k] = p->provider_hooks[k + 1];
		p->n_provider_hooks--;
		snprintf(
		    msg, msglen, "hook %s/%s removed", a->provider, a->name);
		return;
	}
	if (i < 0) {
		h = xcalloc(1, sizeof(*h));
		sluice__provider_hook__init(h);
		p->provider_hooks = xreallocarray(p->provider_hooks,
		    p->n_provider_hooks + 1, sizeof(*p->provider_hooks));
		p->provider_hooks[p->n_provider_hooks++] = h;
		policy_set_str(&h->provider, a->provider);
		policy_set_str(&h->name, a->name);
	} else
		h = p->provider_hooks[i];
	if (a->key != NULL)
		policy_set_str(&h->key, a->key);
	/* an empty secret with has_secret keeps the stored one */
	if (a->secret[0] != '\0')
		policy_set_str(&h->secret, a->secret);
	if (a->token[0] != '\0')
		policy_set_str(&h->path_token, a->token);
	h->engagement = a->engagement;
	h->suppress = a->suppress;
	h->tag = a->tag;
	snprintf(msg, msglen, "hook %s/%s %s", a->provider, a->name,
	    i < 0 ? "added" : "changed");
}

static void
hook_stdin(const char *what, char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, stdin) == NULL)
		ctl_die("no %s on stdin", what);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	if (n == 0)
		ctl_die("empty %s on stdin", what);
}

int
cmd_hook_add(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "hook add PROVIDER NAME [--key K] [--secret-stdin] "
	    "[--path-token-stdin] [--engagement] [--suppress] [--tag]";
	struct hook_arg a;
	bool sec = false, tok = false;
	int i, rc;

	if (argc < 2)
		ctl_usage(use);
	memset(&a, 0, sizeof(a));
	a.provider = argv[0];
	a.name = argv[1];
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			a.key = argv[++i];
		else if (strcmp(argv[i], "--secret-stdin") == 0)
			sec = true;
		else if (strcmp(argv[i], "--path-token-stdin") == 0)
			tok = true;
		else if (strcmp(argv[i], "--engagement") == 0)
			a.engagement = true;
		else if (strcmp(argv[i], "--suppress") == 0)
			a.suppress = true;
		else if (strcmp(argv[i], "--tag") == 0)
			a.tag = true;
		else
			ctl_usage(use);
	}
	/* secret first, then the path token: one line each */
	if (sec)
		hook_stdin("secret", a.secret, sizeof(a.secret));
	if (tok)
		hook_stdin("path token", a.token, sizeof(a.token));
	rc = ctl_policy_mutate(ctl, hook_edit, &a);
	explicit_bzero(a.secret, sizeof(a.secret));
	explicit_bzero(a.token, sizeof(a.token));
	return rc;
}

int
cmd_hook_del(struct ctl *ctl, int argc, char **argv)
{
	struct hook_arg a;

	if (argc != 2)
		ctl_usage("hook del PROVIDER NAME");
	memset(&a, 0, sizeof(a));
	a.provider = argv[0];
	a.name = argv[1];
	a.del = true;
	return ctl_policy_mutate(ctl, hook_edit, &a);
}

int
cmd_hook_list(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	struct table t;
	struct json j;
	char path[300], flags[64];
	size_t i;

	(void)argv;
	if (argc != 0)
		ctl_usage("hook list");
	p = admin_policy_get(ctl, 0);
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", p->version);
		json_array_begin(&j, "hooks");
		for (i = 0; i < p->n_provider_hooks; i++) {
			const Sluice__ProviderHook *h = p->provider_hooks[i];

			json_object_begin(&j, NULL);
			json_str(&j, "provider", h->provider);
			json_str(&j, "name", h->name);
			json_str(&j, "key", h->key);
			json_bool(&j, "has_secret", h->has_secret);
			json_bool(&j, "has_path_token", h->has_path_token);
			json_bool(&j, "engagement", h->engagement);
			json_bool(&j, "suppress", h->suppress);
			json_bool(&j, "tag", h->tag);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
	} else if (p->n_provider_hooks == 0)
		printf("no provider hooks\n");
	else {
		table_init(
		    &t, 5, "PROVIDER", "NAME", "PATH", "SECRET", "FLAGS");
		for (i = 0; i < p->n_provider_hooks; i++) {
			const Sluice__ProviderHook *h = p->provider_hooks[i];

			snprintf(path, sizeof(path), "/hooks/%s/%s%s",
			    h->provider, h->name,
			    h->has_path_token ? "/<token>" : "");
			snprintf(flags, sizeof(flags), "%s%s%s",
			    h->engagement ? "engagement " : "",
			    h->suppress ? "suppress " : "",
			    h->tag ? "tag" : "");
			table_row(&t, h->provider, h->name, path,
			    h->has_secret ? "stored" : "-",
			    flags[0] ? flags : "-");
		}
		table_print(&t, stdout);
	}
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

/* -------------------------------------------------------- suppressions */

struct sup_arg {
	char address[POLICY_ADDRESS_MAX + 2];
	const char *reason;
	bool del;
};

static void
sup_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct sup_arg *a = arg;
	Sluice__Suppression *s;
	size_t i;

	for (i = 0; i < p->n_suppressions; i++)
		if (strcmp(p->suppressions[i]->address, a->address) == 0)
			break;
	if (a->del) {
		if (i == p->n_suppressions)
			ctl_die("%s is not suppressed", a->address);
		sluice__suppression__free_unpacked(p->suppressions[i], NULL);
		for (; i + 1 < p->n_suppressions; i++)
			p->suppressions[i] = p->suppressions[i + 1];
		p->n_suppressions--;
		snprintf(msg, msglen, "%s no longer suppressed", a->address);
		return;
	}
	if (i < p->n_suppressions)
		return; /* already there: the apply is a no-op */
	s = xcalloc(1, sizeof(*s));
	sluice__suppression__init(s);
	policy_set_str(&s->address, a->address);
	policy_set_str(&s->reason, a->reason);
	policy_set_str(&s->source, ctl_identity());
	s->added_at = (int64_t)time(NULL);
	p->suppressions = xreallocarray(
	    p->suppressions, p->n_suppressions + 1, sizeof(*p->suppressions));
	p->suppressions[p->n_suppressions++] = s;
	snprintf(msg, msglen, "%s suppressed", a->address);
}

static void
sup_address(struct sup_arg *a, const char *arg)
{
	size_t i, n = strlen(arg);

	if (n > 0 && arg[0] == '<' && arg[n - 1] == '>') {
		arg++;
		n -= 2;
	}
	if (n == 0 || n > POLICY_ADDRESS_MAX || memchr(arg, '@', n) == NULL)
		ctl_die("'%s' is not an address (local@domain)", arg);
	for (i = 0; i < n; i++)
		a->address[i] = (char)tolower((unsigned char)arg[i]);
	a->address[n] = '\0';
}

int
cmd_suppress_add(struct ctl *ctl, int argc, char **argv)
{
	struct sup_arg a;

	memset(&a, 0, sizeof(a));
	a.reason = "manual";
	if (argc == 3 && strcmp(argv[1], "--reason") == 0)
		a.reason = argv[2];
	else if (argc != 1)
		ctl_usage("suppress add ADDRESS [--reason bounce|complaint|"
		          "manual]");
	if (strcmp(a.reason, "bounce") != 0 &&
	    strcmp(a.reason, "complaint") != 0 &&
	    strcmp(a.reason, "manual") != 0)
		ctl_die(
		    "reason '%s' is not bounce, complaint or manual", a.reason);
	sup_address(&a, argv[0]);
	return ctl_policy_mutate(ctl, sup_edit, &a);
}

int
cmd_suppress_del(struct ctl *ctl, int argc, char **argv)
{
	struct sup_arg a;

	if (argc != 1)
		ctl_usage("suppress del ADDRESS");
	memset(&a, 0, sizeof(a));
	a.del = true;
	sup_address(&a, argv[0]);
	return ctl_policy_mutate(ctl, sup_edit, &a);
}

static void
sup_mode_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	const char *mode = arg;

	policy_set_str(&p->suppression_mode, mode);
	snprintf(msg, msglen, "suppressed recipients are %s",
	    strcmp(mode, "bounce") == 0
	        ? "accepted and bounced by the node (DSN)"
	        : "refused at RCPT (550)");
}

/* suppress mode [refuse|bounce]: without an argument, prints it. */
int
cmd_suppress_mode(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	const char *mode;

	if (argc > 1)
		ctl_usage("suppress mode [refuse|bounce]");
	if (argc == 0) {
		p = admin_policy_get(ctl, 0);
		mode = p->suppression_mode[0] ? p->suppression_mode : "refuse";
		if (ctl->json)
			printf("{\"version\":%" PRIu64 ",\"mode\":\"%s\"}\n",
			    p->version, mode);
		else
			printf("%s\n", mode);
		sluice__policy__free_unpacked(p, NULL);
		return 0;
	}
	if (strcmp(argv[0], "refuse") != 0 && strcmp(argv[0], "bounce") != 0)
		ctl_die("mode '%s' is not refuse or bounce", argv[0]);
	return ctl_policy_mutate(ctl, sup_mode_edit, argv[0]);
}

int
cmd_suppress_list(struct ctl *ctl, int argc, char **argv)
{
	Sluice__Policy *p;
	struct table t;
	struct json j;
	char when[32];
	size_t i;

	(void)argv;
	if (argc != 0)
		ctl_usage("suppress list");
	p = admin_policy_get(ctl, 0);
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "version", p->version);
		json_str(&j, "mode",
		    p->suppression_mode[0] ? p->suppression_mode : "refuse");
		json_array_begin(&j, "suppressions");
		for (i = 0; i < p->n_suppressions; i++) {
			const Sluice__Suppression *s = p->suppressions[i];

			json_object_begin(&j, NULL);
			json_str(&j, "address", s->address);
			json_str(&j, "reason", s->reason);
			json_str(&j, "source", s->source);
			json_int(&j, "added_at", s->added_at);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
	} else if (p->n_suppressions == 0)
		printf("no suppressed addresses\n");
	else {
		table_init(&t, 4, "ADDRESS", "REASON", "ADDED", "SOURCE");
		for (i = 0; i < p->n_suppressions; i++) {
			const Sluice__Suppression *s = p->suppressions[i];
			time_t at = (time_t)s->added_at;
			struct tm tm;

			gmtime_r(&at, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
			table_row(&t, s->address, s->reason, when, s->source);
		}
		table_print(&t, stdout);
	}
	sluice__policy__free_unpacked(p, NULL);
	return 0;
}

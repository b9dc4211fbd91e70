/* policy_secret.c - redaction of secrets for admin replies and merging of
 * kept secrets into an applied policy (see policy_secret.h).  Called by
 * api_admin.c; pure. */
#include "policy_secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replaces an unpacked string field; the old value is freed unless it is
 * protobuf-c's shared empty default. */
static int
policy_secret_set(char **dst, const char *src)
{
	char *n;

	if ((n = strdup(src)) == NULL)
		return -1;
	if (*dst != NULL && *dst != protobuf_c_empty_string)
		free(*dst);
	*dst = n;
	return 0;
}

/* Blank in place: the bytes are zeroed, the allocation stays. */
static void
policy_secret_blank(char *s)
{
	memset(s, 0, strlen(s));
}

void
policy_secret_redact(Sluice__Policy *p)
{
	size_t i;

	for (i = 0; i < p->n_hops; i++) {
		p->hops[i]->has_secret = p->hops[i]->secret[0] != '\0';
		p->hops[i]->keep_secret = 0;
		policy_secret_blank(p->hops[i]->secret);
	}
	for (i = 0; i < p->n_users; i++) {
		p->users[i]->has_password =
		    p->users[i]->password_hash[0] != '\0';
		policy_secret_blank(p->users[i]->password_hash);
	}
	for (i = 0; i < p->n_dkim; i++) {
		p->dkim[i]->has_key = p->dkim[i]->private_key[0] != '\0';
		policy_secret_blank(p->dkim[i]->private_key);
	}
	for (i = 0; i < p->n_provider_hooks; i++) {
		Sluice__ProviderHook *h = p->provider_hooks[i];

		h->has_secret = h->secret[0] != '\0';
		h->has_path_token = h->path_token[0] != '\0';
		policy_secret_blank(h->secret);
		policy_secret_blank(h->path_token);
	}
}

static int
policy_secret_oom(struct policy_error *err, const char *section, size_t i)
{
	err->section = section;
	err->index = (int)i;
	snprintf(err->msg, sizeof(err->msg), "out of memory");
	return -1;
}

static int
policy_secret_hops(
    Sluice__Policy *p, const Sluice__Policy *cur, struct policy_error *err)
{
	const Sluice__Hop *c;
	Sluice__Hop *h;
	size_t i, j;

	for (i = 0; i < p->n_hops; i++) {
		h = p->hops[i];
		if (h->keep_secret || (h->secret[0] == '\0' && h->has_secret)) {
			c = NULL;
			for (j = 0; cur != NULL && j < cur->n_hops; j++)
				if (strcmp(cur->hops[j]->name, h->name) == 0)
					c = cur->hops[j];
			/* Nothing stored to keep: the hop has no secret. */
			if (policy_secret_set(
			        &h->secret, c != NULL ? c->secret : "") == -1)
				return policy_secret_oom(err, "hops", i);
		}
		h->has_secret = h->secret[0] != '\0';
		h->keep_secret = 0;
	}
	return 0;
}

static int
policy_secret_users(
    Sluice__Policy *p, const Sluice__Policy *cur, struct policy_error *err)
{
	const Sluice__User *c;
	Sluice__User *u;
	size_t i, j;

	for (i = 0; i < p->n_users; i++) {
		u = p->users[i];
		if (u->password_hash[0] == '\0' && u->has_password) {
			c = NULL;
			for (j = 0; cur != NULL && j < cur->n_users; j++)
				if (strcmp(cur->users[j]->name, u->name) == 0)
					c = cur->users[j];
			if (c != NULL && c->password_hash[0] != '\0' &&
			    policy_secret_set(
			        &u->password_hash, c->password_hash) == -1)
				return policy_secret_oom(err, "users", i);
		}
		if (u->password_hash[0] == '\0') {
			err->section = "users";
			err->index = (int)i;
			snprintf(err->msg, sizeof(err->msg),
			    "user '%.64s' has no password", u->name);
			return -1;
		}
		u->has_password = 1;
	}
	return 0;
}

static int
policy_secret_dkim(
    Sluice__Policy *p, const Sluice__Policy *cur, struct policy_error *err)
{
	const Sluice__DkimKey *c;
	Sluice__DkimKey *k;
	size_t i, j;

	for (i = 0; i < p->n_dkim; i++) {
		k = p->dkim[i];
		if (k->private_key[0] == '\0' && k->has_key) {
			c = NULL;
			for (j = 0; cur != NULL && j < cur->n_dkim; j++)
				if (strcmp(cur->dkim[j]->domain, k->domain) ==
				        0 &&
				    strcmp(cur->dkim[j]->selector,
				        k->selector) == 0)
					c = cur->dkim[j];
			if (c != NULL && policy_secret_set(&k->private_key,
			                     c->private_key) == -1)
				return policy_secret_oom(err, "dkim", i);
		}
		k->has_key = k->private_key[0] != '\0';
	}
	return 0;
}

/* Provider hooks (issue 16): secret and path token kept by provider and
 * name, like hop secrets. */
static int
policy_secret_provider_hooks(
    Sluice__Policy *p, const Sluice__Policy *cur, struct policy_error *err)
{
	const Sluice__ProviderHook *c;
	Sluice__ProviderHook *h;
	size_t i, j;

	for (i = 0; i < p->n_provider_hooks; i++) {
		h = p->provider_hooks[i];
		c = NULL;
		for (j = 0; cur != NULL && j < cur->n_provider_hooks; j++)
			if (strcmp(cur->provider_hooks[j]->provider,
			        h->provider) == 0 &&
			    strcmp(cur->provider_hooks[j]->name, h->name) == 0)
				c = cur->provider_hooks[j];
		if (h->secret[0] == '\0' && h->has_secret &&
		    policy_secret_set(&h->secret, c != NULL ? c->secret : "") ==
		        -1)
			return policy_secret_oom(err, "provider_hooks", i);
		if (h->path_token[0] == '\0' && h->has_path_token &&
		    policy_secret_set(
		        &h->path_token, c != NULL ? c->path_token : "") == -1)
			return policy_secret_oom(err, "provider_hooks", i);
		h->has_secret = h->secret[0] != '\0';
		h->has_path_token = h->path_token[0] != '\0';
	}
	return 0;
}

int
policy_secret_merge(
    Sluice__Policy *p, const Sluice__Policy *cur, struct policy_error *err)
{
	if (policy_secret_hops(p, cur, err) == -1 ||
	    policy_secret_users(p, cur, err) == -1 ||
	    policy_secret_dkim(p, cur, err) == -1 ||
	    policy_secret_provider_hooks(p, cur, err) == -1)
		return -1;
	return 0;
}

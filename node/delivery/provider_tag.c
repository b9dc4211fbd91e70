/* provider_tag.c - pure: the provider metadata header with sluice's
 * queue id (provider_tag.h). */
#include "provider_tag.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

const char *
provider_tag_for_hop(const Sluice__Policy *p, const char *hop)
{
	size_t i;

	if (p == NULL || hop == NULL)
		return NULL;
	for (i = 0; i < p->n_provider_hooks; i++) {
		const Sluice__ProviderHook *h = p->provider_hooks[i];

		if (h->tag && strcmp(h->name, hop) == 0)
			return h->provider;
	}
	return NULL;
}

/* Safe inside a header, a JSON string and an SES tag value. */
static bool
pt_qid_ok(const char *qid)
{
	const char *c;

	if (*qid == '\0' || strlen(qid) > 64)
		return false;
	for (c = qid; *c != '\0'; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		        (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' ||
		        *c == '-'))
			return false;
	return true;
}

size_t
provider_tag_header(
    const char *provider, const char *qid, char *out, size_t outlen)
{
	static const struct {
		const char *provider, *fmt;
	} forms[] = {
	    {"ses", "X-SES-MESSAGE-TAGS: " PROVIDER_TAG_KEY "=%s\r\n"},
	    {"sendgrid", "X-SMTPAPI: {\"unique_args\":{\"" PROVIDER_TAG_KEY
	                 "\":\"%s\"}}\r\n"},
	    {"mailgun",
	        "X-Mailgun-Variables: {\"" PROVIDER_TAG_KEY "\":\"%s\"}\r\n"},
	    {"postmark", "X-PM-Metadata-sluice-queue-id: %s\r\n"},
	    {"brevo", "X-Mailin-custom: " PROVIDER_TAG_KEY "=%s\r\n"},
	};
	size_t i;
	int n;

	if (outlen > 0)
		out[0] = '\0';
	if (provider == NULL || qid == NULL || !pt_qid_ok(qid))
		return 0;
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		if (strcmp(forms[i].provider, provider) != 0)
			continue;
		n = snprintf(out, outlen, forms[i].fmt, qid);
		if (n < 0 || (size_t)n >= outlen) {
			if (outlen > 0)
				out[0] = '\0';
			return 0;
		}
		return (size_t)n;
	}
	return 0;
}

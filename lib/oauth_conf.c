/* oauth_conf.c - the XOAUTH2 hop settings and the providers' defaults.
 * Microsoft identity platform v2.0 client credentials flow: the token
 * endpoint is per tenant and the scope for SMTP is the Exchange Online
 * resource's ".default".  Google: one token endpoint, the scope that
 * covers SMTP is https://mail.google.com/. */
#include "oauth_conf.h"

#include <stdio.h>
#include <string.h>

const char *
oauth_conf_kinds(void)
{
	return "m365|google";
}

void
oauth_conf_token_url(const Sluice__Hop *h, char *buf, size_t len)
{
	if (h->oauth2_token_url[0] != '\0')
		snprintf(buf, len, "%s", h->oauth2_token_url);
	else if (strcmp(h->oauth2, "google") == 0)
		snprintf(buf, len, "%s", OAUTH_GOOGLE_TOKEN_URL);
	else if (strcmp(h->oauth2, "m365") == 0 && h->oauth2_tenant[0] != '\0')
		snprintf(buf, len,
		    "https://login.microsoftonline.com/%s/oauth2/v2.0/token",
		    h->oauth2_tenant);
	else if (len > 0)
		buf[0] = '\0';
}

const char *
oauth_conf_scope(const Sluice__Hop *h)
{
	if (h->oauth2_scope[0] != '\0')
		return h->oauth2_scope;
	return strcmp(h->oauth2, "google") == 0 ? OAUTH_GOOGLE_SCOPE
	                                        : OAUTH_M365_SCOPE;
}

/* Printable ASCII without spaces: ends up in a URL or a form body. */
static bool
oauth_conf_token(const char *s)
{
	for (; *s; s++)
		if (*s <= ' ' || *s >= 0x7f)
			return false;
	return true;
}

const char *
oauth_conf_problem(const Sluice__Hop *h, bool has_secret, char *buf, size_t len)
{
	bool m365 = strcmp(h->oauth2, "m365") == 0;

	if (!m365 && strcmp(h->oauth2, "google") != 0) {
		snprintf(buf, len, "oauth2 must be %s, not '%.32s'",
		    oauth_conf_kinds(), h->oauth2);
		return buf;
	}
	if (m365 && h->oauth2_tenant[0] == '\0' &&
	    h->oauth2_token_url[0] == '\0')
		return "oauth2 m365 needs tenant (the directory id or "
		       "domain)";
	if (!oauth_conf_token(h->oauth2_tenant) ||
	    strchr(h->oauth2_tenant, '/') != NULL ||
	    strchr(h->oauth2_tenant, '?') != NULL)
		return "oauth2 tenant must be a directory id or domain";
	if (h->oauth2_client_id[0] == '\0')
		return m365 ? "oauth2 m365 needs client_id (the application "
		              "id)"
		            : "oauth2 google needs client_id (the service "
		              "account's client_email; service_account_file "
		              "sets it)";
	if (!oauth_conf_token(h->oauth2_client_id))
		return "oauth2 client_id must not contain spaces";
	if (h->auth_user[0] == '\0')
		return m365 ? "oauth2 m365 needs user (the mailbox it sends "
		              "as)"
		            : "oauth2 google needs user (impersonate: the "
		              "mailbox it sends as)";
	if (!has_secret)
		return m365 ? "oauth2 m365 needs the client secret (secret, "
		              "secret_file, secret_env) or cert_key_file"
		            : "oauth2 google needs service_account_file (or "
		              "secret: keep)";
	if (h->oauth2_cert && !m365)
		return "oauth2 cert_key applies to m365 only";
	if (h->oauth2_token_url[0] != '\0' &&
	    (strncmp(h->oauth2_token_url, "https://", 8) != 0 ||
	        !oauth_conf_token(h->oauth2_token_url)))
		return "oauth2 token_url must be an https:// URL";
	for (const char *s = oauth_conf_scope(h); *s; s++)
		if (*s < ' ' || *s >= 0x7f)
			return "oauth2 scope is not printable";
	if (h->tls == SLUICE__TLS_MODE__TLS_NONE ||
	    h->tls == SLUICE__TLS_MODE__TLS_STARTTLS)
		return "oauth2 needs tls require or smtps (a bearer token "
		       "never goes out in clear)";
	return NULL;
}

/* hop_oauth.c - XOAUTH2 credential files.  The key is loaded here with
 * the node's own code (lib/oauth_jwt.c) so a wrong file is refused at
 * `hop add` / `policy apply`, not at the first delivery. */
#include "hop_oauth.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hop_preset.h"
#include "oauth_conf.h"
#include "oauth_jwt.h"
#include "policy_edit.h"

#define HOP_OAUTH_FILE_MAX 65536

int
hop_oauth_kind(Sluice__Hop *h, const char *kind, char *err, size_t errlen)
{
	if (strcmp(kind, "m365") != 0 && strcmp(kind, "google") != 0) {
		snprintf(err, errlen, "oauth2 must be %s, not '%.32s'",
		    oauth_conf_kinds(), kind);
		return -1;
	}
	if (h->preset[0] == '\0' &&
	    hop_preset_apply(h, kind, NULL, false, err, errlen) == -1)
		return -1;
	/* Google's XOAUTH2 endpoint for a mailbox is Gmail's SMTP
	 * submission server, not the relay service (which accepts by client
	 * IP or password); an explicit host still overrides it. */
	if (strcmp(kind, "google") == 0 &&
	    strcmp(h->host, "smtp-relay.gmail.com") == 0)
		policy_set_str(&h->host, "smtp.gmail.com");
	policy_set_str(&h->oauth2, kind);
	return 0;
}

static char *
hop_oauth_read(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t len = 0, n;

	if (f == NULL) {
		snprintf(err, errlen, "cannot read %.200s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if ((buf = calloc(1, HOP_OAUTH_FILE_MAX + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	while ((n = fread(buf + len, 1, HOP_OAUTH_FILE_MAX - len, f)) > 0)
		len += n;
	fclose(f);
	if (len == 0 || len >= HOP_OAUTH_FILE_MAX) {
		snprintf(err, errlen, "%.200s: %s", path,
		    len == 0 ? "empty" : "larger than 64 KB");
		free(buf);
		return NULL;
	}
	return buf;
}

static int
hop_oauth_key_ok(
    const char *pem, bool cert, const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	char x5t[64], x5t256[64], why[160];

	if (oauth_load_key(pem, cert, &key, x5t, sizeof(x5t), x5t256,
	        sizeof(x5t256), why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%.200s: %s", path, why);
		return -1;
	}
	EVP_PKEY_free(key);
	return 0;
}

int
hop_oauth_cert_key_file(
    Sluice__Hop *h, const char *path, char *err, size_t errlen)
{
	char *pem = hop_oauth_read(path, err, errlen);

	if (pem == NULL)
		return -1;
	if (hop_oauth_key_ok(pem, true, path, err, errlen) == -1) {
		explicit_bzero(pem, strlen(pem));
		free(pem);
		return -1;
	}
	policy_set_str(&h->secret, pem);
	explicit_bzero(pem, strlen(pem));
	free(pem);
	h->has_secret = true;
	h->keep_secret = false;
	h->oauth2_cert = true;
	return 0;
}

int
hop_oauth_service_account_file(
    Sluice__Hop *h, const char *path, char *err, size_t errlen)
{
	char *text = hop_oauth_read(path, err, errlen);
	const char *key, *email, *uri, *type;
	json_t *j;
	int rc = -1;

	if (text == NULL)
		return -1;
	j = json_loads(text, 0, NULL);
	explicit_bzero(text, strlen(text));
	free(text);
	if (!json_is_object(j)) {
		snprintf(err, errlen, "%.200s: not a JSON service account key",
		    path);
		goto done;
	}
	type = json_string_value(json_object_get(j, "type"));
	key = json_string_value(json_object_get(j, "private_key"));
	email = json_string_value(json_object_get(j, "client_email"));
	uri = json_string_value(json_object_get(j, "token_uri"));
	if (type == NULL || strcmp(type, "service_account") != 0 ||
	    key == NULL || email == NULL) {
		snprintf(err, errlen,
		    "%.200s: not a service account key (needs type "
		    "service_account, private_key and client_email)",
		    path);
		goto done;
	}
	if (hop_oauth_key_ok(key, false, path, err, errlen) == -1)
		goto done;
	policy_set_str(&h->secret, key);
	h->has_secret = true;
	h->keep_secret = false;
	policy_set_str(&h->oauth2_client_id, email);
	if (uri != NULL && strcmp(uri, OAUTH_GOOGLE_TOKEN_URL) != 0 &&
	    h->oauth2_token_url[0] == '\0')
		policy_set_str(&h->oauth2_token_url, uri);
	rc = 0;
done:
	json_decref(j); /* jansson does not clear the key's copy */
	return rc;
}

/* provider_id.c - the provider's message id from a 250 reply
 * (provider_id.h).  Pure; tests/unit/test_provider_id.c. */
#include "provider_id.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static bool
pid_char(char c)
{
	return isalnum((unsigned char)c) ||
	       (c != '\0' && strchr("._-@=+/", c) != NULL);
}

/* Copies the token at s (an id: pid_char()s, optionally in <>). */
static bool
pid_token(const char *s, size_t min, char *out, size_t outlen)
{
	size_t n;

	if (*s == '<')
		s++;
	for (n = 0; pid_char(s[n]); n++)
		;
	if (n < min || n > PROVIDER_ID_MAX || n + 1 > outlen)
		return false;
	/* the token ends the reply, or a space, '>' or ';' ends it */
	if (s[n] != '\0' && s[n] != ' ' && s[n] != '>' && s[n] != ';' &&
	    s[n] != ',' && s[n] != ')')
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

bool
provider_id_from_reply(const char *text, char *out, size_t outlen)
{
	const char *p;

	out[0] = '\0';
	/* "Ok: queued as 8AB12", "2.0.0 Ok: queued as <id>" */
	for (p = text; *p != '\0'; p++)
		if (strncasecmp(p, "queued as ", 10) == 0)
			return pid_token(p + 10, 1, out, outlen);
	/* SES: "Ok <id>", the id 16 characters or more */
	if (strncasecmp(text, "Ok ", 3) == 0)
		return pid_token(text + 3, 16, out, outlen);
	return false;
}

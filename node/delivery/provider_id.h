/* provider_id.h - pure: the message id a provider names in its 250 reply
 * to DATA, which its webhook events carry again (issue 16): SES
 * "250 Ok 0100018c...-000000", SendGrid and Postfix-style "250 Ok: queued
 * as <id>".  The node records it in the delivered event's provider_id;
 * the controller joins provider events on it. */
#ifndef SLUICE_PROVIDER_ID_H
#define SLUICE_PROVIDER_ID_H

#include <stdbool.h>
#include <stddef.h>

#define PROVIDER_ID_MAX 200

/* text: the reply's first line after code and enhanced code.  true with
 * the id in out (without <>), false when the reply names none. */
bool provider_id_from_reply(const char *text, char *out, size_t outlen);

#endif

/* oauth_conf.h - what an XOAUTH2 hop (Hop.oauth2, issue 15) needs, and the
 * providers' defaults for what it may leave out.  Pure; shared by the
 * node (token requests), sluicectl (export writes only what differs from
 * the default) and policy_check. */
#ifndef SLUICE_OAUTH_CONF_H
#define SLUICE_OAUTH_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

#define OAUTH_M365_SCOPE       "https://outlook.office365.com/.default"
#define OAUTH_GOOGLE_SCOPE     "https://mail.google.com/"
#define OAUTH_GOOGLE_TOKEN_URL "https://oauth2.googleapis.com/token"

/* "m365" or "google" (the kinds, for messages). */
const char *oauth_conf_kinds(void);
/* The token endpoint of h: its oauth2_token_url, else the provider's
 * (Microsoft: https://login.microsoftonline.com/TENANT/oauth2/v2.0/token).
 * "" when neither can be made (m365 without a tenant). */
void oauth_conf_token_url(const Sluice__Hop *h, char *buf, size_t len);
/* The scope the token is asked for: oauth2_scope, else the provider's. */
const char *oauth_conf_scope(const Sluice__Hop *h);
/* NULL when h (an oauth2 hop) is complete, else what is missing or wrong,
 * one phrase naming the policy key ("needs client_id (the application
 * id)").  has_secret: a secret is set, stored or kept. */
const char *oauth_conf_problem(
    const Sluice__Hop *h, bool has_secret, char *buf, size_t len);

#endif

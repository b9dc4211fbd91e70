/* hop_oauth.h - the XOAUTH2 credentials of a hop (issue 15), read and
 * checked on the client like every secret: a Microsoft certificate
 * credential (a PEM file with the private key and its certificate) or a
 * Google service account key file (JSON).  Used by `hop add` and policy
 * files. */
#ifndef SLUICECTL_HOP_OAUTH_H
#define SLUICECTL_HOP_OAUTH_H

#include <stddef.h>

#include "proto.h"

/* Sets h->oauth2 to kind ("m365", "google"), and applies the preset of
 * the same name when h has none.  0, or -1 with err. */
int hop_oauth_kind(Sluice__Hop *h, const char *kind, char *err, size_t errlen);
/* The PEM at path becomes the hop's secret (oauth2_cert set) once the
 * key loads and the certificate is the key's. */
int hop_oauth_cert_key_file(
    Sluice__Hop *h, const char *path, char *err, size_t errlen);
/* A service account key file: private_key becomes the secret,
 * client_email the client_id, token_uri the token_url when it is not
 * Google's usual one. */
int hop_oauth_service_account_file(
    Sluice__Hop *h, const char *path, char *err, size_t errlen);

#endif

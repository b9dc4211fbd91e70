/* hop_preset.h - the cloud relays sluice knows by name: their host, port,
 * TLS mode, AUTH user and sending caps.  Pure. */
#ifndef SLUICECTL_HOP_PRESET_H
#define SLUICECTL_HOP_PRESET_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

/* Fills hop from preset ("sendgrid", "ses", "mailgun").  ses needs region;
 * eu selects mailgun's EU endpoint.  0, or -1 with err. */
int hop_preset_apply(Sluice__Hop *, const char *preset, const char *region,
    bool eu, char *err, size_t errlen);
/* The credentials a preset's provider requires before it relays
 * anything: NULL when the hop has them, else the missing flag with what
 * it is for ("--secret-stdin (the API key)"). */
const char *hop_preset_missing(
    const char *preset, bool has_user, bool has_secret);
/* The same for a policy file: the missing key ("user (...)", "secret,
 * secret_file or secret_env (...)"). */
const char *hop_preset_missing_field(
    const char *preset, bool has_user, bool has_secret);
/* "sendgrid|ses|mailgun", for messages. */
const char *hop_preset_names(void);
/* The certificate-verification default for a TLS mode. */
bool hop_tls_verify_default(Sluice__TlsMode);
/* "none", "starttls", "require", "smtps"; parse returns -1 if unknown. */
const char *hop_tls_name(Sluice__TlsMode);
int hop_tls_parse(const char *, Sluice__TlsMode *);

#endif

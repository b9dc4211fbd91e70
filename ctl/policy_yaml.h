/* policy_yaml.h - the policy file format of `sluicectl policy apply|diff|
 * export|show`: YAML <-> Sluice__Policy.  Parsing records the line of every
 * element so a validation error found later (locally by policy_check or
 * by the controller) can still name the line.  Secrets named by
 * secret_file/secret_env and passwords by password_file/password_env are
 * resolved here, on the client: the controller only ever sees the secret
 * and the scrypt hash.  Emitting never writes a secret or a hash.
 * The format is documented in docs/cli.md. */
#ifndef SLUICECTL_POLICY_YAML_H
#define SLUICECTL_POLICY_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "policy_check.h"
#include "proto.h"

#define POLICY_YAML_MAX (4 * 1024 * 1024) /* larger files are refused */

struct policy_lines;

/* Parses text (len bytes) into a new policy.  fname names the file in
 * errors: "p.yaml:14: <what is wrong>".  On success *linesp (if not NULL)
 * receives the line table, freed with policy_lines_free().  NULL and err
 * on any error. */
Sluice__Policy *policy_yaml_parse(const char *text, size_t len,
    const char *fname, struct policy_lines **linesp, char *err, size_t errlen);
/* Reads and parses a file ("-": stdin). */
Sluice__Policy *policy_yaml_load(
    const char *path, struct policy_lines **linesp, char *err, size_t errlen);

/* 1-based line of element index of section ("networks", "users", "hops",
 * "routes", "limits"), or 0 when unknown. */
int policy_lines_get(
    const struct policy_lines *, const char *section, int index);
void policy_lines_free(struct policy_lines *);
/* Did the file have a dkim: section?  Without one, an apply keeps the
 * stored DKIM keys (files exported before DKIM was managed by them). */
bool policy_lines_has_dkim(const struct policy_lines *);
/* The file set suppression_mode (else an apply keeps the stored one). */
bool policy_lines_has_suppression_mode(const struct policy_lines *);
/* "fname:line: msg" (or "fname: msg" when the line is unknown). */
void policy_yaml_error(const struct policy_lines *, const char *fname,
    const char *section, int index, const char *msg, char *out, size_t outlen);

/* The policy as YAML, secrets and hashes left out (`secret: keep` marks a
 * stored secret).  A malloc'd string. */
char *policy_yaml_emit(const Sluice__Policy *);

#endif

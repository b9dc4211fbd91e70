/* policy_json.h - a policy's sections as JSON, one writer per section,
 * shared by `sluicectl X list --json` and `policy show --json` so both
 * always print the same objects.  Secrets never appear: admin replies are
 * redacted, and only has_secret / has_password are written. */
#ifndef SLUICECTL_POLICY_JSON_H
#define SLUICECTL_POLICY_JSON_H

#include "output.h"
#include "proto.h"

/* Each writes the array "networks", "users", "hops" or "routes". */
void policy_json_networks(struct json *, const Sluice__Policy *);
void policy_json_users(struct json *, const Sluice__Policy *);
void policy_json_hops(struct json *, const Sluice__Policy *);
void policy_json_routes(struct json *, const Sluice__Policy *);

#endif

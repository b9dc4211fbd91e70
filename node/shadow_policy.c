/* shadow_policy.c - pure: whether a message needs a peer copy, from the
 * policy's redundancy settings (docs/redundancy.md, "Policy").  Called by
 * the SMTP session at commit; table-tested in tests/unit/test_shadow.c. */
#include "shadow.h"

#include "limit_table.h"
#include "policy.h"
#include "smtp_session.h"

bool
shadow_wanted(const struct policy *p, int role)
{
	int64_t v = LIMIT_LISTENER_INHERIT;

	switch (role) {
	case SMTP_ROLE_RELAY:
		v = policy_limit_of(p, LIMIT_REDUNDANCY_RELAY);
		break;
	case SMTP_ROLE_SUBMISSION:
		v = policy_limit_of(p, LIMIT_REDUNDANCY_SUBMISSION);
		break;
	case SMTP_ROLE_SMTPS:
		v = policy_limit_of(p, LIMIT_REDUNDANCY_SMTPS);
		break;
	}
	if (v == LIMIT_LISTENER_OFF)
		return false;
	if (v == LIMIT_LISTENER_PEER)
		return true;
	return policy_limit_of(p, LIMIT_REDUNDANCY) == LIMIT_REDUNDANCY_PEER;
}

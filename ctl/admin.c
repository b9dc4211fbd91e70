/* admin.c - the one place sluicectl talks to the controller.  Every failure
 * becomes one line on stderr and exit 1, so handlers only see replies. */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

#define ADMIN_TIMEOUT_MS 5000

Sluice__AdminReply *
admin_call(
    struct ctl *ctl, Sluice__AdminRequest *req, const char *const *handled)
{
	ProtobufCMessage *m;
	Sluice__AdminReply *r;
	const char *urls[1] = {ctl->admin_url};
	struct rpc_tls tls;
	char err[512];
	size_t i;

	/* Remote admin is mutual TLS (set by --admin-ca/--admin-cert-key). */
	memset(&tls, 0, sizeof(tls));
	tls.ca_file = getenv("SLUICE_ADMIN_CA");
	tls.cert_key_file = getenv("SLUICE_ADMIN_CERT_KEY");
	tls.keys = "--admin-ca and --admin-cert-key";
	if (ctl->rpc == NULL &&
	    (ctl->rpc = rpc_client_open_tls(
	         urls, 1, ADMIN_TIMEOUT_MS, &tls, err, sizeof(err))) == NULL)
		ctl_die(
		    "cannot reach controller at %s: %s", ctl->admin_url, err);
	if (rpc_client_call(ctl->rpc, &req->base,
	        &sluice__admin_reply__descriptor, &m, err, sizeof(err)) == -1)
		ctl_die(
		    "cannot reach controller at %s: %s", ctl->admin_url, err);
	r = (Sluice__AdminReply *)m;
	if (r->error == NULL)
		return r;
	for (i = 0; handled != NULL && handled[i] != NULL; i++)
		if (strcmp(handled[i], r->error->code) == 0)
			return r;
	/* One line, whatever the controller wrote. */
	r->error->message[strcspn(r->error->message, "\r\n")] = '\0';
	if (r->error->message[0] != '\0')
		ctl_die("%s", r->error->message);
	ctl_die("controller refused the request (%s)", r->error->code);
}

Sluice__Policy *
admin_policy_get(struct ctl *ctl, uint64_t version)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__PolicyGetRequest get = SLUICE__POLICY_GET_REQUEST__INIT;
	Sluice__AdminReply *r;
	Sluice__Policy *p;

	get.version = version;
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_POLICY_GET;
	req.policy_get = &get;
	r = admin_call(ctl, &req, NULL);
	if (r->body_case != SLUICE__ADMIN_REPLY__BODY_POLICY_GET ||
	    r->policy_get == NULL)
		ctl_die("controller sent an unexpected reply to policy_get");
	p = r->policy_get->policy;
	if (p == NULL) /* no version yet: the empty policy */
		p = sluice__policy__unpack(NULL, 0, (const uint8_t *)"");
	r->policy_get->policy = NULL; /* detach: the caller owns it */
	sluice__admin_reply__free_unpacked(r, NULL);
	if (p == NULL)
		ctl_die("out of memory");
	return p;
}

enum admin_apply_result
admin_policy_apply(struct ctl *ctl, Sluice__Policy *p, uint64_t base_version,
    uint64_t *version, bool *changed, char *invalid, size_t invlen)
{
	static const char *const handled[] = {"conflict", "invalid", NULL};
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__PolicyApplyRequest ap = SLUICE__POLICY_APPLY_REQUEST__INIT;
	Sluice__AdminReply *r;
	enum admin_apply_result res;
	char who[128];

	ap.policy = p;
	ap.base_version = base_version;
	ap.summary = ctl->summary;
	snprintf(who, sizeof(who), "%s", ctl_identity());
	ap.identity = who;
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_POLICY_APPLY;
	req.policy_apply = &ap;
	r = admin_call(ctl, &req, handled);
	if (r->error != NULL) {
		res = strcmp(r->error->code, "conflict") == 0 ? ADMIN_CONFLICT
		                                              : ADMIN_INVALID;
		r->error->message[strcspn(r->error->message, "\r\n")] = '\0';
		snprintf(invalid, invlen, "%s", r->error->message);
	} else if (r->body_case != SLUICE__ADMIN_REPLY__BODY_POLICY_APPLY ||
	           r->policy_apply == NULL)
		ctl_die("controller sent an unexpected reply to policy apply");
	else {
		res = ADMIN_APPLIED;
		*version = r->policy_apply->version;
		*changed = r->policy_apply->changed;
	}
	sluice__admin_reply__free_unpacked(r, NULL);
	return res;
}

/* test_smtp_check.c - golden table for the inbound verdicts
 * (smtp_check.c): every limit and relay rule, inputs -> the exact reply
 * line and the refusal logged.  The rows run in order against one policy
 * and one rate limiter, so a row can depend on the counts before it. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"
#include "policy_fixture.h"
#include "ratelimit.h"
#include "smtp_check.h"

enum op {
	CONNECT,  /* arg: nsessions */
	MAIL,     /* arg: the MAIL argument */
	RCPT,     /* arg: the RCPT argument; n: recipients so far */
	COUNT,    /* arg: the rate-limit key of a message accepted */
	AUTHFAIL, /* an AUTH failure from the client's IP */
	CLOSE,    /* the client's connection closes */
};

/* Clients: who is asking. */
enum who {
	STRANGER, /* 192.0.2.1 on port 25, not trusted, no AUTH */
	LAN,      /* 10.1.1.1, in a trusted network */
	SUBMIT,   /* 192.0.2.2 on the submission port, no AUTH yet */
	APP1,     /* 192.0.2.3, AUTH as app1 (senders *@example.com, 2/min) */
	APP2,     /* 192.0.2.4, AUTH as app2 (alerts@example.org) */
	HELO,     /* 192.0.2.5, greeted with HELO, not EHLO */
};

static const struct smtp_check_client clients[] = {
    [STRANGER] = {"192.0.2.1", SMTP_ROLE_RELAY, false, false, true, NULL},
    [LAN] = {"10.1.1.1", SMTP_ROLE_RELAY, true, false, true, NULL},
    [SUBMIT] = {"192.0.2.2", SMTP_ROLE_SUBMISSION, false, false, true, NULL},
    [APP1] = {"192.0.2.3", SMTP_ROLE_SUBMISSION, false, true, true, "app1"},
    [APP2] = {"192.0.2.4", SMTP_ROLE_SMTPS, false, true, true, "app2"},
    [HELO] = {"192.0.2.5", SMTP_ROLE_RELAY, true, false, false, NULL},
};

struct row {
	enum op op;
	enum who who;
	const char *arg;
	size_t n;
	int64_t now;
	const char *reply;   /* NULL: the verdict is NULL (go on) */
	const char *refusal; /* what is logged; "" not logged */
	const char *reason;  /* connect only */
};

#define T0 1700000000 /* a minute boundary: 1700000000 % 60 == 20 */

static const struct row rows[] = {
    /* connect: max_connections 3 (nsessions counts this one) */
    {CONNECT, STRANGER, NULL, 3, T0, NULL, "", NULL},
    {CONNECT, LAN, NULL, 4, T0,
        "421 4.7.0 mx.test Too many connections, try again later", "",
        "max_connections"},
    /* max_connections_per_ip 2: STRANGER holds one */
    {CONNECT, STRANGER, NULL, 2, T0, NULL, "", NULL},
    {CONNECT, STRANGER, NULL, 3, T0,
        "421 4.7.0 mx.test Too many connections from your address", "",
        "max_connections_per_ip"},
    {CLOSE, STRANGER, NULL, 0, T0, NULL, "", NULL},
    {CONNECT, STRANGER, NULL, 3, T0, NULL, "", NULL},
    /* auth_failures_before_block 2, auth_block_seconds 60 */
    {AUTHFAIL, SUBMIT, NULL, 0, T0, NULL, "", NULL},
    {CONNECT, SUBMIT, NULL, 1, T0, NULL, "", NULL},
    {AUTHFAIL, SUBMIT, NULL, 0, T0, NULL, "", NULL},
    {CONNECT, SUBMIT, NULL, 1, T0 + 1,
        "421 4.7.0 mx.test Too many AUTH failures from your address; try "
        "again later",
        "", "auth_block"},
    {CONNECT, SUBMIT, NULL, 1, T0 + 61, NULL, "", NULL},

    /* MAIL: submission and SMTPS require AUTH, before the syntax */
    {MAIL, SUBMIT, "FROM:<a@example.com>", 0, T0,
        "530 5.7.0 Authentication required", "", NULL},
    {MAIL, SUBMIT, "garbage", 0, T0, "530 5.7.0 Authentication required", "",
        NULL},
    {MAIL, STRANGER, "garbage", 0, T0, "501 5.5.4 Syntax: MAIL FROM:<address>",
        "", NULL},
    {MAIL, STRANGER, "FROM:<>", 0, T0, NULL, "", NULL},
    {MAIL, HELO, "FROM:<a@example.com> SMTPUTF8", 0, T0,
        "503 5.5.1 Error: SMTPUTF8 requires EHLO", "", NULL},
    {MAIL, STRANGER, "FROM:<\xc3\xa9@example.com>", 0, T0,
        "553 5.6.7 Non-ASCII address requires SMTPUTF8",
        "553 5.6.7 Non-ASCII address requires SMTPUTF8", NULL},
    /* address tricks: refused from strangers, accepted from the LAN */
    {MAIL, STRANGER, "FROM:<@hop.example:a@example.com>", 0, T0,
        "553 5.1.3 Source routes not allowed (RFC 5321 3.6.1)",
        "553 5.1.3 Source routes not allowed (RFC 5321 3.6.1)", NULL},
    {MAIL, STRANGER, "FROM:<a%b@example.com>", 0, T0,
        "553 5.1.3 Percent hack not allowed",
        "553 5.1.3 Percent hack not allowed", NULL},
    {MAIL, STRANGER, "FROM:<a!b@example.com>", 0, T0,
        "553 5.1.3 Bang paths not allowed", "553 5.1.3 Bang paths not allowed",
        NULL},
    {MAIL, STRANGER, "FROM:<\"a@b\"@example.com>", 0, T0,
        "553 5.1.3 Quoted local part with @ not allowed",
        "553 5.1.3 Quoted local part with @ not allowed", NULL},
    {MAIL, LAN, "FROM:<a%b@example.com>", 0, T0, NULL, "", NULL},
    {COUNT, LAN, "msg-ip:10.1.1.1", 0, T0, NULL, "", NULL},
    /* max_message_size 4096 */
    {MAIL, LAN, "FROM:<a@example.com> SIZE=4096", 0, T0, NULL, "", NULL},
    {COUNT, LAN, "msg-ip:10.1.1.1", 0, T0, NULL, "", NULL},
    {MAIL, LAN, "FROM:<a@example.com> SIZE=4097", 0, T0,
        "552 5.3.4 Message size exceeds fixed limit",
        "552 5.3.4 Message size exceeds fixed limit", NULL},
    /* messages_per_minute_per_ip 3: the LAN sent 2 this minute */
    {MAIL, LAN, "FROM:<a@example.com>", 0, T0, NULL, "", NULL},
    {COUNT, LAN, "msg-ip:10.1.1.1", 0, T0, NULL, "", NULL},
    {MAIL, LAN, "FROM:<a@example.com>", 0, T0 + 30,
        "451 4.7.1 Rate limit exceeded for your address, try again later",
        "451 4.7.1 Rate limit exceeded for your address, try again later",
        NULL},
    {MAIL, LAN, "FROM:<a@example.com>", 0, T0 + 60, NULL, "", NULL},
    /* sender ownership */
    {MAIL, APP1, "FROM:<someone@example.com>", 0, T0, NULL, "", NULL},
    {MAIL, APP1, "FROM:<someone@example.org>", 0, T0,
        "553 5.7.1 <someone@example.org>: Sender address rejected: not owned "
        "by user app1",
        "553 5.7.1 Sender address rejected: not owned by user app1", NULL},
    {MAIL, APP1, "FROM:<>", 0, T0,
        "553 5.7.1 <>: Sender address rejected: not owned by user app1",
        "553 5.7.1 Sender address rejected: not owned by user app1", NULL},
    {MAIL, APP2, "FROM:<alerts@example.org>", 0, T0, NULL, "", NULL},
    /* the user's own rate (app1: 2/min) beats messages_per_minute_per_user
     * (1/min, app2) */
    {COUNT, APP1, "msg-user:app1", 0, T0, NULL, "", NULL},
    {MAIL, APP1, "FROM:<a@example.com>", 0, T0, NULL, "", NULL},
    {COUNT, APP1, "msg-user:app1", 0, T0, NULL, "", NULL},
    {MAIL, APP1, "FROM:<a@example.com>", 0, T0,
        "451 4.7.1 Rate limit exceeded for your user, try again later",
        "451 4.7.1 Rate limit exceeded for your user, try again later", NULL},
    {COUNT, APP2, "msg-user:app2", 0, T0, NULL, "", NULL},
    {MAIL, APP2, "FROM:<alerts@example.org>", 0, T0,
        "451 4.7.1 Rate limit exceeded for your user, try again later",
        "451 4.7.1 Rate limit exceeded for your user, try again later", NULL},

    /* RCPT: relay only for the trusted and the authenticated */
    {RCPT, STRANGER, "garbage", 0, T0, "501 5.5.4 Syntax: RCPT TO:<address>",
        "", NULL},
    {RCPT, STRANGER, "TO:<b@example.net>", 0, T0,
        "554 5.7.1 <b@example.net>: Relay access denied",
        "554 5.7.1 Relay access denied", NULL},
    {RCPT, STRANGER, "TO:<b%c@example.net>", 0, T0,
        "553 5.1.3 Percent hack not allowed",
        "553 5.1.3 Percent hack not allowed", NULL},
    {RCPT, LAN, "TO:<b@example.net>", 0, T0, NULL, "", NULL},
    {RCPT, LAN, "TO:<b%c@example.net>", 0, T0, NULL, "", NULL},
    {RCPT, APP1, "TO:<b@example.net>", 0, T0, NULL, "", NULL},
    {RCPT, LAN, "TO:<\xc3\xa9@example.net>", 0, T0,
        "553 5.6.7 Non-ASCII address requires SMTPUTF8",
        "553 5.6.7 Non-ASCII address requires SMTPUTF8", NULL},
    /* issue 16: the suppression list, in any case; relay rules first */
    {RCPT, LAN, "TO:<Gone@Example.NET>", 0, T0,
        "550 5.1.1 <Gone@Example.NET>: Recipient address rejected: "
        "suppressed (bounce)",
        "550 5.1.1 Recipient address suppressed (bounce)", NULL},
    {RCPT, APP1, "TO:<angry@example.net>", 0, T0,
        "550 5.7.1 <angry@example.net>: Recipient address rejected: "
        "suppressed (complaint)",
        "550 5.7.1 Recipient address suppressed (complaint)", NULL},
    {RCPT, STRANGER, "TO:<gone@example.net>", 0, T0,
        "554 5.7.1 <gone@example.net>: Relay access denied",
        "554 5.7.1 Relay access denied", NULL},
    {RCPT, LAN, "TO:<gone2@example.net>", 0, T0, NULL, "", NULL},
    /* max_recipients 2 */
    {RCPT, APP1, "TO:<b@example.net>", 1, T0, NULL, "", NULL},
    {RCPT, APP1, "TO:<b@example.net>", 2, T0,
        "452 4.5.3 Error: too many recipients",
        "452 4.5.3 Error: too many recipients", NULL},
};

static struct policy *
compile(struct fixture *f)
{
	size_t n = sluice__policy__get_packed_size(&f->p);
	uint8_t *buf = malloc(n + 1);
	Sluice__Policy *snap;
	struct policy *p;
	char err[256];

	sluice__policy__pack(&f->p, buf);
	snap = sluice__policy__unpack(NULL, n, buf);
	free(buf);
	assert_non_null(snap);
	p = policy_new(snap, err, sizeof(err));
	if (p == NULL)
		fail_msg("policy_new: %s", err);
	return p;
}

static char s_gone[] = "gone@example.net", s_angry[] = "angry@example.net",
            s_bounce[] = "bounce", s_complaint[] = "complaint";
static Sluice__Suppression sup_gone = {
    PROTOBUF_C_MESSAGE_INIT(&sluice__suppression__descriptor), s_gone, s_bounce,
    s_bounce, 0};
static Sluice__Suppression sup_angry = {
    PROTOBUF_C_MESSAGE_INIT(&sluice__suppression__descriptor), s_angry,
    s_complaint, s_complaint, 0};
static Sluice__Suppression *sups[] = {&sup_gone, &sup_angry};

static void
test_golden(void **state)
{
	struct fixture f;
	struct policy *p;
	struct ratelimit *rl;
	struct smtp_verdict vbuf;
	const struct smtp_verdict *v;
	struct smtp_path path;
	struct smtp_mail_params mp;
	size_t i;

	(void)state;
	fix_init(&f);
	fix_net(&f, "10.0.0.0/8", 0);
	fix_user(&f, "app1", FIX_HASH, "*@example.com")->rate_per_minute = 2;
	fix_user(&f, "app2", FIX_HASH, "alerts@example.org");
	fix_limit(&f, "max_connections", 3);
	fix_limit(&f, "max_connections_per_ip", 2);
	fix_limit(&f, "auth_failures_before_block", 2);
	fix_limit(&f, "auth_block_seconds", 60);
	fix_limit(&f, "max_message_size", 4096);
	fix_limit(&f, "messages_per_minute_per_ip", 3);
	fix_limit(&f, "messages_per_minute_per_user", 1);
	fix_limit(&f, "max_recipients", 2);
	f.p.suppressions = sups;
	f.p.n_suppressions = 2;
	p = compile(&f);
	assert_non_null(rl = ratelimit_new());
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		const struct smtp_check_client *c = &clients[r->who];

		v = NULL;
		switch (r->op) {
		case CONNECT:
			v = smtp_check_connect(
			    &vbuf, p, rl, c, "mx.test", r->n, r->now);
			break;
		case MAIL:
			v = smtp_check_mail(
			    &vbuf, p, rl, c, r->arg, &path, &mp, r->now);
			break;
		case RCPT:
			v = smtp_check_rcpt(
			    &vbuf, p, c, r->arg, false, r->n, &path);
			break;
		case COUNT:
			ratelimit_msg_count(rl, r->arg, r->now);
			break;
		case AUTHFAIL:
			(void)ratelimit_auth_failure(rl, c->ip, 2, 60, r->now);
			break;
		case CLOSE:
			ratelimit_conn_close(rl, c->ip);
			break;
		}
		if (r->reply == NULL) {
			if (v != NULL)
				fail_msg("row %zu: want NULL, got \"%s\"", i,
				    v->reply);
			continue;
		}
		if (v == NULL)
			fail_msg("row %zu: want \"%s\", got NULL", i, r->reply);
		if (strcmp(v->reply, r->reply) != 0 ||
		    strcmp(v->refusal, r->refusal) != 0)
			fail_msg("row %zu: want \"%s\" / \"%s\", got \"%s\" / "
			         "\"%s\"",
			    i, r->reply, r->refusal, v->reply, v->refusal);
		if (r->reason != NULL || v->reason != NULL) {
			assert_non_null(v->reason);
			assert_non_null(r->reason);
			assert_string_equal(v->reason, r->reason);
		}
	}
	ratelimit_free(rl);
	policy_unref(p);
}

/* Issue 16, suppression_mode bounce: suppressed recipients are accepted
 * at RCPT (delivery bounces them); relay rules still come first, and
 * refuse (or "") keeps the 550. */
static void
test_suppression_bounce(void **state)
{
	static char bounce[] = "bounce", refuse[] = "refuse";
	struct fixture f;
	struct policy *p;
	struct smtp_verdict vbuf;
	const struct smtp_verdict *v;
	struct smtp_path path;

	(void)state;
	fix_init(&f);
	fix_net(&f, "10.0.0.0/8", 0);
	f.p.suppressions = sups;
	f.p.n_suppressions = 2;
	f.p.suppression_mode = bounce;
	p = compile(&f);
	assert_true(policy_suppression_bounces(p));
	assert_non_null(policy_suppressed(p, "Gone@Example.NET"));
	assert_null(smtp_check_rcpt(
	    &vbuf, p, &clients[LAN], "TO:<Gone@Example.NET>", false, 0, &path));
	assert_null(smtp_check_rcpt(&vbuf, p, &clients[LAN],
	    "TO:<angry@example.net>", false, 0, &path));
	v = smtp_check_rcpt(&vbuf, p, &clients[STRANGER],
	    "TO:<gone@example.net>", false, 0, &path);
	assert_non_null(v);
	assert_string_equal(v->refusal, "554 5.7.1 Relay access denied");
	policy_unref(p);
	f.p.suppression_mode = refuse;
	p = compile(&f);
	assert_false(policy_suppression_bounces(p));
	v = smtp_check_rcpt(
	    &vbuf, p, &clients[LAN], "TO:<gone@example.net>", false, 0, &path);
	assert_non_null(v);
	assert_string_equal(
	    v->refusal, "550 5.1.1 Recipient address suppressed (bounce)");
	policy_unref(p);
}

/* The enum names the table: each key's value comes from the policy or
 * the default, through the compiled array. */
static void
test_limit_enum(void **state)
{
	struct fixture f;
	struct policy *p;
	size_t i;

	(void)state;
	fix_init(&f);
	fix_limit(&f, "max_recipients", 7);
	p = compile(&f);
	assert_int_equal(limit_count, LIMIT_COUNT);
	for (i = 0; i < LIMIT_COUNT; i++)
		assert_int_equal(policy_limit_of(p, (enum limit_key)i),
		    policy_limit(p, limit_table[i].key));
	assert_int_equal(policy_limit_of(p, LIMIT_MAX_RECIPIENTS), 7);
	assert_string_equal(
	    limit_table[LIMIT_MAX_RECIPIENTS].key, "max_recipients");
	assert_string_equal(limit_table[LIMIT_MAX_CONNECTIONS_PER_IP].key,
	    "max_connections_per_ip");
	policy_unref(p);
	p = policy_empty();
	assert_int_equal(policy_limit_of(p, LIMIT_MAX_MESSAGE_SIZE), 10240000);
	policy_unref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_limit_enum),
	    cmocka_unit_test(test_suppression_bounce),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_shadow.c - the pure parts of shadow redundancy (issue 13): the
 * policy verdict per listener role, named limit values, the frame codec,
 * the string maps, and the origin field of a spool record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "limit_table.h"
#include "policy.h"
#include "policy_fixture.h"
#include "shadow_int.h"
#include "smtp_session.h"
#include "spool.h"
#include "spool_int.h"

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
	if ((p = policy_new(snap, err, sizeof(err))) == NULL)
		fail_msg("policy_new: %s", err);
	return p;
}

static void
test_wanted(void **state)
{
	/* fleet-wide, relay, submission -> relay smtps submission wanted */
	static const struct {
		int64_t fleet, relay, sub;
		bool want_relay, want_smtps, want_sub;
	} t[] = {
	    {0, 0, 0, false, false, false},
	    {1, 0, 0, true, true, true},
	    {1, LIMIT_LISTENER_OFF, 0, false, true, true},
	    {0, LIMIT_LISTENER_PEER, 0, true, false, false},
	    {1, 0, LIMIT_LISTENER_OFF, true, true, false},
	    {0, LIMIT_LISTENER_INHERIT, LIMIT_LISTENER_PEER, false, false,
	        true},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct fixture f;
		struct policy *p;

		fix_init(&f);
		if (t[i].fleet)
			fix_limit(&f, "redundancy", t[i].fleet);
		if (t[i].relay)
			fix_limit(&f, "redundancy_relay", t[i].relay);
		if (t[i].sub)
			fix_limit(&f, "redundancy_submission", t[i].sub);
		p = compile(&f);
		assert_int_equal(
		    shadow_wanted(p, SMTP_ROLE_RELAY), t[i].want_relay);
		assert_int_equal(
		    shadow_wanted(p, SMTP_ROLE_SMTPS), t[i].want_smtps);
		assert_int_equal(
		    shadow_wanted(p, SMTP_ROLE_SUBMISSION), t[i].want_sub);
		policy_unref(p);
	}
}

static void
test_limit_names(void **state)
{
	static const struct {
		const char *key, *in;
		int ok;
		int64_t v;
		const char *out; /* formatted back, or the error's start */
	} t[] = {
	    {"redundancy", "peer", 1, 1, "peer"},
	    {"redundancy", "off", 1, 0, "off"},
	    {"redundancy", "1", 1, 1, "peer"},
	    {"redundancy", "2", 0, 0,
	        "limit redundancy must be one of off, "
	        "peer, not '2'"},
	    {"redundancy", "Peer", 0, 0, "limit redundancy must be one of"},
	    {"redundancy_relay", "inherit", 1, 0, "inherit"},
	    {"redundancy_smtps", "peer", 1, 2, "peer"},
	    {"redundancy_no_peer", "defer", 1, 1, "defer"},
	    {"redundancy_peer_timeout_ms", "500", 1, 500, "500"},
	    {"redundancy_peer_timeout_ms", "5", 0, 0,
	        "limit redundancy_peer_timeout_ms must be a whole number "
	        "between 10 and 60000"},
	    {"redundancy_peer_timeout_ms", "fast", 0, 0, "limit"},
	    {"max_recipients", "100", 1, 100, "100"},
	    {"max_recipients", "-1", 0, 0, "limit max_recipients"},
	};
	char err[256], buf[64];
	int64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct limit_def *d = limit_find(t[i].key);

		assert_non_null(d);
		err[0] = '\0';
		if (t[i].ok) {
			assert_int_equal(
			    limit_parse(d, t[i].in, &v, err, sizeof(err)), 0);
			assert_int_equal(v, t[i].v);
			limit_format(d, v, buf, sizeof(buf));
			assert_string_equal(buf, t[i].out);
		} else {
			assert_int_equal(
			    limit_parse(d, t[i].in, &v, err, sizeof(err)), -1);
			if (strncmp(err, t[i].out, strlen(t[i].out)) != 0)
				fail_msg("%s=%s: '%s'", t[i].key, t[i].in, err);
		}
	}
}

static void
test_frames(void **state)
{
	Sluice__ShadowAck a = SLUICE__SHADOW_ACK__INIT, *b;
	struct evbuffer *ev = evbuffer_new();
	const uint8_t *p;
	uint8_t big[4] = {0xff, 0xff, 0xff, 0xff};
	size_t len, whole;

	(void)state;
	a.seq = 42;
	a.ok = true;
	a.error = (char *)(uintptr_t) "";
	assert_int_equal(shadow_frame_add(ev, &a.base), 0);
	a.seq = 43;
	a.ok = false;
	a.error = (char *)(uintptr_t) "shadow spool full";
	assert_int_equal(shadow_frame_add(ev, &a.base), 0);
	whole = evbuffer_get_length(ev);
	/* one frame at a time, in order */
	assert_int_equal(shadow_frame_peek(ev, &p, &len), 1);
	b = sluice__shadow_ack__unpack(NULL, len, p);
	assert_non_null(b);
	assert_int_equal(b->seq, 42);
	assert_true(b->ok);
	sluice__shadow_ack__free_unpacked(b, NULL);
	evbuffer_drain(ev, 4 + len);
	assert_int_equal(shadow_frame_peek(ev, &p, &len), 1);
	b = sluice__shadow_ack__unpack(NULL, len, p);
	assert_non_null(b);
	assert_int_equal(b->seq, 43);
	assert_string_equal(b->error, "shadow spool full");
	sluice__shadow_ack__free_unpacked(b, NULL);
	evbuffer_drain(ev, 4 + len);
	assert_true(whole > 8);
	/* a partial frame waits; an oversized length is refused */
	assert_int_equal(shadow_frame_peek(ev, &p, &len), 0);
	evbuffer_add(ev,
	    "\0\0\0\x05"
	    "ab",
	    6);
	assert_int_equal(shadow_frame_peek(ev, &p, &len), 0);
	evbuffer_drain(ev, evbuffer_get_length(ev));
	evbuffer_add(ev, big, 4);
	assert_int_equal(shadow_frame_peek(ev, &p, &len), -1);
	evbuffer_free(ev);
}

static void
test_map(void **state)
{
	struct shadow_map m;
	void *old;
	char key[32];
	int i;

	(void)state;
	assert_int_equal(shadow_map_init(&m), 0);
	for (i = 0; i < 50000; i++) {
		snprintf(key, sizeof(key), "n1 %014X", i);
		assert_int_equal(
		    shadow_map_put(&m, key, (void *)(uintptr_t)(i + 1), &old),
		    0);
		assert_null(old);
	}
	assert_int_equal(m.n, 50000);
	assert_int_equal(shadow_map_put(&m, "n1 00000000000007",
	                     (void *)(uintptr_t)99, &old),
	    0);
	assert_int_equal((uintptr_t)old, 8);
	assert_int_equal(
	    (uintptr_t)shadow_map_get(&m, "n1 00000000000007"), 99);
	assert_null(shadow_map_get(&m, "n2 00000000000007"));
	assert_int_equal(
	    (uintptr_t)shadow_map_del(&m, "n1 0000000000000A"), 11);
	assert_null(shadow_map_del(&m, "n1 0000000000000A"));
	assert_int_equal(m.n, 49999);
	shadow_map_fini(&m, NULL);
}

static void
test_origin_record(void **state)
{
	const char *rcpts[] = {"b@example.net", "c@example.net"};
	struct spool_envelope env;
	struct spool_ent *e;
	uint8_t *buf;
	size_t len;

	(void)state;
	memset(&env, 0, sizeof(env));
	env.sender = "a@example.com";
	env.rcpts = rcpts;
	env.nrcpts = 2;
	env.client = "[127.0.0.1]:1";
	env.helo = "h";
	env.message_id = "<m@x>";
	env.dkim = "DKIM-Signature: v=1\r\n";
	env.origin = "edge-2 0660E452C96305";
	assert_non_null(buf = spool_env_encode(&env, 7, &len));
	assert_non_null(e = spool_ent_decode_tail(1, 0, buf, len, 0));
	assert_string_equal(e->env.origin, "edge-2 0660E452C96305");
	assert_string_equal(e->env.dkim, "DKIM-Signature: v=1\r\n");
	assert_string_equal(e->env.rcpts[1], "c@example.net");
	spool_ent_free(e);
	free(buf);
	/* a queue record has none, and reads as before */
	env.origin = NULL;
	env.dkim = NULL;
	assert_non_null(buf = spool_env_encode(&env, 7, &len));
	assert_non_null(e = spool_ent_decode_tail(1, 0, buf, len, 0));
	assert_null(e->env.origin);
	assert_null(e->env.dkim);
	spool_ent_free(e);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wanted),
	    cmocka_unit_test(test_limit_names),
	    cmocka_unit_test(test_frames),
	    cmocka_unit_test(test_map),
	    cmocka_unit_test(test_origin_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

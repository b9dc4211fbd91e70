/* test_console_json.c - cmocka table tests of controller/console_json.c:
 * JSON strings (escapes, HTML-safe, bad UTF-8), and protobuf messages
 * walked by descriptor (oneofs, enums, repeated fields, and secret fields
 * never written). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console_json.h"
#include "proto.h"

#define S(x) ((char *)(uintptr_t)(x))

static void
test_strings(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"", "\"\""},
	    {"plain", "\"plain\""},
	    {"a\"b\\c", "\"a\\\"b\\\\c\""},
	    {"line\r\nnext\t", "\"line\\u000d\\u000anext\\u0009\""},
	    /* HTML-safe: a reply text cannot close a script or tag */
	    {"<script>&</script>", "\"\\u003cscript\\u003e\\u0026\\u003c/"
	                           "script\\u003e\""},
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7",
	        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7\""},
	    /* not UTF-8: each bad octet is U+FFFD */
	    {"\xff\xfe@x", "\"\\ufffd\\ufffd@x\""},
	    {"\xc0\xaf", "\"\\ufffd\\ufffd\""},            /* overlong '/' */
	    {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""}, /* surrogate */
	    {"\xe2\x82", "\"\\ufffd\\ufffd\""},            /* cut short */
	    {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
	    {"\x7f", "\"\\u007f\""},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct console_buf b = {0};

		console_json_str(&b, cases[i].in);
		assert_false(b.is_oom);
		assert_string_equal(b.p, cases[i].out);
		console_buf_free(&b);
	}
}

static char *
json_of(const ProtobufCMessage *m)
{
	struct console_buf b = {0};

	console_json_msg(&b, m);
	assert_false(b.is_oom);
	return b.p;
}

/* Every secret field is left out, even when (wrongly) filled. */
static void
test_secrets_never_written(void **state)
{
	Sluice__Hop hop = SLUICE__HOP__INIT;
	Sluice__User user = SLUICE__USER__INIT;
	Sluice__DkimKey dk = SLUICE__DKIM_KEY__INIT;
	Sluice__NodeAddReply na = SLUICE__NODE_ADD_REPLY__INIT;
	Sluice__Hop *hops[1] = {&hop};
	Sluice__User *users[1] = {&user};
	Sluice__DkimKey *dkim[1] = {&dk};
	Sluice__Policy p = SLUICE__POLICY__INIT;
	char *j;

	(void)state;
	hop.name = S("relay");
	hop.host = S("smtp.example.net");
	hop.port = 587;
	hop.tls = SLUICE__TLS_MODE__TLS_STARTTLS;
	hop.auth_user = S("apikey");
	hop.secret = S("HOP-SECRET-1");
	hop.has_secret = 1;
	user.name = S("app1");
	user.password_hash = S("$scrypt$ln=14,r=8,p=1$c2FsdA$a2V5");
	user.has_password = 1;
	dk.domain = S("example.com");
	dk.selector = S("s1");
	dk.private_key = S("-----BEGIN PRIVATE KEY-----MIIE");
	dk.public_key = S("MCowBQYDK2VwAyEA");
	dk.has_key = 1;
	p.version = 7;
	p.hops = hops;
	p.n_hops = 1;
	p.users = users;
	p.n_users = 1;
	p.dkim = dkim;
	p.n_dkim = 1;
	j = json_of(&p.base);
	assert_null(strstr(j, "HOP-SECRET"));
	assert_null(strstr(j, "scrypt"));
	assert_null(strstr(j, "PRIVATE"));
	assert_null(strstr(j, "\"secret\""));
	assert_null(strstr(j, "\"password_hash\""));
	assert_null(strstr(j, "\"private_key\""));
	assert_non_null(strstr(j, "\"has_secret\":true"));
	assert_non_null(strstr(j, "\"has_password\":true"));
	assert_non_null(strstr(j, "\"has_key\":true"));
	assert_non_null(strstr(j, "\"public_key\":\"MCowBQYDK2VwAyEA\""));
	assert_non_null(strstr(j, "\"tls\":\"TLS_STARTTLS\""));
	assert_non_null(strstr(j, "\"version\":7,"));
	free(j);
	na.name = S("n1");
	na.token = S("ENROLL-TOKEN");
	j = json_of(&na.base);
	assert_string_equal(j, "{\"name\":\"n1\"}");
	free(j);
}

/* A oneof writes only its set member; repeated fields are arrays;
 * unset sub-messages are left out; proto3 scalars always appear. */
static void
test_shapes(void **state)
{
	Sluice__AdminReply r = SLUICE__ADMIN_REPLY__INIT;
	Sluice__CommandsReply cr = SLUICE__COMMANDS_REPLY__INIT;
	Sluice__CommandStatus cs = SLUICE__COMMAND_STATUS__INIT;
	Sluice__CommandStatus *csv[1] = {&cs};
	Sluice__CommandIdsRequest ids = SLUICE__COMMAND_IDS_REQUEST__INIT;
	Sluice__HopGroup g = SLUICE__HOP_GROUP__INIT;
	uint64_t idv[3] = {1, 18446744073709551615ULL, 0};
	char *hv[2] = {S("a"), S("b\"")};
	char *j;

	(void)state;
	cs.id = 42;
	cs.node = S("n1");
	cs.kind = SLUICE__COMMAND_KIND__CMD_HOLD;
	cs.created_at = -5;
	cr.commands = csv;
	cr.n_commands = 1;
	r.body_case = SLUICE__ADMIN_REPLY__BODY_COMMANDS;
	r.commands = &cr;
	j = json_of(&r.base);
	assert_string_equal(j,
	    "{\"commands\":{\"commands\":[{\"id\":42,\"node\":\"n1\","
	    "\"kind\":\"CMD_HOLD\",\"done\":false,\"created_at\":-5}]}}");
	free(j);
	ids.ids = idv;
	ids.n_ids = 3;
	j = json_of(&ids.base);
	assert_string_equal(j, "{\"ids\":[1,18446744073709551615,0]}");
	free(j);
	g.hops = hv;
	g.n_hops = 2;
	j = json_of(&g.base);
	assert_string_equal(j, "{\"hops\":[\"a\",\"b\\\"\"]}");
	free(j);
	/* an empty reply: no body, no error */
	r.body_case = SLUICE__ADMIN_REPLY__BODY__NOT_SET;
	j = json_of(&r.base);
	assert_string_equal(j, "{}");
	free(j);
}

static void
test_secret_names(void **state)
{
	(void)state;
	assert_true(console_json_is_secret("secret"));
	assert_true(console_json_is_secret("password_hash"));
	assert_true(console_json_is_secret("private_key"));
	assert_true(console_json_is_secret("token"));
	assert_false(console_json_is_secret("has_secret"));
	assert_false(console_json_is_secret("public_key"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_secrets_never_written),
	    cmocka_unit_test(test_shapes),
	    cmocka_unit_test(test_secret_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_rpc_url.c - the control plane's plaintext rule (lib/rpc.c,
 * rpc_url_check): which URLs may be used with and without certificates,
 * and that a refusal says why.  No traffic: the check runs before any
 * socket exists. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "rpc.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_plaintext(void **state)
{
	static const struct {
		const char *url;
		bool listen;
		int rv;
	} t[] = {
	    {"tcp://127.0.0.1:7701", false, 0},
	    {"tcp://127.9.8.7:7701", true, 0},
	    {"tcp://localhost:7701", false, 0},
	    {"tcp://LOCALHOST:7701", false, 0},
	    {"tcp://[::1]:7701", false, 0},
	    {"tcp://[::ffff:127.0.0.1]:7701", false, 0},
	    {"tcp4://127.0.0.1:7701", false, 0},
	    {"ipc:///run/sluice/admin.sock", true, 0},
	    {"inproc://x", false, 0},
	    {"tcp://10.0.0.1:7701", false, -1},
	    {"tcp://192.0.2.1:7701", true, -1},
	    {"tcp://0.0.0.0:7701", true, -1},
	    {"tcp://*:7701", true, -1},
	    {"tcp://:7701", true, -1},
	    {"tcp://[2001:db8::1]:7701", false, -1},
	    {"tcp://[::]:7701", true, -1},
	    {"tcp://controller.example.com:7701", false, -1},
	    {"tcp://localhost.evil.example:7701", false, -1},
	    {"tcp://128.0.0.1:7701", false, -1},
	    {"ws://10.0.0.1:80/x", false, -1},
	    {"tls+tcp://10.0.0.1:7701", false, -1}, /* no certificates */
	    {"garbage", false, -1},
	};
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < N(t); i++) {
		err[0] = '\0';
		if (rpc_url_check(t[i].url, NULL, t[i].listen, err,
		        sizeof(err)) != t[i].rv)
			fail_msg(
			    "%s: expected %d (%s)", t[i].url, t[i].rv, err);
		if (t[i].rv == -1)
			assert_true(err[0] != '\0');
	}
}

static void
test_refusal_says_why(void **state)
{
	struct rpc_tls tls;
	char err[512];

	(void)state;
	memset(&tls, 0, sizeof(tls));
	tls.keys = "controller_ca and controller_cert_key";
	assert_int_equal(
	    rpc_url_check("tcp://10.0.0.1:7701", &tls, false, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "tcp://10.0.0.1:7701"));
	assert_non_null(strstr(err, "non-loopback"));
	assert_non_null(strstr(err, "unencrypted"));
	assert_non_null(strstr(err, "tls+tcp://"));
	assert_non_null(strstr(err, "controller_ca and controller_cert_key"));
	assert_non_null(strstr(err, "insecure = yes"));

	assert_int_equal(
	    rpc_url_check("tcp://0.0.0.0:7701", &tls, true, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "every interface"));

	assert_int_equal(rpc_url_check("tls+tcp://10.0.0.1:7701", &tls, false,
	                     err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "mutual TLS"));
	assert_non_null(strstr(err, "controller_ca and controller_cert_key"));
}

static void
test_insecure_and_tls(void **state)
{
	struct rpc_tls tls;
	char err[512];

	(void)state;
	memset(&tls, 0, sizeof(tls));
	tls.insecure = true;
	assert_int_equal(
	    rpc_url_check("tcp://10.0.0.1:7701", &tls, false, err, sizeof(err)),
	    0);
	assert_int_equal(
	    rpc_url_check("tcp://0.0.0.0:7701", &tls, true, err, sizeof(err)),
	    0);
	/* insecure does not make TLS optional: tls+tcp needs its files */
	assert_int_equal(rpc_url_check("tls+tcp://10.0.0.1:7701", &tls, false,
	                     err, sizeof(err)),
	    -1);
	tls.insecure = false;
	tls.ca_file = "/ca.pem";
	tls.cert_key_file = "/node.pem";
	assert_int_equal(rpc_url_check("tls+tcp://10.0.0.1:7701", &tls, false,
	                     err, sizeof(err)),
	    0);
	assert_int_equal(
	    rpc_url_check("tls+tcp://[::]:7701", &tls, true, err, sizeof(err)),
	    0);
	/* certificates do not make plain tcp acceptable */
	assert_int_equal(
	    rpc_url_check("tcp://10.0.0.1:7701", &tls, false, err, sizeof(err)),
	    -1);
}

/* The old entry points refuse too: nothing dials or listens. */
static void
test_open_refuses(void **state)
{
	const char *urls[] = {"tcp://127.0.0.1:1", "tcp://192.0.2.1:7701"};
	char err[512];

	(void)state;
	assert_null(rpc_client_open(urls, 2, 1000, err, sizeof(err)));
	assert_non_null(strstr(err, "192.0.2.1"));
	assert_null(rpc_server_open("tcp://0.0.0.0:0", 0, err, sizeof(err)));
	assert_non_null(strstr(err, "every interface"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plaintext),
	    cmocka_unit_test(test_refusal_says_why),
	    cmocka_unit_test(test_insecure_and_tls),
	    cmocka_unit_test(test_open_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

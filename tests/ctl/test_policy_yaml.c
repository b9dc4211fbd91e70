/* test_policy_yaml.c - the policy file format: a full example parses to
 * the policy it says; every kind of mistake is one error naming its line;
 * export -> parse gives back the same policy; diff names what changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy_check.h"
#include "policy_diff.h"
#include "policy_edit.h"
#include "policy_yaml.h"
#include "rpc.h"

static const char full[] = "networks:\n"                                /* 1 */
                           "  allow: [10.0.0.0/8, \"2001:db8::/32\"]\n" /* 2 */
                           "  deny: [10.9.0.0/16]\n"                    /* 3 */
                           "users:\n"                                   /* 4 */
                           "  - name: app1\n"                           /* 5 */
                           "    senders: [\"*@example.com\"]\n"         /* 6 */
                           "    rate_per_minute: 60\n"                  /* 7 */
                           "hops:\n"                                    /* 8 */
                           "  - name: primary\n"                        /* 9 */
                           "    host: 10.0.0.5\n"                       /* 10 */
                           "    port: 25\n"                             /* 11 */
                           "    tls: starttls\n"                        /* 12 */
                           "    max_conn: 10\n"                         /* 13 */
                           "    weight: 2\n"                            /* 14 */
                           "  - name: sendgrid\n"                       /* 15 */
                           "    preset: sendgrid\n"                     /* 16 */
                           "    secret: keep\n"                         /* 17 */
                           "  - name: ses\n"                            /* 18 */
                           "    preset: ses\n"                          /* 19 */
                           "    region: eu-west-1\n"                    /* 20 */
                           "    user: AKIAEXAMPLE\n"                    /* 21 */
                           "    secret_env: TEST_SES_SECRET\n"          /* 22 */
                           "routes:\n"                                  /* 23 */
                           "  - pattern: \"*\"\n"                       /* 24 */
                           "    groups: [[primary], [sendgrid, ses]]\n" /* 25 */
                           "  - pattern: example.org\n"                 /* 26 */
                           "    groups: [[mx]]\n"                       /* 27 */
                           "limits:\n"                                  /* 28 */
                           "  max_message_size: 10485760\n"             /* 29 */
                           "  max_recipients: 100\n"; /* 30: the default */

static Sluice__Policy *
parse(const char *text, char *err, size_t errlen)
{
	return policy_yaml_parse(
	    text, strlen(text), "p.yaml", NULL, err, errlen);
}

static void
test_full_example(void **state)
{
	struct policy_error perr;
	struct policy_lines *lines = NULL;
	Sluice__Policy *p;
	char err[512] = "";

	(void)state;
	setenv("TEST_SES_SECRET", "ses-password", 1);
	p = policy_yaml_parse(
	    full, strlen(full), "p.yaml", &lines, err, sizeof(err));
	assert_non_null(p);
	assert_string_equal(err, "");

	assert_int_equal(p->n_networks, 3);
	assert_string_equal(p->networks[0]->cidr, "10.0.0.0/8");
	assert_false(p->networks[0]->deny);
	assert_string_equal(p->networks[1]->cidr, "2001:db8::/32");
	assert_string_equal(p->networks[2]->cidr, "10.9.0.0/16");
	assert_true(p->networks[2]->deny);

	assert_int_equal(p->n_users, 1);
	assert_string_equal(p->users[0]->name, "app1");
	assert_int_equal(p->users[0]->n_senders, 1);
	assert_string_equal(p->users[0]->senders[0], "*@example.com");
	assert_int_equal(p->users[0]->rate_per_minute, 60);
	assert_true(p->users[0]->has_password); /* keep the stored one */
	assert_string_equal(p->users[0]->password_hash, "");

	assert_int_equal(p->n_hops, 3);
	assert_string_equal(p->hops[0]->host, "10.0.0.5");
	assert_int_equal(p->hops[0]->port, 25);
	assert_int_equal(p->hops[0]->tls, SLUICE__TLS_MODE__TLS_STARTTLS);
	assert_false(p->hops[0]->verify_cert);
	assert_int_equal(p->hops[0]->max_conn, 10);
	assert_int_equal(p->hops[0]->weight, 2);
	assert_string_equal(p->hops[1]->host, "smtp.sendgrid.net");
	assert_int_equal(p->hops[1]->port, 587);
	assert_int_equal(p->hops[1]->tls, SLUICE__TLS_MODE__TLS_REQUIRE);
	assert_true(p->hops[1]->verify_cert);
	assert_string_equal(p->hops[1]->auth_user, "apikey");
	assert_true(p->hops[1]->keep_secret);
	assert_string_equal(p->hops[1]->secret, "");
	assert_string_equal(
	    p->hops[2]->host, "email-smtp.eu-west-1.amazonaws.com");
	assert_string_equal(p->hops[2]->auth_user, "AKIAEXAMPLE");
	assert_string_equal(p->hops[2]->secret, "ses-password");
	assert_int_equal(p->hops[2]->max_rcpt, 50);
	assert_int_equal(p->hops[2]->max_size, 41943040);

	assert_int_equal(p->n_routes, 2);
	assert_string_equal(p->routes[0]->pattern, "*");
	assert_int_equal(p->routes[0]->n_groups, 2);
	assert_int_equal(p->routes[0]->groups[1]->n_hops, 2);
	assert_string_equal(p->routes[0]->groups[1]->hops[1], "ses");

	/* The default-valued limit is not listed. */
	assert_int_equal(p->n_limits, 1);
	assert_string_equal(p->limits[0]->key, "max_message_size");
	assert_int_equal(p->limits[0]->value, 10485760);

	assert_int_equal(policy_check(p, POLICY_CHECK_APPLY, &perr), 0);
	assert_int_equal(policy_lines_get(lines, "networks", 2), 3);
	assert_int_equal(policy_lines_get(lines, "users", 0), 5);
	assert_int_equal(policy_lines_get(lines, "hops", 1), 15);
	assert_int_equal(policy_lines_get(lines, "routes", 1), 26);
	assert_int_equal(policy_lines_get(lines, "limits", 0), 29);
	policy_lines_free(lines);
	sluice__policy__free_unpacked(p, NULL);
}

/* A file with a mistake: the error must start with the file and line. */
struct bad {
	const char *yaml;
	const char *want; /* prefix of the error */
	const char *has;  /* and a word it must contain */
};

static const struct bad bads[] = {
    /* the error names the line where the unclosed "[" starts */
    {"networks:\n  allow: [10.0.0.0/8\nhops: []\n", "p.yaml:2: ",
        "at line 3 (while parsing a flow sequence that starts here)"},
    {"hops:\n  - name: a\n    host: x\n   port: 1\n", "p.yaml:2: ",
        "at line 4 (while parsing a block collection that starts here)"},
    {"networks:\n  allow: [10.0.0.0/8]\nfrobs: 1\n",
        "p.yaml:3: ", "unknown key 'frobs'"},
    {"hops:\n  - name: a\n    host: h.example\n    port: 25\n"
     "    tls: none\n    colour: red\n",
        "p.yaml:6: ", "unknown key 'colour'"},
    {"limits:\n  max_recipients: 10\n  max_message_size: -5\n",
        "p.yaml:3: ", "negative"},
    {"limits:\n  max_recipients: 2.5\n", "p.yaml:2: ", "whole number"},
    {"limits:\n  max_recipients: 0\n", "p.yaml:2: ", "between"},
    {"limits:\n  no_such_limit: 1\n", "p.yaml:2: ", "unknown limit"},
    {"networks:\n  allow:\n    - 10.0.0.0/8\n    - 10.0.0.1/8\n",
        "p.yaml:4: ", "host bits"},
    {"hops:\n  - name: a\n    host: h.example\n    port: 25\n"
     "    tls: sometimes\n",
        "p.yaml:5: ", "tls must be"},
    {"hops:\n  - name: a\n    host: h.example\n    port: 25\n"
     "    tls: none\n    secret_file: /nonexistent/secret\n",
        "p.yaml:6: ", "cannot read"},
    {"hops:\n  - name: a\n    host: h.example\n    port: 25\n"
     "    tls: none\n    secret_env: TEST_UNSET_VARIABLE\n",
        "p.yaml:6: ", "not set"},
    {"hops:\n  - name: s\n    preset: ses\n", "p.yaml:3: ", "region"},
    {"users:\n  - name: u\n    senders: [a@b.c]\n"
     "    rate_per_minute: many\n",
        "p.yaml:4: ", "whole number"},
    {"users: {name: x}\n", "p.yaml:1: ", "must be a list"},
    {"a: 1\n---\nb: 2\n", "p.yaml:2: ", "one YAML document"},
    {"dkim:\n  - domain: example.com\n    private_key: keep\n",
        "p.yaml:2: ", "has no selector"},
    {"dkim:\n  - domain: example.com\n    selector: s1\n",
        "p.yaml:2: ", "give one of private_key"},
    {"dkim:\n  - domain: example.com\n    selector: s1\n"
     "    private_key_file: /nonexistent/key.pem\n",
        "p.yaml:4: ", "cannot read"},
    {"dkim:\n  - domain: example.com\n    selector: s1\n"
     "    private_key: keep\n    required: maybe\n",
        "p.yaml:5: ", "true or false"},
};

static void
test_errors_name_the_line(void **state)
{
	char err[512];
	size_t i;

	(void)state;
	unsetenv("TEST_UNSET_VARIABLE");
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		err[0] = '\0';
		Sluice__Policy *p = parse(bads[i].yaml, err, sizeof(err));
		if (p != NULL ||
		    strncmp(err, bads[i].want, strlen(bads[i].want)) != 0 ||
		    strstr(err, bads[i].has) == NULL ||
		    strchr(err, '\n') != NULL)
			fail_msg("case %zu: got %s: '%s'", i,
			    p ? "a policy" : "error", err);
	}
}

/* Validation after parsing: policy_check's (section, index) -> line. */
static void
test_unknown_hop_line(void **state)
{
	static const char y[] = "hops:\n"
	                        "  - name: primary\n"
	                        "    host: 10.0.0.5\n"
	                        "    port: 25\n"
	                        "    tls: none\n"
	                        "routes:\n"
	                        "  - pattern: example.com\n"
	                        "    groups: [[primary]]\n"
	                        "  - pattern: \"*\"\n"
	                        "    groups: [[primary], [foo]]\n";
	struct policy_lines *lines = NULL;
	struct policy_error perr;
	Sluice__Policy *p;
	char err[512], out[768];

	(void)state;
	p = policy_yaml_parse(y, strlen(y), "p.yaml", &lines, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(policy_check(p, POLICY_CHECK_APPLY, &perr), -1);
	policy_yaml_error(lines, "p.yaml", perr.section, perr.index, perr.msg,
	    out, sizeof(out));
	assert_string_equal(out, "p.yaml:9: route '*' names unknown hop 'foo'");
	policy_lines_free(lines);
	sluice__policy__free_unpacked(p, NULL);
}

static bool
same(const Sluice__Policy *a, const Sluice__Policy *b)
{
	size_t la, lb;
	uint8_t *pa = rpc_pack(&a->base, &la), *pb = rpc_pack(&b->base, &lb);
	bool eq = la == lb && memcmp(pa, pb, la) == 0;

	free(pa);
	free(pb);
	return eq;
}

/* What the controller returns (redacted) -> export -> parse: the same
 * policy, so `export > p.yaml; apply -f p.yaml` changes nothing. */
static void
test_round_trip(void **state)
{
	Sluice__Policy *p, *q, *r;
	struct policy_diff d;
	char err[512], *y, *y2;
	size_t i;

	(void)state;
	setenv("TEST_SES_SECRET", "ses-password", 1);
	p = parse(full, err, sizeof(err));
	assert_non_null(p);
	/* As stored and redacted: secrets blank with has_secret, no keep. */
	for (i = 0; i < p->n_hops; i++) {
		if (p->hops[i]->keep_secret || p->hops[i]->secret[0]) {
			policy_set_str(&p->hops[i]->secret, "");
			p->hops[i]->has_secret = true;
			p->hops[i]->keep_secret = false;
		}
	}
	p->hops[0]->verify_cert = true; /* away from the default */
	p->hops[2]->max_rcpt = 0;       /* away from the preset */
	policy_add_user(p, "u\"odd")->has_password = true;
	{
		/* A stored DKIM key as the controller returns it. */
		Sluice__DkimKey *k = calloc(1, sizeof(*k));
		sluice__dkim_key__init(k);
		k->domain = strdup("example.com");
		k->selector = strdup("r1");
		k->algorithm = strdup("rsa");
		k->public_key =
		    strdup("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKC");
		k->has_key = true;
		k->required = true;
		policy_strv_add(&k->headers, &k->n_headers, "from");
		policy_strv_add(&k->headers, &k->n_headers, "subject");
		p->dkim = calloc(1, sizeof(*p->dkim));
		p->dkim[0] = k;
		p->n_dkim = 1;
	}
	policy_strv_add(&p->users[1]->senders, &p->users[1]->n_senders, "*");
	y = policy_yaml_emit(p);
	assert_null(strstr(y, "ses-password"));
	q = parse(y, err, sizeof(err));
	if (q == NULL)
		fail_msg("%s\n%s", err, y);
	policy_diff(p, q, &d);
	assert_int_equal(d.n, 0);
	policy_diff_free(&d);
	/* q keeps the secrets; as redacted again it is p byte for byte. */
	for (i = 0; i < q->n_hops; i++)
		if (q->hops[i]->keep_secret)
			q->hops[i]->keep_secret = false;
	assert_true(same(p, q));
	y2 = policy_yaml_emit(q);
	assert_string_equal(y, y2);
	/* The empty policy too. */
	r = parse("", err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(r->n_hops + r->n_routes + r->n_networks, 0);
	free(y);
	free(y2);
	sluice__policy__free_unpacked(p, NULL);
	sluice__policy__free_unpacked(q, NULL);
	sluice__policy__free_unpacked(r, NULL);
}

static void
test_diff(void **state)
{
	static const char a[] =
	    "networks:\n  allow: [10.0.0.0/8]\n"
	    "hops:\n  - name: h\n    host: h.example\n    port: 25\n"
	    "    tls: none\n"
	    "dkim:\n  - {domain: example.com, selector: r1, private_key: "
	    "keep}\n"
	    "  - {domain: example.com, selector: e1, private_key: keep}\n";
	static const char b[] =
	    "networks:\n  allow: [192.0.2.0/24]\n"
	    "hops:\n  - name: h\n    host: h.example\n    port: 2525\n"
	    "    tls: none\n"
	    "limits:\n  max_recipients: 10\n"
	    "dkim:\n  - {domain: example.com, selector: r1, private_key: keep,"
	    " required: true}\n"
	    "  - {domain: example.com, selector: n1, private_key: PEM}\n";
	Sluice__Policy *p, *q;
	struct policy_diff d;
	char err[256];

	(void)state;
	p = parse(a, err, sizeof(err));
	q = parse(b, err, sizeof(err));
	assert_non_null(p);
	assert_non_null(q);
	policy_diff(p, q, &d);
	assert_int_equal(d.n, 7);
	assert_int_equal(d.v[0].op, '-');
	assert_string_equal(d.v[0].name, "10.0.0.0/8");
	assert_int_equal(d.v[1].op, '+');
	assert_string_equal(d.v[1].name, "192.0.2.0/24");
	assert_int_equal(d.v[2].op, '~');
	assert_string_equal(d.v[2].kind, "hop");
	assert_string_equal(d.v[2].detail, "port 25 -> 2525");
	assert_string_equal(d.v[3].kind, "limit");
	assert_string_equal(d.v[3].detail, "100 -> 10");
	assert_int_equal(d.v[4].op, '-');
	assert_string_equal(d.v[4].name, "e1._domainkey.example.com");
	assert_int_equal(d.v[5].op, '~');
	assert_string_equal(d.v[5].detail, "required");
	assert_int_equal(d.v[6].op, '+');
	assert_string_equal(d.v[6].name, "n1._domainkey.example.com");
	policy_diff_free(&d);
	/* unchanged keys are no change */
	policy_diff(p, p, &d);
	assert_int_equal(d.n, 0);
	policy_diff_free(&d);
	sluice__policy__free_unpacked(p, NULL);
	sluice__policy__free_unpacked(q, NULL);
}

static void
test_password_file(void **state)
{
	char path[] = "/tmp/sluice-pwXXXXXX", y[512], err[512];
	Sluice__Policy *p;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hunter2\n", 8), 8);
	close(fd);
	snprintf(y, sizeof(y),
	    "users:\n  - name: u\n    senders: [\"*\"]\n"
	    "    password_file: %s\n",
	    path);
	p = parse(y, err, sizeof(err));
	unlink(path);
	assert_non_null(p);
	assert_int_equal(strncmp(p->users[0]->password_hash, "$scrypt$", 8), 0);
	sluice__policy__free_unpacked(p, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_example),
	    cmocka_unit_test(test_errors_name_the_line),
	    cmocka_unit_test(test_unknown_hop_line),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_diff),
	    cmocka_unit_test(test_password_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cmd_console.c - `sluicectl console ...`: the web console's operator
 * accounts and the audit history (controller/console_admin.c).
 *
 *   console user add NAME --role viewer|operator --password-stdin
 *   console user del NAME | list | unlock NAME
 *   console audit [--limit N]
 *
 * The password is read from stdin and hashed here (scrypt, lib/passwd.c):
 * only the hash travels to the controller, as for SMTP users. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "output.h"
#include "passwd.h"
#include "policy_check.h"

#define CONSOLE_USAGE                                                          \
	"console user add NAME --role viewer|operator --password-stdin\n"      \
	"\t| console user del NAME | console user list\n"                      \
	"\t| console user unlock NAME"

static Sluice__AdminReply *
console_call(struct ctl *ctl, Sluice__ConsoleRequest *cr)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__AdminReply *r;

	cr->identity = (char *)(uintptr_t)ctl_identity();
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_CONSOLE;
	req.console = cr;
	r = admin_call(ctl, &req, NULL);
	if (r->body_case != SLUICE__ADMIN_REPLY__BODY_CONSOLE ||
	    r->console == NULL)
		ctl_die("controller sent an unexpected reply to a console "
		        "command (is it older than this sluicectl?)");
	return r;
}

static void
console_read_password(char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, stdin) == NULL)
		ctl_die("no password on stdin");
	n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n + 1 == len && !feof(stdin))
		ctl_die("password on stdin is too long");
	buf[n] = '\0';
	if (n < 8)
		ctl_die("a console password needs at least 8 characters");
}

static int
console_user_add(struct ctl *ctl, int argc, char **argv)
{
	Sluice__ConsoleRequest cr = SLUICE__CONSOLE_REQUEST__INIT;
	char pw[1024], hash[PASSWD_HASH_MAX];
	const char *role = NULL;
	bool pw_stdin = false;
	int i, rc;

	if (argc < 1 || argv[0][0] == '-')
		ctl_usage(CONSOLE_USAGE);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
			role = argv[++i];
		else if (strcmp(argv[i], "--password-stdin") == 0)
			pw_stdin = true;
		else if (strcmp(argv[i], "--password") == 0)
			ctl_die("passwords are not taken on the command line "
			        "(they leak into ps and shell history): use "
			        "--password-stdin");
		else
			ctl_usage(CONSOLE_USAGE);
	}
	if (role == NULL || !pw_stdin)
		ctl_usage(CONSOLE_USAGE);
	if (strcmp(role, "viewer") != 0 && strcmp(role, "operator") != 0)
		ctl_die("--role must be viewer or operator, not '%.32s'", role);
	if (policy_check_name(argv[0]) == -1)
		ctl_die("operator name '%.64s' must be 1-64 characters of "
		        "letters, digits and ._@+-",
		    argv[0]);
	console_read_password(pw, sizeof(pw));
	rc = passwd_hash(pw, hash, sizeof(hash));
	explicit_bzero(pw, sizeof(pw));
	if (rc == -1)
		ctl_die("cannot hash the password");
	cr.op = (char *)(uintptr_t) "user_add";
	cr.name = argv[0];
	cr.role = (char *)(uintptr_t)role;
	cr.password_hash = hash;
	sluice__admin_reply__free_unpacked(console_call(ctl, &cr), NULL);
	if (!ctl->json)
		printf("console operator %s added (%s)\n", argv[0], role);
	else
		printf("{\"name\":\"%s\",\"role\":\"%s\"}\n", argv[0], role);
	return 0;
}

static int
console_user_list(struct ctl *ctl)
{
	Sluice__ConsoleRequest cr = SLUICE__CONSOLE_REQUEST__INIT;
	Sluice__AdminReply *r;
	const Sluice__ConsoleReply *c;
	char created[32], last[32], locked[32], failed[16];
	struct table t;
	struct json j;
	size_t i;

	cr.op = (char *)(uintptr_t) "user_list";
	r = console_call(ctl, &cr);
	c = r->console;
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_array_begin(&j, "operators");
		for (i = 0; i < c->n_operators; i++) {
			const Sluice__ConsoleOperator *o = c->operators[i];

			json_object_begin(&j, NULL);
			json_str(&j, "name", o->name);
			json_str(&j, "role", o->role);
			json_int(&j, "created_at", o->created_at);
			json_int(&j, "last_login_at", o->last_login_at);
			json_uint(&j, "failed_logins", o->failed_logins);
			json_int(&j, "locked_until", o->locked_until);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
	} else if (c->n_operators == 0) {
		printf("no console operators\n");
	} else {
		table_init(&t, 6, "NAME", "ROLE", "CREATED", "LAST LOGIN",
		    "FAILED", "LOCKED UNTIL");
		for (i = 0; i < c->n_operators; i++) {
			const Sluice__ConsoleOperator *o = c->operators[i];

			fmt_time(o->created_at, created, sizeof(created));
			fmt_time(o->last_login_at, last, sizeof(last));
			if (o->locked_until != 0)
				fmt_time(
				    o->locked_until, locked, sizeof(locked));
			else
				snprintf(locked, sizeof(locked), "-");
			snprintf(failed, sizeof(failed), "%" PRIu32,
			    o->failed_logins);
			table_row(&t, o->name, o->role, created, last, failed,
			    locked);
		}
		table_print(&t, stdout);
	}
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}

int
cmd_console_user(struct ctl *ctl, int argc, char **argv)
{
	Sluice__ConsoleRequest cr = SLUICE__CONSOLE_REQUEST__INIT;
	bool is_del;

	if (argc < 1)
		ctl_usage(CONSOLE_USAGE);
	if (strcmp(argv[0], "add") == 0)
		return console_user_add(ctl, argc - 1, argv + 1);
	if (strcmp(argv[0], "list") == 0 && argc == 1)
		return console_user_list(ctl);
	is_del = strcmp(argv[0], "del") == 0;
	if ((!is_del && strcmp(argv[0], "unlock") != 0) || argc != 2)
		ctl_usage(CONSOLE_USAGE);
	cr.op = (char *)(uintptr_t)(is_del ? "user_del" : "user_unlock");
	cr.name = argv[1];
	sluice__admin_reply__free_unpacked(console_call(ctl, &cr), NULL);
	if (!ctl->json)
		printf("console operator %s %s\n", argv[1],
		    is_del ? "deleted" : "unlocked");
	else
		printf("{}\n");
	return 0;
}

int
cmd_console_audit(struct ctl *ctl, int argc, char **argv)
{
	Sluice__ConsoleRequest cr = SLUICE__CONSOLE_REQUEST__INIT;
	Sluice__AdminReply *r;
	const Sluice__ConsoleReply *c;
	char at[32];
	struct table t;
	struct json j;
	uint64_t v;
	size_t i;
	int a;

	for (a = 0; a < argc; a++) {
		if (strcmp(argv[a], "--limit") == 0 && a + 1 < argc &&
		    ctl_parse_u64(argv[a + 1], 1000, &v) == 0) {
			cr.limit = (uint32_t)v;
			a++;
		} else
			ctl_usage("console audit [--limit N]");
	}
	cr.op = (char *)(uintptr_t) "audit";
	r = console_call(ctl, &cr);
	c = r->console;
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_array_begin(&j, "audit");
		for (i = 0; i < c->n_audit; i++) {
			json_object_begin(&j, NULL);
			json_uint(&j, "id", c->audit[i]->id);
			json_int(&j, "at", c->audit[i]->at);
			json_str(&j, "identity", c->audit[i]->identity);
			json_str(&j, "action", c->audit[i]->action);
			json_str(&j, "detail", c->audit[i]->detail);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
	} else if (c->n_audit == 0) {
		printf("no audit entries\n");
	} else {
		table_init(&t, 4, "AT", "WHO", "ACTION", "DETAIL");
		for (i = 0; i < c->n_audit; i++) {
			fmt_time(c->audit[i]->at, at, sizeof(at));
			table_row(&t, at, c->audit[i]->identity,
			    c->audit[i]->action, c->audit[i]->detail);
		}
		table_print(&t, stdout);
	}
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}

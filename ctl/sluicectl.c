/* sluicectl.c - the operator CLI: global options, then a table of command
 * phrases ("node add", "policy apply", ...) mapped to handlers, in the
 * manner of OpenSMTPD's smtpctl.  Handlers live in cmd_*.c; they talk to
 * the controller through admin.c and print through output.c.  Exit status:
 * 0 done, 1 the request failed (one line on stderr), 2 usage. */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "rpc.h"
#include "sluicectl.h"

#define DEFAULT_ADMIN "ipc:///run/sluice/admin.sock"

struct cmd {
	const char *words[2];
	ctl_handler fn;
	const char *args; /* usage after the words */
};

static const struct cmd cmds[] = {
    {{"status", ""}, cmd_status, ""},
    {{"node", "add"}, cmd_node_add, "NAME"},
    {{"node", "list"}, cmd_node_list, ""},
    {{"node", "show"}, cmd_node_show, "NAME"},
    {{"node", "remove"}, cmd_node_remove, "NAME"},
    {{"node", "drain"}, cmd_node_drain, "NAME [--handoff]"},
    {{"node", "resume"}, cmd_node_resume, "NAME"},
    {{"node", "lost"}, cmd_node_lost, "NAME"},
    {{"network", "allow"}, cmd_network_allow, "CIDR"},
    {{"network", "deny"}, cmd_network_deny, "CIDR"},
    {{"network", "del"}, cmd_network_del, "CIDR"},
    {{"network", "list"}, cmd_network_list, ""},
    {{"user", "add"}, cmd_user_add,
        "NAME --password-stdin [--sender PATTERN]... [--rate N]\n"
        "\t\t[--quota-hour-msgs N] [--quota-hour-rcpts N]\n"
        "\t\t[--quota-day-msgs N] [--quota-day-rcpts N]"},
    {{"user", "del"}, cmd_user_del, "NAME"},
    {{"user", "list"}, cmd_user_list, ""},
    {{"user", "set"}, cmd_user_set,
        "NAME [--hold | --no-hold] [--rewrite-sender ADDR]\n"
        "\t\t[--rewrite-from ADDR] [--route HOP[,HOP...]]... [--no-route]\n"
        "\t\t[--quota-hour-msgs N] [--quota-hour-rcpts N]\n"
        "\t\t[--quota-day-msgs N] [--quota-day-rcpts N]"},
    {{"hop", "add"}, cmd_hop_add,
        "NAME --host H --port P --tls none|starttls|require|smtps\n"
        "\t\t[--user U --secret-stdin] [--preset "
        "sendgrid|ses|mailgun|m365|google]\n"
        "\t\t[--region R] [--eu] [--max-conn N] [--rate R] [--weight W]\n"
        "\t\t[--max-rcpt N] [--max-size BYTES] [--no-verify]"},
    {{"hop", "del"}, cmd_hop_del, "NAME"},
    {{"hop", "list"}, cmd_hop_list, ""},
    {{"dkim", "add"}, cmd_dkim_add,
        "DOMAIN --selector S [--algorithm rsa|ed25519]\n"
        "\t\t[--generate | --key-stdin] [--required] [--subdomains]\n"
        "\t\t[--header NAME]..."},
    {{"dkim", "list"}, cmd_dkim_list, "[DOMAIN]"},
    {{"dkim", "del"}, cmd_dkim_del, "DOMAIN [--selector S]"},
    {{"dkim", "rotate"}, cmd_dkim_rotate,
        "DOMAIN [--selector S] [--algorithm rsa|ed25519]"},
    {{"dkim", "dns"}, cmd_dkim_dns, "DOMAIN [--selector S]"},
    {{"dkim", "check"}, cmd_dkim_check,
        "DOMAIN [--selector S] [--resolver IP[:PORT],...]"},
    {{"route", "set"}, cmd_route_set,
        "PATTERN [--from S] [--user U] [--listener L] [--client CIDR]\n"
        "\t\tHOP[,HOP...] [HOP[,HOP...]]..."},
    {{"route", "del"}, cmd_route_del,
        "PATTERN [--from S] [--user U] [--listener L] [--client CIDR]"},
    {{"route", "list"}, cmd_route_list, ""},
    {{"route", "explain"}, cmd_route_explain,
        "ADDRESS|DOMAIN [--from S] [--user U] [--listener L]\n"
        "\t\t[--client IP]"},
    {{"limit", "set"}, cmd_limit_set, "KEY VALUE"},
    {{"limit", "list"}, cmd_limit_list, ""},
    {{"policy", "export"}, cmd_policy_export, ""},
    {{"policy", "show"}, cmd_policy_show, "[--version N]"},
    {{"policy", "apply"}, cmd_policy_apply, "-f FILE [--dry-run]"},
    {{"policy", "diff"}, cmd_policy_diff, "-f FILE"},
    {{"policy", "check"}, cmd_policy_check, "-f FILE (offline)"},
    {{"policy", "history"}, cmd_policy_history, ""},
    {{"trace", ""}, cmd_trace, "QUEUE-ID|MESSAGE-ID"},
    {{"hook", "add"}, cmd_hook_add,
        "PROVIDER NAME [--key K] [--secret-stdin] [--path-token-stdin] "
        "[--engagement] [--suppress] [--tag]"},
    {{"hook", "del"}, cmd_hook_del, "PROVIDER NAME"},
    {{"hook", "list"}, cmd_hook_list, ""},
    {{"suppress", "list"}, cmd_suppress_list, ""},
    {{"suppress", "add"}, cmd_suppress_add,
        "ADDRESS [--reason bounce|complaint|manual]"},
    {{"suppress", "del"}, cmd_suppress_del, "ADDRESS"},
    {{"suppress", "mode"}, cmd_suppress_mode, "[refuse|bounce]"},
    {{"alerts", ""}, cmd_alerts, "[--open] [--limit N]"},
    {{"queue", "list"}, cmd_queue_list,
        "[--node N] [--state active|deferred|held] [--to DOMAIN]\n"
        "\t\t[--limit N] [--timeout S]"},
    {{"queue", "summary"}, cmd_queue_summary, "[--node N]"},
    {{"queue", "retry"}, cmd_queue_retry, "ID [--node N] [--timeout S]"},
    {{"queue", "hold"}, cmd_queue_hold, "ID [--node N] [--timeout S]"},
    {{"queue", "release"}, cmd_queue_release, "ID [--node N] [--timeout S]"},
    {{"queue", "delete"}, cmd_queue_delete, "ID [--node N] [--timeout S]"},
    {{"queue", "flush"}, cmd_queue_flush, "[--node N] [--timeout S]"},
    {{"console", "user"}, cmd_console_user,
        "add NAME --role viewer|operator --password-stdin\n"
        "\t\t| del NAME | list | unlock NAME"},
    {{"console", "audit"}, cmd_console_audit, "[--limit N]"},
    {{"log", ""}, cmd_log,
        "[--from SENDER] [--to RCPT] [--status KIND] [--since 1h] "
        "[--node N] [--limit N]"},
};

/* A command phrase is one or two words; "" ends it early. */
static int
cmd_nwords(const struct cmd *c)
{
	return c->words[1][0] != '\0' ? 2 : 1;
}

void
ctl_die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("sluicectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void
ctl_usage(const char *usage)
{
	fprintf(stderr, "usage: sluicectl %s\n", usage);
	exit(2);
}

int
ctl_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

const char *
ctl_identity(void)
{
	static char buf[64];
	struct passwd *pw;

	if ((pw = getpwuid(geteuid())) != NULL)
		return pw->pw_name;
	snprintf(buf, sizeof(buf), "uid %u", (unsigned)geteuid());
	return buf;
}

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: sluicectl [--admin URL] [--json] COMMAND...\n"
	           "commands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %s%s%s %s\n", cmds[i].words[0],
		    cmds[i].words[1][0] ? " " : "", cmds[i].words[1],
		    cmds[i].args);
	fprintf(
	    f, "--admin defaults to $SLUICE_ADMIN, else %s\n", DEFAULT_ADMIN);
	fprintf(f, "--admin tls+tcp://HOST:PORT needs --admin-ca FILE and "
	           "--admin-cert-key FILE\n(or $SLUICE_ADMIN_CA, "
	           "$SLUICE_ADMIN_CERT_KEY): mutual TLS\n");
}

/* The summary recorded in policy history: the command line in words. */
static void
summarise(struct ctl *ctl, int argc, char **argv)
{
	size_t off = 0;
	int i;

	for (i = 0; i < argc && off < sizeof(ctl->summary); i++)
		off += (size_t)snprintf(ctl->summary + off,
		    sizeof(ctl->summary) - off, "%s%s", i ? " " : "", argv[i]);
}

int
main(int argc, char **argv)
{
	struct ctl ctl;
	const struct cmd *c = NULL;
	size_t i;
	int rc, a;

	log_init("sluicectl", false);
	memset(&ctl, 0, sizeof(ctl));
	if ((ctl.admin_url = getenv("SLUICE_ADMIN")) == NULL ||
	    ctl.admin_url[0] == '\0')
		ctl.admin_url = DEFAULT_ADMIN;
	for (a = 1; a < argc && argv[a][0] == '-'; a++) {
		if (strcmp(argv[a], "--json") == 0)
			ctl.json = true;
		else if (strcmp(argv[a], "--admin") == 0 && a + 1 < argc)
			ctl.admin_url = argv[++a];
		else if (strncmp(argv[a], "--admin=", 8) == 0)
			ctl.admin_url = argv[a] + 8;
		/* mutual TLS to a remote admin endpoint (admin.c) */
		else if (strcmp(argv[a], "--admin-ca") == 0 && a + 1 < argc)
			setenv("SLUICE_ADMIN_CA", argv[++a], 1);
		else if (strcmp(argv[a], "--admin-cert-key") == 0 &&
		         a + 1 < argc)
			setenv("SLUICE_ADMIN_CERT_KEY", argv[++a], 1);
		else if (strcmp(argv[a], "--help") == 0 ||
		         strcmp(argv[a], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr,
			    "sluicectl: unknown option %s "
			    "(sluicectl --help lists them)\n",
			    argv[a]);
			return 2;
		}
	}
	if (argc - a < 1) {
		fprintf(stderr, "usage: sluicectl [--admin URL] [--json] "
		                "COMMAND... (sluicectl --help lists them)\n");
		return 2;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].words[0], argv[a]) == 0 &&
		    (cmd_nwords(&cmds[i]) == 1 ||
		        (a + 1 < argc &&
		            strcmp(cmds[i].words[1], argv[a + 1]) == 0)))
			c = &cmds[i];
	if (c == NULL) {
		fprintf(stderr,
		    "sluicectl: unknown command '%s%s%s' "
		    "(sluicectl --help lists them)\n",
		    argv[a], a + 1 < argc ? " " : "",
		    a + 1 < argc ? argv[a + 1] : "");
		return 2;
	}
	/* --help after the words prints that command's usage. */
	for (i = (size_t)a + (size_t)cmd_nwords(c); i < (size_t)argc; i++)
		if (strcmp(argv[i], "--help") == 0) {
			printf("usage: sluicectl %s%s%s %s\n", c->words[0],
			    c->words[1][0] ? " " : "", c->words[1], c->args);
			return 0;
		}
	summarise(&ctl, argc - a, argv + a);
	rc = c->fn(&ctl, argc - a - cmd_nwords(c), argv + a + cmd_nwords(c));
	rpc_client_close(ctl.rpc);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "sluicectl: cannot write output: %s\n",
		    strerror(errno));
		return 1;
	}
	return rc;
}

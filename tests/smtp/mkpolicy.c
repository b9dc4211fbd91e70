/* mkpolicy.c - writes a packed Sluice__Policy to a file, for SMTP scenario
 * tests that run sluice-node from its policy cache without a controller:
 *   mkpolicy OUT [--version N] [--network CIDR] [--deny CIDR]
 *            [--user NAME:PASSWORD:SENDER[,SENDER...][:RATE]]
 *            [--limit KEY=VALUE]...
 * The snapshot is validated with policy_check() before it is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limit_table.h"
#include "passwd.h"
#include "policy_check.h"
#include "proto.h"

#define MAXN 64

static void
die(const char *msg, const char *arg)
{
	fprintf(
	    stderr, "mkpolicy: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(2);
}

int
main(int argc, char **argv)
{
	Sluice__Policy pol = SLUICE__POLICY__INIT;
	Sluice__Network nets[MAXN], *netp[MAXN];
	Sluice__User users[MAXN], *userp[MAXN];
	Sluice__Limit limits[MAXN], *limitp[MAXN];
	struct policy_error pe;
	char *senders[MAXN][16], *p, *name, *pass, *snd, *rate;
	char hashes[MAXN][PASSWD_HASH_MAX];
	uint8_t *buf;
	size_t len, ns;
	FILE *f;
	int i;

	if (argc < 2)
		die("usage: mkpolicy OUT [--version N] [--network CIDR] "
		    "[--deny CIDR] [--user NAME:PASS:SENDERS[:RATE]] "
		    "[--limit KEY=VALUE]",
		    NULL);
	pol.version = 1;
	for (i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			die("missing value for", argv[i]);
		p = argv[++i];
		if (strcmp(argv[i - 1], "--version") == 0) {
			pol.version = strtoull(p, NULL, 10);
		} else if (strcmp(argv[i - 1], "--network") == 0 ||
		           strcmp(argv[i - 1], "--deny") == 0) {
			if (pol.n_networks == MAXN)
				die("too many networks", NULL);
			sluice__network__init(&nets[pol.n_networks]);
			nets[pol.n_networks].cidr = p;
			nets[pol.n_networks].deny =
			    strcmp(argv[i - 1], "--deny") == 0;
			netp[pol.n_networks] = &nets[pol.n_networks];
			pol.n_networks++;
		} else if (strcmp(argv[i - 1], "--user") == 0) {
			if (pol.n_users == MAXN)
				die("too many users", NULL);
			name = strtok(p, ":");
			pass = strtok(NULL, ":");
			snd = strtok(NULL, ":");
			rate = strtok(NULL, ":");
			if (name == NULL || pass == NULL || snd == NULL)
				die("--user NAME:PASS:SENDERS[:RATE]", NULL);
			sluice__user__init(&users[pol.n_users]);
			users[pol.n_users].name = name;
			if (passwd_hash(pass, hashes[pol.n_users],
			        PASSWD_HASH_MAX) == -1)
				die("cannot hash", name);
			users[pol.n_users].password_hash = hashes[pol.n_users];
			users[pol.n_users].has_password = 1;
			ns = 0;
			for (snd = strtok(snd, ","); snd != NULL && ns < 16;
			     snd = strtok(NULL, ","))
				senders[pol.n_users][ns++] = snd;
			users[pol.n_users].senders = senders[pol.n_users];
			users[pol.n_users].n_senders = ns;
			if (rate != NULL)
				users[pol.n_users].rate_per_minute =
				    (uint32_t)strtoul(rate, NULL, 10);
			userp[pol.n_users] = &users[pol.n_users];
			pol.n_users++;
		} else if (strcmp(argv[i - 1], "--limit") == 0) {
			if (pol.n_limits == MAXN ||
			    (name = strchr(p, '=')) == NULL)
				die("--limit KEY=VALUE", p);
			*name++ = '\0';
			if (limit_find(p) == NULL)
				die("unknown limit", p);
			sluice__limit__init(&limits[pol.n_limits]);
			limits[pol.n_limits].key = p;
			limits[pol.n_limits].value = strtoll(name, NULL, 10);
			limitp[pol.n_limits] = &limits[pol.n_limits];
			pol.n_limits++;
		} else
			die("unknown option", argv[i - 1]);
	}
	pol.networks = netp;
	pol.users = userp;
	pol.limits = limitp;
	if (policy_check(&pol, POLICY_CHECK_SNAPSHOT, &pe) == -1)
		die("invalid policy", pe.msg);
	len = sluice__policy__get_packed_size(&pol);
	if ((buf = malloc(len + 1)) == NULL)
		die("out of memory", NULL);
	sluice__policy__pack(&pol, buf);
	if ((f = fopen(argv[1], "wb")) == NULL ||
	    fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		die("cannot write", argv[1]);
	free(buf);
	return 0;
}

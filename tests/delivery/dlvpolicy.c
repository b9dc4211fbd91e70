/* dlvpolicy.c - writes a packed Sluice__Policy (the node's policy cache)
 * with hops and routes, for delivery scenario tests that run sluice-node
 * without a controller:
 *   dlvpolicy OUT [--version N] [--network CIDR]
 *       [--hop NAME:key=val,...]   keys: host port tls(none|starttls|
 *                                  require|smtps) verify user secret
 *                                  weight max_conn rate max_rcpt max_size
 *                                  secret_file oauth2 tenant client_id
 *                                  token_url scope cert
 *       [--route 'PATTERN=HOP,HOP;HOP']   ';' separates hop groups
 *       [--limit KEY=VALUE]
 *       [--dkim DOMAIN:SELECTOR:KEYFILE[:required][:subdomains]
 *               [:canon=simple/simple]]
 * Validated with policy_check() before it is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limit_table.h"
#include "policy_check.h"
#include "proto.h"

#define MAXN 32

static void
die(const char *msg, const char *arg)
{
	fprintf(stderr, "dlvpolicy: %s%s%s\n", msg, arg ? ": " : "",
	    arg ? arg : "");
	exit(2);
}

static char *
slurp(const char *path)
{
	static char buf[4][16384];
	static int next;
	char *b = buf[next++ % 4];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		die("cannot read", path);
	n = fread(b, 1, sizeof(buf[0]) - 1, f);
	b[n] = '\0';
	fclose(f);
	return b;
}

static void
hop_parse(Sluice__Hop *h, char *spec)
{
	char *name = spec, *kv, *v, *save = NULL;

	if ((kv = strchr(spec, ':')) == NULL)
		die("--hop NAME:key=val,...", spec);
	*kv++ = '\0';
	h->name = name;
	for (kv = strtok_r(kv, ",", &save); kv != NULL;
	     kv = strtok_r(NULL, ",", &save)) {
		if ((v = strchr(kv, '=')) == NULL)
			die("hop key=val", kv);
		*v++ = '\0';
		if (strcmp(kv, "host") == 0)
			h->host = v;
		else if (strcmp(kv, "port") == 0)
			h->port = (uint32_t)atoi(v);
		else if (strcmp(kv, "tls") == 0)
			h->tls = strcmp(v, "starttls") == 0
			             ? SLUICE__TLS_MODE__TLS_STARTTLS
			         : strcmp(v, "require") == 0
			             ? SLUICE__TLS_MODE__TLS_REQUIRE
			         : strcmp(v, "smtps") == 0
			             ? SLUICE__TLS_MODE__TLS_SMTPS
			             : SLUICE__TLS_MODE__TLS_NONE;
		else if (strcmp(kv, "verify") == 0)
			h->verify_cert = atoi(v) != 0;
		else if (strcmp(kv, "user") == 0)
			h->auth_user = v;
		else if (strcmp(kv, "secret") == 0) {
			h->secret = v;
			h->has_secret = 1;
		} else if (strcmp(kv, "secret_file") == 0) {
			/* a whole file (a PEM key): XOAUTH2 credentials */
			h->secret = slurp(v);
			h->has_secret = 1;
		} else if (strcmp(kv, "oauth2") == 0)
			h->oauth2 = v;
		else if (strcmp(kv, "tenant") == 0)
			h->oauth2_tenant = v;
		else if (strcmp(kv, "client_id") == 0)
			h->oauth2_client_id = v;
		else if (strcmp(kv, "token_url") == 0)
			h->oauth2_token_url = v;
		else if (strcmp(kv, "scope") == 0)
			h->oauth2_scope = v;
		else if (strcmp(kv, "cert") == 0)
			h->oauth2_cert = atoi(v) != 0;
		else if (strcmp(kv, "weight") == 0)
			h->weight = (uint32_t)atoi(v);
		else if (strcmp(kv, "max_conn") == 0)
			h->max_conn = (uint32_t)atoi(v);
		else if (strcmp(kv, "rate") == 0)
			h->rate_per_minute = (uint32_t)atoi(v);
		else if (strcmp(kv, "max_rcpt") == 0)
			h->max_rcpt = (uint32_t)atoi(v);
		else if (strcmp(kv, "max_size") == 0)
			h->max_size = strtoull(v, NULL, 10);
		else
			die("unknown hop key", kv);
	}
}

int
main(int argc, char **argv)
{
	static Sluice__Network nets[MAXN], *netp[MAXN];
	static Sluice__Hop hops[MAXN], *hopp[MAXN];
	static Sluice__Route routes[MAXN], *routep[MAXN];
	static Sluice__HopGroup groups[MAXN][8], *groupp[MAXN][8];
	static char *names[MAXN][8][16];
	static Sluice__Limit limits[MAXN], *limitp[MAXN];
	static Sluice__DkimKey dkim[MAXN], *dkimp[MAXN];
	static char pem[MAXN][8192];
	Sluice__Policy pol = SLUICE__POLICY__INIT;
	struct policy_error pe;
	char *p, *v, *g, *h, *s1 = NULL, *s2 = NULL;
	uint8_t *buf;
	size_t len;
	FILE *f;
	int i;

	if (argc < 2)
		die("usage: dlvpolicy OUT [--network CIDR] [--hop SPEC] "
		    "[--route SPEC] [--limit K=V]",
		    NULL);
	pol.version = 1;
	for (i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			die("missing value for", argv[i]);
		p = argv[++i];
		if (strcmp(argv[i - 1], "--version") == 0)
			pol.version = strtoull(p, NULL, 10);
		else if (strcmp(argv[i - 1], "--network") == 0) {
			size_t k = pol.n_networks++;

			sluice__network__init(&nets[k]);
			nets[k].cidr = p;
			netp[k] = &nets[k];
		} else if (strcmp(argv[i - 1], "--hop") == 0) {
			size_t k = pol.n_hops++;

			sluice__hop__init(&hops[k]);
			hop_parse(&hops[k], p);
			hopp[k] = &hops[k];
		} else if (strcmp(argv[i - 1], "--route") == 0) {
			size_t k = pol.n_routes++, ng = 0, nh;

			if ((v = strchr(p, '=')) == NULL)
				die("--route PATTERN=HOPS", p);
			*v++ = '\0';
			sluice__route__init(&routes[k]);
			routes[k].pattern = p;
			for (g = strtok_r(v, ";", &s1); g != NULL && ng < 8;
			     g = strtok_r(NULL, ";", &s1)) {
				sluice__hop_group__init(&groups[k][ng]);
				nh = 0;
				for (h = strtok_r(g, ",", &s2);
				     h != NULL && nh < 16;
				     h = strtok_r(NULL, ",", &s2))
					names[k][ng][nh++] = h;
				groups[k][ng].hops = names[k][ng];
				groups[k][ng].n_hops = nh;
				groupp[k][ng] = &groups[k][ng];
				ng++;
			}
			routes[k].groups = groupp[k];
			routes[k].n_groups = ng;
			routep[k] = &routes[k];
		} else if (strcmp(argv[i - 1], "--limit") == 0) {
			size_t k = pol.n_limits++;

			if ((v = strchr(p, '=')) == NULL)
				die("--limit KEY=VALUE", p);
			*v++ = '\0';
			if (limit_find(p) == NULL)
				die("unknown limit", p);
			sluice__limit__init(&limits[k]);
			limits[k].key = p;
			limits[k].value = strtoll(v, NULL, 10);
			limitp[k] = &limits[k];
		} else if (strcmp(argv[i - 1], "--dkim") == 0) {
			size_t k = pol.n_dkim++, n;
			char *path, *fl;

			sluice__dkim_key__init(&dkim[k]);
			dkim[k].domain = strtok_r(p, ":", &s1);
			dkim[k].selector = strtok_r(NULL, ":", &s1);
			if ((path = strtok_r(NULL, ":", &s1)) == NULL)
				die("--dkim DOMAIN:SELECTOR:KEYFILE", p);
			while ((fl = strtok_r(NULL, ":", &s1)) != NULL) {
				if (strcmp(fl, "required") == 0)
					dkim[k].required = 1;
				else if (strcmp(fl, "subdomains") == 0)
					dkim[k].subdomains = 1;
				else if (strncmp(fl, "canon=", 6) == 0)
					dkim[k].canon = fl + 6;
				else
					die("--dkim flag", fl);
			}
			if ((f = fopen(path, "r")) == NULL)
				die("cannot read", path);
			n = fread(pem[k], 1, sizeof(pem[k]) - 1, f);
			fclose(f);
			pem[k][n] = '\0';
			dkim[k].private_key = pem[k];
			dkim[k].has_key = 1;
			dkimp[k] = &dkim[k];
		} else
			die("unknown option", argv[i - 1]);
	}
	pol.dkim = dkimp;
	pol.networks = netp;
	pol.hops = hopp;
	pol.routes = routep;
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

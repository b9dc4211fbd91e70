/* dkim_sign.c - signs a message with node/dkim.c for the verification
 * test (test_verify.py):
 *   sluice-dkim-sign [-c relaxed|simple] [-n CHUNK] -k SEL:KEYFILE...
 *       DOMAIN < message > signed
 * The message is read in CHUNK-octet pieces (default 4096), the headers
 * (one per key, in -k order) are written before it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dkim.h"

#define MAXKEYS 4

static char *
slurp(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0, r;
	char *p = malloc(cap);

	while (p != NULL && (r = fread(p + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap && (p = realloc(p, cap *= 2)) == NULL)
			break;
	}
	if (p == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	*len = n;
	return p;
}

int
main(int argc, char **argv)
{
	struct dkim_key *keys[MAXKEYS];
	struct dkim_sign *s;
	enum dkim_canon canon = DKIM_RELAXED;
	size_t nkeys = 0, chunk = 4096, len, klen;
	char err[256], *msg, *pem, *hdrs[MAXKEYS];
	const char *specs[MAXKEYS];
	int ch;

	while ((ch = getopt(argc, argv, "c:n:k:")) != -1) {
		switch (ch) {
		case 'c':
			canon = strcmp(optarg, "simple") == 0 ? DKIM_SIMPLE
			                                      : DKIM_RELAXED;
			break;
		case 'n':
			chunk = (size_t)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			if (nkeys == MAXKEYS)
				return 2;
			specs[nkeys++] = optarg;
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc || nkeys == 0 || chunk == 0) {
		fprintf(stderr, "usage: sluice-dkim-sign [-c relaxed|simple] "
		                "[-n CHUNK] -k SEL:KEYFILE... DOMAIN\n");
		return 2;
	}
	for (size_t i = 0; i < nkeys; i++) {
		char sel[64];
		const char *colon = strchr(specs[i], ':');
		FILE *f;

		if (colon == NULL || (size_t)(colon - specs[i]) >= sizeof(sel))
			return 2;
		snprintf(sel, sizeof(sel), "%.*s", (int)(colon - specs[i]),
		    specs[i]);
		if ((f = fopen(colon + 1, "r")) == NULL) {
			perror(colon + 1);
			return 1;
		}
		pem = slurp(f, &klen);
		fclose(f);
		pem[klen < 65535 ? klen : 65535] = '\0';
		keys[i] =
		    dkim_key_new(argv[optind], sel, pem, err, sizeof(err));
		free(pem);
		if (keys[i] == NULL) {
			fprintf(stderr, "%s: %s\n", colon + 1, err);
			return 1;
		}
	}
	msg = slurp(stdin, &len);
	s = dkim_sign_new(
	    canon == DKIM_SIMPLE ? DKIM_BODY_SIMPLE : DKIM_BODY_RELAXED, 0);
	for (size_t off = 0; off < len; off += chunk)
		dkim_sign_update(
		    s, msg + off, len - off < chunk ? len - off : chunk);
	printf("# from-domain %s\n",
	    dkim_sign_from_domain(s) ? dkim_sign_from_domain(s) : "-");
	for (size_t i = 0; i < nkeys; i++) {
		struct dkim_sign_params p = {keys[i], canon, canon, NULL};
		if ((hdrs[i] = dkim_sign_header(
		         s, &p, 1765000000, err, sizeof(err))) == NULL) {
			fprintf(stderr, "sign: %s\n", err);
			return 1;
		}
	}
	for (size_t i = 0; i < nkeys; i++) {
		fputs(hdrs[i], stdout);
		free(hdrs[i]);
		dkim_key_free(keys[i]);
	}
	fwrite(msg, 1, len, stdout);
	dkim_sign_free(s);
	free(msg);
	return 0;
}

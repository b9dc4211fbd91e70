/* dkim_dns.h - the DKIM key records a domain publishes, looked up for
 * `sluicectl dkim check` and the controller's periodic check
 * (controller/dkim_watch.c, its own thread) with c-ares, blocking.  servers: "127.0.0.1:5353" style (c-ares CSV), or NULL for
 * the system's resolv.conf. */
#ifndef SLUICECTL_DKIM_DNS_H
#define SLUICECTL_DKIM_DNS_H

#include <stddef.h>

enum dkim_dns_status {
	DKIM_DNS_FOUND = 0, /* *txt holds the record's strings joined */
	DKIM_DNS_NONE,      /* the name does not exist or has no TXT */
	DKIM_DNS_ERROR,     /* no answer (timeout, SERVFAIL): err says */
};

/* The first TXT record at name (its character-strings joined, RFC 6376
 * 3.6.2.2).  *txt is malloc'd when FOUND. */
enum dkim_dns_status dkim_dns_txt(const char *servers, const char *name,
    char **txt, char *err, size_t errlen);

/* Compares a published record with the stored key: NULL if it matches
 * (v=DKIM1 if present, k= the algorithm, p= the public key), else the
 * reason ("p= differs", "key revoked (empty p=)", ...).  Pure. */
const char *dkim_dns_compare(const char *txt, const char *alg, const char *pub);

#endif

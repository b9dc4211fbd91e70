/* data_reader.c - CPU per message of the DATA reader (node/smtp_parse.c:
 * un-stuffing, smuggling checks, the content scan), the one pass every
 * accepted octet takes.  A message of SIZE octets (a few headers, then
 * 70-octet body lines, some of them 8-bit) is fed ITERS times in 16 KiB
 * reads, as the session does; prints process CPU per message and per
 * octet.  Run it several times and take the minimum on a shared machine:
 *
 *   build/tests/data_reader 20480 10000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtp_parse.h"

static double
cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 20480, o, n, off;
	int iters = argc > 2 ? atoi(argv[2]) : 10000, i;
	char *msg = malloc(size + 256), out[16384 + 2];
	unsigned long sink = 0;
	struct smtp_data d;
	size_t outlen;
	double t0, t1;

	if (msg == NULL || iters <= 0)
		return 1;
	o = (size_t)sprintf(msg, "Received: from a by b; x\r\n"
	                         "From: a@example.com\r\nTo: b@example.net\r\n"
	                         "Subject: bench\r\nMessage-ID: <1@x>\r\n\r\n");
	for (i = 0; o + 72 < size; i++) {
		memcpy(msg + o,
		    i % 10 == 9
		        ? "caf\xc3\xa9 0123456789012345678901234567890123"
		          "4567890123456789012345678\r\n"
		        : "0123456789012345678901234567890123456789012"
		          "345678901234567890123456789\r\n",
		    72);
		o += 72;
	}
	memcpy(msg + o, ".\r\n", 3);
	o += 3;
	t0 = cpu_s();
	for (i = 0; i < iters; i++) {
		smtp_data_init(&d);
		for (off = 0; d.state != SMTP_DATA_DONE; off += n) {
			n = o - off < 16384 ? o - off : 16384;
			n = smtp_data_feed(&d, msg + off, n, out, &outlen);
			sink += outlen;
		}
	}
	t1 = cpu_s();
	printf("%zu-octet messages: %.0f ns/message, %.2f ns/octet "
	       "(8-bit body %d, Received: %u, %lu)\n",
	    o, (t1 - t0) * 1e9 / iters, (t1 - t0) * 1e9 / iters / (double)o,
	    d.body8bit, d.nreceived, sink % 2);
	free(msg);
	return 0;
}

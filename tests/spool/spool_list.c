/* spool_list.c - lists a spool's queue without a running node.
 *
 *   spool_list SPOOL_DIR
 *
 * Reads SPOOL_DIR/queue read-only (no lock taken, nothing truncated or
 * reclaimed) and prints one line per queued message, oldest first:
 *   QUEUEID state=active size=N from=<sender> to=<r1>,<r2>:delivered
 * Exit 0 (even when empty), 1 on error. */
#include <stdio.h>

#include "log.h"
#include "spool.h"

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: spool_list SPOOL_DIR\n");
		return 2;
	}
	log_init("spool_list", false);
	if (spool_dump(argv[1], stdout) == -1)
		return 1;
	return fflush(stdout) == 0 ? 0 : 1;
}

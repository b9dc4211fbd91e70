/* spool_list.c - prints the queue ids in a spool directory, one a line,
 * through the spool API (spool_open recovers exactly as a restarting node
 * does).  For the SMTP crash test; run it only while no node uses dir. */
#include <stdio.h>

#include <event2/event.h>

#include "log.h"
#include "spool.h"

static int
print_one(const struct spool_info *si, void *arg)
{
	(void)arg;
	printf("%s %zu %s\n", si->queue_id, si->env.nrcpts,
	    si->env.message_id[0] != '\0' ? si->env.message_id : "-");
	return 0;
}

int
main(int argc, char **argv)
{
	struct event_base *base;
	struct spool *sp;

	if (argc != 2) {
		fprintf(stderr, "usage: spool_list SPOOLDIR\n");
		return 2;
	}
	log_init("spool_list", false);
	if ((base = event_base_new()) == NULL ||
	    (sp = spool_open(base, argv[1], NULL)) == NULL)
		return 1;
	spool_foreach(sp, print_one, NULL);
	spool_close(sp);
	event_base_free(base);
	return 0;
}

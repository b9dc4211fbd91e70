/* smtp_server.c - placeholder until the SMTP ingress lands: no listeners. */
#include "smtp_server.h"

#include <stdlib.h>

#include "node.h"

const char *const smtp_server_config_keys[] = { "listen", "tls_cert",
	"tls_key", NULL };

struct smtp_server {
	struct node *node;
};

struct smtp_server *
smtp_server_open(struct node *n, char *err, size_t errlen)
{
	struct smtp_server *s;

	(void)err;
	(void)errlen;
	if ((s = calloc(1, sizeof(*s))) != NULL)
		s->node = n;
	return s;
}

void
smtp_server_close(struct smtp_server *s)
{
	free(s);
}

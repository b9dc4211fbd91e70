/* rpc_probe.c - a tiny nng client for the store tests: builds one
 * NodeRequest or AdminRequest from argv (or hostile bytes), sends it to a
 * controller endpoint and prints the reply as one line of JSON.
 *
 *   rpc_probe URL node hello|getpolicy NAME TOKEN
 *   rpc_probe URL node heartbeat NAME TOKEN POLICY_VERSION [draining]
 *   rpc_probe URL node events NAME TOKEN
 * SEQ[:QID[:KIND[:MSGID[:RCPT[:AT[:SENDER]]]]]]...
 *     (\xHH in a text field is that octet; AT in ms since the epoch)
 *   rpc_probe URL node|admin raw-random N | truncated | empty | oversize N
 *   rpc_probe URL admin node-add|node-remove|node-drain|node-resume NAME
 *   rpc_probe URL admin node-list | policy-history | policy-get VERSION
 *   rpc_probe URL admin policy-apply BASE SUMMARY IDENTITY ITEM...
 *   rpc_probe URL admin trace ID | log [KEY=VALUE...]
 *     ITEM: net:CIDR  route:PATTERN:HOP  user:NAME:HASH|keep
 *           hop:NAME:HOST:PORT[:USER:SECRET|keep]
 *
 * Exit 0 with a reply printed, 3 when no reply came (timeout), 2 usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "proto.h"

/* Every allocation of the request goes here and is freed at exit, so the
 * probe stays quiet under LeakSanitizer. */
static void *probe_mem[4096];
static size_t probe_nmem;

static void *
probe_calloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL || probe_nmem == sizeof(probe_mem) / sizeof(*probe_mem))
		abort();
	probe_mem[probe_nmem++] = p;
	return p;
}

static char *
probe_strdup(const char *s)
{
	char *p = probe_calloc(1, strlen(s) + 1);

	memcpy(p, s, strlen(s));
	return p;
}

static void
probe_free_all(void)
{
	while (probe_nmem > 0)
		free(probe_mem[--probe_nmem]);
}

/* \xHH -> that octet, in place. */
static void
probe_unhex(char *s)
{
	char *o = s, hex[3] = {0};

	while (*s != '\0') {
		if (s[0] == '\\' && s[1] == 'x' && s[2] != '\0' &&
		    s[3] != '\0') {
			hex[0] = s[2];
			hex[1] = s[3];
			*o++ = (char)strtoul(hex, NULL, 16);
			s += 4;
		} else
			*o++ = *s++;
	}
	*o = '\0';
}

static void
json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_msg(const ProtobufCMessage *m);

static void
json_value(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		printf("%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		printf("%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		printf("%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		printf("%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		printf(*(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_STRING:
		json_str(*(char *const *)p ? *(char *const *)p : "");
		break;
	case PROTOBUF_C_TYPE_BYTES:
		printf("%zu", ((const ProtobufCBinaryData *)p)->len);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		json_msg(*(ProtobufCMessage *const *)p);
		break;
	default:
		printf("null");
		break;
	}
}

static size_t
json_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static void
json_msg(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d;
	const ProtobufCFieldDescriptor *f;
	const char *base = (const char *)m;
	unsigned i;
	size_t j, n;
	int first = 1;

	if (m == NULL) {
		printf("null");
		return;
	}
	d = m->descriptor;
	putchar('{');
	for (i = 0; i < d->n_fields; i++) {
		f = &d->fields[i];
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)(base + f->quantifier_offset) !=
			    f->id)
				continue;
		}
		if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
		    f->label != PROTOBUF_C_LABEL_REPEATED &&
		    *(void *const *)(base + f->offset) == NULL)
			continue;
		printf("%s\"%s\":", first ? "" : ",", f->name);
		first = 0;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr =
			    *(const char *const *)(base + f->offset);
			putchar('[');
			for (j = 0; j < n; j++) {
				if (j > 0)
					putchar(',');
				json_value(f, arr + j * json_size(f));
			}
			putchar(']');
		} else {
			json_value(f, base + f->offset);
		}
	}
	putchar('}');
}

static void
usage(void)
{
	fprintf(stderr, "usage: rpc_probe URL node|admin COMMAND ARGS...\n");
	exit(2);
}

/* Sends buf, prints the reply decoded as desc.  3 when nothing came. */
static int
probe_send(const char *url, const uint8_t *buf, size_t len,
    const ProtobufCMessageDescriptor *desc)
{
	const char *t = getenv("RPC_PROBE_TIMEOUT_MS");
	ProtobufCMessage *reply;
	nng_socket s;
	nng_msg *m;
	int rv;

	if ((rv = nng_req0_open(&s)) != 0) {
		fprintf(stderr, "rpc_probe: %s\n", nng_strerror(rv));
		return 1;
	}
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, t ? atoi(t) : 5000);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, t ? atoi(t) : 5000);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 600000);
	if ((rv = nng_dial(s, url, NULL, 0)) != 0) {
		printf("{\"noreply\":\"dial: %s\"}\n", nng_strerror(rv));
		nng_close(s);
		return 3;
	}
	if ((rv = nng_msg_alloc(&m, len)) != 0)
		return 1;
	memcpy(nng_msg_body(m), buf, len);
	if ((rv = nng_sendmsg(s, m, 0)) != 0) {
		nng_msg_free(m);
		printf("{\"noreply\":\"send: %s\"}\n", nng_strerror(rv));
		nng_close(s);
		return 3;
	}
	if ((rv = nng_recvmsg(s, &m, 0)) != 0) {
		/* No nng_close: with a huge send still queued on a pipe the
		 * peer stopped reading, closing may linger.  Just leave. */
		printf("{\"noreply\":\"%s\"}\n", nng_strerror(rv));
		fflush(stdout);
		probe_free_all();
		_exit(3);
	}
	reply = protobuf_c_message_unpack(
	    desc, NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	nng_close(s);
	if (reply == NULL) {
		printf("{\"malformed\":true}\n");
		return 1;
	}
	json_msg(reply);
	putchar('\n');
	protobuf_c_message_free_unpacked(reply, NULL);
	return 0;
}

static int
probe_pack_send(const char *url, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *desc, int truncate)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = malloc(len + 1);
	int rv;

	protobuf_c_message_pack(req, buf);
	if (truncate && len > 3)
		len -= 3;
	rv = probe_send(url, buf, len, desc);
	free(buf);
	return rv;
}

/* Hostile input shared by both endpoints; -1 when cmd is not one. */
static int
probe_hostile(const char *url, const char *cmd, char **argv, int argc,
    const ProtobufCMessageDescriptor *desc)
{
	uint8_t *buf;
	size_t n, i;
	int rv;

	if (strcmp(cmd, "raw-random") == 0 || strcmp(cmd, "oversize") == 0) {
		if (argc < 1)
			usage();
		n = strtoul(argv[0], NULL, 10);
		if ((buf = malloc(n + 1)) == NULL)
			return 1;
		srandom(12345);
		for (i = 0; i < n; i++)
			buf[i] = (uint8_t)random();
		rv = probe_send(url, buf, n, desc);
		free(buf);
		return rv;
	}
	if (strcmp(cmd, "empty") == 0) {
		uint8_t none = 0;
		return probe_send(url, &none, 0, desc);
	}
	return -1;
}

static void
probe_auth(Sluice__NodeAuth *a, char **argv, int argc)
{
	if (argc < 2)
		usage();
	sluice__node_auth__init(a);
	a->node_name = argv[0];
	a->token = argv[1];
}

static int
probe_node(const char *url, const char *cmd, char **argv, int argc)
{
	const ProtobufCMessageDescriptor *d = &sluice__node_reply__descriptor;
	Sluice__NodeRequest r = SLUICE__NODE_REQUEST__INIT;
	Sluice__NodeAuth auth;
	Sluice__HelloRequest hello = SLUICE__HELLO_REQUEST__INIT;
	Sluice__HeartbeatRequest hb = SLUICE__HEARTBEAT_REQUEST__INIT;
	Sluice__QueueMetrics qm = SLUICE__QUEUE_METRICS__INIT;
	Sluice__GetPolicyRequest gp = SLUICE__GET_POLICY_REQUEST__INIT;
	Sluice__ReportEventsRequest re = SLUICE__REPORT_EVENTS_REQUEST__INIT;
	Sluice__Event *evs, **evp;
	char ver[] = "probe-1", addr[] = "127.0.0.1:2525", kind[] = "delivered";
	char qid[32][40];
	int i, rv, truncate = 0;

	if ((rv = probe_hostile(url, cmd, argv, argc, d)) != -1)
		return rv;
	if (strcmp(cmd, "truncated") == 0) {
		static char n[] = "node-x", t[] = "token";
		char *args[2] = {n, t};
		probe_auth(&auth, args, 2);
		hello.auth = &auth;
		hello.software_version = ver;
		r.body_case = SLUICE__NODE_REQUEST__BODY_HELLO;
		r.hello = &hello;
		truncate = 1;
	} else if (strcmp(cmd, "hello") == 0) {
		probe_auth(&auth, argv, argc);
		hello.auth = &auth;
		hello.software_version = ver;
		hello.address = addr;
		r.body_case = SLUICE__NODE_REQUEST__BODY_HELLO;
		r.hello = &hello;
	} else if (strcmp(cmd, "heartbeat") == 0) {
		probe_auth(&auth, argv, argc);
		if (argc < 3)
			usage();
		hb.auth = &auth;
		hb.policy_version = strtoull(argv[2], NULL, 10);
		qm.messages = 7;
		qm.draining = argc > 3 && strcmp(argv[3], "draining") == 0;
		hb.metrics = &qm;
		r.body_case = SLUICE__NODE_REQUEST__BODY_HEARTBEAT;
		r.heartbeat = &hb;
	} else if (strcmp(cmd, "getpolicy") == 0) {
		probe_auth(&auth, argv, argc);
		gp.auth = &auth;
		r.body_case = SLUICE__NODE_REQUEST__BODY_GET_POLICY;
		r.get_policy = &gp;
	} else if (strcmp(cmd, "events") == 0) {
		probe_auth(&auth, argv, argc);
		re.auth = &auth;
		re.n_events = (size_t)(argc - 2);
		if (re.n_events > 32)
			usage();
		evs = probe_calloc(re.n_events + 1, sizeof(*evs));
		evp = probe_calloc(re.n_events + 1, sizeof(*evp));
		for (i = 0; i < argc - 2; i++) {
			sluice__event__init(&evs[i]);
			/* SEQ[:QUEUE-ID[:KIND[:MESSAGE-ID[:RCPT[:AT[:SENDER]]]]]],
			 * \xHH in the texts is that octet */
			char *f[7] = {probe_strdup(argv[2 + i]), NULL, NULL,
			    NULL, NULL, NULL, NULL};
			int k;
			for (k = 1; k < 7 && f[k - 1] != NULL; k++)
				if ((f[k] = strchr(f[k - 1], ':')) != NULL)
					*f[k]++ = '\0';
			for (k = 1; k < 5; k++)
				if (f[k] != NULL)
					probe_unhex(f[k]);
			evs[i].seq = strtoull(f[0], NULL, 10);
			evs[i].at_ms = f[5] != NULL ? strtoll(f[5], NULL, 10)
			                            : 1700000000000LL + i;
			evs[i].kind = f[2] ? f[2] : kind;
			snprintf(qid[i], sizeof(qid[i]), "Q%s", f[0]);
			evs[i].queue_id = f[1] ? f[1] : qid[i];
			if (f[3] != NULL)
				evs[i].message_id = f[3];
			if (f[4] != NULL)
				evs[i].recipient = f[4];
			if (f[6] != NULL) {
				probe_unhex(f[6]);
				evs[i].sender = f[6];
			}
			evs[i].code = 250;
			evp[i] = &evs[i];
		}
		re.events = evp;
		r.body_case = SLUICE__NODE_REQUEST__BODY_REPORT_EVENTS;
		r.report_events = &re;
	} else
		usage();
	return probe_pack_send(url, &r.base, d, truncate);
}

/* Builds a Policy from ITEM arguments (see the file comment). */
static Sluice__Policy *
probe_policy(char **argv, int argc)
{
	Sluice__Policy *p = probe_calloc(1, sizeof(*p));
	char *f[6], *s;
	int i, k;

	sluice__policy__init(p);
	p->networks = probe_calloc((size_t)argc + 1, sizeof(void *));
	p->users = probe_calloc((size_t)argc + 1, sizeof(void *));
	p->hops = probe_calloc((size_t)argc + 1, sizeof(void *));
	p->routes = probe_calloc((size_t)argc + 1, sizeof(void *));
	for (i = 0; i < argc; i++) {
		s = probe_strdup(argv[i]);
		for (k = 0; k < 6; k++)
			f[k] = NULL;
		/* split on ':' at most 5 times; the CIDR of net: may hold ':'
		 */
		f[0] = s;
		if ((s = strchr(s, ':')) == NULL)
			usage();
		*s++ = '\0';
		if (strcmp(f[0], "net") == 0) {
			Sluice__Network *n = probe_calloc(1, sizeof(*n));
			sluice__network__init(n);
			n->cidr = s;
			p->networks[p->n_networks++] = n;
			continue;
		}
		for (k = 1; k < 6 && s != NULL; k++) {
			f[k] = s;
			if ((s = strchr(s, ':')) != NULL)
				*s++ = '\0';
		}
		if (strcmp(f[0], "user") == 0 && f[2] != NULL) {
			Sluice__User *u = probe_calloc(1, sizeof(*u));
			static char star[] = "*", *senders[1] = {star};
			sluice__user__init(u);
			u->name = f[1];
			if (strcmp(f[2], "keep") == 0)
				u->has_password = 1;
			else
				u->password_hash = f[2];
			u->senders = senders;
			u->n_senders = 1;
			p->users[p->n_users++] = u;
		} else if (strcmp(f[0], "hop") == 0 && f[3] != NULL) {
			Sluice__Hop *h = probe_calloc(1, sizeof(*h));
			sluice__hop__init(h);
			h->name = f[1];
			h->host = f[2];
			h->port = (uint32_t)atoi(f[3]);
			if (f[4] != NULL && f[5] != NULL) {
				h->auth_user = f[4];
				if (strcmp(f[5], "keep") == 0)
					h->keep_secret = 1;
				else
					h->secret = f[5];
			}
			p->hops[p->n_hops++] = h;
		} else if (strcmp(f[0], "route") == 0 && f[2] != NULL) {
			Sluice__Route *r = probe_calloc(1, sizeof(*r));
			Sluice__HopGroup *g = probe_calloc(1, sizeof(*g));
			sluice__route__init(r);
			sluice__hop_group__init(g);
			g->hops = probe_calloc(1, sizeof(char *));
			g->hops[0] = f[2];
			g->n_hops = 1;
			r->pattern = f[1];
			r->groups = probe_calloc(1, sizeof(void *));
			r->groups[0] = g;
			r->n_groups = 1;
			p->routes[p->n_routes++] = r;
		} else
			usage();
	}
	return p;
}

static int
probe_admin(const char *url, const char *cmd, char **argv, int argc)
{
	const ProtobufCMessageDescriptor *d = &sluice__admin_reply__descriptor;
	Sluice__AdminRequest r = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__NodeAddRequest add = SLUICE__NODE_ADD_REQUEST__INIT;
	Sluice__NodeNameRequest nn = SLUICE__NODE_NAME_REQUEST__INIT;
	Sluice__Empty empty = SLUICE__EMPTY__INIT;
	Sluice__PolicyGetRequest pg = SLUICE__POLICY_GET_REQUEST__INIT;
	Sluice__PolicyApplyRequest pa = SLUICE__POLICY_APPLY_REQUEST__INIT;
	Sluice__TraceRequest tr = SLUICE__TRACE_REQUEST__INIT;
	Sluice__LogRequest lr = SLUICE__LOG_REQUEST__INIT;
	int i, rv, truncate = 0;

	if ((rv = probe_hostile(url, cmd, argv, argc, d)) != -1)
		return rv;
	if (strcmp(cmd, "node-add") == 0 || strcmp(cmd, "truncated") == 0) {
		static char dflt[] = "node-truncated";
		add.name = argc > 0 ? argv[0] : dflt;
		r.body_case = SLUICE__ADMIN_REQUEST__BODY_NODE_ADD;
		r.node_add = &add;
		truncate = strcmp(cmd, "truncated") == 0;
	} else if (strcmp(cmd, "node-list") == 0) {
		r.body_case = SLUICE__ADMIN_REQUEST__BODY_NODE_LIST;
		r.node_list = &empty;
	} else if (strcmp(cmd, "policy-history") == 0) {
		r.body_case = SLUICE__ADMIN_REQUEST__BODY_POLICY_HISTORY;
		r.policy_history = &empty;
	} else if (strncmp(cmd, "node-", 5) == 0) {
		if (argc < 1)
			usage();
		nn.name = argv[0];
		if (strcmp(cmd, "node-remove") == 0) {
			r.body_case = SLUICE__ADMIN_REQUEST__BODY_NODE_REMOVE;
			r.node_remove = &nn;
		} else if (strcmp(cmd, "node-drain") == 0) {
			r.body_case = SLUICE__ADMIN_REQUEST__BODY_NODE_DRAIN;
			r.node_drain = &nn;
		} else if (strcmp(cmd, "node-resume") == 0) {
			r.body_case = SLUICE__ADMIN_REQUEST__BODY_NODE_RESUME;
			r.node_resume = &nn;
		} else
			usage();
	} else if (strcmp(cmd, "trace") == 0) {
		if (argc < 1)
			usage();
		tr.id = argv[0];
		r.body_case = SLUICE__ADMIN_REQUEST__BODY_TRACE;
		r.trace = &tr;
	} else if (strcmp(cmd, "log") == 0) {
		/* KEY=VALUE: sender recipient status node since limit */
		for (i = 0; i < argc; i++) {
			char *v = strchr(argv[i], '=');
			if (v == NULL)
				usage();
			*v++ = '\0';
			if (strcmp(argv[i], "sender") == 0)
				lr.sender = v;
			else if (strcmp(argv[i], "recipient") == 0)
				lr.recipient = v;
			else if (strcmp(argv[i], "status") == 0)
				lr.status = v;
			else if (strcmp(argv[i], "node") == 0)
				lr.node = v;
			else if (strcmp(argv[i], "since") == 0)
				lr.since_s = strtoll(v, NULL, 10);
			else if (strcmp(argv[i], "limit") == 0)
				lr.limit = (uint32_t)strtoul(v, NULL, 10);
			else
				usage();
		}
		r.body_case = SLUICE__ADMIN_REQUEST__BODY_LOG;
		r.log = &lr;
	} else if (strcmp(cmd, "policy-get") == 0) {
		if (argc < 1)
			usage();
		pg.version = strtoull(argv[0], NULL, 10);
		r.body_case = SLUICE__ADMIN_REQUEST__BODY_POLICY_GET;
		r.policy_get = &pg;
	} else if (strcmp(cmd, "policy-apply") == 0) {
		if (argc < 3)
			usage();
		pa.base_version = strtoull(argv[0], NULL, 10);
		pa.summary = argv[1];
		pa.identity = argv[2];
		pa.policy = probe_policy(argv + 3, argc - 3);
		r.body_case = SLUICE__ADMIN_REQUEST__BODY_POLICY_APPLY;
		r.policy_apply = &pa;
	} else
		usage();
	return probe_pack_send(url, &r.base, d, truncate);
}

int
main(int argc, char *argv[])
{
	if (argc < 4)
		usage();
	int rv;

	if (strcmp(argv[2], "node") == 0)
		rv = probe_node(argv[1], argv[3], argv + 4, argc - 4);
	else if (strcmp(argv[2], "admin") == 0)
		rv = probe_admin(argv[1], argv[3], argv + 4, argc - 4);
	else
		usage();
	probe_free_all();
	return rv;
}

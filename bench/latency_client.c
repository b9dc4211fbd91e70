/* latency_client.c - bench/latency.py's open-loop SMTP load in C.
 *
 *   latency_client PORT RATE SECS SIZE TAG OUT
 *
 * Message i is due at t0 + i/RATE whatever the replies do; a message whose
 * time comes while every session is busy waits in a FIFO and a new session
 * is opened (at most MAXCONN).  Each session says EHLO once, then per
 * message pipelines MAIL, RCPT and DATA (RFC 2920) and, on 354, writes the
 * body with its final "." in one send.  OUT gets one line per message:
 * "id scheduled started dot_sent reply_read code" (CLOCK_MONOTONIC ns,
 * reply_read 0 when no 250 came); stdout gets t0.  Same protocol and
 * output as latency.py's Python client, at a tenth of its CPU: on the
 * 2-core machine the load tool competes with the system it measures.
 * One thread, epoll, a timerfd for the schedule. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAXCONN 200

enum step { S_CONNECT, S_GREET, S_EHLO, S_IDLE, S_ENVELOPE, S_BODY, S_RSET };

struct msg {
	int64_t sched, start, dot, reply;
	int code;
};

struct conn {
	int fd;
	enum step step;
	int want;  /* replies still to read in this step */
	int first; /* first reply code of the step */
	int last;  /* last reply code of the step */
	long cur;  /* message being sent, -1 */
	char in[4096];
	size_t inlen;
	char *out; /* unsent output (a short send) */
	size_t outlen, outoff;
	int wants_out; /* EPOLLOUT is registered */
};

static struct msg *msgs;
static long nmsgs, ndone;
static long *backlog; /* FIFO of due message ids */
static long bl_head, bl_tail;
static struct conn conns[MAXCONN];
static int nconns, nopening, epfd, port;
static const char *tag;
static const char head_fmt[] =
    "From: <bench@example.com>\r\nTo: <sink@example.net>\r\n"
    "Subject: latency\r\nX-Bench-Id: %s-%ld\r\n\r\n";
static char *body_fill;
static size_t fill_len;

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
watch(struct conn *c, uint32_t events, int op)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	if (epoll_ctl(epfd, op, c->fd, &ev) == -1)
		die("epoll_ctl");
}

/* Sends what is queued; keeps the rest for EPOLLOUT. */
static void
flush_out(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff,
		    c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n == -1 && errno == EAGAIN) {
			if (!c->wants_out)
				watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
			c->wants_out = 1;
			return;
		}
		if (n <= 0)
			die("send");
		c->outoff += (size_t)n;
	}
	c->outlen = c->outoff = 0;
	if (c->wants_out)
		watch(c, EPOLLIN, EPOLL_CTL_MOD);
	c->wants_out = 0;
}

static void
put(struct conn *c, const char *p, size_t n)
{
	char *o = realloc(c->out, c->outlen + n);

	if (o == NULL)
		die("realloc");
	memcpy(o + c->outlen, p, n);
	c->out = o;
	c->outlen += n;
}

static void
expect(struct conn *c, enum step s, int n)
{
	c->step = s;
	c->want = n;
	c->first = c->last = 0;
}

static void
send_envelope(struct conn *c, long i)
{
	static const char env[] = "MAIL FROM:<bench@example.com>\r\n"
	                          "RCPT TO:<sink@example.net>\r\nDATA\r\n";

	c->cur = i;
	put(c, env, sizeof(env) - 1);
	expect(c, S_ENVELOPE, 3);
	flush_out(c);
}

/* A session is free: the oldest due message, or wait for one. */
static void
session_idle(struct conn *c)
{
	c->cur = -1;
	if (bl_head < bl_tail)
		send_envelope(c, backlog[bl_head++]);
	else
		expect(c, S_IDLE, 0);
}

static void
open_one(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct conn *c = NULL;
	int one = 1;

	for (int k = 0; k < MAXCONN; k++)
		if (conns[k].fd == 0) {
			c = &conns[k];
			break;
		}
	if (c == NULL)
		return;
	memset(c, 0, sizeof(*c));
	c->cur = -1;
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		die("socket");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno != EINPROGRESS)
		die("connect");
	c->step = S_CONNECT;
	nopening++;
	watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void
dispatch(long i)
{
	msgs[i].start = now_ns();
	for (int k = 0; k < MAXCONN; k++)
		if (conns[k].fd > 0 && conns[k].step == S_IDLE) {
			send_envelope(&conns[k], i);
			return;
		}
	backlog[bl_tail++] = i;
	if (nconns + nopening < MAXCONN && nopening < bl_tail - bl_head)
		open_one();
}

static void
step_done(struct conn *c)
{
	struct msg *m;
	char head[160];
	int n;

	switch (c->step) {
	case S_GREET:
		put(c, "EHLO bench.client\r\n", 19);
		expect(c, S_EHLO, 1);
		flush_out(c);
		break;
	case S_EHLO:
		nopening--;
		nconns++;
		session_idle(c);
		break;
	case S_ENVELOPE:
		m = &msgs[c->cur];
		if (c->last != 354) {
			m->code = c->last;
			ndone++;
			put(c, "RSET\r\n", 6);
			expect(c, S_RSET, 1);
			flush_out(c);
			break;
		}
		n = snprintf(head, sizeof(head), head_fmt, tag, c->cur);
		put(c, head, (size_t)n);
		put(c, body_fill, fill_len);
		put(c, ".\r\n", 3);
		m->dot = now_ns();
		expect(c, S_BODY, 1);
		flush_out(c);
		break;
	case S_BODY:
		m = &msgs[c->cur];
		m->reply = now_ns();
		m->code = c->first;
		ndone++;
		session_idle(c);
		break;
	case S_RSET:
		session_idle(c);
		break;
	default:
		break;
	}
}

/* Reads replies: a line whose fourth octet is not '-' ends one. */
static void
on_readable(struct conn *c)
{
	ssize_t n;
	char *nl;

	if (c->inlen == sizeof(c->in) || (n = read(c->fd, c->in + c->inlen,
	                                      sizeof(c->in) - c->inlen)) <= 0) {
		fprintf(stderr, "latency_client: session closed\n");
		exit(1);
	}
	c->inlen += (size_t)n;
	while (c->want > 0 && (nl = memchr(c->in, '\n', c->inlen)) != NULL) {
		size_t len = (size_t)(nl - c->in) + 1;
		if (len >= 4 && c->in[3] != '-') {
			int code = atoi(c->in);
			if (c->first == 0)
				c->first = code;
			c->last = code;
			c->want--;
		}
		memmove(c->in, nl + 1, c->inlen - len);
		c->inlen -= len;
		if (c->want == 0)
			step_done(c);
	}
}

/* A connect finished: the greeting comes next. */
static void
on_connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
	    err != 0) {
		errno = err;
		die("connect");
	}
	expect(c, S_GREET, 1);
	watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[64];
	struct itimerspec its = {{0, 0}, {0, 0}};
	double rate, secs;
	int64_t t0, period_ns, due;
	long next = 0;
	size_t size, head_len;
	long nlines;
	int tfd;
	FILE *out;

	if (argc != 7) {
		fprintf(stderr, "usage: latency_client PORT RATE SECS SIZE TAG "
		                "OUT\n");
		return 2;
	}
	port = atoi(argv[1]);
	rate = atof(argv[2]);
	secs = atof(argv[3]);
	size = (size_t)atol(argv[4]);
	tag = argv[5];
	nmsgs = (long)(rate * secs);
	if (rate <= 0 || nmsgs <= 0)
		return 2;
	msgs = calloc((size_t)nmsgs, sizeof(*msgs));
	backlog = calloc((size_t)nmsgs, sizeof(*backlog));
	/* 78-octet lines to the size the Python client makes */
	head_len = (size_t)snprintf(NULL, 0, head_fmt, tag, 0L) - 1 + 2;
	nlines = ((long)size - (long)head_len - 16) / 78;
	if (nlines < 1)
		nlines = 1;
	fill_len = (size_t)nlines * 78;
	if (msgs == NULL || backlog == NULL ||
	    (body_fill = malloc(fill_len)) == NULL)
		die("calloc");
	for (long k = 0; k < nlines; k++) {
		memset(body_fill + k * 78, 'x', 76);
		memcpy(body_fill + k * 78 + 76, "\r\n", 2);
	}
	if ((epfd = epoll_create1(0)) == -1 ||
	    (tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK)) == -1)
		die("epoll/timerfd");
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev) == -1)
			die("epoll_ctl");
	}
	for (int k = 0; k < 4; k++)
		open_one();
	while (nopening > 0) { /* four sessions ready before the clock */
		int n = epoll_wait(epfd, evs, 64, 5000);
		if (n <= 0)
			die("sessions");
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			if (c->step == S_CONNECT)
				on_connected(c);
			else
				on_readable(c);
		}
	}
	period_ns = (int64_t)(1e9 / rate);
	t0 = now_ns() + 50000000;
	while (ndone < nmsgs) {
		int n;
		/* everything due by now, then sleep until the next one */
		while (
		    next < nmsgs && (due = t0 + next * period_ns) <= now_ns()) {
			msgs[next].sched = due;
			dispatch(next++);
		}
		if (next < nmsgs) {
			due = t0 + next * period_ns;
			its.it_value.tv_sec = (time_t)(due / 1000000000);
			its.it_value.tv_nsec = (long)(due % 1000000000);
			timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
		}
		n = epoll_wait(epfd, evs, 64, 60000);
		if (n == 0) {
			fprintf(stderr, "latency_client: %ld replies missing\n",
			    nmsgs - ndone);
			break;
		}
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			uint64_t ticks;
			if (c == NULL) {
				(void)!read(tfd, &ticks, sizeof(ticks));
				continue;
			}
			if (c->step == S_CONNECT) {
				on_connected(c);
				continue;
			}
			if (evs[k].events & EPOLLOUT)
				flush_out(c);
			if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				on_readable(c);
		}
	}
	if ((out = fopen(argv[6], "w")) == NULL)
		die(argv[6]);
	for (long i = 0; i < nmsgs; i++)
		if (msgs[i].code != 0) /* answered, as the Python client */
			fprintf(out, "%ld %lld %lld %lld %lld %d\n", i,
			    (long long)msgs[i].sched, (long long)msgs[i].start,
			    (long long)msgs[i].dot, (long long)msgs[i].reply,
			    msgs[i].code);
	fclose(out);
	printf("%lld\n", (long long)t0);
	return 0;
}

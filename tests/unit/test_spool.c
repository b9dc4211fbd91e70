/* test_spool.c - the spool against a real directory: commit and reopen,
 * abort, spill, torn tails at every byte, recipient state and removal
 * across restarts, segment reclaim, group commit sharing flushes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node.h"
#include "spool.h"
#include "spool_int.h"

struct fx {
	char dir[64];
	struct event_base *base;
	struct spool *s;
};

static int ncb, nok;
static char last_qid[SPOOL_QID_MAX];

static void
commit_cb(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	(void)arg;
	(void)cookie;
	ncb++;
	nok += ok;
	snprintf(last_qid, sizeof(last_qid), "%s", qid);
}

static void
done_cb(uint64_t cookie, const char *qid, bool ok)
{
	commit_cb(NULL, cookie, qid, ok);
}

static void
wait_cbs(struct fx *f, int want)
{
	for (int i = 0; i < 100000 && ncb < want; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(ncb, want);
}

static struct spool_opts opts = {.segment_size = 1 << 20, .spill_size = 8192};

static void
reopen(struct fx *f)
{
	if (f->s != NULL)
		spool_close(f->s);
	f->s = spool_open_opts(f->base, f->dir, NULL, &opts);
	assert_non_null(f->s);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_spool.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->base = event_base_new();
	reopen(f);
	ncb = nok = 0;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	spool_close(f->s);
	event_base_free(f->base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static const char *rcpts3[] = {
    "a@example.net", "b@example.net", "c@example.net"};

static struct spool_envelope
env_for(const char *sender)
{
	struct spool_envelope e = {.sender = sender,
	    .rcpts = rcpts3,
	    .nrcpts = 3,
	    .client = "[192.0.2.1]:25000",
	    .helo = "client.example",
	    .auth_user = "app1",
	    .message_id = "<m1@example>",
	    .received_at = 1700000000,
	    .eightbit = true};
	return e;
}

/* Queues a message of n octets (a pattern seeded by seed); returns its
 * queue id in out. */
static void
submit(struct fx *f, size_t n, int seed, char out[SPOOL_QID_MAX])
{
	struct spool_msg *m = spool_msg_new(f->s);
	struct spool_envelope e = env_for("s@example.com");
	char buf[1000];

	assert_non_null(m);
	snprintf(out, SPOOL_QID_MAX, "%s", spool_msg_id(m));
	for (size_t done = 0; done < n;) {
		size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
		for (size_t i = 0; i < k; i++)
			buf[i] = (char)('A' + (done + i + (size_t)seed) % 26);
		assert_int_equal(spool_msg_write(m, buf, k), 0);
		done += k;
	}
	spool_msg_commit(m, &e, commit_cb, NULL, (uint64_t)seed);
}

static void
check_data(struct fx *f, const char *qid, size_t n, int seed)
{
	char *buf = malloc(n + 1);
	struct spool_info info;

	assert_int_equal(spool_lookup(f->s, qid, &info), 0);
	assert_int_equal(info.size, n);
	assert_int_equal(spool_read(f->s, qid, 0, buf, n + 1), (ssize_t)n);
	for (size_t i = 0; i < n; i++)
		if (buf[i] != (char)('A' + (i + (size_t)seed) % 26))
			fail_msg("data differs at %zu", i);
	free(buf);
}

static int
count_cb(const struct spool_info *i, void *arg)
{
	(void)i;
	(*(int *)arg)++;
	return 0;
}

static int
queued(struct fx *f)
{
	int n = 0;

	spool_foreach(f->s, count_cb, &n);
	return n;
}

static int
count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' &&
		    (suffix == NULL || strstr(de->d_name, suffix) != NULL))
			n++;
	closedir(d);
	return n;
}

static void
test_crc32c(void **state)
{
	(void)state;
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283U);
	assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283U);
}

/* Bit by bit, the definition: what the three-stream hardware path and the
 * slicing table must both agree with, at every length around the
 * three-block step and at odd alignments. */
static uint32_t
crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n-- > 0) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78U : crc >> 1;
	}
	return ~crc;
}

static void
test_crc32c_long(void **state)
{
	static uint8_t buf[3 * 1024 * 7 + 64];
	static const size_t lens[] = {0, 1, 7, 8, 3071, 3072, 3073, 3079, 6143,
	    6144, 6151, 9216, 20480, 20527, 3 * 1024 * 7};
	uint32_t x = 2463534242U;
	size_t i, off;

	(void)state;
	for (i = 0; i < sizeof(buf); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (off = 0; off < 3; off++) {
			if (crc32c(0x1234567U, buf + off, lens[i]) !=
			    crc32c_bitwise(0x1234567U, buf + off, lens[i]))
				fail_msg(
				    "crc32c differs at length %zu offset %zu",
				    lens[i], off);
			/* in two pieces, the cut inside a block */
			if (lens[i] > 100 &&
			    crc32c(crc32c(0, buf + off, 100), buf + off + 100,
			        lens[i] - 100) !=
			        crc32c_bitwise(0, buf + off, lens[i]))
				fail_msg(
				    "crc32c in pieces differs at length %zu",
				    lens[i]);
		}
}

static void
test_qid(void **state)
{
	char q[SPOOL_QID_MAX];
	uint64_t id;

	(void)state;
	spool_qid_format(0x65A1B2C3D4E5FULL, q);
	assert_string_equal(q, "065A1B2C3D4E5F");
	assert_int_equal(spool_qid_parse(q, &id), 0);
	assert_true(id == 0x65A1B2C3D4E5FULL);
	assert_int_equal(spool_qid_parse("abc", &id), -1);
	assert_int_equal(spool_qid_parse("", &id), -1);
	assert_int_equal(spool_qid_parse("11112222333344445", &id), -1);
}

static void
test_commit_reopen(void **state)
{
	struct fx *f = *state;
	struct spool_info info;
	char qid[SPOOL_QID_MAX];

	submit(f, 1234, 7, qid);
	wait_cbs(f, 1);
	assert_int_equal(nok, 1);
	assert_string_equal(last_qid, qid);
	assert_int_equal(strlen(qid), 14);
	check_data(f, qid, 1234, 7);
	reopen(f);
	assert_int_equal(queued(f), 1);
	check_data(f, qid, 1234, 7);
	assert_int_equal(spool_lookup(f->s, qid, &info), 0);
	assert_string_equal(info.env.sender, "s@example.com");
	assert_int_equal(info.env.nrcpts, 3);
	assert_string_equal(info.env.rcpts[2], "c@example.net");
	assert_string_equal(info.env.client, "[192.0.2.1]:25000");
	assert_string_equal(info.env.helo, "client.example");
	assert_string_equal(info.env.auth_user, "app1");
	assert_string_equal(info.env.message_id, "<m1@example>");
	assert_true(info.env.eightbit);
	assert_false(info.env.smtputf8);
	assert_int_equal(info.env.received_at, 1700000000);
	assert_int_equal(info.state, SPOOL_ACTIVE);
	assert_int_equal(info.npending, 3);
	/* Twice more: still exactly once. */
	reopen(f);
	reopen(f);
	assert_int_equal(queued(f), 1);
}

/* Issue 15: the listener's name and the user's hold flag ride in the
 * envelope (flags 32 and 64); a held message stays held across a reopen
 * until a release, which a reopen keeps too. */
static void
test_listener_hold(void **state)
{
	struct fx *f = *state;
	struct spool_envelope e = env_for("s@example.com");
	struct spool_info info;
	struct spool_msg *m;
	char qid[SPOOL_QID_MAX], plain[SPOOL_QID_MAX];

	submit(f, 10, 1, plain); /* no listener, not held: as before */
	m = spool_msg_new(f->s);
	assert_non_null(m);
	snprintf(qid, sizeof(qid), "%s", spool_msg_id(m));
	assert_int_equal(spool_msg_write(m, "x\r\n", 3), 0);
	e.listener = "submission";
	e.hold = true;
	spool_msg_commit(m, &e, commit_cb, NULL, 2);
	wait_cbs(f, 2);
	assert_int_equal(spool_lookup(f->s, qid, &info), 0);
	assert_int_equal(info.state, SPOOL_HELD);
	reopen(f);
	assert_int_equal(spool_lookup(f->s, qid, &info), 0);
	assert_int_equal(info.state, SPOOL_HELD);
	assert_string_equal(info.env.listener, "submission");
	assert_string_equal(info.env.auth_user, "app1");
	assert_int_equal(spool_lookup(f->s, plain, &info), 0);
	assert_int_equal(info.state, SPOOL_ACTIVE);
	assert_null(info.env.listener);
	assert_int_equal(
	    spool_set_state(f->s, qid, SPOOL_ACTIVE, 0, NULL, 0), 0);
	reopen(f);
	assert_int_equal(spool_lookup(f->s, qid, &info), 0);
	assert_int_equal(info.state, SPOOL_ACTIVE);
	assert_string_equal(info.env.listener, "submission");
}

static void
test_null_sender_empty_body(void **state)
{
	struct fx *f = *state;
	struct spool_msg *m = spool_msg_new(f->s);
	struct spool_envelope e = env_for("");
	struct spool_info info;
	char qid[SPOOL_QID_MAX];

	e.auth_user = NULL;
	snprintf(qid, sizeof(qid), "%s", spool_msg_id(m));
	spool_msg_commit(m, &e, commit_cb, NULL, 1);
	wait_cbs(f, 1);
	reopen(f);
	assert_int_equal(spool_lookup(f->s, qid, &info), 0);
	assert_string_equal(info.env.sender, "");
	assert_string_equal(info.env.auth_user, "");
	assert_int_equal(info.size, 0);
}

static void
test_abort(void **state)
{
	struct fx *f = *state;
	struct spool_msg *m;
	char tmp[128], big[20000];

	m = spool_msg_new(f->s);
	assert_int_equal(spool_msg_write(m, "hello\r\n", 7), 0);
	spool_msg_abort(m);
	/* A spilled one too: its tmp file goes with it. */
	m = spool_msg_new(f->s);
	memset(big, 'x', sizeof(big));
	assert_int_equal(spool_msg_write(m, big, sizeof(big)), 0);
	snprintf(tmp, sizeof(tmp), "%s/queue/tmp", f->dir);
	assert_int_equal(count_files(tmp, NULL), 1);
	spool_msg_abort(m);
	assert_int_equal(count_files(tmp, NULL), 0);
	reopen(f);
	assert_int_equal(queued(f), 0);
	assert_int_equal(ncb, 0);
}

static void
test_tmp_cleaned(void **state)
{
	struct fx *f = *state;
	struct spool_msg *m;
	char tmp[128], big[20000];

	/* A session still writing when the node dies leaves a spill file. */
	m = spool_msg_new(f->s);
	memset(big, 'x', sizeof(big));
	assert_int_equal(spool_msg_write(m, big, sizeof(big)), 0);
	snprintf(tmp, sizeof(tmp), "%s/queue/tmp", f->dir);
	assert_int_equal(count_files(tmp, NULL), 1);
	spool_close(f->s);
	f->s = NULL;
	reopen(f);
	assert_int_equal(count_files(tmp, NULL), 0);
	assert_int_equal(queued(f), 0);
	/* Its spool is gone: release the session's side by hand. */
	close(m->spill_fd);
	free(m->spill_path);
	free(m->buf);
	free(m);
}

static void
test_spill(void **state)
{
	struct fx *f = *state;
	char q1[SPOOL_QID_MAX], q2[SPOOL_QID_MAX], tmp[128];

	submit(f, 300000, 3, q1);
	submit(f, 100, 4, q2);
	wait_cbs(f, 2);
	assert_int_equal(nok, 2);
	check_data(f, q1, 300000, 3);
	check_data(f, q2, 100, 4);
	snprintf(tmp, sizeof(tmp), "%s/queue/tmp", f->dir);
	assert_int_equal(count_files(tmp, NULL), 0);
	reopen(f);
	check_data(f, q1, 300000, 3);
	check_data(f, q2, 100, 4);
}

static char *
seg_path(struct fx *f, int which)
{
	static char path[256];
	char dir[128];
	DIR *d;
	struct dirent *de;
	char names[16][32];
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/queue", f->dir);
	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL && n < 16)
		if (strlen(de->d_name) < 32 &&
		    strstr(de->d_name, ".seg") != NULL)
			memcpy(names[n++], de->d_name, strlen(de->d_name) + 1);
	closedir(d);
	qsort(
	    names, (size_t)n, 32, (int (*)(const void *, const void *))strcmp);
	assert_true(which < n);
	snprintf(path, sizeof(path), "%s/%s", dir, names[which]);
	return path;
}

static void
write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	assert_true(fd != -1);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void
test_torn_tail(void **state)
{
	struct fx *f = *state;
	char q[3][SPOOL_QID_MAX], *path;
	uint64_t last_off, last_len, size;
	struct stat st;
	uint8_t *orig;
	int fd;

	for (int i = 0; i < 3; i++)
		submit(f, 100 + (size_t)i * 50, i, q[i]);
	wait_cbs(f, 3);
	assert_int_equal(spool_data(f->s, q[2], &fd, &last_off, &last_len), 0);
	last_off -= SPOOL_MSG_HEAD; /* start of the last record */
	spool_close(f->s);
	f->s = NULL;
	path = seg_path(f, 0);
	assert_int_equal(stat(path, &st), 0);
	size = (uint64_t)st.st_size; /* truncated to its end at close */
	assert_non_null(orig = malloc(size));
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, orig, size), (ssize_t)size);
	close(fd);
	for (uint64_t cut = last_off; cut <= size; cut++) {
		int n;
		path = seg_path(f, 0);
		write_file(path, orig, cut);
		reopen(f);
		n = queued(f);
		/* The record is whole once its payload is: only the zero
		 * padding may be missing. */
		if (cut + 8 <= size)
			assert_int_equal(n, 2);
		else if (cut == size)
			assert_int_equal(n, 3);
		else
			assert_in_range(n, 2, 3);
		for (int i = 0; i < n; i++)
			check_data(f, q[i], 100 + (size_t)i * 50, i);
		spool_close(f->s);
		f->s = NULL;
	}
	/* Garbage after the last record: ignored and cut away. */
	{
		uint8_t *g = malloc(size + 100);
		memcpy(g, orig, size);
		for (int i = 0; i < 100; i++)
			g[size + (uint64_t)i] = (uint8_t)(i * 37 + 11);
		/* A plausible header: right magic, bad crc. */
		spool_put32(g + size, SPOOL_REC_MAGIC);
		spool_put16(g + size + 4, SPOOL_REC_MSG);
		spool_put32(g + size + 8, 40);
		write_file(seg_path(f, 0), g, size + 100);
		free(g);
	}
	reopen(f);
	assert_int_equal(queued(f), 3);
	assert_int_equal(stat(seg_path(f, 0), &st), 0);
	assert_int_equal((uint64_t)st.st_size, size);
	/* A byte flipped inside the last record's data: CRC catches it. */
	spool_close(f->s);
	f->s = NULL;
	orig[last_off + SPOOL_MSG_HEAD + 5] ^= 0x20;
	write_file(seg_path(f, 0), orig, size);
	reopen(f);
	assert_int_equal(queued(f), 2);
	free(orig);
}

static void
test_torn_header(void **state)
{
	struct fx *f = *state;
	char q[SPOOL_QID_MAX], path[256];
	int fd;

	submit(f, 10, 1, q);
	wait_cbs(f, 1);
	spool_close(f->s);
	f->s = NULL;
	/* A segment being created when the power went. */
	snprintf(path, sizeof(path), "%s/queue/00000000000000FF.seg", f->dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_int_equal(write(fd, "SLUICEQ", 7), 7);
	close(fd);
	reopen(f);
	assert_int_equal(queued(f), 1);
	assert_int_equal(access(path, F_OK), -1);
	/* The next segment number is past it anyway. */
}

static void
test_rcpt_state_remove(void **state)
{
	struct fx *f = *state;
	struct spool_info info;
	char q[SPOOL_QID_MAX], q2[SPOOL_QID_MAX];

	submit(f, 500, 1, q);
	submit(f, 500, 2, q2);
	wait_cbs(f, 2);
	reopen(f); /* the updates land in a newer segment than q */
	ncb = nok = 0;
	assert_int_equal(
	    spool_rcpt_done(f->s, q, 1, SPOOL_RCPT_DELIVERED, done_cb, 1), 0);
	assert_int_equal(
	    spool_rcpt_done(f->s, q, 2, SPOOL_RCPT_BOUNCED, done_cb, 2), 0);
	assert_int_equal(
	    spool_rcpt_done(f->s, q, 3, SPOOL_RCPT_BOUNCED, NULL, 0), -1);
	assert_int_equal(
	    spool_set_state(f->s, q, SPOOL_DEFERRED, 1800000000, done_cb, 3),
	    0);
	assert_int_equal(spool_set_state(f->s, q2, SPOOL_HELD, 0, NULL, 0), 0);
	assert_int_equal(spool_lookup(f->s, q, &info), 0);
	assert_int_equal(info.npending, 1);
	wait_cbs(f, 3);
	assert_int_equal(nok, 3);
	reopen(f);
	assert_int_equal(spool_lookup(f->s, q, &info), 0);
	assert_int_equal(info.rcpt_status[0], SPOOL_RCPT_PENDING);
	assert_int_equal(info.rcpt_status[1], SPOOL_RCPT_DELIVERED);
	assert_int_equal(info.rcpt_status[2], SPOOL_RCPT_BOUNCED);
	assert_int_equal(info.npending, 1);
	assert_int_equal(info.state, SPOOL_DEFERRED);
	assert_int_equal(info.next_attempt_at, 1800000000);
	assert_int_equal(spool_lookup(f->s, q2, &info), 0);
	assert_int_equal(info.state, SPOOL_HELD);
	ncb = nok = 0;
	assert_int_equal(spool_remove(f->s, q, done_cb, 9), 0);
	assert_int_equal(spool_lookup(f->s, q, &info), -1);
	assert_int_equal(spool_remove(f->s, q, NULL, 0), -1);
	wait_cbs(f, 1);
	assert_int_equal(nok, 1);
	reopen(f);
	assert_int_equal(spool_lookup(f->s, q, &info), -1);
	assert_int_equal(queued(f), 1);
	check_data(f, q2, 500, 2);
}

static void
test_reclaim(void **state)
{
	struct fx *f = *state;
	struct spool_opts small = {.segment_size = 4096, .spill_size = 8192};
	struct spool_counters c;
	char q[40][SPOOL_QID_MAX], dir[128];

	spool_close(f->s);
	f->s = spool_open_opts(f->base, f->dir, NULL, &small);
	for (int i = 0; i < 40; i++)
		submit(f, 1000, i, q[i]);
	wait_cbs(f, 40);
	assert_int_equal(nok, 40);
	snprintf(dir, sizeof(dir), "%s/queue", f->dir);
	assert_true(count_files(dir, ".seg") >= 8);
	/* Remove all but the last: every closed segment goes. */
	for (int i = 0; i < 39; i++)
		assert_int_equal(spool_remove(f->s, q[i], done_cb, 0), 0);
	wait_cbs(f, 79);
	for (int i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	usleep(100000);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	spool_counters(f->s, &c);
	assert_true(c.segments_deleted > 0);
	/* What is left: the tombstones' segments and q[39]'s. */
	assert_true(count_files(dir, ".seg") <= 4);
	spool_close(f->s);
	f->s = spool_open_opts(f->base, f->dir, NULL, &small);
	assert_int_equal(queued(f), 1);
	check_data(f, q[39], 1000, 39);
	/* Now remove the last one too; after a restart everything closed
	 * and dead is reclaimed. */
	ncb = 0;
	assert_int_equal(spool_remove(f->s, q[39], done_cb, 0), 0);
	wait_cbs(f, 1);
	spool_close(f->s);
	f->s = spool_open_opts(f->base, f->dir, NULL, &small);
	usleep(100000);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(queued(f), 0);
	assert_true(count_files(dir, ".seg") <= 1);
}

static void
test_compact(void **state)
{
	struct fx *f = *state;
	struct spool_opts o = {
	    .segment_size = 8192, .spill_size = 8192, .compact_delay_ms = 1};
	struct spool_counters c;
	struct spool_info info;
	char q[24][SPOOL_QID_MAX], dir[128];
	int segs_before;

	spool_close(f->s);
	assert_non_null(f->s = spool_open_opts(f->base, f->dir, NULL, &o));
	for (int i = 0; i < 24; i++)
		submit(f, 1000, i, q[i]);
	wait_cbs(f, 24);
	snprintf(dir, sizeof(dir), "%s/queue", f->dir);
	segs_before = count_files(dir, ".seg");
	assert_true(segs_before >= 3);
	/* Two long-lived messages in the oldest segment, with state. */
	spool_rcpt_done(f->s, q[0], 1, SPOOL_RCPT_DELIVERED, done_cb, 0);
	spool_set_state(f->s, q[0], SPOOL_DEFERRED, 1900000000, done_cb, 0);
	spool_set_state(f->s, q[1], SPOOL_HELD, 0, done_cb, 0);
	for (int i = 2; i < 24; i++)
		spool_remove(f->s, q[i], done_cb, 0);
	wait_cbs(f, 24 + 3 + 22);
	/* Compaction moves q[0] and q[1]; every old segment goes. */
	for (int i = 0; i < 300; i++) {
		spool_counters(f->s, &c);
		if (c.relocated >= 2 && count_files(dir, ".seg") <= 2)
			break;
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		usleep(10000);
	}
	spool_counters(f->s, &c);
	assert_true(c.relocated >= 2);
	assert_true(count_files(dir, ".seg") <= 2);
	check_data(f, q[0], 1000, 0);
	check_data(f, q[1], 1000, 1);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(queued(f), 2);
		assert_int_equal(spool_lookup(f->s, q[0], &info), 0);
		assert_int_equal(info.state, SPOOL_DEFERRED);
		assert_int_equal(info.next_attempt_at, 1900000000);
		assert_int_equal(info.rcpt_status[1], SPOOL_RCPT_DELIVERED);
		assert_int_equal(info.npending, 2);
		assert_string_equal(info.env.rcpts[2], "c@example.net");
		assert_int_equal(spool_lookup(f->s, q[1], &info), 0);
		assert_int_equal(info.state, SPOOL_HELD);
		check_data(f, q[0], 1000, 0);
		check_data(f, q[1], 1000, 1);
		spool_close(f->s);
		assert_non_null(
		    f->s = spool_open_opts(f->base, f->dir, NULL, &o));
	}
	/* Removing a moved message is final too. */
	ncb = 0;
	spool_remove(f->s, q[0], done_cb, 0);
	wait_cbs(f, 1);
	spool_close(f->s);
	assert_non_null(f->s = spool_open_opts(f->base, f->dir, NULL, &o));
	assert_int_equal(queued(f), 1);
	assert_int_equal(spool_lookup(f->s, q[0], &info), -1);
}

/* The segment a queued message's record is in now. */
static uint64_t
seg_of(struct fx *f, const char *qid)
{
	struct spool_ent *e;
	uint64_t id;

	assert_int_equal(spool_qid_parse(qid, &id), 0);
	assert_non_null(e = spool_index_find(&f->s->idx, id));
	return e->seg->seq;
}

/* A reclaimed segment is kept and reused as a later one; what it held
 * never comes back, because a record's CRC starts from its segment's seq
 * (format version 2). */
static void
test_recycle(void **state)
{
	struct fx *f = *state;
	struct spool_opts small = {.segment_size = 4096, .spill_size = 8192};
	struct spool_counters c = {0};
	char q[40][SPOOL_QID_MAX], n[200][SPOOL_QID_MAX], path[256];
	uint8_t hdr[SPOOL_SEG_HDR];
	uint64_t seq, last = 0;
	int i, nn = 0, in_seg, fd;

	spool_close(f->s);
	f->s = spool_open_opts(f->base, f->dir, NULL, &small);
	for (i = 0; i < 40; i++)
		submit(f, 1000, i, q[i]);
	wait_cbs(f, 40);
	for (i = 0; i < 39; i++)
		assert_int_equal(spool_remove(f->s, q[i], done_cb, 0), 0);
	wait_cbs(f, 79);
	/* Same-sized messages until a new segment is a recycled one, and
	 * three more after: their records overwrite old ones in place. */
	ncb = 0;
	for (int more = 3; nn < 200 && more > 0; nn++) {
		submit(f, 1000, 100 + nn, n[nn]);
		wait_cbs(f, nn + 1);
		for (int k = 0; k < 5; k++) {
			event_base_loop(f->base, EVLOOP_NONBLOCK);
			usleep(1000);
		}
		spool_counters(f->s, &c);
		if (c.segments_recycled > 0)
			more--;
	}
	assert_true(c.segments_recycled > 0);
	reopen(f);
	assert_int_equal(queued(f), 1 + nn);
	check_data(f, q[39], 1000, 39);
	for (i = 0; i < nn; i++)
		check_data(f, n[i], 1000, 100 + i);

	/* Recycling by hand: the segment of the newest message renamed to
	 * a later seq with that seq's header, as seg_recycled does.  Its
	 * records are another segment's now and count for nothing. */
	seq = seg_of(f, n[nn - 1]);
	in_seg = seg_of(f, q[39]) == seq;
	for (i = 0; i < nn; i++)
		in_seg += seg_of(f, n[i]) == seq;
	for (struct spool_seg *g = TAILQ_FIRST(&f->s->segs); g != NULL;
	     g = TAILQ_NEXT(g, entry))
		last = g->seq > last ? g->seq : last;
	spool_close(f->s);
	f->s = NULL;
	{
		char from[256];
		snprintf(from, sizeof(from), "%s/queue/%016" PRIX64 ".seg",
		    f->dir, seq);
		snprintf(path, sizeof(path), "%s/queue/%016" PRIX64 ".seg",
		    f->dir, last + 10);
		assert_int_equal(rename(from, path), 0);
	}
	spool_seg_hdr_encode(hdr, last + 10);
	assert_true((fd = open(path, O_WRONLY)) != -1);
	assert_int_equal(pwrite(fd, hdr, sizeof(hdr), 0), sizeof(hdr));
	close(fd);
	reopen(f);
	assert_true(in_seg > 0);
	assert_int_equal(queued(f), 1 + nn - in_seg);
}

/* A message removed while its compaction copy is in flight: the copy
 * lands in one segment, the tombstone in a later one.  The tombstone's
 * segment used to depend only on the original's, so it was reclaimed
 * while the copy's segment (kept by another message) stayed, and the
 * removed message was back after a restart (spool_crash's "removed but
 * back after restart"). */
static void
test_compact_remove_in_flight(void **state)
{
	struct fx *f = *state;
	struct spool_opts o = {
	    .segment_size = 8192, .spill_size = 16384, .compact_delay_ms = 1};
	char q[12][SPOOL_QID_MAX], w[SPOOL_QID_MAX], m[SPOOL_QID_MAX],
	    n[SPOOL_QID_MAX];
	struct spool_info info;
	struct spool_ent *e;
	uint64_t a, id;

	spool_close(f->s);
	assert_non_null(f->s = spool_open_opts(f->base, f->dir, NULL, &o));
	for (int i = 0; i < 12; i++)
		submit(f, 1000, i, q[i]);
	wait_cbs(f, 12);
	/* Six records fill a segment: q[0..5] in A, q[6..11] in the next. */
	a = seg_of(f, q[0]);
	for (int i = 0; i < 12; i++)
		assert_true((seg_of(f, q[i]) == a) == (i < 6));
	usleep(5000); /* A closed for compact_delay_ms */
	/* Down to q[0] and q[1]: A is compacted once the last tombstone is
	 * durable, in the same loop turn that reports it. */
	ncb = 0;
	for (int i = 2; i < 6; i++)
		assert_int_equal(spool_remove(f->s, q[i], done_cb, 0), 0);
	wait_cbs(f, 4);
	assert_int_equal(spool_qid_parse(q[0], &id), 0);
	assert_non_null(e = spool_index_find(&f->s->idx, id));
	assert_true(e->relocating);
	/* While the copies are in flight: W goes beside them (and keeps
	 * their segment from being compacted), M does not fit there and
	 * starts the next segment, where q[0]'s tombstone follows it. */
	ncb = 0;
	submit(f, 3000, 100, w);
	submit(f, 7600, 101, m);
	assert_int_equal(spool_remove(f->s, q[0], done_cb, 0), 0);
	wait_cbs(f, 3);
	assert_true(seg_of(f, q[1]) == seg_of(f, w));
	assert_true(seg_of(f, w) < seg_of(f, m));
	/* M's segment empties and closes (N starts another). */
	ncb = 0;
	assert_int_equal(spool_remove(f->s, m, done_cb, 0), 0);
	submit(f, 7600, 102, n);
	wait_cbs(f, 2);
	assert_true(seg_of(f, n) > seg_of(f, w));
	for (int i = 0; i < 1000 && spool_seg_find(f->s, a) != NULL; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_null(spool_seg_find(f->s, a));
	/* Whatever was reclaimed with A is gone by now (close finishes the
	 * queued unlinks). */
	spool_close(f->s);
	assert_non_null(f->s = spool_open_opts(f->base, f->dir, NULL, &o));
	assert_int_equal(spool_lookup(f->s, q[0], &info), -1);
	assert_int_equal(spool_lookup(f->s, m, &info), -1);
	assert_int_equal(spool_lookup(f->s, q[1], &info), 0);
	check_data(f, q[1], 1000, 1);
	check_data(f, w, 3000, 100);
	check_data(f, n, 7600, 102);
	assert_int_equal(queued(f), 9);
}

static void
test_stats(void **state)
{
	struct fx *f = *state;
	struct node_stats st;
	char q[3][SPOOL_QID_MAX];

	memset(&st, 0, sizeof(st));
	spool_close(f->s);
	assert_non_null(f->s = spool_open_opts(f->base, f->dir, &st, &opts));
	assert_int_equal(atomic_load(&st.queue_messages), 0);
	assert_int_equal(atomic_load(&st.queue_oldest_at), 0);
	for (int i = 0; i < 3; i++)
		submit(f, 100 * ((size_t)i + 1), i, q[i]);
	wait_cbs(f, 3);
	assert_int_equal(atomic_load(&st.queue_messages), 3);
	assert_int_equal(atomic_load(&st.queue_bytes), 600);
	assert_int_equal(atomic_load(&st.queue_active), 3);
	assert_true(atomic_load(&st.queue_oldest_at) > 1700000000);
	spool_set_state(f->s, q[0], SPOOL_DEFERRED, 1900000000, NULL, 0);
	spool_set_state(f->s, q[1], SPOOL_HELD, 0, NULL, 0);
	assert_int_equal(atomic_load(&st.queue_active), 1);
	assert_int_equal(atomic_load(&st.queue_deferred), 1);
	assert_int_equal(atomic_load(&st.queue_held), 1);
	spool_remove(f->s, q[1], NULL, 0);
	assert_int_equal(atomic_load(&st.queue_messages), 2);
	assert_int_equal(atomic_load(&st.queue_bytes), 400);
	assert_int_equal(atomic_load(&st.queue_held), 0);
	/* The same after a restart. */
	spool_close(f->s);
	memset(&st, 0, sizeof(st));
	assert_non_null(f->s = spool_open_opts(f->base, f->dir, &st, &opts));
	assert_int_equal(atomic_load(&st.queue_messages), 2);
	assert_int_equal(atomic_load(&st.queue_bytes), 400);
	assert_int_equal(atomic_load(&st.queue_active), 1);
	assert_int_equal(atomic_load(&st.queue_deferred), 1);
	assert_int_equal(atomic_load(&st.queue_held), 0);
}

static void
test_group_commit(void **state)
{
	struct fx *f = *state;
	struct spool_counters c;
	char q[SPOOL_QID_MAX];
	int n = 500;

	/* Many sessions finishing at once: they share flushes. */
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < n / 10; i++)
			submit(f, 1024, i, q);
		/* let the worker start syncing the first ones */
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	}
	wait_cbs(f, n);
	assert_int_equal(nok, n);
	spool_counters(f->s, &c);
	assert_int_equal(c.commits, n);
	assert_true(c.flushes < (uint64_t)n);
	assert_true(c.flushes >= 1);
	print_message(
	    "%d commits, %llu flushes\n", n, (unsigned long long)c.flushes);
	reopen(f);
	assert_int_equal(queued(f), n);
}

/* Bookkeeping records wait for a commit to share its fdatasync (issue
 * 21): a commit never queues behind a sync of delivery bookkeeping, and
 * bookkeeping alone is still made durable after lazy_sync_ms. */
static void
test_lazy_bookkeeping(void **state)
{
	struct fx *f = *state;
	struct spool_opts lazy = opts;
	struct spool_counters c0, c1;
	struct spool_info info;
	char q[SPOOL_QID_MAX], q2[SPOOL_QID_MAX];
	int i;

	lazy.lazy_sync_ms = 60000; /* longer than the test */
	spool_close(f->s);
	f->s = spool_open_opts(f->base, f->dir, NULL, &lazy);
	assert_non_null(f->s);
	submit(f, 500, 1, q);
	wait_cbs(f, 1);
	spool_counters(f->s, &c0);
	/* 100 state changes, then a commit: one fdatasync for all. */
	for (i = 0; i < 100; i++)
		assert_int_equal(spool_set_state(f->s, q, SPOOL_DEFERRED,
		                     1800000000 + i, done_cb, 0),
		    0);
	submit(f, 500, 2, q2);
	wait_cbs(f, 102);
	assert_int_equal(nok, 102);
	spool_counters(f->s, &c1);
	assert_int_equal(c1.flushes - c0.flushes, 1);
	/* Written at once: another reader of the directory sees it. */
	reopen(f);
	assert_int_equal(spool_lookup(f->s, q, &info), 0);
	assert_int_equal(info.next_attempt_at, 1800000000 + 99);
	/* Alone, bookkeeping is synced after lazy_sync_ms (20 ms here). */
	ncb = nok = 0;
	assert_int_equal(spool_remove(f->s, q, done_cb, 0), 0);
	wait_cbs(f, 1);
	assert_int_equal(nok, 1);
	reopen(f);
	assert_int_equal(spool_lookup(f->s, q, &info), -1);
	assert_int_equal(queued(f), 1);
}

/* A steady stream of bookkeeping and no commit: each job is synced
 * within lazy_sync_ms of the first one waiting, not when the stream
 * stops (the deadline used to restart at every job). */
static void
test_lazy_stream(void **state)
{
	struct fx *f = *state;
	char q[SPOOL_QID_MAX];
	int i;

	submit(f, 500, 1, q);
	wait_cbs(f, 1);
	ncb = nok = 0;
	/* A job every 2 ms for 400 ms; lazy_sync_ms is 20. */
	for (i = 0; i < 200; i++) {
		assert_int_equal(spool_set_state(f->s, q, SPOOL_DEFERRED,
		                     1800000000 + i, done_cb, 0),
		    0);
		usleep(2000);
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	}
	/* Most were acknowledged while the stream ran (a deadline
	 * restarted by every job acknowledges none before it ends). */
	assert_true(ncb >= 100);
	wait_cbs(f, 200);
	assert_int_equal(nok, 200);
}

static void
test_ids_unique(void **state)
{
	struct fx *f = *state;
	char q1[SPOOL_QID_MAX], q2[SPOOL_QID_MAX];

	submit(f, 10, 1, q1);
	wait_cbs(f, 1);
	reopen(f);
	submit(f, 10, 2, q2);
	wait_cbs(f, 2);
	assert_true(strcmp(q2, q1) > 0);
	reopen(f);
	assert_int_equal(queued(f), 2);
}

static void
test_dump(void **state)
{
	struct fx *f = *state;
	char q[SPOOL_QID_MAX], *out = NULL;
	size_t outlen = 0;
	FILE *fp;

	submit(f, 10, 1, q);
	wait_cbs(f, 1);
	spool_rcpt_done(f->s, q, 0, SPOOL_RCPT_DELIVERED, done_cb, 0);
	wait_cbs(f, 2);
	fp = open_memstream(&out, &outlen);
	assert_int_equal(spool_dump(f->dir, fp), 1);
	fclose(fp);
	assert_non_null(strstr(out, q));
	assert_non_null(strstr(out, "state=active size=10 from=<s@example.com> "
	                            "to=<a@example.net>:delivered,"
	                            "<b@example.net>,<c@example.net>"));
	free(out);
	/* The spool is locked against a second writer. */
	assert_null(spool_open(f->base, f->dir, NULL));
}

/* A note (the node's received event) is written after its message's
 * record and made durable by the sync hooks around the batch's fdatasync
 * before the commit callback says ok: write, begin, end, callback. */
static char note_log[16];

static void
note_log_add(char c)
{
	size_t n = strlen(note_log);

	if (n + 1 < sizeof(note_log))
		note_log[n] = c;
}

static void
note_write(struct spool_note *n)
{
	note_log_add('w');
	free(n);
}

static void
note_drop(struct spool_note *n)
{
	note_log_add('d');
	free(n);
}

static void
note_sync_begin(void *arg)
{
	assert_ptr_equal(arg, note_log);
	note_log_add('b');
}

static void
note_sync_end(void *arg)
{
	assert_ptr_equal(arg, note_log);
	note_log_add('e');
}

static void
note_commit_cb(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	(void)arg;
	note_log_add(ok ? 'c' : 'f');
	commit_cb(NULL, cookie, qid, ok);
}

static void
test_note(void **state)
{
	struct fx *f = *state;
	struct spool_envelope e = env_for("s@example.com");
	struct spool_msg *m;
	struct spool_note *n;

	memset(note_log, 0, sizeof(note_log));
	spool_set_sync_hooks(f->s, note_sync_begin, note_sync_end, note_log);
	assert_non_null(m = spool_msg_new(f->s));
	assert_int_equal(spool_msg_write(m, "hi\r\n", 4), 0);
	assert_non_null(n = calloc(1, sizeof(*n)));
	n->write = note_write;
	n->drop = note_drop;
	spool_msg_commit_note(m, &e, note_commit_cb, NULL, 1, n);
	wait_cbs(f, 1);
	assert_string_equal(note_log, "wbec");
	/* without a note: no write, no sync */
	assert_non_null(m = spool_msg_new(f->s));
	assert_int_equal(spool_msg_write(m, "hi\r\n", 4), 0);
	spool_msg_commit_note(m, &e, note_commit_cb, NULL, 2, NULL);
	wait_cbs(f, 2);
	assert_string_equal(note_log, "wbecc");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32c),
	    cmocka_unit_test(test_crc32c_long),
	    cmocka_unit_test(test_qid),
	    cmocka_unit_test_setup_teardown(
	        test_commit_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_null_sender_empty_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_note, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tmp_cleaned, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spill, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_header, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_rcpt_state_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reclaim, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_compact_remove_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_lazy_bookkeeping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lazy_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ids_unique, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dump, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_listener_hold, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

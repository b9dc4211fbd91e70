/* test_spool_enospc.c - a full disk: commits fail cleanly (the session
 * answers 452 4.3.1), nothing partial survives, and once space returns
 * the spool accepts mail again.  Runs on a 2 MB tmpfs; skipped when
 * mounting is not permitted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "spool.h"

static int ncb, nok, nfail, nenospc;
static struct spool *cur;
static char acked[64][SPOOL_QID_MAX];

static void
commit_cb(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	(void)arg;
	(void)cookie;
	ncb++;
	if (ok && nok < 64)
		snprintf(acked[nok], SPOOL_QID_MAX, "%s", qid);
	if (ok)
		nok++;
	else {
		nfail++;
		nenospc += spool_last_errno(cur) == ENOSPC;
	}
}

static void
rm_cb(uint64_t cookie, const char *qid, bool ok)
{
	(void)cookie;
	(void)qid;
	(void)ok;
	ncb++;
}

static void
wait_cbs(struct event_base *base, int want)
{
	for (int i = 0; i < 100000 && ncb < want; i++)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(ncb, want);
}

/* 0 committed, -1 refused at write time, 1 refused at commit. */
static int
put(struct event_base *base, struct spool *s, size_t n)
{
	static char buf[8192];
	struct spool_msg *m = spool_msg_new(s);
	const char *rcpt[1] = {"r@example.net"};
	struct spool_envelope env = {.sender = "s@example.com",
	    .rcpts = rcpt,
	    .nrcpts = 1,
	    .client = "",
	    .helo = "",
	    .message_id = ""};
	int before = nok, want = ncb + 1;

	cur = s;

	memset(buf, 'z', sizeof(buf));
	for (size_t done = 0; done < n; done += sizeof(buf))
		if (spool_msg_write(m, buf, sizeof(buf)) == -1) {
			assert_int_equal(errno, ENOSPC); /* 452 4.3.1 */
			spool_msg_abort(m);
			return -1;
		}
	spool_msg_commit(m, &env, commit_cb, NULL, 0);
	wait_cbs(base, want);
	return nok > before ? 0 : 1;
}

static void
test_enospc(void **state)
{
	char dir[] = "/tmp/test_spool_enospc.XXXXXX";
	struct spool_opts o = {
	    .segment_size = 256 << 10, .spill_size = 64 << 10};
	struct event_base *base;
	struct spool *s;
	int rv = 0, i, committed, full, refused = 0;
	FILE *fp;
	char *out = NULL;
	size_t outlen = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	if (mount("tmpfs", dir, "tmpfs", 0, "size=2m") == -1) {
		rmdir(dir);
		print_message(
		    "skipped: cannot mount tmpfs (%s)\n", strerror(errno));
		skip();
	}
	base = event_base_new();
	assert_non_null(s = spool_open_opts(base, dir, NULL, &o));
	/* 96 KB messages until the disk says no. */
	for (i = 0; i < 60 && rv == 0; i++)
		rv = put(base, s, 96 << 10);
	full = nok;
	assert_true(rv != 0);
	assert_true(nok >= 10);
	print_message("%d committed before the disk filled\n", nok);
	/* Still full: refused again, never half-stored.  The spare segment
	 * the prep thread made (and preallocated) before the disk filled may
	 * still take what fits in it; then three refusals in a row. */
	for (i = 0, refused = 0; i < 8 && refused < 3; i++) {
		if (put(base, s, 96 << 10) != 0)
			refused++;
		else
			refused = 0;
	}
	assert_int_equal(refused, 3);
	assert_true(nok - full <= 2);
	committed = nok;
	assert_int_equal(nenospc, nfail); /* every refusal says ENOSPC */
	/* Refused commits leave no empty segments behind. */
	{
		char cmd[256];
		snprintf(cmd, sizeof(cmd),
		    "test $(ls %s/queue | grep -c seg) -le %d", dir,
		    committed / 2 + 2);
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(nok, committed);
	spool_close(s);
	/* Recovery on the full disk: exactly the acknowledged ones. */
	assert_non_null(s = spool_open_opts(base, dir, NULL, &o));
	fp = open_memstream(&out, &outlen);
	assert_int_equal(spool_dump(dir, fp), committed);
	fclose(fp);
	for (i = 0; i < committed && i < 64; i++)
		assert_non_null(strstr(out, acked[i]));
	free(out);
	/* Space returns: the delivery engine removes half the queue. */
	ncb = 0;
	for (i = 0; i < committed / 2; i++)
		assert_int_equal(spool_remove(s, acked[i], rm_cb, 0), 0);
	wait_cbs(base, committed / 2);
	/* The emptied segments are unlinked by the prep thread: the space
	 * comes back soon, not at once. */
	for (i = 0, rv = -1; i < 500 && rv != 0; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		ncb = 0;
		nok = 0;
		if ((rv = put(base, s, 96 << 10)) != 0)
			usleep(20000);
	}
	assert_int_equal(rv, 0);
	spool_close(s);
	assert_non_null(s = spool_open_opts(base, dir, NULL, &o));
	fp = open_memstream(&out, &outlen);
	assert_int_equal(spool_dump(dir, fp), committed - committed / 2 + 1);
	fclose(fp);
	free(out);
	spool_close(s);
	event_base_free(base);
	umount(dir);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_enospc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

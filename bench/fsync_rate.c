/* fsync_rate.c - how many durable writes per second this machine's
 * filesystem gives, the number the spool design is built around.
 *
 *   fsync_rate [dir] [seconds]
 *
 * Modes, each single-threaded for `seconds` (default 3):
 *   create   open(O_CREAT) + write 1 KB + fsync + close per message
 *   append   write 1 KB + fsync at the end of one file (the issue's
 *            "plain write+fsync loop")
 *   append-fdatasync  same with fdatasync
 *   prealloc write 1 KB + fdatasync into a fallocate()d file (the spool)
 *   overwrite pwrite 1 KB at offset 0 + fdatasync (no metadata change)
 * Then prealloc with 16 threads (group commit's best case without batching).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dir = ".";
static double seconds = 3;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static double
run_create(void)
{
	char path[4096], buf[1024];
	double t0 = now();
	long n = 0;

	memset(buf, 'x', sizeof(buf));
	while (now() - t0 < seconds) {
		snprintf(path, sizeof(path), "%s/fsync_rate.%ld", dir, n);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd == -1)
			die("open");
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    fsync(fd) == -1)
			die("write/fsync");
		close(fd);
		n++;
	}
	double rate = n / (now() - t0);
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/fsync_rate.%ld", dir, i);
		unlink(path);
	}
	return rate;
}

enum mode { APPEND, APPEND_DATASYNC, PREALLOC, OVERWRITE };

struct arg {
	enum mode mode;
	int fd;
	long n;
	off_t base;
};

static void *
run_one(void *p)
{
	struct arg *a = p;
	char buf[1024];
	double t0 = now();
	off_t off = a->base;

	memset(buf, 'x', sizeof(buf));
	while (now() - t0 < seconds) {
		if (a->mode == OVERWRITE)
			off = a->base;
		if (pwrite(a->fd, buf, sizeof(buf), off) !=
		    (ssize_t)sizeof(buf))
			die("pwrite");
		off += sizeof(buf);
		if ((a->mode == APPEND ? fsync(a->fd) : fdatasync(a->fd)) == -1)
			die("fsync");
		a->n++;
	}
	return NULL;
}

static double
run(enum mode mode, int nthreads)
{
	char path[4096];
	pthread_t th[64];
	struct arg a[64];
	long total = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/fsync_rate.dat", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1)
		die("open");
	if (mode == PREALLOC && posix_fallocate(fd, 0, 256 << 20) != 0)
		die("fallocate");
	if (mode == OVERWRITE) {
		char z[4096] = {0};
		for (int i = 0; i < nthreads; i++)
			if (pwrite(fd, z, sizeof(z), (off_t)i * (64 << 20)) !=
			    (ssize_t)sizeof(z))
				die("pwrite");
		fsync(fd);
	}
	double t0 = now();
	for (int i = 0; i < nthreads; i++) {
		a[i] = (struct arg){mode, fd, 0, (off_t)i * (8 << 20)};
		if (mode == APPEND || mode == APPEND_DATASYNC)
			a[i].base = 0; /* appends: one writer per file only */
		pthread_create(&th[i], NULL, run_one, &a[i]);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		total += a[i].n;
	}
	double rate = total / (now() - t0);
	close(fd);
	unlink(path);
	return rate;
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		dir = argv[1];
	if (argc > 2)
		seconds = atof(argv[2]);
	printf("dir=%s seconds=%.1f (1 KB writes)\n", dir, seconds);
	printf("create+fsync          %8.0f /s\n", run_create());
	printf("append+fsync          %8.0f /s\n", run(APPEND, 1));
	printf("append+fdatasync      %8.0f /s\n", run(APPEND_DATASYNC, 1));
	printf("prealloc+fdatasync    %8.0f /s\n", run(PREALLOC, 1));
	printf("overwrite+fdatasync   %8.0f /s\n", run(OVERWRITE, 1));
	printf("prealloc x16 threads  %8.0f /s\n", run(PREALLOC, 16));
	return 0;
}

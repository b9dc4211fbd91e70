/* log.c - the logging sink shared by all programs.  Lines go to stderr with
 * a UTC timestamp and the program name, written with one write(2) so lines
 * from different threads never interleave. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "sluice";
static bool log_debug_on;
static pid_t log_pid; /* no program forks after log_init */

void
log_init(const char *progname, bool debug)
{
	log_prog = progname;
	log_debug_on = debug || getenv("SLUICE_DEBUG") != NULL;
	log_pid = getpid();
}

/* "YYYY-MM-DDTHH:MM:SS" of sec, made once per second and thread (a
 * relay logs a few lines per message: gmtime_r and strftime each time
 * were most of a line's cost). */
static size_t
log_stamp(time_t sec, char *buf, size_t len)
{
	static __thread time_t last = -1;
	static __thread char stamp[32];
	static __thread size_t stamp_len;
	struct tm tm;

	if (sec != last) {
		gmtime_r(&sec, &tm);
		stamp_len =
		    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		last = sec;
	}
	if (stamp_len >= len)
		return 0;
	memcpy(buf, stamp, stamp_len);
	return stamp_len;
}

static void
log_vemit(const char *level, const char *fmt, va_list ap, int err)
{
	char line[2048];
	struct timeval tv;
	size_t n;
	int w;

	gettimeofday(&tv, NULL);
	n = log_stamp(tv.tv_sec, line, sizeof(line));
	w = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%d] %s",
	    (long)(tv.tv_usec / 1000), log_prog,
	    (int)(log_pid != 0 ? log_pid : getpid()), level);
	if (w > 0)
		n += (size_t)w < sizeof(line) - n ? (size_t)w
		                                  : sizeof(line) - n - 1;
	w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (w > 0)
		n += (size_t)w < sizeof(line) - n ? (size_t)w
		                                  : sizeof(line) - n - 1;
	if (err != 0 && n < sizeof(line) - 1) {
		w = snprintf(line + n, sizeof(line) - n, ": %s", strerror(err));
		if (w > 0)
			n += (size_t)w < sizeof(line) - n
			         ? (size_t)w
			         : sizeof(line) - n - 1;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit("", fmt, ap, 0);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit("warning: ", fmt, ap, 0);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	log_vemit("warning: ", fmt, ap, err);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_vemit("debug: ", fmt, ap, 0);
	va_end(ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit("fatal: ", fmt, ap, 0);
	va_end(ap);
	abort();
}

/* sched_slice.c - asks the kernel for a short CPU slice for the threads a
 * client's 250 waits on: the node's loop, the spool's flush worker and
 * the event journal's syncer.
 *
 * Linux schedules ordinary threads with EEVDF since 6.6; since 6.12 a
 * thread may ask for a slice shorter than the default (sched_setattr's
 * sched_runtime under SCHED_OTHER), and a thread waking with a shorter
 * slice preempts the one running instead of waiting out its slice.  A
 * commit's path wakes three threads one after the other; on a machine
 * whose cores are busy (PostgreSQL, the load, the sink beside the node)
 * each wake-up could wait a slice of somebody else's (docs/spool.md, "The
 * tail is CPU wake-ups more than the disk").  Kernels before 6.12 ignore
 * the request.  No privilege is needed: a shorter slice is not a larger
 * share of the CPU, only a smaller quantum of it. */
#include "sched_slice.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* struct sched_attr as of Linux 3.14 (SCHED_ATTR_SIZE_VER0, 48 octets):
 * glibc 2.36 has no wrapper. */
struct slice_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

static _Atomic unsigned slice_us;

void
sched_slice_configure(unsigned us)
{
	atomic_store(&slice_us, us);
}

int
sched_slice_apply(void)
{
	struct slice_attr a;
	unsigned us = atomic_load(&slice_us);
	int nice;

	if (us == 0 || sched_getscheduler(0) != SCHED_OTHER)
		return 0;
	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0); /* this thread's, on Linux */
	if (nice == -1 && errno != 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.sched_policy = SCHED_OTHER;
	a.sched_nice = nice;
	a.sched_runtime = (uint64_t)us * 1000;
	return syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 0 : -1;
}

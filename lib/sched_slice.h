/* sched_slice.h - a short CPU slice for the threads a client's 250 waits
 * on (sched_slice.c). */
#ifndef SLUICE_SCHED_SLICE_H
#define SLUICE_SCHED_SLICE_H

/* Process-wide, before the threads start: the slice to ask for, in
 * microseconds (100..100000); 0 leaves the kernel's default. */
void sched_slice_configure(unsigned us);

/* Asks it for the calling thread.  0 when done or nothing to do (none
 * configured, or the thread is not SCHED_OTHER: an operator's own policy
 * stays), -1 with errno when the kernel refused. */
int sched_slice_apply(void);

#endif

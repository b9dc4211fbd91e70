/* test_rpc_pick.c - which controller a node's request goes to next
 * (lib/rpc.c, rpc_pick): a table of endpoint states and the choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rpc.h"

#define C                                                                      \
	{                                                                      \
		true, false, false                                             \
	} /* connected, healthy, idle */
#define S                                                                      \
	{                                                                      \
		true, true, false                                              \
	} /* connected, suspect (lost a race) */
#define B                                                                      \
	{                                                                      \
		true, false, true                                              \
	} /* connected, an earlier request out */
#define SB                                                                     \
	{                                                                      \
		true, true, true                                               \
	} /* hung: suspect with its probe out */
#define D                                                                      \
	{                                                                      \
		false, false, false                                            \
	} /* no connection (dead controller) */

struct pick_case {
	const char *what;
	struct rpc_ep_state st[3];
	size_t n, preferred;
	unsigned tried;
	int want;
};

static const struct pick_case cases[] = {
    {"the preferred one when healthy", {C, C}, 2, 0, 0, 0},
    {"the one that answered last", {C, C}, 2, 1, 0, 1},
    {"a dead controller is skipped at once", {D, C}, 2, 0, 0, 1},
    {"a hung one is skipped until it answers", {SB, C}, 2, 0, 0, 1},
    {"suspect but idle: still after healthy", {S, C}, 2, 0, 0, 1},
    {"busy with an old request: after healthy", {B, C}, 2, 0, 0, 1},
    {"the race goes to the next one", {C, C}, 2, 0, 1u << 0, 1},
    {"all hung: a connected one anyway", {SB, SB}, 2, 1, 0, 1},
    {"connected suspect before dead", {D, S}, 2, 0, 0, 1},
    {"nothing connected: the preferred first", {D, D}, 2, 1, 0, 1},
    {"nothing connected: then the others", {D, D}, 2, 1, 1u << 1, 0},
    {"everything tried", {C, C}, 2, 0, 3, -1},
    {"wraps around from the preferred", {C, D, C}, 3, 2, 1u << 2, 0},
    {"one endpoint (sluicectl)", {SB}, 1, 0, 0, 0},
};

static void
test_pick_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pick_case *t = &cases[i];
		int got = rpc_pick(t->st, t->n, t->preferred, t->tried);

		if (got != t->want)
			fail_msg("%s: got %d, want %d", t->what, got, t->want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pick_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* controller_node.c - fuzz target: controller/api_node.c (NodeRequest);
 * see controller_api.inc. */
#define FUZZ_ADMIN 0
#include "controller_api.inc"

/* controller_admin.c - fuzz target: controller/api_admin.c
 * (AdminRequest); see controller_api.inc. */
#define FUZZ_ADMIN 1
#include "controller_api.inc"

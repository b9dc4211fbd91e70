/* proto.h - include this, not control.pb-c.h: protobuf-c 1.4's generated
 * enums use INT_MAX without including <limits.h>. */
#ifndef SLUICE_PROTO_H
#define SLUICE_PROTO_H

#include <limits.h>

#include "control.pb-c.h"
#include "shadow.pb-c.h"

#endif

/* routes/table.h — the route table, in one place (routes/table.c). */
#ifndef SPRINGFIELD_ROUTES_TABLE_H
#define SPRINGFIELD_ROUTES_TABLE_H

#include <stddef.h>

#include "routes/router.h"

const struct route *route_table(size_t *n);

#endif

/* routes/table.h — the route table, in one place (routes/table.c). */
#ifndef SPRINGFIELD_ROUTES_TABLE_H
#define SPRINGFIELD_ROUTES_TABLE_H

#include <stddef.h>

#include "routes/router.h"

/* The rows and how many there are (table.c). */
extern const struct route route_rows[];
extern const size_t route_count;

/* The table, and in *n its length: inline, the dispatcher reads it for
 * every request. */
static inline const struct route *route_table(size_t *n)
{
    *n = route_count;
    return route_rows;
}

#endif

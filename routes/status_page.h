/* routes/status_page.h — the page of --status-path (routes/status_page.c). */
#ifndef SPRINGFIELD_ROUTES_STATUS_PAGE_H
#define SPRINGFIELD_ROUTES_STATUS_PAGE_H

#include "fcgi/request.h"

/* GET (or HEAD) of the status path: the pool's figures, in the format the
 * query string or Accept asks for. */
void status_page_get(struct fcgi_request *r);

#endif

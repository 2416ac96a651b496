/* The command-line side of the admin API: `surety status` and friends ask
 * the running instance over its admin listener. Blocking, for the CLI only. */
#ifndef SURETY_ADMIN_CLI_H
#define SURETY_ADMIN_CLI_H

#include <stdio.h>

#include "core/sock.h"

/* Sends METHOD PATH to the admin listener at addr and copies the response
 * body to out (NULL: discarded). Returns the HTTP status, or -errno when it could not talk to
 * it (connection refused: nothing runs there). Timeout: 5 s. */
int admin_cli_request(const sock_addr_t *addr, const char *method, const char *path, FILE *out);

#endif

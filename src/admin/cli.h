/* The command-line side of the admin API: `surety status` and friends ask
 * the running instance over its admin listener. Blocking, for the CLI only. */
#ifndef SURETY_ADMIN_CLI_H
#define SURETY_ADMIN_CLI_H

#include <stdio.h>

#include "conf/conf.h"

/* Sends METHOD PATH to conf's admin listener (through TLS with admin.tls)
 * and copies the response body to out (NULL: discarded). Returns the HTTP
 * status, or -errno when it could not talk to it (connection refused:
 * nothing runs there; -EPROTO: the TLS handshake failed, said on stderr).
 * Timeout: 5 s per read or write. */
int admin_cli_request(const conf_t *conf, const char *method, const char *path, FILE *out);

#endif

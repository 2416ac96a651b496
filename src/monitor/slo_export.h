/* `surety slo export --prometheus`: Prometheus recording and alerting
 * rules equivalent to Surety's own evaluation of the objectives of a
 * configuration (slo_export.c says which metrics and rules). */
#ifndef SURETY_MONITOR_SLO_EXPORT_H
#define SURETY_MONITOR_SLO_EXPORT_H

#include <stdio.h>

#include "conf/conf.h"

/* Writes a Prometheus rules file (YAML, for `rule_files:`) for the
 * objectives of conf to out: a rule group per objective on a listener or a
 * route, a comment for each objective on a monitor (not exportable).
 * conf is a loaded, valid generation and is only read. Any thread.
 * Returns 0, or -EIO when writing to out failed. */
int slo_export_prometheus(const conf_t *conf, FILE *out);

#endif

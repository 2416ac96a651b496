/* A stand-in for `surety slo export --prometheus -c FILE` until the
 * subcommand exists (src/main.c is the lead's): loads FILE and writes the
 * Prometheus rules of its objectives to standard output. Built only with
 * tests on; tests/integration/test_slo_export.py runs it through promtool.
 *   slo_export_tool FILE     exit 0; 1 on a bad file (errors on stderr) */
#include <stdio.h>

#include "conf/conf.h"
#include "monitor/slo_export.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    conf_t *c = conf_load(argv[1], stderr);
    if (!c)
        return 1;
    int r = slo_export_prometheus(c, stdout);
    conf_unref(c);
    if (r < 0) {
        perror("slo_export_tool: writing the rules");
        return 1;
    }
    return 0;
}

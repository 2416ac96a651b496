/* A tiny program that prints the configuration reference (docs/
 * configuration.md) from the key table, for scripts/gen-config-doc.sh. It
 * links only core and conf, so the docs can be regenerated while the rest
 * of the tree does not build; `surety config-doc` does the same. */
#include <stdio.h>

#include "conf/conf.h"

int main(void)
{
    conf_doc_write(stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}

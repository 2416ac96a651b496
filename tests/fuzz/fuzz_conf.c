/* libFuzzer target for the configuration loader: any bytes go through the
 * whole of conf_load_string (libfyaml events, the tree, the key walk, the
 * checks across keys, the diagnostics). Properties beyond "no crash, no
 * leak, no undefined behaviour": a load either returns a conf_t and writes
 * nothing, or returns NULL and writes at least one message; every message
 * line starts with the file name; loading the same bytes twice gives the
 * same messages. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

/* libfyaml 0.7.12 (Debian 12) leaks the grown chunk array of an atom
 * iterator when it reads a single-quoted scalar with five or more ''
 * escapes in a row ( is enough): 1 KiB per such scalar per
 * load, inside the library. Only leaks whose stack is in libfyaml are
 * suppressed, so the fuzzer keeps finding ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfyaml.so\n";
}

static char *load(const uint8_t *data, size_t size, conf_t **ret)
{
    char *text = NULL;
    size_t len = 0;
    FILE *errs = open_memstream(&text, &len);
    if (!errs)
        abort();
    *ret = conf_load_string("fuzz.yaml", (const char *)data, size, errs);
    fclose(errs);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    conf_t *c, *c2;
    char *errs = load(data, size, &c);

    if (c) {
        if (errs[0] != 0)
            abort(); /* success writes nothing */
        conf_t *r = conf_ref(c);
        if (r != c || c->nlisteners == 0)
            abort();
        conf_unref(r);
        conf_unref(c);
    } else {
        if (errs[0] == 0)
            abort(); /* a failure always says why */
        for (char *line = errs; *line; line = strchr(line, '\n') + 1) {
            if (strncmp(line, "fuzz.yaml:", 10) != 0 || !strchr(line, '\n'))
                abort();
        }
    }
    char *again = load(data, size, &c2);
    if (strcmp(errs, again) != 0 || (c2 != NULL) != (c != NULL))
        abort();
    conf_unref(c2);
    free(again);
    free(errs);
    return 0;
}

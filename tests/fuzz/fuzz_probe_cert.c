/* libFuzzer target: probe_cert_time_parse, which reads the "Expire date"
 * text libcurl reports from a monitored server's certificate (bytes the
 * server chose). It must never read past the NUL nor accept garbage. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int64_t t = 0;
    if (probe_cert_time_parse(text, &t) == 0 && (t < -62135596800LL || t > 253402300799LL))
        abort(); /* a date outside years 1..9999 */
    free(text);
    return 0;
}

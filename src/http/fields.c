/* Tables and field helpers of the HTTP module: reject reasons (names and
 * status codes generated from HTTP_REJECT_LIST, so they cannot drift from
 * the enum), standard reason phrases, the hop-by-hop field test a proxy
 * needs when it forwards a head, and field lookup. Everything here is
 * read-only data or pure functions over caller memory. */
#include <assert.h>

#include "http/http.h"

static const char *const reject_names[HTTP_REJECT_COUNT] = {
#define HTTP_REJECT_NAME(id, name, status) [HTTP_REJECT_##id] = name,
    HTTP_REJECT_LIST(HTTP_REJECT_NAME)
#undef HTTP_REJECT_NAME
};

static const short reject_status[HTTP_REJECT_COUNT] = {
#define HTTP_REJECT_STATUS(id, name, status) [HTTP_REJECT_##id] = status,
    HTTP_REJECT_LIST(HTTP_REJECT_STATUS)
#undef HTTP_REJECT_STATUS
};

const char *http_reject_name(http_reject_t r)
{
    if ((unsigned)r >= HTTP_REJECT_COUNT)
        return "unknown";
    return reject_names[r];
}

int http_reject_status(http_reject_t r)
{
    /* An out-of-range reason is a caller bug; 400 is the safe answer. */
    if ((unsigned)r >= HTTP_REJECT_COUNT)
        return 400;
    return reject_status[r];
}

/* Indexed by code: one load, no search (4.8 KB of read-only pointers). */
static const char *const status_text[600] = {
    [100] = "Continue",
    [101] = "Switching Protocols",
    [103] = "Early Hints",
    [200] = "OK",
    [201] = "Created",
    [202] = "Accepted",
    [203] = "Non-Authoritative Information",
    [204] = "No Content",
    [205] = "Reset Content",
    [206] = "Partial Content",
    [300] = "Multiple Choices",
    [301] = "Moved Permanently",
    [302] = "Found",
    [303] = "See Other",
    [304] = "Not Modified",
    [305] = "Use Proxy",
    [307] = "Temporary Redirect",
    [308] = "Permanent Redirect",
    [400] = "Bad Request",
    [401] = "Unauthorized",
    [402] = "Payment Required",
    [403] = "Forbidden",
    [404] = "Not Found",
    [405] = "Method Not Allowed",
    [406] = "Not Acceptable",
    [407] = "Proxy Authentication Required",
    [408] = "Request Timeout",
    [409] = "Conflict",
    [410] = "Gone",
    [411] = "Length Required",
    [412] = "Precondition Failed",
    [413] = "Content Too Large",
    [414] = "URI Too Long",
    [415] = "Unsupported Media Type",
    [416] = "Range Not Satisfiable",
    [417] = "Expectation Failed",
    [421] = "Misdirected Request",
    [422] = "Unprocessable Content",
    [425] = "Too Early",
    [426] = "Upgrade Required",
    [428] = "Precondition Required",
    [429] = "Too Many Requests",
    [431] = "Request Header Fields Too Large",
    [451] = "Unavailable For Legal Reasons",
    [500] = "Internal Server Error",
    [501] = "Not Implemented",
    [502] = "Bad Gateway",
    [503] = "Service Unavailable",
    [504] = "Gateway Timeout",
    [505] = "HTTP Version Not Supported",
    [511] = "Network Authentication Required",
};

const char *http_status_text(int status)
{
    if (status < 0 || status >= 600 || !status_text[status])
        return "Unknown";
    return status_text[status];
}

/* RFC 9110 7.6.1 names plus the historical ones (RFC 2616 13.5.1) that old
 * peers still treat as per-connection. Dispatching on the length keeps this
 * to one or two comparisons per forwarded field. */
static bool is_standard_hop_by_hop(str_t n)
{
    switch (n.len) {
    case 2:
        return str_case_eq(n, STR_LIT("TE"));
    case 7:
        return str_case_eq(n, STR_LIT("Trailer")) || str_case_eq(n, STR_LIT("Upgrade"));
    case 10:
        return str_case_eq(n, STR_LIT("Connection")) || str_case_eq(n, STR_LIT("Keep-Alive"));
    case 16:
        return str_case_eq(n, STR_LIT("Proxy-Connection"));
    case 17:
        return str_case_eq(n, STR_LIT("Transfer-Encoding"));
    case 18:
        return str_case_eq(n, STR_LIT("Proxy-Authenticate"));
    case 19:
        return str_case_eq(n, STR_LIT("Proxy-Authorization"));
    default:
        return false;
    }
}

bool http_field_is_hop_by_hop(str_t name, str_t connection)
{
    if (is_standard_hop_by_hop(name))
        return true;
    str_t rest = connection;
    while (rest.len) {
        str_t el = str_next_token(&rest, ',');
        if (el.len && str_case_eq(el, name))
            return true;
    }
    return false;
}

const http_field_t *http_field_find(const http_field_t *fields, size_t n, str_t name)
{
    for (size_t i = 0; i < n; i++)
        if (str_case_eq(fields[i].name, name))
            return &fields[i];
    return NULL;
}

/* Applies the key table to the YAML tree: finds each key in the table,
 * checks the value's type and range, stores it in the conf_t, fills in
 * defaults (parsed from the table's text, so they cannot drift from the
 * docs) and reports everything that does not fit, without stopping: an
 * unknown key or a bad value is reported and skipped, and the walk goes on
 * so one run shows every mistake. Names that point elsewhere (a route's
 * pool) are only recorded here; check.c resolves them once everything is
 * known, and runs the per-object finish hooks the walk queued. */
#include "conf/conf_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most keys at one level of the table; asserted when walking. */
#define MAX_KEYS 32
#define PATH_MAX_LEN 512

/* One step of the path from the top of the file to a value. */
typedef struct frame {
    const struct frame *up;
    const char *seg; /* a key, or an element's name; NULL at the top */
    bool is_index;   /* a list item: "[i]" */
    size_t i;
    const char *noun;  /* elements: "listener", "route" */
    const char *label; /* elements: "'web'" or "0" */
} frame_t;

typedef struct {
    char *p;
    size_t n, len;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    if (b->len + 1 >= b->n)
        return;
    va_start(ap, fmt);
    int r = vsnprintf(b->p + b->len, b->n - b->len, fmt, ap);
    va_end(ap);
    if (r > 0)
        b->len = b->len + (size_t)r < b->n ? b->len + (size_t)r : b->n - 1;
}

static void path_put(sbuf_t *b, const frame_t *f)
{
    if (!f)
        return;
    path_put(b, f->up);
    if (f->is_index)
        sb_printf(b, "[%zu]", f->i);
    else if (f->seg)
        sb_printf(b, "%s%s", b->len ? "." : "", f->seg);
}

/* "listeners.web.timeouts" + ".header"; key may be NULL. */
static void path_of(const frame_t *f, const char *key, char *out, size_t n)
{
    sbuf_t b = {out, n, 0};
    out[0] = 0;
    path_put(&b, f);
    if (key)
        sb_printf(&b, "%s%s", b.len ? "." : "", key);
}

/* "route 0 of listener 'web'": the elements around a value, innermost
 * first, as the messages about references name them. */
static void owner_of(const frame_t *f, char *out, size_t n)
{
    sbuf_t b = {out, n, 0};
    out[0] = 0;
    for (; f; f = f->up)
        if (f->noun)
            sb_printf(&b, "%s%s %s", b.len ? " of " : "", f->noun, f->label);
}

static void got_of(const conf_node_t *v, char *out, size_t n)
{
    if (v->type == CONF_NODE_MAP)
        snprintf(out, n, "a map");
    else if (v->type == CONF_NODE_SEQ)
        snprintf(out, n, "a list");
    else if (v->null)
        snprintf(out, n, "nothing");
    else
        conf_quote(out, n, v->text, v->len);
}

/* "a duration like 2s or 250ms", "'auto' or an integer", "one of a, b". */
static void expect_of(const conf_key_t *k, char *out, size_t n)
{
    sbuf_t b = {out, n, 0};
    out[0] = 0;
    if (k->type == CONF_T_ENUM || k->type == CONF_T_FLAGS) {
        sb_printf(&b, "%s", k->type == CONF_T_FLAGS ? "a list, each " : "");
        for (size_t i = 0; k->values[i]; i++)
            sb_printf(&b, "%s %s", i ? "," : "one of", k->values[i]);
        return;
    }
    if (k->type == CONF_T_CUSTOM) {
        sb_printf(&b, "%s", k->expect);
        return;
    }
    if (k->type == CONF_T_INT && (k->flags & CONF_F_AUTO))
        sb_printf(&b, "'auto' or ");
    if (k->type == CONF_T_REF)
        sb_printf(&b, "the name of one of '%s'", k->ref);
    else
        sb_printf(&b, "%s", conf_type_info[k->type].expect);
    if (k->type == CONF_T_ADDRESS && (k->flags & CONF_F_OFF))
        sb_printf(&b, " or off");
}

static conf_mark_t mark_of(const conf_node_t *v)
{
    return v ? v->mark : (conf_mark_t){0, 0};
}

static void type_error(conf_ctx_t *ctx, const char *path, const char *expect, const conf_node_t *v)
{
    char got[CONF_QUOTE_MAX];
    got_of(v, got, sizeof(got));
    conf_ctx_error(ctx, v->mark, "%s: expected %s, got %s", path, expect, got);
}

static void key_type_error(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                           const conf_node_t *v)
{
    char expect[256];
    if (!v) {
        /* Only a default can come without a node; test_conf proves them. */
        conf_ctx_error(ctx, mark_of(v), "%s: the built-in default is invalid", path);
        return;
    }
    expect_of(k, expect, sizeof(expect));
    type_error(ctx, path, expect, v);
}

static void range_error(conf_ctx_t *ctx, const char *path, const conf_key_t *k, conf_mark_t m,
                        const char *text, size_t len)
{
    char got[CONF_QUOTE_MAX];
    conf_quote(got, sizeof(got), text, len);
    if (k->min && k->max)
        conf_ctx_error(ctx, m, "%s: must be between %s and %s, got %s", path, k->min, k->max, got);
    else if (k->min)
        conf_ctx_error(ctx, m, "%s: must be at least %s, got %s", path, k->min, got);
    else if (k->max)
        conf_ctx_error(ctx, m, "%s: must be at most %s, got %s", path, k->max, got);
    else
        conf_ctx_error(ctx, m, "%s: %s is too large", path, got);
}

static void store_uint(void *field, size_t size, uint64_t v)
{
    uint8_t u8 = (uint8_t)v;
    uint16_t u16 = (uint16_t)v;
    uint32_t u32 = (uint32_t)v;
    switch (size) {
    case 1:
        memcpy(field, &u8, 1);
        break;
    case 2:
        memcpy(field, &u16, 2);
        break;
    case 4:
        memcpy(field, &u32, 4);
        break;
    default:
        assert(size == 8);
        memcpy(field, &v, 8);
        break;
    }
}

/* Parses a number-like value of k's type into an ordered 64-bit key, so
 * one range check serves durations, sizes, integers and percentages. */
static int number_parse(const conf_key_t *k, const char *s, size_t len, int64_t *ret_signed,
                        uint64_t *ret)
{
    uint32_t ppm;
    int r;
    *ret_signed = 0;
    switch (k->type) {
    case CONF_T_INT:
        r = conf_int_parse(s, len, ret_signed);
        *ret = (uint64_t)*ret_signed;
        return r;
    case CONF_T_DURATION:
        return conf_duration_parse(s, len, ret);
    case CONF_T_SIZE:
        return conf_size_parse(s, len, ret);
    case CONF_T_PERCENT:
        r = conf_percent_parse(s, len, &ppm);
        *ret = ppm;
        return r;
    default:
        return -EINVAL;
    }
}

static bool below(const conf_key_t *k, int64_t as, uint64_t a, int64_t bs, uint64_t b)
{
    return k->type == CONF_T_INT ? as < bs : a < b;
}

static void apply_number(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                         const conf_node_t *v, const char *s, size_t len, void *field)
{
    int64_t vs, lim_s;
    uint64_t val, lim;
    conf_mark_t m = v ? v->mark : (conf_mark_t){0, 0};

    if (k->type == CONF_T_INT && (k->flags & CONF_F_AUTO) && len == 4 && !memcmp(s, "auto", 4)) {
        store_uint(field, k->size, 0);
        return;
    }
    int r = number_parse(k, s, len, &vs, &val);
    if (r == -ERANGE) {
        range_error(ctx, path, k, m, s, len);
        return;
    }
    if (r < 0) {
        key_type_error(ctx, path, k, v);
        return;
    }
    /* The limits are text in the table, parsed like the value. */
    if (k->min && number_parse(k, k->min, strlen(k->min), &lim_s, &lim) == 0 &&
        below(k, vs, val, lim_s, lim)) {
        range_error(ctx, path, k, m, s, len);
        return;
    }
    if (k->max && number_parse(k, k->max, strlen(k->max), &lim_s, &lim) == 0 &&
        below(k, lim_s, lim, vs, val)) {
        range_error(ctx, path, k, m, s, len);
        return;
    }
    store_uint(field, k->size, val);
}

static void apply_rate(conf_ctx_t *ctx, const char *path, const conf_key_t *k, const conf_node_t *v,
                       const char *s, size_t len, void *field)
{
    conf_rate_t rate, lim;
    int r = conf_rate_parse(s, len, &rate);
    if (r == -ERANGE) {
        range_error(ctx, path, k, mark_of(v), s, len);
        return;
    }
    if (r < 0) {
        key_type_error(ctx, path, k, v);
        return;
    }
    /* a/b < c/d without division: a*d < c*b, in 128 bits. */
#define RATE_LT(x, y)                                                                              \
    ((unsigned __int128)(x).count * (y).per_ms < (unsigned __int128)(y).count * (x).per_ms)
    if ((k->min && conf_rate_parse(k->min, strlen(k->min), &lim) == 0 && RATE_LT(rate, lim)) ||
        (k->max && conf_rate_parse(k->max, strlen(k->max), &lim) == 0 && RATE_LT(lim, rate))) {
        range_error(ctx, path, k, mark_of(v), s, len);
        return;
    }
#undef RATE_LT
    assert(k->size == sizeof(rate));
    memcpy(field, &rate, sizeof(rate));
}

static void apply_enum(conf_ctx_t *ctx, const char *path, const conf_key_t *k, const conf_node_t *v,
                       const char *s, size_t len, void *field)
{
    char q[CONF_QUOTE_MAX], expect[256];
    size_t n = 0;

    for (; k->values[n]; n++) {
        if (strlen(k->values[n]) == len && memcmp(k->values[n], s, len) == 0) {
            store_uint(field, k->size, n + k->enum_base);
            return;
        }
    }
    for (size_t i = 0; k->later && k->later[i]; i++) {
        if (strlen(k->later[i]) == len && memcmp(k->later[i], s, len) == 0) {
            conf_ctx_error(ctx, mark_of(v), "%s: '%s' is not supported yet in this version", path,
                           k->later[i]);
            return;
        }
    }
    const char *guess = conf_suggest(s, len, k->values, n);
    conf_quote(q, sizeof(q), s, len);
    expect_of(k, expect, sizeof(expect));
    if (guess)
        conf_ctx_error(ctx, mark_of(v), "%s: expected %s, got %s; did you mean '%s'?", path, expect,
                       q, guess);
    else
        conf_ctx_error(ctx, mark_of(v), "%s: expected %s, got %s", path, expect, q);
}

static bool has_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

/* Strings (and the text of addresses and names): never empty, never a
 * control byte (a NUL would cut the C string short). */
static char *string_value(conf_ctx_t *ctx, const char *path, const conf_node_t *v, const char *s,
                          size_t len)
{
    char q[CONF_QUOTE_MAX];
    if (len == 0) {
        conf_ctx_error(ctx, mark_of(v), "%s: must not be empty", path);
        return NULL;
    }
    if (has_control(s, len)) {
        conf_quote(q, sizeof(q), s, len);
        conf_ctx_error(ctx, mark_of(v), "%s: control characters are not allowed, got %s", path, q);
        return NULL;
    }
    char *copy = conf_arena_strndup(ctx->arena, s, len);
    if (!copy)
        conf_ctx_nomem(ctx);
    return copy;
}

static void apply_address(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                          const conf_node_t *v, const char *s, size_t len, void *obj)
{
    char **text = (char **)((char *)obj + k->off);
    sock_addr_t *addr = (sock_addr_t *)((char *)obj + k->off2);
    sock_addr_t a;
    char q[CONF_QUOTE_MAX];

    if ((k->flags & CONF_F_OFF) && len == 3 && memcmp(s, "off", 3) == 0) {
        *text = NULL;
        memset(addr, 0, sizeof(*addr));
        return;
    }
    if (sock_addr_parse(s, len, &a) < 0 || has_control(s, len)) {
        const char *colon = memrchr(s, ':', len);
        bool named = false;
        for (const char *c = s; colon && c < colon; c++)
            named |= (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z');
        conf_quote(q, sizeof(q), s, len);
        if (named && s[0] != '[')
            conf_ctx_error(ctx, mark_of(v),
                           "%s: expected a numeric address like 127.0.0.1:8080 (host names are "
                           "not resolved), got %s",
                           path, q);
        else
            key_type_error(ctx, path, k, v);
        return;
    }
    if (sock_addr_port(&a) == 0) {
        conf_quote(q, sizeof(q), s, len);
        conf_ctx_error(ctx, mark_of(v), "%s: port 0 is not allowed, got %s", path, q);
        return;
    }
    if (!(*text = string_value(ctx, path, v, s, len)))
        return;
    *addr = a;
    if (v)
        conf_ctx_mark(ctx, addr, false, v->mark);
}

static void apply_ref(conf_ctx_t *ctx, const frame_t *fr, const char *path, const conf_key_t *k,
                      const conf_node_t *v, const char *s, size_t len, void *field)
{
    char owner[PATH_MAX_LEN];
    char *name = string_value(ctx, path, v, s, len);
    conf_ref_t *ref = conf_arena_alloc(ctx->tmp, sizeof(*ref));

    /* Unresolved until check.c finds the name; SIZE_MAX is "none". */
    assert(k->size == sizeof(size_t));
    *(size_t *)field = SIZE_MAX;
    if (!name)
        return;
    owner_of(fr, owner, sizeof(owner));
    if (!ref || !(ref->owner = conf_arena_strndup(ctx->tmp, owner, strlen(owner)))) {
        conf_ctx_nomem(ctx);
        return;
    }
    ref->target = field;
    ref->name = name;
    ref->key = k;
    ref->mark = v->mark;
    *ctx->refs_tail = ref;
    ctx->refs_tail = &ref->next;
}

/* Stores one scalar. v is the node, or NULL when s is the table's default
 * (which a unit test proves valid, so no message can mention v). */
static void apply_scalar(conf_ctx_t *ctx, const frame_t *fr, const conf_key_t *k,
                         const conf_node_t *keyn, const conf_node_t *v, const char *s, size_t len,
                         void *obj)
{
    char path[PATH_MAX_LEN];
    void *field = (char *)obj + k->off;
    char *str;
    bool b;

    path_of(fr, keyn && keyn->synthetic ? NULL : k->name, path, sizeof(path));
    if (v)
        conf_ctx_mark(ctx, field, false, v->mark);
    switch (k->type) {
    case CONF_T_INT:
    case CONF_T_DURATION:
    case CONF_T_SIZE:
    case CONF_T_PERCENT:
        apply_number(ctx, path, k, v, s, len, field);
        break;
    case CONF_T_RATE:
        apply_rate(ctx, path, k, v, s, len, field);
        break;
    case CONF_T_BOOL:
        if (conf_bool_parse(s, len, &b) < 0)
            key_type_error(ctx, path, k, v);
        else
            memcpy(field, &b, sizeof(b));
        break;
    case CONF_T_ENUM:
        apply_enum(ctx, path, k, v, s, len, field);
        break;
    case CONF_T_STRING:
        if ((k->flags & CONF_F_OFF) && len == 3 && memcmp(s, "off", 3) == 0) {
            *(char **)field = NULL;
            break;
        }
        str = v ? string_value(ctx, path, v, s, len) : conf_arena_strndup(ctx->arena, s, len);
        if (!str && !v)
            conf_ctx_nomem(ctx);
        if (str && k->check && v)
            k->check(ctx, path, str, v->mark);
        *(char **)field = str;
        break;
    case CONF_T_ADDRESS:
        apply_address(ctx, path, k, v, s, len, obj);
        break;
    case CONF_T_REF:
        apply_ref(ctx, fr, path, k, v, s, len, field);
        break;
    case CONF_T_CUSTOM:
        k->parse(ctx, path, k, v, s, len, obj);
        break;
    default:
        assert(!"not a scalar type");
    }
}

static void walk_object(conf_ctx_t *ctx, const frame_t *fr, const conf_key_t *keys,
                        const conf_node_t *map, bool absent, conf_mark_t where, void *obj);

static void queue_finish(conf_ctx_t *ctx, const conf_key_t *k, const frame_t *fr, void *obj,
                         conf_mark_t where);

/* v is NULL when the map is left out: its keys take their defaults, and
 * its required keys are not missing (health: { type: http } requires a
 * type; no health at all is fine). A map that is written is marked, so
 * rules across keys can tell `failover: {}` from no failover. */
static void walk_map_key(conf_ctx_t *ctx, const frame_t *fr, const conf_key_t *k,
                         const conf_node_t *v, conf_mark_t where, void *obj)
{
    frame_t mf = {.up = fr, .seg = k->name};
    if (v)
        conf_ctx_mark(ctx, (char *)obj + k->off, CONF_MARK_MAP, where);
    walk_object(ctx, &mf, k->sub, v, !v, where, obj);
}

/* "one of a, b, c": the values of an ENUM or FLAGS key. */
static void one_of(const conf_key_t *k, char *out, size_t n)
{
    sbuf_t b = {out, n, 0};
    out[0] = 0;
    sb_printf(&b, "one of");
    for (size_t i = 0; k->values[i]; i++)
        sb_printf(&b, "%s %s", i ? "," : "", k->values[i]);
}

/* Adds one FLAGS value s[0..len) to *bits, reporting it at v's mark (v
 * NULL: the table's default) when it is not one of k->values or is
 * already in *bits. firsts[i] is where values[i] was first written. */
static void flag_add(conf_ctx_t *ctx, const char *path, const conf_key_t *k, const conf_node_t *v,
                     const char *s, size_t len, conf_mark_t *firsts, unsigned *bits)
{
    char q[CONF_QUOTE_MAX], expect[256];
    size_t n = 0;
    for (; k->values[n]; n++) {
        assert(n < 32); /* one bit of an unsigned each */
        if (strlen(k->values[n]) != len || memcmp(k->values[n], s, len) != 0)
            continue;
        if (*bits & (1u << n)) {
            conf_ctx_error(ctx, mark_of(v), "%s: '%s' is listed twice (first at %d:%d)", path,
                           k->values[n], firsts[n].line, firsts[n].col);
            return;
        }
        *bits |= 1u << n;
        firsts[n] = mark_of(v);
        return;
    }
    if (!v) {
        key_type_error(ctx, path, k, v);
        return;
    }
    const char *guess = conf_suggest(s, len, k->values, n);
    conf_quote(q, sizeof(q), s, len);
    one_of(k, expect, sizeof(expect));
    if (guess)
        conf_ctx_error(ctx, v->mark, "%s: expected %s, got %s; did you mean '%s'?", path, expect, q,
                       guess);
    else
        conf_ctx_error(ctx, v->mark, "%s: expected %s, got %s", path, expect, q);
}

/* A FLAGS key: the list v, or (v NULL) the table's default written as a
 * YAML flow list "[a, b]". Each item is one value, at most once. */
static void apply_flags(conf_ctx_t *ctx, const frame_t *fr, const conf_key_t *k,
                        const conf_node_t *v, void *obj)
{
    char path[PATH_MAX_LEN], ipath[PATH_MAX_LEN + 32], expect[256];
    conf_mark_t firsts[32] = {{0, 0}};
    unsigned bits = 0;

    path_of(fr, k->name, path, sizeof(path));
    if (!v) {
        const char *p = k->def + strspn(k->def, "[ "), *end = k->def + strcspn(k->def, "]");
        while (p < end) {
            size_t n = strcspn(p, ",]"), w = n;
            while (w && p[w - 1] == ' ')
                w--;
            flag_add(ctx, path, k, NULL, p, w, firsts, &bits);
            p += n + (p[n] == ',');
            p += strspn(p, " ");
        }
    }
    for (size_t i = 0; v && i < v->n; i++) {
        const conf_node_t *item = v->items[i];
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        if (item->type != CONF_NODE_SCALAR || item->null) {
            one_of(k, expect, sizeof(expect));
            type_error(ctx, ipath, expect, item);
            continue;
        }
        flag_add(ctx, ipath, k, item, item->text, item->len, firsts, &bits);
    }
    if (v)
        conf_ctx_mark(ctx, (char *)obj + k->off, CONF_MARK_VALUE, v->mark);
    store_uint((char *)obj + k->off, k->size, bits);
}

/* Checks the entry count of a NAMED or LIST value; false when the entries
 * should not be walked at all (too many: a runaway list is not worth a
 * message per entry). */
static bool count_ok(conf_ctx_t *ctx, const char *path, const conf_key_t *k, size_t n,
                     conf_mark_t m)
{
    int64_t min = 0, max = INT64_MAX;
    if (k->min)
        conf_int_parse(k->min, strlen(k->min), &min);
    if (k->max)
        conf_int_parse(k->max, strlen(k->max), &max);
    if ((int64_t)n >= min && (int64_t)n <= max)
        return true;
    if (k->min && k->max)
        conf_ctx_error(ctx, m, "%s: expected %s to %s entries, got %zu", path, k->min, k->max, n);
    else if (k->min)
        conf_ctx_error(ctx, m, "%s: expected at least %s %s, got %zu", path, k->min,
                       min == 1 ? "entry" : "entries", n);
    else
        conf_ctx_error(ctx, m, "%s: expected at most %s entries, got %zu", path, k->max, n);
    return (int64_t)n <= max;
}

/* Allocates the array of a NAMED or LIST key and stores it in obj. */
static char *elements_new(conf_ctx_t *ctx, const conf_key_t *k, size_t n, void *obj)
{
    size_t bytes;
    char *arr = NULL;
    if (n && !__builtin_mul_overflow(n, k->elem_size, &bytes))
        arr = conf_arena_alloc(ctx->arena, bytes);
    if (n && !arr) {
        conf_ctx_nomem(ctx);
        n = 0;
    }
    memcpy((char *)obj + k->off, &arr, sizeof(arr));
    memcpy((char *)obj + k->off2, &n, sizeof(n));
    return arr;
}

/* The name of an element as a path segment: raw if it is a valid name,
 * else quoted, so a message never carries a control byte and a name with
 * a space or a dot still reads as one segment. */
static const char *segment_of(conf_ctx_t *ctx, const char *s, size_t len, bool quote)
{
    char q[CONF_QUOTE_MAX];
    for (size_t i = 0; i < len && !quote; i++)
        quote = !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                  (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-');
    if (quote || len == 0 || len > 64)
        conf_quote(q, sizeof(q), s, len);
    else
        snprintf(q, sizeof(q), "%.*s", (int)len, s);
    char *r = conf_arena_strndup(ctx->tmp, q, strlen(q));
    if (!r)
        conf_ctx_nomem(ctx);
    return r ? r : "?";
}

static void walk_named(conf_ctx_t *ctx, const frame_t *fr, const conf_key_t *k,
                       const conf_node_t *v, conf_mark_t where, void *obj)
{
    char path[PATH_MAX_LEN];
    frame_t kf = {.up = fr, .seg = k->name};

    path_of(fr, k->name, path, sizeof(path));
    if (!count_ok(ctx, path, k, v->n, where))
        return;
    char *arr = elements_new(ctx, k, v->n, obj);
    for (size_t i = 0; arr && i < v->n; i++) {
        const conf_node_t *kn = v->items[2 * i], *val = v->items[2 * i + 1];
        char *elem = arr + i * k->elem_size;
        char **name = (char **)(elem + k->name_off);
        bool scalar = kn->type == CONF_NODE_SCALAR;

        conf_ctx_mark(ctx, elem, true, kn->mark);
        *name = scalar ? conf_arena_strndup(ctx->arena, kn->text, kn->len)
                       : conf_arena_strndup(ctx->arena, "", 0);
        if (!*name) {
            conf_ctx_nomem(ctx);
            return;
        }
        if (!scalar)
            type_error(ctx, path, "a name", kn);
        else if (k->check)
            k->check(ctx, path, *name, kn->mark);
        frame_t ef = {.up = &kf,
                      .seg = segment_of(ctx, *name, scalar ? kn->len : 0, false),
                      .noun = k->noun,
                      .label = segment_of(ctx, *name, scalar ? kn->len : 0, true)};
        if (val->type == CONF_NODE_MAP || val->null) {
            walk_object(ctx, &ef, k->sub, val->null ? NULL : val, false, kn->mark, elem);
        } else {
            char epath[PATH_MAX_LEN];
            path_of(&ef, NULL, epath, sizeof(epath));
            type_error(ctx, epath, "a map of settings", val);
        }
        queue_finish(ctx, k, &ef, elem, kn->mark);
    }
}

/* The "name" a list item gives itself, for messages; NULL if none. */
static const conf_node_t *item_name(const conf_key_t *k, const conf_node_t *item)
{
    const conf_key_t *nk = NULL;
    for (const conf_key_t *s = k->sub; s->name; s++)
        if (s->flags & CONF_F_INDEX_NAME)
            nk = s;
    if (!nk || item->type != CONF_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < item->n; i++) {
        const conf_node_t *kn = item->items[2 * i], *v = item->items[2 * i + 1];
        if (kn->type == CONF_NODE_SCALAR && kn->len == strlen(nk->name) &&
            memcmp(kn->text, nk->name, kn->len) == 0 && v->type == CONF_NODE_SCALAR && !v->null)
            return v;
    }
    return NULL;
}

/* Names given by default (the index) or by hand must not repeat. Runs
 * after the walk, like a finish hook, when every name has its mark. */
typedef struct {
    const conf_key_t *k, *nk; /* the LIST key and its INDEX_NAME key */
    char *arr;
    size_t n;
} names_t;

static const char *name_at(const names_t *ns, size_t i)
{
    return *(char *const *)(ns->arr + i * ns->k->elem_size + ns->nk->off);
}

static int name_cmp(size_t a, size_t b, void *arg)
{
    const char *x = name_at(arg, a), *y = name_at(arg, b);
    if (!x || !y)
        return !x - !y;
    return strcmp(x, y);
}

typedef struct {
    conf_ctx_t *ctx;
    const names_t *ns;
    const char *path;
} names_dup_t;

/* The name as written, else (an index by default) the list item. */
static conf_mark_t name_mark(conf_ctx_t *ctx, const names_t *ns, size_t i)
{
    conf_mark_t m = {0, 0};
    char *elem = ns->arr + i * ns->k->elem_size;
    if (!conf_ctx_mark_find(ctx, elem + ns->nk->off, false, &m))
        conf_ctx_mark_find(ctx, elem, true, &m);
    return m;
}

static void name_dup(size_t first, size_t j, void *arg)
{
    const names_dup_t *d = arg;
    const char *name = name_at(d->ns, j);
    char q[CONF_QUOTE_MAX];
    if (!name)
        return;
    conf_mark_t ma = name_mark(d->ctx, d->ns, first), mb = name_mark(d->ctx, d->ns, j);
    conf_quote(q, sizeof(q), name, strlen(name));
    conf_ctx_error(d->ctx, mb, "%s[%zu]: duplicate %s name %s (first at %d:%d)", d->path, j,
                   d->ns->k->noun, q, ma.line, ma.col);
}

static void check_unique_names_cb(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where)
{
    names_dup_t d = {ctx, obj, path};
    (void)where;
    if (conf_find_duplicates(d.ns->n, name_cmp, (void *)d.ns, name_dup, &d) < 0)
        conf_ctx_nomem(ctx);
}

static void queue(conf_ctx_t *ctx, conf_finish_cb cb, const char *path, void *obj,
                  conf_mark_t where);

static void check_unique_names(conf_ctx_t *ctx, const char *path, const conf_key_t *k, char *arr,
                               size_t n)
{
    const conf_key_t *nk = NULL;
    for (const conf_key_t *s = k->sub; s->name; s++)
        if (s->flags & CONF_F_INDEX_NAME)
            nk = s;
    if (!nk || n < 2)
        return;
    names_t *ns = conf_arena_alloc(ctx->tmp, sizeof(*ns));
    if (!ns) {
        conf_ctx_nomem(ctx);
        return;
    }
    *ns = (names_t){k, nk, arr, n};
    queue(ctx, check_unique_names_cb, path, ns, (conf_mark_t){0, 0});
}

static void walk_list(conf_ctx_t *ctx, const frame_t *fr, const conf_key_t *k, const conf_node_t *v,
                      conf_mark_t where, void *obj)
{
    char path[PATH_MAX_LEN], label[CONF_QUOTE_MAX];
    frame_t kf = {.up = fr, .seg = k->name};

    path_of(fr, k->name, path, sizeof(path));
    if (!count_ok(ctx, path, k, v->n, where))
        return;
    char *arr = elements_new(ctx, k, v->n, obj);
    for (size_t i = 0; arr && i < v->n; i++) {
        const conf_node_t *item = v->items[i], *name = item_name(k, item);
        char *elem = arr + i * k->elem_size;

        if (name)
            conf_quote(label, sizeof(label), name->text, name->len);
        else
            snprintf(label, sizeof(label), "%zu", i);
        frame_t ef = {.up = &kf, .is_index = true, .i = i, .noun = k->noun, .label = label};
        conf_ctx_mark(ctx, elem, true, item->mark);
        if (item->type == CONF_NODE_SCALAR && k->shorthand && !item->null) {
            /* "- 127.0.0.1:9001" is "- {address: 127.0.0.1:9001}". */
            conf_node_t key = {.type = CONF_NODE_SCALAR,
                               .mark = item->mark,
                               .synthetic = true,
                               .text = k->shorthand,
                               .len = strlen(k->shorthand)};
            conf_node_t *pair[2] = {&key, (conf_node_t *)item};
            conf_node_t map = {.type = CONF_NODE_MAP, .mark = item->mark, .items = pair, .n = 1};
            walk_object(ctx, &ef, k->sub, &map, false, item->mark, elem);
        } else if (item->type == CONF_NODE_MAP) {
            walk_object(ctx, &ef, k->sub, item, false, item->mark, elem);
        } else {
            char epath[PATH_MAX_LEN], expect[256] = "a map";
            if (k->shorthand) {
                snprintf(expect, sizeof(expect), "a map or ");
                expect_of(conf_key_find(k->sub, k->shorthand, strlen(k->shorthand)),
                          expect + strlen(expect), sizeof(expect) - strlen(expect));
            }
            path_of(&ef, NULL, epath, sizeof(epath));
            type_error(ctx, epath, expect, item);
            continue;
        }
        queue_finish(ctx, k, &ef, elem, item->mark);
    }
    if (arr)
        check_unique_names(ctx, path, k, arr, v->n);
}

static void walk_value(conf_ctx_t *ctx, const frame_t *fr, const conf_key_t *k,
                       const conf_node_t *keyn, const conf_node_t *v, void *obj)
{
    char path[PATH_MAX_LEN];
    path_of(fr, keyn->synthetic ? NULL : k->name, path, sizeof(path));

    switch (k->type) {
    case CONF_T_MAP:
        if (v->type != CONF_NODE_MAP)
            key_type_error(ctx, path, k, v);
        else
            walk_map_key(ctx, fr, k, v, keyn->mark, obj);
        break;
    case CONF_T_NAMED:
        if (v->type != CONF_NODE_MAP)
            key_type_error(ctx, path, k, v);
        else
            walk_named(ctx, fr, k, v, keyn->mark, obj);
        break;
    case CONF_T_LIST:
        if (v->type != CONF_NODE_SEQ)
            key_type_error(ctx, path, k, v);
        else
            walk_list(ctx, fr, k, v, keyn->mark, obj);
        break;
    case CONF_T_FLAGS:
        if (v->type != CONF_NODE_SEQ)
            key_type_error(ctx, path, k, v);
        else
            apply_flags(ctx, fr, k, v, obj);
        break;
    default:
        if (v->type != CONF_NODE_SCALAR) {
            /* Written, though wrong: rules on whether a key is present
             * (hash without balance: hash) must not add a message. */
            conf_ctx_mark(ctx, (char *)obj + k->off, CONF_MARK_VALUE, v->mark);
            key_type_error(ctx, path, k, v);
        } else
            apply_scalar(ctx, fr, k, keyn, v, v->text, v->len, obj);
        break;
    }
}

static void apply_default(conf_ctx_t *ctx, const frame_t *fr, const conf_key_t *k,
                          conf_mark_t where, void *obj)
{
    char index[32];
    switch (k->type) {
    case CONF_T_MAP:
        walk_map_key(ctx, fr, k, NULL, where, obj);
        break;
    case CONF_T_NAMED:
    case CONF_T_LIST:
    case CONF_T_LATER:
        break;
    case CONF_T_FLAGS:
        apply_flags(ctx, fr, k, NULL, obj);
        break;
    case CONF_T_REF:
        assert(!k->def && k->size == sizeof(size_t));
        *(size_t *)((char *)obj + k->off) = SIZE_MAX; /* none */
        break;
    default:
        if (k->flags & CONF_F_INDEX_NAME) {
            snprintf(index, sizeof(index), "%zu", fr->i);
            apply_scalar(ctx, fr, k, NULL, NULL, index, strlen(index), obj);
        } else if (k->def) {
            apply_scalar(ctx, fr, k, NULL, NULL, k->def, strlen(k->def), obj);
        }
        break;
    }
}

static void unknown_key(conf_ctx_t *ctx, const frame_t *fr, const conf_key_t *keys,
                        const conf_node_t *kn)
{
    const char *cands[MAX_KEYS];
    size_t n = 0;
    char path[PATH_MAX_LEN], q[CONF_QUOTE_MAX], in[PATH_MAX_LEN + 8] = "";

    if (kn->len == 2 && memcmp(kn->text, "<<", 2) == 0) {
        conf_ctx_error(ctx, kn->mark, "merge keys ('<<') are not supported; write the keys out");
        return;
    }
    for (const conf_key_t *k = keys; k->name; k++)
        if (k->type != CONF_T_LATER)
            cands[n++] = k->name;
    path_of(fr, NULL, path, sizeof(path));
    if (path[0])
        snprintf(in, sizeof(in), " in %s", path);
    conf_quote(q, sizeof(q), kn->text, kn->len);
    const char *guess = conf_suggest(kn->text, kn->len, cands, n);
    if (guess)
        conf_ctx_error(ctx, kn->mark, "unknown key %s%s; did you mean '%s'?", q, in, guess);
    else
        conf_ctx_error(ctx, kn->mark, "unknown key %s%s", q, in);
}

/* Walks one object: the pairs of map (NULL: none written) against keys,
 * then defaults and required keys (not when the whole object is absent: a
 * map key left out). where locates the object for messages about keys it
 * lacks. */
static void walk_object(conf_ctx_t *ctx, const frame_t *fr, const conf_key_t *keys,
                        const conf_node_t *map, bool absent, conf_mark_t where, void *obj)
{
    const conf_node_t *seen[MAX_KEYS] = {0};
    char path[PATH_MAX_LEN], q[CONF_QUOTE_MAX];
    size_t nkeys = 0;

    while (keys[nkeys].name)
        nkeys++;
    assert(nkeys <= MAX_KEYS);
    for (size_t i = 0; map && i < map->n; i++) {
        const conf_node_t *kn = map->items[2 * i], *v = map->items[2 * i + 1];
        if (kn->type != CONF_NODE_SCALAR) {
            char got[CONF_QUOTE_MAX];
            got_of(kn, got, sizeof(got));
            path_of(fr, NULL, path, sizeof(path));
            conf_ctx_error(ctx, kn->mark, "%s%sexpected a key name, got %s", path,
                           path[0] ? ": " : "", got);
            continue;
        }
        const conf_key_t *k = conf_key_find(keys, kn->text, kn->len);
        if (!k) {
            unknown_key(ctx, fr, keys, kn);
            continue;
        }
        if (k->type == CONF_T_LATER) {
            conf_quote(q, sizeof(q), kn->text, kn->len);
            conf_ctx_error(ctx, kn->mark, "%s is not supported yet in this version", q);
            continue;
        }
        seen[k - keys] = v;
        /* A key with an empty (null) value is a key left out. */
        if (!(v->type == CONF_NODE_SCALAR && v->null))
            walk_value(ctx, fr, k, kn, v, obj);
    }
    for (size_t i = 0; i < nkeys; i++) {
        const conf_key_t *k = &keys[i];
        if (k->type == CONF_T_LATER || (seen[i] && !seen[i]->null))
            continue;
        if (!(k->flags & CONF_F_REQUIRED)) {
            apply_default(ctx, fr, k, where, obj);
            continue;
        }
        if (absent)
            continue;
        if (seen[i]) {
            path_of(fr, k->name, path, sizeof(path));
            conf_ctx_error(ctx, seen[i]->mark, "%s: a value is required", path);
            continue;
        }
        path_of(fr, NULL, path, sizeof(path));
        if (path[0])
            conf_ctx_error(ctx, where, "%s: missing required key '%s'", path, k->name);
        else
            conf_ctx_error(ctx, where, "missing required key '%s'", k->name);
    }
}

/* Finish hooks (and other checks of one object) run after the walk, when
 * every value has its mark. */
static void queue(conf_ctx_t *ctx, conf_finish_cb cb, const char *path, void *obj,
                  conf_mark_t where)
{
    conf_finish_t *f = conf_arena_alloc(ctx->tmp, sizeof(*f));
    if (!f || !(f->path = conf_arena_strndup(ctx->tmp, path, strlen(path)))) {
        conf_ctx_nomem(ctx);
        return;
    }
    f->cb = cb;
    f->obj = obj;
    f->where = where;
    *ctx->finish_tail = f;
    ctx->finish_tail = &f->next;
}

static void queue_finish(conf_ctx_t *ctx, const conf_key_t *k, const frame_t *fr, void *obj,
                         conf_mark_t where)
{
    char path[PATH_MAX_LEN];
    if (!k->finish)
        return;
    path_of(fr, NULL, path, sizeof(path));
    queue(ctx, k->finish, path, obj, where);
}

void conf_walk(conf_ctx_t *ctx, const conf_node_t *root)
{
    frame_t top = {0};
    conf_mark_t where = root ? root->mark : (conf_mark_t){1, 1};

    ctx->finish = NULL;
    ctx->finish_tail = &ctx->finish;
    if (root && root->type == CONF_NODE_SCALAR && root->null)
        root = NULL;
    if (root && root->type != CONF_NODE_MAP) {
        type_error(ctx, "the top of the file", "a map of keys", root);
        return;
    }
    walk_object(ctx, &top, conf_root.sub, root, false, where, ctx->conf);
    queue_finish(ctx, &conf_root, &top, ctx->conf, where);
    for (const conf_finish_t *f = ctx->finish; f; f = f->next)
        f->cb(ctx, f->path, f->obj, f->where);
}

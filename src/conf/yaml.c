/* YAML text to a tree of nodes that remember their line and column.
 *
 * libfyaml's document API (0.7, Debian 12) keeps no public position for
 * mappings and sequences and stops at the first duplicate key, so this
 * builds its own tree from the parser's events instead: every node gets the
 * mark of its first token, duplicate keys are all reported (at the second
 * occurrence) and dropped, aliases are resolved to their anchored node with
 * a bound on the expanded size, and libfyaml's own syntax diagnostics are
 * collected (never printed by it) and reported with their positions.
 * JSON input needs nothing special: it is YAML 1.2 flow style. */
#include "conf/conf_int.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdlib.h>
#include <string.h>

#define ANCHOR_BUCKETS 4096

typedef struct link {
    struct link *next;
    conf_node_t *node;
} link_t;

typedef struct {
    conf_node_t *node;
    link_t *first, *last;
    size_t n;
    const char *anchor; /* registered when the collection closes */
    size_t anchor_len;
} open_t;

typedef struct anchor {
    struct anchor *next;
    const char *name;
    size_t len;
    conf_node_t *node;
} anchor_t;

typedef struct {
    conf_arena_t *tmp;
    conf_diag_t *diag;
    open_t *stack;
    size_t depth, cap;
    anchor_t **anchors; /* ANCHOR_BUCKETS chains, newest first */
    conf_node_t *root;
    size_t total;     /* nodes so far, aliases expanded */
    conf_mark_t last; /* the latest known position, for events without one */
    int ndocs;
    char said[256]; /* the last message libfyaml printed instead of collecting */
} build_t;

static conf_mark_t event_mark(build_t *b, struct fy_event *e)
{
    const struct fy_mark *m = fy_event_start_mark(e);
    if (!m)
        return b->last;
    conf_mark_t r = {m->line + 1, m->column + 1};
    b->last = r;
    return r;
}

static size_t anchor_hash(const char *s, size_t len)
{
    size_t h = 5381;
    for (size_t i = 0; i < len; i++)
        h = h * 33 + (unsigned char)s[i];
    return h % ANCHOR_BUCKETS;
}

static int anchor_add(build_t *b, const char *name, size_t len, conf_node_t *node)
{
    anchor_t *a = conf_arena_alloc(b->tmp, sizeof(*a));
    if (!a)
        return -ENOMEM;
    size_t h = anchor_hash(name, len);
    a->name = name;
    a->len = len;
    a->node = node;
    a->next = b->anchors[h];
    b->anchors[h] = a; /* a later anchor of the same name wins, as in YAML */
    return 0;
}

static conf_node_t *anchor_find(build_t *b, const char *name, size_t len)
{
    for (anchor_t *a = b->anchors[anchor_hash(name, len)]; a; a = a->next)
        if (a->len == len && memcmp(a->name, name, len) == 0)
            return a->node;
    return NULL;
}

/* Adds a finished node to the open collection (or makes it the root). */
static int attach(build_t *b, conf_node_t *node)
{
    if (b->depth == 0) {
        b->root = node;
        return 0;
    }
    open_t *o = &b->stack[b->depth - 1];
    link_t *l = conf_arena_alloc(b->tmp, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->node = node;
    if (o->last)
        o->last->next = l;
    else
        o->first = l;
    o->last = l;
    o->n++;
    o->node->weight += node->weight;
    return 0;
}

static int count_node(build_t *b, size_t weight, conf_mark_t m)
{
    b->total += weight;
    if (b->total > CONF_MAX_NODES) {
        conf_diag_add(b->diag, m, "the document expands to more than %u nodes (too many aliases?)",
                      CONF_MAX_NODES);
        return -EINVAL;
    }
    return 0;
}

static const char *token_text(struct fy_token *t, size_t *len)
{
    const char *s = t ? fy_token_get_text(t, len) : NULL;
    if (!s) {
        *len = 0;
        return "";
    }
    return s;
}

static int on_scalar(build_t *b, struct fy_event *e)
{
    conf_mark_t m = event_mark(b, e);
    enum fy_node_style style = fy_event_get_node_style(e);
    size_t len;
    const char *s = token_text(e->scalar.value, &len);

    conf_node_t *n = conf_arena_alloc(b->tmp, sizeof(*n));
    if (!n || !(n->text = conf_arena_strndup(b->tmp, s, len)))
        return -ENOMEM;
    n->type = CONF_NODE_SCALAR;
    n->len = len;
    n->weight = 1;
    /* The token starts after an opening quote; point at the quote. */
    if ((style == FYNS_SINGLE_QUOTED || style == FYNS_DOUBLE_QUOTED) && m.col > 1 &&
        fy_event_start_mark(e))
        m.col--;
    n->mark = m;
    if (!e->scalar.value || style == FYNS_PLAIN || style == FYNS_ANY) {
        static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
        for (size_t i = 0; i < 5; i++)
            if (len == strlen(nulls[i]) && memcmp(s, nulls[i], len) == 0)
                n->null = true;
    }
    int r = count_node(b, 1, m);
    if (r == 0 && e->scalar.anchor) {
        size_t alen;
        const char *a = conf_arena_strndup(b->tmp, token_text(e->scalar.anchor, &alen), alen);
        r = a ? anchor_add(b, a, alen, n) : -ENOMEM;
    }
    return r ? r : attach(b, n);
}

static int on_alias(build_t *b, struct fy_event *e)
{
    conf_mark_t m = event_mark(b, e);
    size_t len;
    const char *name = token_text(e->alias.anchor, &len);
    conf_node_t *n = anchor_find(b, name, len);
    char q[CONF_QUOTE_MAX];

    if (m.col > 1 && fy_event_start_mark(e))
        m.col--; /* the token is the name; point at its '*' */

    if (!n) {
        /* Also an alias inside its own anchor: anchors register when
         * their node is complete, so a cycle cannot be built. */
        conf_quote(q, sizeof(q), name, len);
        conf_diag_add(b->diag, m, "alias %s names no anchor defined before it", q);
        return -EINVAL;
    }
    int r = count_node(b, n->weight, m);
    return r ? r : attach(b, n);
}

static int on_start(build_t *b, struct fy_event *e, conf_node_type_t type)
{
    struct fy_token *anchor =
        type == CONF_NODE_MAP ? e->mapping_start.anchor : e->sequence_start.anchor;
    conf_node_t *n = conf_arena_alloc(b->tmp, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->type = type;
    n->mark = event_mark(b, e);
    n->weight = 1;
    int r = count_node(b, 1, n->mark);
    if (r)
        return r;
    if (b->depth == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        open_t *s = realloc(b->stack, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        b->stack = s;
        b->cap = cap;
    }
    open_t *o = &b->stack[b->depth++];
    memset(o, 0, sizeof(*o));
    o->node = n;
    if (anchor) {
        const char *a = token_text(anchor, &o->anchor_len);
        if (!(o->anchor = conf_arena_strndup(b->tmp, a, o->anchor_len)))
            return -ENOMEM;
    }
    return 0;
}

typedef struct {
    const conf_node_t *key;
    size_t index;
} keyref_t;

static int keyref_cmp(const void *a, const void *b)
{
    const keyref_t *x = a, *y = b;
    size_t n = x->key->len < y->key->len ? x->key->len : y->key->len;
    int c = memcmp(x->key->text, y->key->text, n);
    if (c)
        return c;
    if (x->key->len != y->key->len)
        return x->key->len < y->key->len ? -1 : 1;
    return x->index < y->index ? -1 : 1;
}

/* Reports every repeated key of a mapping at its second (third...)
 * occurrence, and drops those pairs so the walk sees each key once. */
static int drop_duplicates(build_t *b, conf_node_t *map)
{
    size_t npairs = map->n, nk = 0;
    keyref_t *keys;
    bool *drop;
    char q[CONF_QUOTE_MAX];

    if (npairs < 2)
        return 0;
    keys = malloc(npairs * sizeof(*keys));
    drop = calloc(npairs, sizeof(*drop));
    if (!keys || !drop) {
        free(keys);
        free(drop);
        return -ENOMEM;
    }
    for (size_t i = 0; i < npairs; i++)
        if (map->items[2 * i]->type == CONF_NODE_SCALAR)
            keys[nk++] = (keyref_t){map->items[2 * i], i};
    qsort(keys, nk, sizeof(*keys), keyref_cmp);
    for (size_t i = 1, first = 0; i < nk; i++) {
        const conf_node_t *k = keys[i].key, *f = keys[first].key;
        if (k->len != f->len || memcmp(k->text, f->text, k->len) != 0) {
            first = i;
            continue;
        }
        conf_quote(q, sizeof(q), k->text, k->len);
        conf_diag_add(b->diag, k->mark, "duplicate key %s (first at %d:%d)", q, f->mark.line,
                      f->mark.col);
        drop[keys[i].index] = true;
    }
    size_t o = 0;
    for (size_t i = 0; i < npairs; i++) {
        if (drop[i])
            continue;
        map->items[2 * o] = map->items[2 * i];
        map->items[2 * o + 1] = map->items[2 * i + 1];
        o++;
    }
    map->n = o;
    free(keys);
    free(drop);
    return 0;
}

static int on_end(build_t *b)
{
    if (b->depth == 0)
        return -EINVAL; /* libfyaml pairs its events; this cannot happen */
    open_t *o = &b->stack[--b->depth];
    conf_node_t *n = o->node;
    if (o->n) {
        n->items = conf_arena_alloc(b->tmp, o->n * sizeof(*n->items));
        if (!n->items)
            return -ENOMEM;
    }
    size_t i = 0;
    for (link_t *l = o->first; l; l = l->next)
        n->items[i++] = l->node;
    n->n = n->type == CONF_NODE_MAP ? o->n / 2 : o->n;
    if (n->type == CONF_NODE_MAP) {
        int r = drop_duplicates(b, n);
        if (r)
            return r;
    }
    if (o->anchor) {
        int r = anchor_add(b, o->anchor, o->anchor_len, n);
        if (r)
            return r;
    }
    return attach(b, n);
}

/* Returns 1 to stop reading (a second document), 0 to go on, or -errno. */
static int on_event(build_t *b, struct fy_event *e)
{
    switch (e->type) {
    case FYET_DOCUMENT_START:
        if (++b->ndocs > 1) {
            conf_diag_add(b->diag, event_mark(b, e),
                          "only one YAML document is allowed in a configuration file");
            return 1;
        }
        return 0;
    case FYET_SCALAR:
        return on_scalar(b, e);
    case FYET_ALIAS:
        return on_alias(b, e);
    case FYET_MAPPING_START:
        return on_start(b, e, CONF_NODE_MAP);
    case FYET_SEQUENCE_START:
        return on_start(b, e, CONF_NODE_SEQ);
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END:
        event_mark(b, e);
        return on_end(b);
    default:
        return 0;
    }
}

/* libfyaml's messages, collected instead of printed. A few (an
 * unsupported %YAML version) are only printed: then what it printed is
 * the message. */
static void collect_syntax_errors(build_t *b, struct fy_diag *diag)
{
    void *it = NULL;
    struct fy_diag_error *de;
    bool any = false;

    while ((de = fy_diag_errors_iterate(diag, &it))) {
        if (de->type < FYET_ERROR)
            continue;
        conf_mark_t m = {de->line > 0 ? de->line : 1, de->column > 0 ? de->column : 1};
        conf_diag_add(b->diag, m, "%s", de->msg ? de->msg : "invalid YAML");
        any = true;
    }
    if (!any)
        conf_diag_add(b->diag, b->last, "%s", b->said[0] ? b->said : "invalid YAML");
}

/* YAML 1.2's c-printable: what may appear in a stream unescaped. */
static bool printable(uint32_t c)
{
    return c == 0x09 || c == 0x0a || c == 0x0d || (c >= 0x20 && c <= 0x7e) || c == 0x85 ||
           (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) ||
           (c >= 0x10000 && c <= 0x10ffff);
}

/* Checks that s is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF) of printable characters only. Returns
 * the offset of the first offence, or len; *ret_cp is the code point
 * there, or -1 when the UTF-8 itself is broken. */
static size_t text_check(const unsigned char *s, size_t len, int32_t *ret_cp)
{
    size_t i = 0;
    while (i < len) {
        uint32_t c = s[i];
        size_t n = 0;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            c &= 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            lo = c == 0xe0 ? 0xa0 : 0x80; /* overlong */
            hi = c == 0xed ? 0x9f : 0xbf; /* surrogates */
            c &= 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            lo = c == 0xf0 ? 0x90 : 0x80; /* overlong */
            hi = c == 0xf4 ? 0x8f : 0xbf; /* past U+10FFFF */
            c &= 0x07;
        } else if (c >= 0x80) {
            *ret_cp = -1;
            return i;
        }
        if (n && (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)) {
            *ret_cp = -1;
            return i;
        }
        for (size_t k = 1; k <= n; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xbf) {
                *ret_cp = -1;
                return i;
            }
            c = c << 6 | (s[i + k] & 0x3f);
        }
        if (!printable(c)) {
            *ret_cp = (int32_t)c;
            return i;
        }
        i += n + 1;
    }
    return i;
}

/* libfyaml 0.7.12 frees a simple key twice (fy_fetch_value) when a ':'
 * that ends a complex key is followed by blanks holding a tab and then one
 * of ? : | > or "- ": "? s:\t?" crashes it. Outside that case the tab is
 * either an error anyway (before '-' or '?') or rare and harmless to
 * write as spaces (before '|', '>' or ':'), so every such tab is refused,
 * wherever it is. Returns the offset of the first, or len. */
static size_t tab_check(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ':')
            continue;
        size_t j = i + 1, tab = len;
        for (; j < len && (s[j] == ' ' || s[j] == '\t'); j++)
            if (s[j] == '\t' && tab == len)
                tab = j;
        if (tab == len || j == len)
            continue;
        if (strchr("?:|>", s[j]) || (s[j] == '-' && (j + 1 == len || strchr(" \t\r\n", s[j + 1]))))
            return tab;
    }
    return len;
}

/* Where byte offset off is, counting columns in characters as libfyaml
 * does; the text before off is valid UTF-8. */
static conf_mark_t offset_mark(const char *text, size_t off)
{
    conf_mark_t m = {1, 1};
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            m.line++;
            m.col = 1;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            m.col++;
        }
    }
    return m;
}

/* Keeps the last line libfyaml would have printed, without its "[ERR]: "
 * and its newline, and with control bytes made visible. */
static void keep_output_cb(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    build_t *b = user;
    const char *p = buf, *end = buf + len;
    (void)diag;
    if (len > 7 && memcmp(buf, "[ERR]: ", 7) == 0)
        p += 7;
    while (end > p && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    if (end == p)
        return;
    /* conf_quote makes control bytes visible; the quotes it adds go */
    conf_quote(b->said, sizeof(b->said), p, (size_t)(end - p));
    size_t n = strlen(b->said);
    memmove(b->said, b->said + 1, n - 2);
    b->said[n - 2] = 0;
}

int conf_yaml_parse(const char *text, size_t len, conf_arena_t *tmp, conf_diag_t *d,
                    conf_node_t **ret_root)
{
    build_t b = {.tmp = tmp, .diag = d, .last = {1, 1}};
    struct fy_diag_cfg dcfg;
    struct fy_diag *diag = NULL;
    struct fy_parser *p = NULL;
    struct fy_event *e;
    int r = -ENOMEM;

    /* YAML is printable Unicode text. Checking that first also keeps
     * libfyaml 0.7 out of its bugs on other input: a loop on a directive
     * line with broken UTF-8 ("%\xd1"), a crash in fy_parser_destroy after
     * a NUL ("? s:\t\0"). */
    int32_t cp;
    size_t ok = text_check((const unsigned char *)text, len, &cp);
    if (ok < len) {
        if (cp < 0)
            conf_diag_add(d, offset_mark(text, ok),
                          "invalid UTF-8 (byte 0x%02x): the file must be UTF-8 text",
                          (unsigned char)text[ok]);
        else
            conf_diag_add(d, offset_mark(text, ok),
                          "character U+%04X is not allowed in YAML (write it as an escape in "
                          "a double-quoted string)",
                          (unsigned)cp);
        return -EINVAL;
    }
    if ((ok = tab_check(text, len)) < len) {
        conf_diag_add(d, offset_mark(text, ok),
                      "use spaces, not a tab, between ':' and the indicator that follows it");
        return -EINVAL;
    }
    b.anchors = conf_arena_alloc(tmp, ANCHOR_BUCKETS * sizeof(*b.anchors));
    if (!b.anchors)
        goto out;
    /* No output of its own: errors are collected and read back below. */
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = keep_output_cb;
    dcfg.user = &b;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    if (!diag)
        goto out;
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = {
        .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE,
        .diag = diag,
    };
    p = fy_parser_create(&pcfg);
    if (!p || fy_parser_set_string(p, text, len) != 0)
        goto out;

    r = 0;
    while (r == 0 && (e = fy_parser_parse(p))) {
        r = on_event(&b, e);
        fy_parser_event_free(p, e);
    }
    if (r == 1)
        r = 0;
    else if (r == 0 && fy_parser_get_stream_error(p)) {
        collect_syntax_errors(&b, diag);
        r = -EINVAL;
    }
    if (r == 0) {
        /* A truncated event stream leaves collections open; only a
         * complete tree is handed on. */
        if (b.depth) {
            conf_diag_add(d, b.last, "invalid YAML: the document ends too early");
            r = -EINVAL;
        } else
            *ret_root = b.root;
    }
out:
    if (p)
        fy_parser_destroy(p);
    if (diag)
        fy_diag_destroy(diag);
    free(b.stack);
    return r;
}

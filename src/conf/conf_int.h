/* Internals shared by the files of src/conf, and by its unit tests: the
 * arena, positions and diagnostics, the YAML node tree, the key table's
 * types and the load context. Nothing outside src/conf includes this; the
 * proxy sees only conf.h.
 *
 * How a load flows: yaml.c turns libfyaml events into a conf_node_t tree
 * that keeps every node's line:column (and drops duplicate keys, reporting
 * them); walk.c applies the key table (schema.c) to that tree, storing
 * values into the conf_t and reporting what does not fit; check.c holds the
 * rules that span several keys; diag.c collects every message and writes
 * them sorted by position. */
#ifndef SURETY_CONF_CONF_INT_H
#define SURETY_CONF_CONF_INT_H

#include <stdarg.h>

#include "conf/conf.h"

/* Largest configuration accepted, so one file cannot take the process's
 * memory; a real one is a few kilobytes. */
#define CONF_MAX_INPUT (16u << 20)
/* Nodes a document may expand to once aliases are followed: bounds the
 * "billion laughs" of nested aliases. */
#define CONF_MAX_NODES (1u << 20)
/* Messages kept per load; past this they are counted, not stored. */
#define CONF_MAX_ERRORS 1000

/* ---- arena.c: the allocation family of one conf_t (or of one load's
 * scratch data); everything is freed at once by conf_arena_free. */
typedef struct conf_arena conf_arena_t;

conf_arena_t *conf_arena_new(void);
void conf_arena_free(conf_arena_t *a); /* accepts NULL */
/* Zeroed memory aligned for any type; NULL when out of memory or when the
 * arena would grow past CONF_MAX_INPUT * 8 bytes. */
void *conf_arena_alloc(conf_arena_t *a, size_t n);
/* NUL-terminated copy of s[0..n). */
char *conf_arena_strndup(conf_arena_t *a, const char *s, size_t n);

/* ---- diag.c: positions and messages. */

/* A position in the file, 1-based. line 0 means the file as a whole
 * (it cannot be read, it is too large) and prints as "FILE: message". */
typedef struct {
    int line;
    int col;
} conf_mark_t;

typedef struct {
    conf_mark_t mark;
    size_t seq; /* arrival order: ties keep it, so sorting is stable */
    char *msg;
} conf_diag_entry_t;

typedef struct {
    const char *file;
    conf_diag_entry_t *v;
    size_t n, cap;
    size_t dropped; /* past CONF_MAX_ERRORS, or lost to a failed allocation */
} conf_diag_t;

void conf_diag_init(conf_diag_t *d, const char *file);
void conf_diag_deinit(conf_diag_t *d);
void conf_diag_add(conf_diag_t *d, conf_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void conf_diag_vadd(conf_diag_t *d, conf_mark_t m, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static inline bool conf_diag_failed(const conf_diag_t *d)
{
    return d->n > 0 || d->dropped > 0;
}
/* Writes every message as "FILE:LINE:COL: message\n" in document order
 * (line, then column, then arrival). errs may be NULL. */
void conf_diag_write(conf_diag_t *d, FILE *errs);

/* Writes s[0..len) into out as 'text' for a message: control bytes become
 * \xNN and anything past 60 bytes becomes "...". Always NUL-terminates. */
#define CONF_QUOTE_MAX 256
void conf_quote(char *out, size_t n, const char *s, size_t len);
/* Optimal-string-alignment distance (a swap of two neighbours costs 1),
 * capped: anything above cap returns cap + 1. */
size_t conf_edit_distance(const char *a, size_t alen, const char *b, size_t blen, size_t cap);
/* The candidate a typo most likely meant, or NULL when none is close. */
const char *conf_suggest(const char *word, size_t len, const char *const *cands, size_t n);

/* ---- yaml.c: the document as a tree of nodes with positions. */
typedef enum {
    CONF_NODE_SCALAR,
    CONF_NODE_MAP,
    CONF_NODE_SEQ,
} conf_node_type_t;

typedef struct conf_node conf_node_t;
struct conf_node {
    conf_node_type_t type;
    conf_mark_t mark;
    bool null;        /* scalar written as nothing, ~ or null (plain) */
    bool synthetic;   /* made by the walker (a list item's shorthand key) */
    const char *text; /* scalar: NUL-terminated (may hold NULs: see len) */
    size_t len;
    /* SEQ: n items. MAP: n pairs, key items[2i], value items[2i + 1];
     * duplicate keys are already removed (the first one stays). */
    conf_node_t **items;
    size_t n;
    size_t weight; /* nodes in this subtree, aliases expanded */
};

/* Parses one YAML (or JSON) document from text into a tree allocated in
 * tmp. Syntax errors, duplicate keys, unknown aliases and extra documents
 * are reported to d. Returns 0 with *ret_root (NULL for an empty
 * document), -EINVAL when the text is not YAML (nothing more can be said
 * about it), or -ENOMEM. Duplicate keys do not make it fail: the tree is
 * still worth validating. */
int conf_yaml_parse(const char *text, size_t len, conf_arena_t *tmp, conf_diag_t *d,
                    conf_node_t **ret_root);

/* ---- units.c: scalar syntaxes not in conf.h. */
int conf_int_parse(const char *s, size_t len, int64_t *ret);
int conf_bool_parse(const char *s, size_t len, bool *ret);

/* ---- schema.c: the key table. */
typedef enum {
    CONF_T_MAP,   /* nested keys filling the same struct (timeouts:) */
    CONF_T_NAMED, /* map of name -> object, an array of structs (listeners:) */
    CONF_T_LIST,  /* list of objects, an array of structs (routes:) */
    CONF_T_INT,
    CONF_T_BOOL,
    CONF_T_ENUM,
    CONF_T_STRING,
    CONF_T_DURATION,
    CONF_T_SIZE,
    CONF_T_PERCENT,
    CONF_T_RATE,
    CONF_T_ADDRESS, /* text at off, sock_addr_t at off2 */
    CONF_T_REF,     /* the name of an element of a top-level NAMED key: an index;
                     * absent (and not required): SIZE_MAX */
    CONF_T_FLAGS,   /* a list of distinct values of k->values: bit i for values[i] */
    CONF_T_CUSTOM,  /* a scalar with its own syntax: k->parse stores it */
    CONF_T_LATER,   /* a key DESIGN.md plans but this version does not have */
    CONF_T_COUNT_,
} conf_type_t;

enum {
    CONF_F_REQUIRED = 1 << 0,
    CONF_F_AUTO = 1 << 1,       /* INT: "auto" stores 0; the finish hook resolves it */
    CONF_F_OFF = 1 << 2,        /* STRING, ADDRESS: "off" stores NULL */
    CONF_F_INDEX_NAME = 1 << 3, /* STRING in a LIST item: default is the item's index */
};

typedef struct conf_ctx conf_ctx_t;
typedef struct conf_key conf_key_t;

/* Validates a string value that has its type, and may rewrite it in place
 * (it is arena memory): lower-casing a host, say. path names the key for
 * messages. */
typedef void (*conf_check_cb)(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
/* Parses and stores the scalar s[0..len) of a CUSTOM key into obj (the
 * object holding k's fields at k->off and k->off2), reporting what does
 * not fit at m. v is NULL when s is the table's default. */
typedef void (*conf_parse_cb)(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                              const conf_node_t *v, const char *s, size_t len, void *obj);
/* Runs on an object once its keys (and defaults) are in: rules between its
 * own keys. where is the object's position (its name, or its list item). */
typedef void (*conf_finish_cb)(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where);

struct conf_key {
    const char *name;
    conf_type_t type;
    unsigned flags;
    const char *def; /* default, written as in YAML and parsed like a value */
    const char *min; /* limits, written as in YAML; for NAMED/LIST: entries */
    const char *max;
    size_t off;                /* the field; NAMED/LIST: the array pointer; MAP: a field
                                * of the object that marks where the map was written */
    size_t size;               /* sizeof the field (numbers are stored by width) */
    size_t off2;               /* ADDRESS: its sock_addr_t; NAMED/LIST: the count (size_t) */
    size_t elem_size;          /* NAMED/LIST: sizeof one element */
    size_t name_off;           /* NAMED: the element's char *name (LIST: its INDEX_NAME key) */
    const conf_key_t *sub;     /* MAP/NAMED/LIST: keys of the object, ends with {0} */
    const char *const *values; /* ENUM: accepted values; the index is stored; FLAGS: too */
    unsigned enum_base;        /* ENUM: stored value is the index plus this */
    const char *const *later;  /* ENUM: values planned but not supported yet */
    const char *noun;          /* NAMED/LIST: what one element is ("listener") */
    const char *ref;           /* REF: the top-level NAMED key it names */
    const char *shorthand;     /* LIST: the key a scalar item stands for */
    conf_check_cb check;       /* STRING, NAMED names */
    conf_finish_cb finish;     /* MAP/NAMED/LIST: per object */
    conf_parse_cb parse;       /* CUSTOM */
    const char *doc_type;      /* CUSTOM: the type as the docs name it */
    const char *expect;        /* CUSTOM: "an HTTP status like 200 or a range like 200-399" */
    const char *doc_example;   /* docs: a value to show for keys without a default */
    const char *help;
};

/* The whole file: a MAP whose sub is the top-level table. */
extern const conf_key_t conf_root;

/* Key-type wording shared by messages and the docs. */
typedef struct {
    const char *doc;    /* "duration" */
    const char *expect; /* "a duration like 2s or 250ms" */
} conf_type_info_t;
extern const conf_type_info_t conf_type_info[CONF_T_COUNT_];

const conf_key_t *conf_key_find(const conf_key_t *keys, const char *name, size_t len);

/* ---- the load context (conf.c, walk.c, check.c). */
/* What a mark is about: a value, an element (which shares its address with
 * its first field), or a MAP key (at the field its table row names). */
enum {
    CONF_MARK_VALUE = 0,
    CONF_MARK_ELEM = 1,
    CONF_MARK_MAP = 2,
};

typedef struct {
    const void *field; /* address of a stored value or of an element */
    int kind;          /* CONF_MARK_* */
    conf_mark_t mark;
} conf_markrec_t;

typedef struct conf_ref {
    struct conf_ref *next;
    size_t *target;
    const char *name;
    const char *owner; /* "route 0 of listener 'web'" */
    const conf_key_t *key;
    conf_mark_t mark;
} conf_ref_t;

typedef struct conf_finish {
    struct conf_finish *next;
    conf_finish_cb cb;
    const char *path;
    void *obj;
    conf_mark_t where;
} conf_finish_t;

struct conf_ctx {
    conf_diag_t diag;
    conf_arena_t *arena; /* the conf_t's family */
    conf_arena_t *tmp;   /* the tree and bookkeeping of this load */
    conf_t *conf;
    conf_markrec_t *marks; /* where each value written in the file went */
    size_t nmarks, capmarks;
    bool marks_sorted;
    conf_ref_t *refs, **refs_tail;
    conf_finish_t *finish, **finish_tail; /* queued by the walk, run at its end */
    bool nomem;
};

void conf_ctx_error(conf_ctx_t *ctx, conf_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void conf_ctx_nomem(conf_ctx_t *ctx);
/* Remembers that the value at field (kind CONF_MARK_VALUE; false), the
 * array element at that address (CONF_MARK_ELEM; true) or the map key
 * whose row names that field (CONF_MARK_MAP) came from m, for checks that
 * run later. */
void conf_ctx_mark(conf_ctx_t *ctx, const void *field, int kind, conf_mark_t m);
/* Where the value at field (or the element, or the map) was written: true
 * and *ret, or false when it is a default. */
bool conf_ctx_mark_find(conf_ctx_t *ctx, const void *field, int kind, conf_mark_t *ret);

/* walk.c: applies conf_root to root (NULL: an empty document). */
void conf_walk(conf_ctx_t *ctx, const conf_node_t *root);

/* check.c: hooks named by the table, and the rules across the whole file. */
void conf_check_name(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_check_host(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_check_path(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_check_token(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_check_health_path(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_parse_hash(conf_ctx_t *ctx, const char *path, const conf_key_t *k, const conf_node_t *v,
                     const char *s, size_t len, void *obj);
void conf_parse_status_range(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                             const conf_node_t *v, const char *s, size_t len, void *obj);
void conf_check_cidr(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_parse_rate_key(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                         const conf_node_t *v, const char *s, size_t len, void *obj);
void conf_finish_shield(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where);
void conf_finish_root(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where);
void conf_finish_listener(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where);
void conf_finish_pool(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where);
/* "2s" rather than "2000ms" when it is exact, as a file would say it. */
void conf_duration_format(uint64_t ms, char *out, size_t n);
/* Two durations of one object where *a must be below (strict) or at most
 * *b: reported at whichever was written, a if both. */
void conf_check_order(conf_ctx_t *ctx, const char *path, conf_mark_t where, const uint64_t *a,
                      const char *aname, const uint64_t *b, const char *bname, bool strict);

/* check_slo.c: the monitoring keys (monitors, objectives, alerts,
 * maintenance). */
void conf_check_http_url(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_check_smtp_url(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_check_host_port(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_check_dns_name(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_check_email(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m);
void conf_parse_slo_source(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                           const conf_node_t *v, const char *s, size_t len, void *obj);
void conf_parse_timestamp(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                          const conf_node_t *v, const char *s, size_t len, void *obj);
void conf_finish_monitor(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where);
void conf_finish_objective(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where);
void conf_finish_alert(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where);
void conf_finish_maintenance(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where);
/* Resolves each objective's source against the listeners, routes and
 * monitors, and checks a gateway latency threshold against the histogram
 * bounds. Runs in conf_check_all, once names are known. */
void conf_check_objectives(conf_ctx_t *ctx);

/* Dangling names, backup pools that loop, and addresses used twice. Runs
 * after conf_walk. */
void conf_check_all(conf_ctx_t *ctx);
/* Calls dup(first, j, dup_arg) for every element j of [0, n) that cmp
 * finds equal to an earlier one (first: the earliest of them), in
 * O(n log n) rather than comparing every pair. 0 or -ENOMEM. */
int conf_find_duplicates(size_t n, int (*cmp)(size_t a, size_t b, void *arg), void *arg,
                         void (*dup)(size_t first, size_t j, void *dup_arg), void *dup_arg);

/* doc.c: the examples shown in the docs, which a unit test loads: the
 * complete example (good), and a file with mistakes with its errors when
 * it is called surety.yaml. */
extern const char conf_doc_example[];
extern const char conf_doc_bad_example[];
extern const char conf_doc_bad_errors[];

#endif

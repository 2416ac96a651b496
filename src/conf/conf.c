/* Loading a configuration generation, and its reference count.
 *
 * conf_load_string runs the passes in order (YAML tree, key walk, checks
 * across keys) with every message collected, and hands out the conf_t only
 * if none was reported: a generation is complete or does not exist. The
 * conf_t and everything it points to live in one arena, so the last
 * conf_unref frees a whole generation at once, on whichever thread drops
 * it. */
#include "conf/conf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void conf_ctx_error(conf_ctx_t *ctx, conf_mark_t m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_diag_vadd(&ctx->diag, m, fmt, ap);
    va_end(ap);
}

void conf_ctx_nomem(conf_ctx_t *ctx)
{
    ctx->nomem = true;
}

/* Positions are kept beside the conf_t, not in it: the proxy's structs
 * stay as the contract says, and the checks that run after the walk (names
 * that point elsewhere, addresses used twice) look the position up by the
 * address of the value they object to. */
void conf_ctx_mark(conf_ctx_t *ctx, const void *field, int kind, conf_mark_t m)
{
    if (ctx->nmarks == ctx->capmarks) {
        size_t cap = ctx->capmarks ? ctx->capmarks * 2 : 256;
        conf_markrec_t *v = realloc(ctx->marks, cap * sizeof(*v));
        if (!v) {
            conf_ctx_nomem(ctx);
            return;
        }
        ctx->marks = v;
        ctx->capmarks = cap;
    }
    ctx->marks[ctx->nmarks++] = (conf_markrec_t){field, kind, m};
    ctx->marks_sorted = false;
}

static int markrec_cmp(const void *a, const void *b)
{
    const conf_markrec_t *x = a, *y = b;
    uintptr_t fx = (uintptr_t)x->field, fy = (uintptr_t)y->field;
    if (fx != fy)
        return fx < fy ? -1 : 1;
    return x->kind - y->kind;
}

bool conf_ctx_mark_find(conf_ctx_t *ctx, const void *field, int kind, conf_mark_t *ret)
{
    if (!ctx->marks_sorted && ctx->nmarks) {
        qsort(ctx->marks, ctx->nmarks, sizeof(*ctx->marks), markrec_cmp);
        ctx->marks_sorted = true;
    }
    conf_markrec_t key = {field, kind, {0, 0}};
    const conf_markrec_t *r =
        ctx->nmarks ? bsearch(&key, ctx->marks, ctx->nmarks, sizeof(key), markrec_cmp) : NULL;
    if (!r)
        return false;
    *ret = r->mark;
    return true;
}

/* Reads a whole file, at most CONF_MAX_INPUT bytes. 0 or -errno (-EFBIG
 * when larger); *ret_text is malloc'd, freed by the caller. */
static int read_file(const char *path, char **ret_text, size_t *ret_len)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0, cap;
    int r, fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        r = -EISDIR;
        goto out;
    }
    /* The size is a hint only: pipes say 0, files may grow while read. */
    cap = st.st_size > 0 && (uint64_t)st.st_size < CONF_MAX_INPUT ? (size_t)st.st_size + 1 : 4096;
    if (!(buf = malloc(cap))) {
        r = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (len == cap) {
            char *nb;
            if (cap > CONF_MAX_INPUT) {
                r = -EFBIG;
                goto out;
            }
            cap *= 2;
            if (!(nb = realloc(buf, cap))) {
                r = -ENOMEM;
                goto out;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CONF_MAX_INPUT) {
        r = -EFBIG;
        goto out;
    }
    *ret_text = buf;
    *ret_len = len;
    buf = NULL;
    r = 0;
out:
    free(buf);
    close(fd);
    return r;
}

conf_t *conf_load(const char *path, FILE *errs)
{
    char *text = NULL;
    size_t len = 0;
    int r = read_file(path, &text, &len);

    if (r == -EFBIG) {
        if (errs)
            fprintf(errs, "%s: cannot read: larger than %u MiB\n", path, CONF_MAX_INPUT >> 20);
        return NULL;
    }
    if (r < 0) {
        if (errs)
            fprintf(errs, "%s: cannot read: %s\n", path, strerror(-r));
        return NULL;
    }
    conf_t *c = conf_load_string(path, text, len, errs);
    free(text);
    return c;
}

conf_t *conf_load_string(const char *name, const char *text, size_t len, FILE *errs)
{
    conf_ctx_t ctx = {0};
    conf_node_t *root = NULL;
    conf_t *c = NULL;

    if (!name)
        name = "<string>";
    conf_diag_init(&ctx.diag, name);
    ctx.refs_tail = &ctx.refs;
    ctx.finish_tail = &ctx.finish;
    ctx.arena = conf_arena_new();
    ctx.tmp = conf_arena_new();
    if (!ctx.arena || !ctx.tmp) {
        ctx.nomem = true;
        goto out;
    }
    if (len > CONF_MAX_INPUT) {
        conf_ctx_error(&ctx, (conf_mark_t){0, 0}, "cannot read: larger than %u MiB",
                       CONF_MAX_INPUT >> 20);
        goto out;
    }
    int r = conf_yaml_parse(text ? text : "", text ? len : 0, ctx.tmp, &ctx.diag, &root);
    if (r == -ENOMEM)
        ctx.nomem = true;
    if (r < 0)
        goto out;
    ctx.conf = conf_arena_alloc(ctx.arena, sizeof(*ctx.conf));
    if (!ctx.conf || !(ctx.conf->path = conf_arena_strndup(ctx.arena, name, strlen(name)))) {
        ctx.nomem = true;
        goto out;
    }
    conf_walk(&ctx, root);
    /* Checks across keys read what the walk built; after an allocation
     * failure that may be half-built, and the load fails anyway. */
    if (!ctx.nomem)
        conf_check_all(&ctx);
out:
    if (ctx.nomem)
        conf_ctx_error(&ctx, (conf_mark_t){0, 0}, "out of memory");
    if (!conf_diag_failed(&ctx.diag)) {
        c = ctx.conf;
        c->refs = 1;
        c->arena = ctx.arena;
        ctx.arena = NULL;
    }
    conf_diag_write(&ctx.diag, errs);
    conf_diag_deinit(&ctx.diag);
    conf_arena_free(ctx.arena);
    conf_arena_free(ctx.tmp);
    free(ctx.marks);
    return c;
}

conf_t *conf_ref(conf_t *c)
{
    /* Taking a reference needs no ordering: the caller already holds one
     * (or read the pointer with acquire), so the generation is visible. */
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void conf_unref(conf_t *c)
{
    if (!c)
        return;
    /* Release our reads before the count drops; the thread that frees
     * acquires everyone else's. */
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        conf_arena_free(c->arena); /* c itself lives in it */
}

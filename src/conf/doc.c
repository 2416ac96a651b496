/* The configuration reference, docs/configuration.md, written from the key
 * table so that the documented keys, types, defaults, limits and help are
 * exactly what the loader applies (STYLE 4). `surety config-doc` and
 * scripts/gen-config-doc.sh print it; a unit test fails when the committed
 * file differs from this output, and another loads the example below. */
#include "conf/conf_int.h"

#include <string.h>

const char conf_doc_example[] =
    "# Every key of this version; most are at their defaults and may be left out.\n"
    "workers: auto\n"
    "max_connections: 10000\n"
    "buffer_size: 16k\n"
    "drain_timeout: 30s\n"
    "admin:\n"
    "  listen: 127.0.0.1:9090          # /metrics /healthz /api/v1/...\n"
    "log:\n"
    "  access: var/access.log          # JSON lines; \"-\" for stdout; off\n"
    "  client_ip: truncate\n"
    "  query: false\n"
    "  security: var/security.log       # JSON lines; \"-\" for stdout; off\n"
    "data_dir: var                      # bans live here\n"
    "security: { waf_threads: 2, waf_queue: 1024, events: 1000, nftables_table: surety }\n"
    "listeners:\n"
    "  web:\n"
    "    listen: 0.0.0.0:8080\n"
    "    timeouts: { header: 10s, idle: 60s, client: 60s }\n"
    "    limits: { uri: 8k, headers: 100, header_bytes: 32k }\n"
    "    shield: default                 # a key of shield:\n"
    "    tls:                            # HTTPS; without it, plain HTTP\n"
    "      cert: etc/tls/site.crt        # leaf, then intermediates\n"
    "      key: etc/tls/site.key\n"
    "      certificates: [ { cert: etc/tls/api.crt, key: etc/tls/api.key } ]   # by SNI\n"
    "      profile: intermediate         # intermediate | modern (TLS 1.3 only)\n"
    "      min_version: \"1.2\"\n"
    "      allow_legacy: false\n"
    "      ticket_rotate: 12h\n"
    "    routes:\n"
    "      - { name: api, host: api.example.com, path: /v1/, pool: api, shield: api }\n"
    "      - { name: assets, host: \"*.example.com\", path: /static/, pool: site }\n"
    "      - { pool: site }                # no host or path: everything else\n"
    "pools:\n"
    "  site:\n"
    "    balance: round-robin            # round-robin | least-conn | p2c-ewma | hash\n"
    "    servers:\n"
    "      - 127.0.0.1:9001\n"
    "      - { address: 127.0.0.1:9002, weight: 3 }\n"
    "    slow_start: 0\n"
    "    timeouts: { connect: 3s, response: 30s, keepalive: 60s }\n"
    "    keepalive: 256\n"
    "    backup: site-dr                 # disaster-recovery pool\n"
    "    failover: { min_healthy: 1, failback_after: 30s }\n"
    "    health:\n"
    "      type: http                    # http | tcp\n"
    "      method: GET\n"
    "      path: /healthz\n"
    "      host: www.example.com\n"
    "      expect: 200-399               # or one code: 200\n"
    "      body: ok\n"
    "      interval: 2s\n"
    "      timeout: 1s\n"
    "      rise: 2\n"
    "      fall: 3\n"
    "    outlier: { consecutive_errors: 5, ejection: 30s, max_ejection: 5m, max_ejected: 50% }\n"
    "    retry:\n"
    "      attempts: 2\n"
    "      budget: 20%\n"
    "      budget_min: 3\n"
    "      on: [ connect, reset, 502, 503, 504 ]\n"
    "      non_idempotent: false\n"
    "      body: 64k\n"
    "  api:\n"
    "    balance: hash\n"
    "    hash: header:X-User             # source | header:NAME | cookie:NAME\n"
    "    servers: [ \"[::1]:9101\" ]\n"
    "    health: { type: tcp }\n"
    "  site-dr:\n"
    "    servers: [ 127.0.0.1:9201 ]\n"
    "shield:\n"
    "  default:\n"
    "    deny: [ 203.0.113.0/24, \"2001:db8:bad::/48\" ]   # or \"@etc/deny.txt\"\n"
    "    connections: { per_ip: 100, rate: 50/s, burst: 0, max: 0, table: 100000 }\n"
    "    rate: { limit: 100/s, burst: 200, key: source, table: 100000 }\n"
    "    limits: { body: 10m, body_rate: 1k }\n"
    "    waf:\n"
    "      rules: /usr/share/modsecurity-crs\n"
    "      paranoia: 1\n"
    "      mode: block                   # block | detect\n"
    "      anomaly_threshold: 5\n"
    "      body: 64k\n"
    "    ban: { after: 20, within: 1m, for: 10m, max: 1d, nftables: false }\n"
    "  api:\n"
    "    allow: [ 10.0.0.0/8, \"::1\" ]\n"
    "    methods: [ GET, POST ]\n"
    "    rate: { limit: 6000/m, key: \"header:X-Api-Key\" }\n"
    "store:\n"
    "  sqlite: var/surety.db            # default: surety.db in data_dir\n"
    "  sync: normal                     # normal | full\n"
    "  queue: 65536\n"
    "  retention: { raw: 2d, minute: 14d, hour: 90d, day: 1095d, probes: 14d, events: 400d,\n"
    "               deliveries: 30d }\n"
    "monitors:\n"
    "  homepage:\n"
    "    http: \"https://www.example.com/\"  # or tcp: \"host:port\", or dns: NAME\n"
    "    expect: 200\n"
    "    body: Welcome\n"
    "    latency: 2s\n"
    "    cert_days: 14\n"
    "    interval: 30s\n"
    "    timeout: 5s\n"
    "    down_after: 2\n"
    "    up_after: 2\n"
    "  database: { tcp: \"db.example.com:5432\", interval: 10s }\n"
    "  resolver: { dns: www.example.com }\n"
    "objectives:\n"
    "  availability:\n"
    "    source: listener:web            # listener:NAME | route:LISTENER/ROUTE | monitor:NAME\n"
    "    kind: availability              # availability | latency\n"
    "    target: 99.9%\n"
    "    window: 30d\n"
    "    maintenance_counts: false\n"
    "    alerts: [ ops ]                 # default: every alert\n"
    "  api-latency: { source: route:web/api, kind: latency, threshold: 300ms, target: 99%, "
    "window: 7d }\n"
    "  homepage: { source: monitor:homepage, kind: availability, target: 99.5% }\n"
    "alerts:\n"
    "  ops:\n"
    "    email:\n"
    "      to: [ ops@example.com ]\n"
    "      from: surety@example.com\n"
    "      smtp: smtp://127.0.0.1:25     # smtps:// for TLS from the start\n"
    "      # username: surety            # with password_file: etc/smtp.password\n"
    "    repeat: 4h\n"
    "    group_wait: 30s\n"
    "  # hook: { webhook: \"https://hooks.example.com/surety\", secret_file: etc/hook.secret }\n"
    "maintenance:\n"
    "  upgrade: { start: \"2026-12-01T02:00:00Z\", end: \"2026-12-01T03:00:00Z\", "
    "objectives: [ availability ] }\n";

/* A file with two mistakes, and what `surety check` says about it. */
const char conf_doc_bad_example[] = "listeners:\n"
                                    "  web:\n"
                                    "    listen: 0.0.0.0:8080\n"
                                    "    timeouts: { header: fast }\n"
                                    "    routes:\n"
                                    "      - { path: /v1/, pool: api }\n"
                                    "pools:\n"
                                    "  site:\n"
                                    "    servers: [ 127.0.0.1:9001 ]\n";
const char conf_doc_bad_errors[] =
    "surety.yaml:4:25: listeners.web.timeouts.header: expected a duration like 2s or 250ms, "
    "got 'fast'\n"
    "surety.yaml:6:29: route 0 of listener 'web' names pool 'api', which does not exist; "
    "pools are: site\n";

static const char intro[] =
    "# Configuration reference\n"
    "\n"
    "<!-- Generated from the key table in src/conf/schema.c by `surety config-doc`\n"
    "     (scripts/gen-config-doc.sh). Do not edit by hand: a unit test compares. -->\n"
    "\n"
    "Surety reads one YAML file (`surety run -c surety.yaml`). The file is checked as a "
    "whole before anything uses it: `surety check -c FILE` (and a reload) reports every "
    "error it finds, each as `FILE:LINE:COL: message` pointing at the key or value at "
    "fault, and a file with any error is never applied, not even in part. Unknown keys are "
    "errors (with a suggestion when the key looks like a typo), and so are keys that are "
    "planned but not in this version (see [Not supported yet](#not-supported-yet)). A key "
    "whose value is empty or `null` is the same as a key left out. Named things (listeners, "
    "pools) are YAML maps keyed by name. JSON is YAML too: a generated configuration may be "
    "written as JSON. The file is UTF-8 text, one document, with no control characters "
    "outside escapes, and with spaces rather than a tab between a `:` and an indicator that "
    "follows it (`-`, `?`, `:`, `|`, `>`).\n"
    "\n"
    "## Value syntax\n"
    "\n"
    "- **Duration**: `0`, or a whole number and one unit: `ms`, `s`, `m` (minutes), `h`, `d`. "
    "`250ms`, `2s`, `5m`, `1h`, `30d`. No fractions, spaces or combined units.\n"
    "- **Size**: bytes, a whole number with an optional `k`, `m` or `g` (also upper case), "
    "powers of 1024. `512`, `16k`, `8m`, `1g`.\n"
    "- **Percentage**: a number from 0 to 100 with at most 4 decimals, then `%`. `99.9%`.\n"
    "- **Rate**: a whole number, `/`, and one unit `s`, `m` or `h`. `100/s`, `6000/m`.\n"
    "- **Address**: numeric IP and port: `127.0.0.1:8080`, `[::1]:8080`, or `:8080` for "
    "every IPv4 address. Host names are not resolved; port 0 is not allowed.\n"
    "- **Integer**: decimal digits.\n"
    "- **Boolean**: `true` or `false`.\n"
    "- **Name** (of a listener, a pool or a route): 1 to 64 of `A-Z a-z 0-9 _ . -`.\n"
    "\n"
    "## Errors\n"
    "\n"
    "One line per error, in the order they appear in the file: `FILE:LINE:COL: message`, "
    "with LINE and COL counted from 1. An error about a missing key points at the key of the "
    "map that lacks it. An error about the file as a whole has no position: "
    "`FILE: cannot read: No such file or directory`. After 1000 errors the rest are counted "
    "in a last line. For this `surety.yaml`:\n"
    "\n";

/* Indents each line of text by four spaces: a Markdown code block. */
static void block_put(FILE *out, const char *text)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(out, "    %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

static void type_put(FILE *out, const conf_key_t *k)
{
    switch (k->type) {
    case CONF_T_ENUM:
        fprintf(out, "one of");
        for (size_t i = 0; k->values[i]; i++)
            fprintf(out, "%s `%s`", i ? "," : "", k->values[i]);
        if (k->later && k->later[0]) {
            fprintf(out, " (planned, not supported yet:");
            for (size_t i = 0; k->later[i]; i++)
                fprintf(out, "%s `%s`", i ? "," : "", k->later[i]);
            fprintf(out, ")");
        }
        break;
    case CONF_T_FLAGS:
        fprintf(out, "list, each one of");
        for (size_t i = 0; k->values[i]; i++)
            fprintf(out, "%s `%s`", i ? "," : "", k->values[i]);
        break;
    case CONF_T_CUSTOM:
        fprintf(out, "%s", k->doc_type);
        break;
    case CONF_T_NAMED:
        fprintf(out, "map of name to %s", k->noun);
        break;
    case CONF_T_LIST:
        fprintf(out, "list of %ss", k->noun);
        if (k->shorthand)
            fprintf(out, " (each a map, or just its `%s`)", k->shorthand);
        break;
    case CONF_T_REF: {
        const conf_key_t *t = conf_key_find(conf_root.sub, k->ref, strlen(k->ref));
        fprintf(out, "name of a %s", t ? t->noun : k->ref);
        break;
    }
    default:
        fprintf(out, "%s", conf_type_info[k->type].doc);
        if (k->flags & CONF_F_AUTO)
            fprintf(out, " or `auto`");
        if (k->flags & CONF_F_OFF)
            fprintf(out, " or `off`");
        break;
    }
}

static void key_put(FILE *out, const char *path, const conf_key_t *k)
{
    fprintf(out, "\n### `%s`\n\n- Type: ", path);
    type_put(out, k);
    fprintf(out, "\n");
    if (k->flags & CONF_F_REQUIRED)
        fprintf(out, "- Required\n");
    else if (k->flags & CONF_F_INDEX_NAME)
        fprintf(out, "- Default: its position in the list, from `0`\n");
    else if (k->def)
        fprintf(out, "- Default: `%s`\n", k->def);
    else if (k->type != CONF_T_MAP)
        fprintf(out, "- Default: none\n");
    if (k->type == CONF_T_NAMED || k->type == CONF_T_LIST) {
        if (k->min && k->max)
            fprintf(out, "- Entries: %s to %s\n", k->min, k->max);
        else if (k->min)
            fprintf(out, "- Entries: at least %s\n", k->min);
        else if (k->max)
            fprintf(out, "- Entries: at most %s\n", k->max);
    } else if (k->min && k->max) {
        fprintf(out, "- Allowed: `%s` to `%s`\n", k->min, k->max);
    } else if (k->min) {
        fprintf(out, "- Allowed: at least `%s`\n", k->min);
    } else if (k->max) {
        fprintf(out, "- Allowed: at most `%s`\n", k->max);
    }
    if (k->doc_example)
        fprintf(out, "- Example: `%s`\n", k->doc_example);
    fprintf(out, "\n%s\n", k->help);
}

/* Depth-first, in table order, so the reference reads like a file. */
static void keys_put(FILE *out, const char *prefix, const conf_key_t *keys)
{
    char path[256];
    for (const conf_key_t *k = keys; k->name; k++) {
        if (k->type == CONF_T_LATER)
            continue;
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", k->name);
        key_put(out, path, k);
        if (k->type == CONF_T_MAP) {
            keys_put(out, path, k->sub);
        } else if (k->type == CONF_T_NAMED || k->type == CONF_T_LIST) {
            char sub[sizeof(path) + 8];
            snprintf(sub, sizeof(sub), "%s%s", path, k->type == CONF_T_NAMED ? ".<name>" : "[]");
            keys_put(out, sub, k->sub);
        }
    }
}

/* A level's own planned keys first, then those of the objects below. */
static void later_put(FILE *out, const char *prefix, const conf_key_t *keys)
{
    char path[256];
    for (const conf_key_t *k = keys; k->name; k++)
        if (k->type == CONF_T_LATER)
            fprintf(out, "- `%s%s%s`: %s\n", prefix, *prefix ? "." : "", k->name, k->help);
    for (const conf_key_t *k = keys; k->name; k++) {
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", k->name);
        if (k->type == CONF_T_MAP) {
            later_put(out, path, k->sub);
        } else if (k->type == CONF_T_NAMED || k->type == CONF_T_LIST) {
            char sub[sizeof(path) + 8];
            snprintf(sub, sizeof(sub), "%s%s", path, k->type == CONF_T_NAMED ? ".<name>" : "[]");
            later_put(out, sub, k->sub);
        }
    }
}

void conf_doc_write(FILE *out)
{
    fputs(intro, out);
    block_put(out, conf_doc_bad_example);
    fputs("\nthe errors are:\n\n", out);
    block_put(out, conf_doc_bad_errors);
    fputs("\n## Keys\n", out);
    keys_put(out, "", conf_root.sub);
    fputs("\n## Not supported yet\n\n"
          "These keys are part of Surety's design but not of this version; a file that uses "
          "one is refused with \"'KEY' is not supported yet in this version\".\n\n",
          out);
    later_put(out, "", conf_root.sub);
    fprintf(out, "\n## Complete example\n\n```yaml\n%s```\n", conf_doc_example);
}

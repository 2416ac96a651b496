/* surety: subcommand dispatch. Each subcommand is a row of one static table
 * (name, handler, usage, help), from which `surety help` is printed. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "admin/cli.h"
#include "admin/control.h"
#include "admin/watch.h"
#include "conf/conf.h"
#include "core/log.h"
#include "gateway/gateway.h"
#include "monitor/slo_export.h"

#ifndef SURETY_VERSION
#define SURETY_VERSION "dev"
#endif

#define DEFAULT_CONFIG "etc/surety.yaml"

typedef struct {
    const char *config;
    bool verbose;
} opts_t;

typedef int (*cmd_fn)(const opts_t *o);

static int cmd_run(const opts_t *o);
static int cmd_check(const opts_t *o);
static int cmd_config_doc(const opts_t *o);
static int cmd_status(const opts_t *o);
static int cmd_reload(const opts_t *o);
static int cmd_version(const opts_t *o);
static int cmd_help(const opts_t *o);

static const struct {
    const char *name;
    cmd_fn fn;
    const char *help; /* NULL: hidden */
} commands[] = {
    {"run", cmd_run, "run everything the configuration describes, in the foreground"},
    {"check", cmd_check, "validate the configuration; errors as FILE:LINE:COL: message"},
    {"reload", cmd_reload, "validate, then make the running instance reload the file"},
    {"status", cmd_status,
     "what the running instance reports: pools, servers, failover, objectives, monitors"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "this text"},
    {"config-doc", cmd_config_doc, NULL},
};

static int cmd_help(const opts_t *o)
{
    (void)o;
    printf("usage: surety COMMAND [-c FILE] [-v]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].help)
            printf("  %-10s %s\n", commands[i].name, commands[i].help);
    printf("  %-10s %s\n", "slo",
           "export --prometheus [-c FILE]: the objectives' alerts as "
           "Prometheus rules (docs/slo.md)");
    printf("\noptions:\n  -c FILE    configuration file (default %s)\n"
           "  -v         verbose diagnostics (debug level)\n",
           DEFAULT_CONFIG);
    return 0;
}

static int cmd_version(const opts_t *o)
{
    (void)o;
    printf("surety %s\n", SURETY_VERSION);
    return 0;
}

static int cmd_config_doc(const opts_t *o)
{
    (void)o;
    conf_doc_write(stdout);
    return 0;
}

static int cmd_check(const opts_t *o)
{
    conf_t *conf = conf_load(o->config, stderr);
    if (!conf)
        return 1;
    /* what only reading other files tells: @lists, WAF rules */
    shield_gen_t *sg = shield_gen_new(NULL, conf, stderr);
    tls_server_t *admin_tls = NULL;
    int bad = !sg;
    bad |= gateway_check_tls(conf, stderr) < 0;
    bad |= control_admin_tls_new(conf, &admin_tls, stderr) < 0;
    shield_gen_free(sg);
    tls_server_free(admin_tls);
    if (bad) {
        conf_unref(conf);
        return 1;
    }
    printf("%s: ok (%zu listeners, %zu pools, %zu shield policies, %u workers)\n", o->config,
           conf->nlisteners, conf->npools, conf->nshields, conf->workers);
    conf_unref(conf);
    return 0;
}

static int cmd_status(const opts_t *o)
{
    conf_t *conf = conf_load(o->config, stderr);
    if (!conf)
        return 1;
    int rc = 1;
    if (!conf->admin_enabled) {
        fprintf(stderr, "surety status: %s has admin.listen off: nothing to ask\n", o->config);
        goto out;
    }
    int status = admin_cli_request(conf, "GET", "/api/v1/pools?format=text", stdout);
    if (status == 200 && (conf->nobjectives || conf->nmonitors))
        status = admin_cli_request(conf, "GET", "/api/v1/objectives?format=text", stdout);
    if (status == -EPROTO)
        fprintf(stderr, "surety status: the admin listener on %s refused the TLS session\n",
                conf->admin_listen);
    else if (status < 0)
        fprintf(stderr, "surety status: cannot reach the admin listener on %s: %s (is surety "
                        "running with this file?)\n",
                conf->admin_listen, strerror(-status));
    else if (status != 200)
        fprintf(stderr, "surety status: the admin listener answered %d\n", status);
    else
        rc = 0;
out:
    conf_unref(conf);
    return rc;
}

/* GET /api/v1/reload: the generation and outcome of the latest reload. */
static int reload_state(const conf_t *conf, json_int_t *ret_gen, bool *ret_ok, char **ret_errors)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return -ENOMEM;
    int status = admin_cli_request(conf, "GET", "/api/v1/reload", mem);
    fclose(mem);
    int rc = status == 200 ? 0 : status < 0 ? status : -EPROTO;
    json_t *o = rc == 0 ? json_loads(text, 0, NULL) : NULL;
    if (rc == 0 && !o)
        rc = -EPROTO;
    if (o) {
        *ret_gen = json_integer_value(json_object_get(o, "generation"));
        *ret_ok = json_is_true(json_object_get(o, "ok"));
        *ret_errors = strdup(json_string_value(json_object_get(o, "errors")) ?: "");
        json_decref(o);
    }
    free(text);
    return rc;
}

static int cmd_reload(const opts_t *o)
{
    conf_t *conf = conf_load(o->config, stderr);
    if (!conf)
        return 1; /* the running instance is not asked: it keeps serving as it is */
    int rc = 1;
    json_int_t gen0 = 0, gen = 0;
    bool ok = false;
    char *errors = NULL;
    if (!conf->admin_enabled) {
        fprintf(stderr, "surety reload: admin.listen is off: send SIGHUP to the process instead\n");
        goto out;
    }
    int r = reload_state(conf, &gen0, &ok, &errors);
    free(errors);
    errors = NULL;
    if (r < 0 || admin_cli_request(conf, "POST", "/api/v1/reload", NULL) != 202) {
        fprintf(stderr, "surety reload: cannot reach the admin listener on %s: %s\n",
                conf->admin_listen, strerror(r < 0 ? -r : EPROTO));
        goto out;
    }
    /* the running instance reloads asynchronously: wait for its verdict */
    gen = gen0;
    for (int i = 0; i < 100; i++) {
        usleep(100 * 1000);
        free(errors);
        errors = NULL;
        r = reload_state(conf, &gen, &ok, &errors);
        if (r == -EPROTO) {
            /* the reload changed the admin listener's TLS under us: the new
             * file's settings are not the ones it answered with before */
            fprintf(stderr, "surety reload: requested, but the admin listener now refuses this "
                            "client (admin.tls changed?); check with `surety status`\n");
            goto out;
        }
        if (r == 0 && (gen != gen0 || !ok))
            break;
    }
    if (gen != gen0 && ok) {
        printf("reloaded: generation %lld\n", (long long)gen);
        rc = 0;
    } else if (!ok) {
        fprintf(stderr, "surety reload: the running instance refused the file:\n%s", errors);
    } else {
        fprintf(stderr, "surety reload: no answer from the running instance within 10 s\n");
    }
out:
    free(errors);
    conf_unref(conf);
    return rc;
}

/* Connections cost descriptors: take all the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* SIGHUP: load and validate the file again; a good one becomes the next
 * generation, a bad one changes nothing and its errors are logged and kept
 * for `surety reload` to show. */
static void reload(gateway_t *g, control_t *ctl, const char *path)
{
    char *errs = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&errs, &len);
    if (!mem) {
        log_error("reload: out of memory");
        return;
    }
    conf_t *conf = conf_load(path, mem);
    tls_server_t *admin_tls = NULL;
    int r = conf ? control_admin_tls_new(conf, &admin_tls, mem) : -EINVAL;
    if (r == 0)
        r = gateway_reload(g, conf, mem);
    fclose(mem);
    if (r == 0) {
        control_reload(ctl, conf, gateway_state(g), admin_tls);
        control_reload_result(ctl, gateway_generation(g), true, "");
        log_info("reload: %s applied (generation %llu, %u workers, %zu listeners, %zu pools)",
                 path, (unsigned long long)gateway_generation(g), conf->workers,
                 conf->nlisteners, conf->npools);
    } else {
        tls_server_free(admin_tls);
        control_reload_result(ctl, gateway_generation(g), false, errs && len ? errs : "");
        log_error("reload: %s refused; still serving the previous configuration:", path);
        for (char *line = strtok(errs, "\n"); line; line = strtok(NULL, "\n"))
            log_error("  %s", line);
    }
    conf_unref(conf);
    free(errs);
}

static int cmd_run(const opts_t *o)
{
    int rc = 1;
    gateway_t *g = NULL;
    control_t *ctl = NULL;
    store_t *store = NULL;
    sigset_t set;

    conf_t *conf = conf_load(o->config, stderr);
    if (!conf)
        return 1;
    raise_fd_limit();
    /* Every thread inherits this mask: signals are taken here, by sigwait. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* libcurl's global state (probes, alerts): once, before any thread */
    curl_global_init(CURL_GLOBAL_DEFAULT);

    g = gateway_new(conf, stderr);
    if (!g)
        goto out;
    store = watch_store_open(conf, stderr);
    if (!store)
        goto out;
    ctl = control_new(conf, g, store, stderr);
    if (!ctl)
        goto out;
    if (gateway_start(g) < 0 || control_start(ctl) < 0) {
        log_error("cannot start threads");
        goto out;
    }
    for (size_t i = 0; i < conf->nlisteners; i++)
        log_info("listener %s on %s (%zu routes)", conf->listeners[i].name,
                 conf->listeners[i].listen, conf->listeners[i].nroutes);
    if (conf->admin_enabled)
        log_info("admin on %s://%s/ (/healthz, /metrics)%s",
                 conf->admin_tls.enabled ? "https" : "http", conf->admin_listen,
                 conf->admin_tls.client_ca ? ", client certificates required" : "");
    log_info("store %s; %zu objectives, %zu monitors, %zu alert receivers", conf->store.sqlite,
             conf->nobjectives, conf->nmonitors, conf->nalerts);
    log_info("surety %s running with %u workers (pid %d)", SURETY_VERSION, conf->workers,
             (int)getpid());

    for (;;) {
        /* wake twice a second to free generations that a reload retired */
        struct timespec tick = {0, 500 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &tick);
        gateway_reap(g, false);
        if (sig < 0) {
            /* an @file deny/allow list changed: policy updates without a signal */
            if (gateway_lists_changed(g)) {
                log_info("a shield list file changed: reloading %s", o->config);
                reload(g, ctl, o->config);
            }
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("%s: draining (up to %llu ms), then stopping", strsignal(sig),
                     (unsigned long long)gateway_conf(g)->drain_timeout_ms);
            break;
        }
        if (sig == SIGUSR1) {
            log_info("SIGUSR1: reopening the access log");
            gateway_reopen_logs(g);
        }
        if (sig == SIGHUP)
            reload(g, ctl, o->config);
    }
    gateway_drain(g);
    gateway_join(g);
    log_info("stopped");
    rc = 0;
out:
    if (ctl) {
        control_stop(ctl);
        control_free(ctl);
    }
    store_close(store); /* after the control thread: nothing writes any more */
    if (g && rc != 0) {
        gateway_drain(g);
        gateway_join(g);
    }
    gateway_free(g);
    conf_unref(conf);
    return rc;
}

/* `surety slo export --prometheus [-c FILE]`: the Prometheus recording and
 * alerting rules of the file's objectives on stdout (slo_export.h). Its
 * words and its long option do not fit the common -c/-v parsing, so main
 * hands it argv from "slo" on, before that parsing. 0; 1 for a bad file
 * (FILE:LINE:COL on stderr, nothing on stdout) or a failed write; 2 for a
 * usage error. */
static int cmd_slo(int argc, char **argv)
{
    static const char usage[] = "usage: surety slo export --prometheus [-c FILE]\n";
    static const struct option longopts[] = {
        {"prometheus", no_argument, NULL, 'P'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = DEFAULT_CONFIG;
    bool prometheus = false;
    if (argc < 2 || strcmp(argv[1], "export") != 0) {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            fputs(usage, stdout);
            return 0;
        }
        if (argc < 2)
            fprintf(stderr, "surety slo: missing command\n%s", usage);
        else
            fprintf(stderr, "surety slo: unknown command '%s'\n%s", argv[1], usage);
        return 2;
    }
    optind = 2;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'P':
            prometheus = true;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case ':':
            fprintf(stderr, "surety slo export: %s needs a FILE\n%s", argv[optind - 1], usage);
            return 2;
        default: /* optopt: the unknown short option; 0 for a long one */
            if (optopt)
                fprintf(stderr, "surety slo export: unknown option '-%c'\n%s", optopt, usage);
            else
                fprintf(stderr, "surety slo export: unknown option '%s'\n%s", argv[optind - 1],
                        usage);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "surety slo export: unexpected argument '%s'\n%s", argv[optind], usage);
        return 2;
    }
    if (!prometheus) {
        fprintf(stderr, "surety slo export: say which format: --prometheus (the only one)\n%s",
                usage);
        return 2;
    }
    conf_t *conf = conf_load(config, stderr);
    if (!conf)
        return 1;
    int r = slo_export_prometheus(conf, stdout);
    conf_unref(conf);
    if (r == 0 && fflush(stdout) != 0)
        r = -EIO;
    if (r < 0) {
        fprintf(stderr, "surety slo export: writing the rules: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o = {.config = DEFAULT_CONFIG};
    if (argc < 2) {
        cmd_help(&o);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help"))
        return cmd_help(&o);
    if (!strcmp(name, "--version"))
        return cmd_version(&o);
    if (!strcmp(name, "slo"))
        return cmd_slo(argc - 1, argv + 1);
    optind = 2;
    int opt;
    while ((opt = getopt(argc, argv, "c:vh")) != -1) {
        switch (opt) {
        case 'c':
            o.config = optarg;
            break;
        case 'v':
            o.verbose = true;
            break;
        case 'h':
            return cmd_help(&o);
        default:
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "surety: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    log_set_level(o.verbose ? LOG_DEBUG : LOG_INFO);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(commands[i].name, name))
            return commands[i].fn(&o);
    fprintf(stderr, "surety: unknown command '%s' (try 'surety help')\n", name);
    return 2;
}

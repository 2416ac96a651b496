/* surety: subcommand dispatch. Each subcommand is a row of one static table
 * (name, handler, usage, help), from which `surety help` is printed. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "admin/cli.h"
#include "admin/control.h"
#include "conf/conf.h"
#include "core/log.h"
#include "gateway/gateway.h"

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
static int cmd_version(const opts_t *o);
static int cmd_help(const opts_t *o);

static const struct {
    const char *name;
    cmd_fn fn;
    const char *help; /* NULL: hidden */
} commands[] = {
    {"run", cmd_run, "run everything the configuration describes, in the foreground"},
    {"check", cmd_check, "validate the configuration; errors as FILE:LINE:COL: message"},
    {"status", cmd_status, "what the running instance reports: pools, servers, failover"},
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
    printf("%s: ok (%zu listeners, %zu pools, %u workers)\n", o->config, conf->nlisteners,
           conf->npools, conf->workers);
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
    int status = admin_cli_request(&conf->admin_addr, "GET", "/api/v1/pools?format=text", stdout);
    if (status < 0)
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

/* Connections cost descriptors: take all the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int cmd_run(const opts_t *o)
{
    int rc = 1;
    gateway_t *g = NULL;
    control_t *ctl = NULL;
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

    g = gateway_new(conf, stderr);
    if (!g)
        goto out;
    ctl = control_new(conf, g, stderr);
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
        log_info("admin on http://%s/ (/healthz, /metrics)", conf->admin_listen);
    log_info("surety %s running with %u workers (pid %d)", SURETY_VERSION, conf->workers,
             (int)getpid());

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("%s: draining (up to %llu ms), then stopping", strsignal(sig),
                     (unsigned long long)conf->drain_timeout_ms);
            break;
        }
        if (sig == SIGUSR1) {
            log_info("SIGUSR1: reopening the access log");
            gateway_reopen_logs(g);
        }
        if (sig == SIGHUP)
            log_warn("SIGHUP: hot reload is not available in this version; restart to apply "
                     "a new configuration");
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
    if (g && rc != 0) {
        gateway_drain(g);
        gateway_join(g);
    }
    gateway_free(g);
    conf_unref(conf);
    return rc;
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

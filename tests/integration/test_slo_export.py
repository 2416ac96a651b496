"""`surety slo export --prometheus -c FILE`: the Prometheus rules Surety
exports for its objectives. `promtool check rules` accepts them, `promtool
test rules` shows their alerts fire on synthetic gateway metrics as the
burn-rate rules say (docs/slo.md), and a bad file or a bad command line is
refused without a rules file."""

import shutil
import subprocess
import textwrap

import pytest

import harness

CONFIG = """\
listeners:
  web:
    listen: 127.0.0.1:8080
    routes: [ { name: api, path: /api/, pool: site }, { pool: site } ]
pools:
  site:
    servers: [ 127.0.0.1:9001 ]
monitors:
  home: { http: "http://127.0.0.1:8080/" }
objectives:
  availability: { source: listener:web, kind: availability, target: 99.9%, window: 30d }
  latency: { source: listener:web, kind: latency, threshold: 300ms, target: 99%, window: 30d }
  api-week: { source: route:web/api, kind: latency, threshold: 1s, target: 99.5%, window: 7d }
  api-day: { source: route:web/api, kind: availability, target: 99.95%, window: 1d }
  probe: { source: monitor:home, kind: availability, target: 99%, alerts: [ ops ] }
alerts:
  ops: { webhook: "http://127.0.0.1:5000/hook", secret_file: SECRET }
"""


def promtool():
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool is missing: scripts/deps.sh test installs the prometheus package")
    return path


def slo_export(conf, *args):
    """Runs `surety slo export` with args, or `--prometheus -c conf`."""
    argv = [harness.surety_binary(), "slo", "export"] + (list(args) or ["--prometheus", "-c",
                                                                        str(conf)])
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          env=harness.sanitizer_env())


def write_conf(tmp_path, text):
    secret = tmp_path / "hook.secret"
    secret.write_text("k3y\n")
    conf = tmp_path / "surety.yaml"
    conf.write_text(text.replace("SECRET", str(secret)))
    return conf


def export(tmp_path, text):
    r = slo_export(write_conf(tmp_path, text))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    rules = tmp_path / "rules.yaml"
    rules.write_text(r.stdout)
    return rules


def test_exported_rules_pass_promtool_check(tmp_path):
    rules = export(tmp_path, CONFIG)
    r = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # 4 exported objectives, each 4 alerts, 1 budget and an error ratio per
    # distinct window: 7 each, but 6 for the 1d one (30m/30 and 5m/30 are
    # both 1 minute).
    assert "SUCCESS: 47 rules found" in r.stdout, r.stdout
    text = rules.read_text()
    assert "# objective probe (monitor:home) is not exported" in text


def test_export_refuses_a_bad_file_with_its_position(tmp_path):
    conf = write_conf(tmp_path, CONFIG.replace("threshold: 300ms", "threshold: 120ms"))
    r = slo_export(conf)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("%s:12:62: objective 'latency': threshold 120ms is not a bound"
                               % conf), r.stderr
    assert r.stderr.count("\n") == 1, r.stderr


def test_export_refuses_a_file_that_does_not_parse_with_its_position(tmp_path):
    conf = write_conf(tmp_path, CONFIG.replace("target: 99.9%,", "target: 99.9%,,"))
    r = slo_export(conf)
    assert r.returncode == 1
    assert r.stdout == ""
    # line 11, column of the second comma: where the YAML stops making sense
    assert r.stderr.startswith("%s:11:75: " % conf), r.stderr


@pytest.mark.parametrize("args,message", [
    ((), "surety slo export: say which format: --prometheus (the only one)"),
    (("--prometheus", "--grafana"), "surety slo export: unknown option '--grafana'"),
    (("--prometheus", "-x"), "surety slo export: unknown option '-x'"),
    (("--prometheus", "-c"), "surety slo export: -c needs a FILE"),
    (("--prometheus", "rules.yaml"), "surety slo export: unexpected argument 'rules.yaml'"),
], ids=["no-format", "unknown-long-option", "unknown-short-option", "c-without-file",
        "stray-argument"])
def test_export_refuses_a_bad_command_line_with_its_usage(tmp_path, args, message):
    conf = write_conf(tmp_path, CONFIG)
    r = slo_export(conf, *(args or ("-c", str(conf))))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == message + "\nusage: surety slo export --prometheus [-c FILE]\n"


@pytest.mark.parametrize("argv,message", [
    (["slo"], "surety slo: missing command"),
    (["slo", "import"], "surety slo: unknown command 'import'"),
], ids=["missing", "unknown"])
def test_slo_refuses_a_missing_or_unknown_command(argv, message):
    r = subprocess.run([harness.surety_binary()] + argv, capture_output=True, text=True,
                       timeout=30, env=harness.sanitizer_env())
    assert r.returncode == 2
    assert r.stderr == message + "\nusage: surety slo export --prometheus [-c FILE]\n"


def test_help_lists_slo_export():
    r = subprocess.run([harness.surety_binary(), "help"], capture_output=True, text=True,
                       timeout=30, env=harness.sanitizer_env())
    assert r.returncode == 0
    assert "  slo        export --prometheus [-c FILE]" in r.stdout, r.stdout


# 2% of the requests of listener web fail: a burn rate of 20 against 99.9%,
# above every rule's threshold (14.4, 6, 3, 1) over every window, so all
# four alerts of the availability objective fire; the latency objective
# (all requests within 300ms) fires nothing. At 0.05% errors (a burn rate
# of 0.5) nothing fires.
PROMTOOL_TEST = """\
rule_files: [ RULES ]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'surety_listener_requests_total{listener="web",code="5xx"}'
        values: '0+ERRx400'
      - series: 'surety_listener_requests_total{listener="web",code="2xx"}'
        values: '0+OKx400'
      - series: 'surety_listener_request_duration_seconds_bucket{listener="web",le="0.3"}'
        values: '0+1000x400'
      - series: 'surety_listener_request_duration_seconds_count{listener="web"}'
        values: '0+1000x400'
    alert_rule_test:
      - eval_time: 3h
        alertname: SuretyErrorBudgetBurn
        exp_alerts: EXPECTED
"""

def firing_alert(severity, threshold, long, short):
    return ("          - exp_labels: { severity: %s, objective: availability, long_window: %s,\n"
            "                          short_window: %s }\n"
            "            exp_annotations:\n"
            "              summary: 'Objective availability is burning its error budget %sx too "
            "fast over %s and %s'\n" % (severity, long, short, threshold, long, short))


FIRING = "\n" + "".join([firing_alert("page", "14.4", "1h", "5m"),
                         firing_alert("page", "6", "6h", "30m"),
                         firing_alert("ticket", "3", "1d", "2h"),
                         firing_alert("ticket", "1", "3d", "6h")])

ONLY_WEB = textwrap.dedent("""\
    listeners:
      web:
        listen: 127.0.0.1:8080
        routes: [ { pool: site } ]
    pools:
      site:
        servers: [ 127.0.0.1:9001 ]
    objectives:
      availability: { source: listener:web, kind: availability, target: 99.9% }
      latency: { source: listener:web, kind: latency, threshold: 300ms, target: 99% }
    """)


@pytest.mark.parametrize("err,ok,expected", [(20, 980, FIRING), (5, 9995, " []")],
                         ids=["burning-fires-all-four", "within-budget-fires-none"])
def test_promtool_evaluates_the_exported_alerts(tmp_path, err, ok, expected):
    rules = export(tmp_path, ONLY_WEB)
    t = tmp_path / "test.yaml"
    t.write_text(PROMTOOL_TEST.replace("RULES", str(rules)).replace("ERR", str(err))
                 .replace("OK", str(ok)).replace(" EXPECTED", expected))
    r = subprocess.run([promtool(), "test", "rules", str(t)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

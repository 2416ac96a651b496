"""Starting and watching real surety processes.

A test describes the configuration as a dict; Surety fills in what the test
left out (free loopback ports for listeners and the admin listener, one
worker, an access log file in the test's directory), writes it as JSON
(valid YAML 1.2), starts `surety run -c FILE` with stdout and stderr going
to files, and waits until the admin /healthz answers.  Manager owns every
process and backend a test (or a module) started and, at teardown, stops
them: SIGTERM, exit status 0, and no AddressSanitizer, UBSan or
LeakSanitizer report in stderr.  conftest.py attaches the logs of the
processes a failed test used to its report."""

import copy
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from httpio import RawClient

REPO = Path(__file__).resolve().parents[2]
SURETY_BIN = os.environ.get("SURETY_BIN", str(REPO / "build-asan" / "surety"))
BIG_BYTES = int(os.environ.get("SURETY_BIG_BYTES", str(1 << 30)))

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

# --- ports ----------------------------------------------------------------

_ports_lock = threading.Lock()
_ports_given = set()


def _ephemeral_range():
    try:
        lo, hi = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A loopback TCP port that is free now, chosen below the ephemeral
    range so that no outgoing connection (surety's upstream side, curl) can
    take it between now and the moment surety binds it."""
    lo, _ = _ephemeral_range()
    top = lo - 1 if lo > 12000 else 65000
    with _ports_lock:
        for _ in range(1000):
            p = random.randint(10000, top)
            if p in _ports_given:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            finally:
                s.close()
            _ports_given.add(p)
            return p
    raise RuntimeError("no free port found")


def refused_address():
    """host:port on which nothing listens: connects are refused."""
    return "127.0.0.1:%d" % free_port()


# --- configuration ----------------------------------------------------------

def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def render(cfg):
    """Configuration text: JSON is YAML 1.2, and unambiguous."""
    return json.dumps(cfg, indent=2) + "\n"


def simple_config(backends, routes=None, listener=None, pool=None, **top):
    """The common case: one listener "web" with a default route to pool
    "site" made of the given backends (Backend objects or "host:port")."""
    servers = [b if isinstance(b, (str, dict)) else b.address for b in backends]
    cfg = {
        "listeners": {"web": deep_merge({"routes": routes or [{"pool": "site"}]}, listener or {})},
        "pools": {"site": deep_merge({"servers": servers}, pool or {})},
    }
    cfg.update(top)
    return cfg


# --- metrics ----------------------------------------------------------------

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v):
    return v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


class Metrics:
    """Parsed Prometheus text exposition."""

    def __init__(self, text):
        self.text = text
        self.samples = []  # (name, {labels}, value)
        self.types = {}  # family -> type
        self.helps = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3].strip() if len(parts) > 3 else ""
                elif len(parts) >= 3 and parts[1] == "HELP":
                    self.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
                continue
            m = _SAMPLE_RE.match(line)
            if not m:
                raise ValueError("unparsable metrics line: %r" % line)
            labels = {k: _unescape(v) for k, v in _LABEL_RE.findall(m.group(3) or "")}
            self.samples.append((m.group(1), labels, float(m.group(4))))

    def find(self, name, **labels):
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == str(x) for k, x in labels.items())]

    def get(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
        return sum(v for _, v in self.find(name, **labels))

    def has(self, name, **labels):
        return bool(self.find(name, **labels))


# --- process ------------------------------------------------------------------

class RssSampler:
    """Samples VmRSS of a process every `interval` seconds on a thread."""

    def __init__(self, pid, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            kb = rss_kib(self.pid)
            if kb is not None:
                self.samples.append(kb)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    @property
    def max_kib(self):
        return max(self.samples) if self.samples else 0


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:strict_string_checks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    env.setdefault("LSAN_OPTIONS", "")
    return env


def surety_binary():
    return SURETY_BIN


class Surety:
    """One `surety run` process."""

    def __init__(self, cfg, workdir, name="surety", binary=None, extra_args=(), env=None):
        self.name = name
        self.env = dict(env or {})  # added to the environment (test clock, tick)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = binary or surety_binary()
        self.cfg = self._fill(cfg)
        self.config_path = self.workdir / "surety.yaml"
        self.config_path.write_text(render(self.cfg))
        self.stdout_path = self.workdir / "stdout.log"
        self.stderr_path = self.workdir / "stderr.log"
        self.extra_args = list(extra_args)
        self.proc = None
        self.returncode = None

    def _fill(self, cfg):
        base = {"workers": 1, "drain_timeout": "5s",
                "log": {"access": str(self.workdir / "access.log")}}
        cfg = deep_merge(base, cfg)
        if "admin" not in cfg:
            cfg["admin"] = {"listen": "127.0.0.1:%d" % free_port()}
        for lst in cfg.get("listeners", {}).values():
            if "listen" not in lst:
                lst["listen"] = "127.0.0.1:%d" % free_port()
        return cfg

    # --- addresses
    def port(self, listener="web"):
        return int(self.cfg["listeners"][listener]["listen"].rsplit(":", 1)[1])

    @property
    def admin_port(self):
        a = self.cfg.get("admin")
        if not isinstance(a, dict):
            return None
        return int(a["listen"].rsplit(":", 1)[1])

    @property
    def pid(self):
        return self.proc.pid

    @property
    def access_log_path(self):
        p = self.cfg.get("log", {}).get("access")
        if p in (None, "off", "-"):
            return None
        return Path(p) if os.path.isabs(p) else self.workdir / p

    # --- lifecycle
    def start(self, wait=True, timeout=10.0):
        if not os.path.exists(self.binary):
            raise RuntimeError("surety binary %s does not exist (build it: meson setup build-asan "
                               "-Db_sanitize=address,undefined && ninja -C build-asan surety, "
                               "or set SURETY_BIN)" % self.binary)
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([self.binary, "run", "-c", str(self.config_path)]
                                     + self.extra_args, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=str(self.workdir),
                                     env=dict(sanitizer_env(), **self.env))
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10.0):
        """Until GET /healthz on the admin listener answers 200 (or, with the
        admin listener off, until every listener accepts connections)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("surety exited with %s before it was ready:\n%s"
                                   % (self.proc.returncode, self.stderr_text()[-4000:]))
            try:
                if self.admin_port:
                    with RawClient(self.admin_port, timeout=1.0) as c:
                        r = c.request("GET", "/healthz", host="127.0.0.1")
                        if r.status == 200:
                            return
                        last = "healthz answered %d" % r.status
                else:
                    for name in self.cfg["listeners"]:
                        socket.create_connection(("127.0.0.1", self.port(name)), timeout=1.0).close()
                    return
            except (OSError, ValueError, Exception) as e:  # noqa: B014 - any failure: retry
                last = repr(e)
            time.sleep(0.05)
        raise RuntimeError("surety not ready after %.0fs (last: %s):\n%s"
                           % (timeout, last, self.stderr_text()[-4000:]))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signals and waits; returns the exit status (None if it had to be
        killed after `timeout`, default drain_timeout + 10 s)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if timeout is None:
                timeout = parse_duration(self.cfg.get("drain_timeout", "30s")) + 10
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = None
                self._close_files()
                return None
        self.returncode = self.proc.returncode
        self._close_files()
        return self.returncode

    def _close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f and not f.closed:
                f.close()

    # --- observation
    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stdout_text(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError:
            return ""

    def sanitizer_reports(self):
        return [l for l in self.stderr_text().splitlines()
                if any(m in l for m in SANITIZER_MARKERS)]

    def admin_get(self, path):
        with RawClient(self.admin_port, timeout=10.0) as c:
            return c.request("GET", path, host="127.0.0.1")

    def admin_post(self, path, body=b""):
        """POST to the admin listener (e.g. /api/v1/servers/drain?...)."""
        with RawClient(self.admin_port, timeout=10.0) as c:
            return c.request("POST", path, host="127.0.0.1", body=body)

    def pools(self):
        """GET /api/v1/pools, parsed: {pool name: pool object}."""
        r = self.admin_get("/api/v1/pools")
        assert r.status == 200, "GET /api/v1/pools answered %d" % r.status
        return {p["name"]: p for p in json.loads(r.body)["pools"]}

    def wait_stderr(self, needle, timeout=5.0, count=1):
        """Waits until `needle` occurs `count` times in stderr; returns the
        matching lines (fails the test after timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [l for l in self.stderr_text().splitlines() if needle in l]
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                raise AssertionError("%r not logged %d time(s) within %.1fs (seen %d)"
                                     % (needle, count, timeout, len(lines)))
            time.sleep(0.02)

    def metrics(self, settle=True):
        """Scrapes /metrics.  With settle, scrapes until two scrapes 30 ms
        apart agree (at most 2 s): a worker may count a request just after
        its last byte reached the client, so a scrape right after a response
        can legitimately miss it."""
        def scrape():
            r = self.admin_get("/metrics")
            assert r.status == 200, "GET /metrics answered %d" % r.status
            return Metrics(r.body.decode("utf-8"))

        m = scrape()
        if not settle:
            return m
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            time.sleep(0.03)
            m2 = scrape()
            if m2.samples == m.samples:
                return m2
            m = m2
        return m

    def rss_kib(self):
        return rss_kib(self.proc.pid)

    def access_log(self, expect=None, timeout=3.0):
        """Parsed access-log lines; waits up to timeout for at least `expect` lines."""
        deadline = time.monotonic() + timeout
        while True:
            if self.cfg.get("log", {}).get("access") == "-":
                text = self.stdout_text()
            else:
                try:
                    text = self.access_log_path.read_text()
                except (OSError, AttributeError):
                    text = ""
            lines = [l for l in text.splitlines() if l.strip()]
            if expect is None or len(lines) >= expect or time.monotonic() > deadline:
                return [json.loads(l) for l in lines], text
            time.sleep(0.05)


def parse_duration(v):
    if isinstance(v, (int, float)):
        return float(v)
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(v))
    if not m:
        return 30.0
    n, u = int(m.group(1)), m.group(2)
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[u]


class Manager:
    """Owns the processes and backends of one test (or one module)."""

    registry = []  # live managers, for log attachment on failure

    def __init__(self, basedir):
        self.basedir = Path(basedir)
        self.sureties = []
        self.backends = []
        Manager.registry.append(self)

    def surety(self, cfg, start=True, **kw):
        s = Surety(cfg, self.basedir / ("surety%d" % (len(self.sureties) + 1)), **kw)
        self.sureties.append(s)
        if start:
            s.start()
        return s

    def backend(self, name=None, **kw):
        from backend import Backend
        b = Backend(name or "b%d" % (len(self.backends) + 1), **kw)
        self.backends.append(b)
        return b

    def logs(self, limit=12000):
        out = []
        for s in self.sureties:
            for label, text in (("stderr", s.stderr_text()), ("stdout", s.stdout_text())):
                if text:
                    if len(text) > limit:
                        text = "[... %d bytes cut ...]\n" % (len(text) - limit) + text[-limit:]
                    out.append(("%s %s (%s)" % (s.name, label, s.workdir), text))
        for b in self.backends:
            if b.errors:
                out.append(("backend %s errors" % b.name, "\n".join(b.errors[-50:])))
        return out

    def close(self):
        """Stops everything; returns a list of problems (empty when clean)."""
        problems = []
        for s in self.sureties:
            if s.proc is None:
                continue
            was_running = s.alive()
            rc = s.stop()
            if rc != 0 and not getattr(s, "expect_exit", False):
                if was_running:
                    problems.append("%s: exit status after SIGTERM was %r, expected 0"
                                    % (s.name, rc))
                else:
                    problems.append("%s: had exited by itself with status %r" % (s.name, rc))
            reps = s.sanitizer_reports()
            if reps:
                problems.append("%s: sanitizer reports in stderr:\n  %s"
                                % (s.name, "\n  ".join(reps[:20])))
        for b in self.backends:
            b.stop()
        if self in Manager.registry:
            Manager.registry.remove(self)
        return problems

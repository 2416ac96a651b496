"""pytest fixtures for surety integration tests.

    env   creates backends and surety processes for one test and checks, at
          teardown, that each surety stops on SIGTERM with status 0 and
          without sanitizer reports.
    curl  runs curl with a timeout and returns the CompletedProcess.

Modules that can share one surety across tests build a harness.Manager in
a module-scoped fixture (see test_malformed.py); conftest attaches the
logs of every live Manager to a failing test's report either way.

Environment: SURETY_BIN (default build-asan/surety), SURETY_BIG_BYTES (size
of the streaming tests, default 1 GiB)."""

import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "big: streams SURETY_BIG_BYTES through surety (slow)")
    config.addinivalue_line("markers", "needs_surety: starts the surety binary")


def pytest_report_header(config):
    b = harness.surety_binary()
    state = "present" if os.path.exists(b) else "MISSING"
    return ["surety binary: %s (%s); SURETY_BIG_BYTES=%d" % (b, state, harness.BIG_BYTES)]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for m in list(harness.Manager.registry):
            for title, text in m.logs():
                rep.sections.append((title, text))


@pytest.fixture
def env(tmp_path):
    m = harness.Manager(tmp_path)
    yield m
    problems = m.close()
    if problems:
        pytest.fail("teardown: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def curl():
    path = shutil.which("curl") or "/usr/bin/curl"

    def run(*args, timeout=60, input=None, stdin=None, stdout=subprocess.PIPE):
        return subprocess.run([path, "-sS", "--max-time", str(timeout)] + [str(a) for a in args],
                              input=input, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                              timeout=timeout + 10)

    return run

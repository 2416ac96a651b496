"""The store survives kill -9 during writes with every acknowledged row present.

tests/store/crash_writer submits rows in a loop and prints the number of
each row whose transaction has committed (store_acked). Each round starts
it on the same file, waits until it has acknowledged a few hundred rows,
lets it run a random moment longer and kills it with SIGKILL mid-stream.
After every round the sqlite3 CLI, a process of its own, must find the
file intact (PRAGMA integrity_check), every printed row in it, and the
minute/hour/day rollups agreeing with the raw samples (one transaction per
batch: a crash cannot leave a sample without its rollups). A last clean
run reopens the file after the crashes and adds to it.

Environment: SURETY_STORE_CRASH_WRITER (default
build-asan/tests/store/crash_writer), like SURETY_BIN for surety."""

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WRITER = os.environ.get("SURETY_STORE_CRASH_WRITER",
                        str(REPO / "build-asan" / "tests" / "store" / "crash_writer"))
SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
ROUNDS = 5
ROUND_BASE = 10_000_000  # row numbers of round k start at k * ROUND_BASE + 1

pytestmark = pytest.mark.skipif(not os.path.exists(WRITER),
                                reason="no %s (build it, or set SURETY_STORE_CRASH_WRITER)"
                                % WRITER)


def sql(db, query):
    """Runs query with the sqlite3 CLI, read-only, and returns its output lines."""
    r = subprocess.run([SQLITE3, "-readonly", "-batch", str(db), query], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, "sqlite3 %r: %s" % (query, r.stderr)
    return r.stdout.splitlines()


def acked_rows(out_path):
    """The row numbers the writer printed; a last line cut by the kill is not one."""
    text = out_path.read_text()
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]
    return {int(x) for x in lines if x}


def wait_lines(out_path, proc, want, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "crash_writer exited early with %s" % proc.returncode
        if out_path.exists() and out_path.read_text().count("\n") >= want:
            return
        time.sleep(0.01)
    pytest.fail("crash_writer acknowledged fewer than %d rows in %ds" % (want, timeout))


def check_file(db, acked):
    assert sql(db, "PRAGMA integrity_check") == ["ok"]
    present = {int(x) for x in sql(db, "SELECT subject FROM events WHERE kind = 'crash'")}
    missing = acked - present
    assert not missing, "%d acknowledged rows lost, e.g. %s" % (len(missing),
                                                                sorted(missing)[:10])
    sums = sql(db, "SELECT (SELECT SUM(requests) FROM sli_raw), "
                   "(SELECT SUM(requests) FROM sli_minute), (SELECT SUM(requests) FROM sli_hour), "
                   "(SELECT SUM(requests) FROM sli_day), (SELECT SUM(b0 + b1 + b2 + b3) "
                   "FROM sli_day)")
    values = sums[0].split("|")
    assert len(set(values)) == 1, "rollups disagree with the raw samples: %s" % sums[0]
    assert sql(db, "SELECT MAX(version) FROM schema_version") == ["1"]
    return present


def test_store_keeps_every_acknowledged_row_across_kill_9(tmp_path):
    db = tmp_path / "surety.db"
    rng = random.Random(int(os.environ.get("SURETY_SEED", time.time())))
    all_acked = set()
    for k in range(ROUNDS):
        out = tmp_path / ("round%d.out" % k)
        err = tmp_path / ("round%d.err" % k)
        with open(out, "wb") as o, open(err, "wb") as e:
            sync = "full" if k % 2 else "normal"  # both fsync policies survive a process crash
            proc = subprocess.Popen([WRITER, str(db), str(k * ROUND_BASE), sync],
                                    stdout=o, stderr=e)
        try:
            wait_lines(out, proc, rng.randint(200, 2000))
            time.sleep(rng.uniform(0, 0.3))
            assert proc.poll() is None, "crash_writer exited: %s" % err.read_text()
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        acked = acked_rows(out)
        assert acked, "round %d acknowledged nothing" % k
        all_acked |= acked
        present = check_file(db, all_acked)
        # The kill came mid-stream: rows were in flight, not all written.
        assert max(present) >= max(acked)

    # After five crashes the file opens cleanly and takes more rows.
    out = tmp_path / "clean.out"
    r = subprocess.run([WRITER, str(db), str(ROUNDS * ROUND_BASE), "normal", "1000"],
                       stdout=open(out, "wb"), stderr=subprocess.PIPE, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert len(acked_rows(out)) == 1000
    check_file(db, all_acked | acked_rows(out))

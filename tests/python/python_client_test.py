#!/usr/bin/python3
"""Integration test of the Python gateway client (gateway/clients/python)
against the real platform on loopback: a real redis-server, fedrx-coordinator
and fedrx-gateway in CURVE mode, an admin enrolled Redis-direct with the
`fedrx` CLI. The admin enrols a scientist through the gateway with the Python
client; the scientist's new key then gets a HealthStatus; a key that was never
enrolled gets no answer and the gateway counts its handshake as denied.

Registered with ctest by tests/python/CMakeLists.txt; run by hand as
  /usr/bin/python3 tests/python/python_client_test.py --cli BUILD/services/cli/fedrx \
    --coordinator BUILD/services/coordinator/fedrx-coordinator \
    --gateway BUILD/gateway/fedrx-gateway \
    --generated BUILD/gateway/clients/python/generated
"""

import argparse
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "..", "..", "gateway", "clients", "python", "fedrx_client.py")
ARGS = None  # set in __main__


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout_s:g} s")


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except OSError as e:
        return getattr(e, "code", None), ""


class Platform:
    """Redis, the coordinator and the gateway (CURVE mode) on free loopback ports."""

    def __init__(self, workdir):
        self.dir = workdir
        self.procs = []
        self.logs = {}
        self.redis_port = free_port()
        self.coordinator_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.gateway_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.coordinator_http = f"127.0.0.1:{free_port()}"
        self.gateway_http = f"127.0.0.1:{free_port()}"
        # The children read only the config files written here.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FEDRX_")}

    def start(self, name, argv):
        self.logs[name] = os.path.join(self.dir, name + ".log")
        with open(self.logs[name], "wb") as log:
            self.procs.append((name, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                      env=self.env, cwd=self.dir)))

    def cli(self, *args):
        return subprocess.run([ARGS.cli, *args, "--redis", f"127.0.0.1:{self.redis_port}"],
                              env=self.env, capture_output=True, text=True, timeout=30)

    def up(self):
        self.start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", self.dir])
        wait_for("redis answers", lambda: subprocess.run(
            ["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True,
            text=True).stdout.strip() == "PONG")

        self.admin_key = os.path.join(self.dir, "admin.key")
        r = self.cli("institutions", "enrol", "--id", "admin-py", "--name", "Python Admin",
                     "--role", "admin", "--key-out", self.admin_key)
        assert r.returncode == 0, f"bootstrap enrol failed: {r.stdout}{r.stderr}"
        self.gateway_key = os.path.join(self.dir, "gateway.key")
        r = subprocess.run([ARGS.cli, "keys", "generate", "--out", self.gateway_key],
                           env=self.env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"keys generate failed: {r.stdout}{r.stderr}"
        # What an institution is given: the gateway's public key only.
        self.gateway_public = os.path.join(self.dir, "gateway.pub")
        with open(self.gateway_public, "w") as f:
            f.write(r.stdout.split()[-1] + "\n")

        redis = f"redis.host = 127.0.0.1\nredis.port = {self.redis_port}\n"
        with open(os.path.join(self.dir, "coordinator.conf"), "w") as f:
            f.write(f"coordinator.endpoint = {self.coordinator_endpoint}\n"
                    f"http.listen = {self.coordinator_http}\n{redis}")
        with open(os.path.join(self.dir, "gateway.conf"), "w") as f:
            f.write(f"gateway.sites_endpoint = {self.gateway_endpoint}\n"
                    f"gateway.coordinator_endpoint = {self.coordinator_endpoint}\n"
                    f"gateway.curve_key_file = {self.gateway_key}\n"
                    f"http.listen = {self.gateway_http}\n{redis}")
        self.start("coordinator", [ARGS.coordinator, "--config",
                                   os.path.join(self.dir, "coordinator.conf")])
        self.start("gateway", [ARGS.gateway, "--config", os.path.join(self.dir, "gateway.conf")])
        wait_for("the gateway is ready (its coordinator answers)",
                 lambda: http_get(f"http://{self.gateway_http}/readyz")[0] == 200)

    def down(self):
        for _, p in reversed(self.procs):
            p.terminate()
        for name, p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def dump_logs(self):
        for name, path in self.logs.items():
            with open(path, errors="replace") as f:
                tail = f.readlines()[-30:]
            sys.stderr.write(f"---- {name} log (last lines) ----\n{''.join(tail)}")

    def metric(self, name, labels):
        _, text = http_get(f"http://{self.gateway_http}/metrics")
        label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in text.splitlines():
            if line.startswith(f"{name}{{{label_text}}} "):
                return float(line.split()[-1])
        return 0.0


class PythonClientTest(unittest.TestCase):
    platform = None

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="fedrx-pyclient-")
        cls.platform = Platform(cls.workdir)
        try:
            cls.platform.up()
        except BaseException:
            cls.platform.dump_logs()
            cls.platform.down()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.platform.down()
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def run_client(self, key, *args, timeout_s=10):
        p = self.platform
        return subprocess.run(
            [sys.executable, CLIENT, "--gateway", p.gateway_endpoint, "--server-key",
             p.gateway_public, "--key", key, "--generated", ARGS.generated,
             "--timeout", str(timeout_s), "--json", *args],
            capture_output=True, text=True, timeout=timeout_s + 20)

    def check(self, result, code=0):
        if result.returncode != code:
            self.platform.dump_logs()
        self.assertEqual(result.returncode, code,
                         f"client exit {result.returncode}, stdout: {result.stdout!r}, "
                         f"stderr: {result.stderr!r}")

    def test_admin_enrols_a_scientist_whose_new_key_gets_health(self):
        key = os.path.join(self.workdir, "sci-py.key")
        enrolled = self.run_client(self.platform.admin_key, "enrol", "sci-py", "Python Lab",
                                   "scientist", "--out", key)
        self.check(enrolled)
        record = json.loads(enrolled.stdout)
        self.assertEqual(record["id"], "sci-py")
        self.assertEqual(record["name"], "Python Lab")
        self.assertEqual(record["role"], "scientist")
        self.assertEqual(record["status"], "active")
        self.assertRegex(record["public_key"], r"^[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
        self.assertGreater(record["enrolled_at_ms"], 0)

        # The key file: fedrx's format, 0600, holding the enrolled public key.
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        with open(key) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[0], f"public = {record['public_key']}")
        self.assertRegex(lines[1], r"^secret = .{40}$")

        # The registry, read Redis-direct, holds the same key, active.
        listed = self.platform.cli("institutions", "list")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        row = [l for l in listed.stdout.splitlines() if l.split()[:1] == ["sci-py"]]
        self.assertEqual(len(row), 1, listed.stdout)
        self.assertIn("scientist", row[0].split())
        self.assertIn("active", row[0].split())
        self.assertTrue(row[0].endswith(record["public_key"]), row[0])

        # The new key connects and completes a health request.
        health = self.run_client(key, "health")
        self.check(health)
        status = json.loads(health.stdout)
        self.assertEqual(status["service"], "gateway")
        self.assertTrue(status["ready"], status)
        self.assertEqual(status["detail"], "")
        self.assertGreaterEqual(status["uptime_s"], 0.0)

        # The scientist may not enrol anyone: the gateway answers with an Error.
        refused = self.run_client(key, "enrol", "sci-py-2", "Another Lab", "scientist", "--out",
                                  os.path.join(self.workdir, "sci-py-2.key"))
        self.check(refused, 1)
        self.assertIn("PermissionDenied", refused.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "sci-py-2.key")))

    def test_unenrolled_key_gets_no_answer(self):
        sys.dont_write_bytecode = True  # no __pycache__ in the source tree
        sys.path.insert(0, os.path.dirname(CLIENT))
        import fedrx_client  # noqa: E402  (the module under test)
        import zmq
        public, secret = (k.decode() for k in zmq.curve_keypair())
        key = os.path.join(self.workdir, "stranger.key")
        fedrx_client.write_key_file(key, public, secret)
        denied_before = self.platform.metric("fedrx_gateway_authentications_total",
                                             {"result": "denied"})
        health = self.run_client(key, "health", timeout_s=3)
        self.check(health, 3)
        self.assertEqual(health.stdout, "")
        self.assertIn("no answer to HealthCheck", health.stderr)
        # Refused at the handshake, not lost: the gateway counted the denial.
        wait_for("the gateway counts a denied handshake", lambda: self.platform.metric(
            "fedrx_gateway_authentications_total", {"result": "denied"}) > denied_before,
            timeout_s=5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    parser.add_argument("--coordinator", required=True)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--generated", required=True)
    ARGS, rest = parser.parse_known_args()
    for name in ("cli", "coordinator", "gateway", "generated"):
        setattr(ARGS, name, os.path.abspath(getattr(ARGS, name)))
    if shutil.which("redis-server") is None:
        sys.exit("python_client_test: redis-server is not installed")
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)

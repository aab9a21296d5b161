#!/usr/bin/python3
"""fedrx gateway client in Python, for institutions that do not run C++.

Speaks the same wire as the C++ services: a ZeroMQ DEALER with CurveZMQ to the
gateway, one FlatBuffers Envelope (file identifier "FRX1") per message as the
first frame and its tensors as the frames after it, no delimiter frame. The
message classes are generated from fedrx's messages/*.fbs by `flatc --python`
at build time (CMake target fedrx_python_messages), never committed: point
--generated (or FEDRX_PYTHON_GENERATED) at that directory.

Commands:
  health                           HealthCheck -> HealthStatus
  enrol ID NAME ROLE --out FILE    (admin) EnrolInstitution -> InstitutionEnrolled;
                                   the new key pair is written to FILE (0600)

Exit status: 0 answered, 1 the gateway answered with an Error, 2 a local
problem (usage, key file, generated code), 3 no answer within --timeout.

Needs Debian's /usr/bin/python3 with python3-zmq and python3-flatbuffers.
"""

import argparse
import importlib
import json
import os
import stat
import sys
import tempfile
import time
import uuid

import zmq
import zmq.utils.z85

KEY_Z85_LENGTH = 40
# Like the C++ codec's Limits: ids at most 64 bytes, envelopes at most 1 MiB.
MAX_ID_BYTES = 64
MAX_ENVELOPE_BYTES = 1 << 20
EXIT_OK, EXIT_ERROR_REPLY, EXIT_LOCAL, EXIT_NO_ANSWER = 0, 1, 2, 3


class ClientError(Exception):
    """A local problem: a bad key file, missing generated code, a bad reply."""


class GatewayError(Exception):
    """The gateway (or a service behind it) answered with an Error body."""

    def __init__(self, code, message, where):
        super().__init__(f"{code}: {message} (at {where})" if where else f"{code}: {message}")
        self.code = code
        self.message = message
        self.where = where


class NoAnswer(Exception):
    """Nothing came back in time (for instance, the gateway refused our key)."""


# ---- Key files, in fedrx's format (services/core/curve_keys.h) -------------

def _check_key(key, what, path):
    if len(key) != KEY_Z85_LENGTH:
        raise ClientError(f"{path}: the {what} key is {len(key)} characters, "
                          f"a CURVE key is {KEY_Z85_LENGTH} Z85 characters")
    try:
        zmq.utils.z85.decode(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError, KeyError) as e:
        raise ClientError(f"{path}: the {what} key is not Z85") from e


def read_key_file(path, need_secret=True):
    """Reads `public = <Z85>` and `secret = <Z85>` lines (blank lines and '#'
    comments ignored; `public-key`/`secret-key` accepted). Refuses what the C++
    loader refuses: a file others may read, unknown or repeated lines, a bad
    key, a public key that does not belong to the secret key. Returns
    (public, secret); secret is None when need_secret is False and the file
    holds only a public key (a server key file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ClientError(f"{path}: no such key file") from None
    if not stat.S_ISREG(st.st_mode):
        raise ClientError(f"{path}: not a regular file")
    keys = {}
    with open(path, encoding="ascii", errors="replace") as f:
        text = f.read(4097)
    if len(text) > 4096:
        raise ClientError(f"{path}: too large for a key file")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = {"public-key": "public", "secret-key": "secret"}.get(name.strip(), name.strip())
        if not sep or name not in ("public", "secret"):
            raise ClientError(f"{path}:{number}: expected `public = <Z85>` or `secret = <Z85>`")
        if name in keys:
            raise ClientError(f"{path}:{number}: `{name}` is repeated")
        keys[name] = value.strip()
    if "secret" in keys and st.st_mode & 0o077:
        raise ClientError(f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets others read "
                          f"a secret key (chmod 600 {path})")
    if "public" not in keys:
        raise ClientError(f"{path}: no `public = ...` line")
    _check_key(keys["public"], "public", path)
    if "secret" not in keys:
        if need_secret:
            raise ClientError(f"{path}: no `secret = ...` line")
        return keys["public"], None
    _check_key(keys["secret"], "secret", path)
    derived = zmq.curve_public(keys["secret"].encode("ascii")).decode("ascii")
    if derived != keys["public"]:
        raise ClientError(f"{path}: the public key does not belong to the secret key")
    return keys["public"], keys["secret"]


def read_server_key(path):
    """The gateway's public key: a fedrx key file (only `public` is read; a
    file holding just that line will do) or a file holding the bare key."""
    with open(path, encoding="ascii", errors="replace") as f:
        text = f.read(4097).strip()
    # Z85 has '=' among its characters: a bare key is one 40-character token.
    if len(text) == KEY_Z85_LENGTH and not any(c.isspace() for c in text):
        _check_key(text, "server", path)
        return text
    public, _ = read_key_file(path, need_secret=False)
    return public


def write_key_file(path, public, secret):
    """Writes a key pair as the C++ WriteCurveKeyPair does: mode 0600 through a
    temporary file in the same directory and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"public = {public}\nsecret = {secret}\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


# ---- Messages ----------------------------------------------------------------

class Wire:
    """The generated message classes and the schema constants, loaded from the
    directory `flatc --python` wrote (with fedrx_schema.py beside them)."""

    def __init__(self, generated_dir):
        if not generated_dir or not os.path.isdir(os.path.join(generated_dir, "fedrx", "wire")):
            raise ClientError(
                f"generated message classes not found in '{generated_dir}': build the CMake "
                "target fedrx_python_messages and pass its directory with --generated "
                "(or FEDRX_PYTHON_GENERATED)")
        if generated_dir not in sys.path:
            sys.path.insert(0, generated_dir)
        schema = importlib.import_module("fedrx_schema")
        self.schema_version = schema.SCHEMA_VERSION
        self.file_identifier = schema.FILE_IDENTIFIER
        self._modules = {}

    def __getattr__(self, name):
        # fedrx.wire.<Name> is one module per table; the class has the same name.
        if name.startswith("_"):
            raise AttributeError(name)
        module = self._modules.get(name)
        if module is None:
            module = importlib.import_module(f"fedrx.wire.{name}")
            self._modules[name] = module
        return module

    def body_type(self, name):
        return getattr(self.Body.Body, name)

    def body_name(self, type_number):
        for name, value in vars(self.Body.Body).items():
            if not name.startswith("_") and value == type_number:
                return name
        return f"unknown body type {type_number}"


def _text(value):
    return value.decode("utf-8", errors="replace") if value is not None else ""


class Envelope:
    """A decoded reply: header fields, body type name, the body table, tensors."""

    def __init__(self, message_id, correlation_id, sender, sent_at_ms, body_name, body,
                 tensors):
        self.message_id = message_id
        self.correlation_id = correlation_id
        self.sender = sender
        self.sent_at_ms = sent_at_ms
        self.body_name = body_name
        self.body = body
        self.tensors = tensors  # [(name, dtype, shape, bytes)]


def encode(wire, body_name, build_body, sender="fedrx-python", message_id=None, now_ms=None):
    """Frame 0 of a request, as the C++ codec writes it: schema version,
    message_id, correlation_id and sender strings, sent_at_ms, the body union,
    finished with the file identifier. `build_body(builder)` returns the body
    table's offset. Returns (message_id, bytes)."""
    import flatbuffers  # Debian's python3-flatbuffers

    message_id = message_id or uuid.uuid4().hex
    if len(message_id.encode()) > MAX_ID_BYTES:
        raise ClientError(f"message id of {len(message_id)} bytes exceeds {MAX_ID_BYTES}")
    b = flatbuffers.Builder(256)
    body = build_body(b)
    mid = b.CreateString(message_id)
    cid = b.CreateString("")
    snd = b.CreateString(sender)
    E = wire.Envelope
    E.EnvelopeStart(b)
    E.EnvelopeAddSchemaVersion(b, wire.schema_version)
    E.EnvelopeAddMessageId(b, mid)
    E.EnvelopeAddCorrelationId(b, cid)
    E.EnvelopeAddSender(b, snd)
    E.EnvelopeAddSentAtMs(b, int(time.time() * 1000) if now_ms is None else now_ms)
    E.EnvelopeAddBodyType(b, wire.body_type(body_name))
    E.EnvelopeAddBody(b, body)
    b.Finish(E.EnvelopeEnd(b), file_identifier=wire.file_identifier)
    return message_id, bytes(b.Output())


def health_check_body(wire):
    def build(b):
        wire.HealthCheck.HealthCheckStart(b)
        return wire.HealthCheck.HealthCheckEnd(b)
    return build


def enrol_institution_body(wire, institution_id, name, role):
    def build(b):
        i, n, r = b.CreateString(institution_id), b.CreateString(name), b.CreateString(role)
        m = wire.EnrolInstitution
        m.EnrolInstitutionStart(b)
        m.EnrolInstitutionAddId(b, i)
        m.EnrolInstitutionAddName(b, n)
        m.EnrolInstitutionAddRole(b, r)
        return m.EnrolInstitutionEnd(b)
    return build


_DTYPE_SIZES = {0: 4, 1: 8, 2: 4, 3: 8, 4: 4, 5: 8, 6: 1}


def decode(wire, frames):
    """Decodes a reply's frames. Python's FlatBuffers has no Verifier, so every
    read is bounded by the frame and a malformed reply is a ClientError."""
    if not frames:
        raise ClientError("an empty reply")
    head = bytes(frames[0])
    if len(head) > MAX_ENVELOPE_BYTES:
        raise ClientError(f"a reply envelope of {len(head)} bytes exceeds the limit")
    if len(head) < 8 or not wire.Envelope.Envelope.EnvelopeBufferHasIdentifier(head, 0):
        raise ClientError(f"frame 0 ({len(head)} bytes) is not a fedrx envelope")
    try:
        env = wire.Envelope.Envelope.GetRootAs(head, 0)
        version = env.SchemaVersion()
        if version == 0 or version > wire.schema_version:
            raise ClientError(f"reply schema version {version} is not one this client reads "
                              f"(1..{wire.schema_version})")
        body_name = wire.body_name(env.BodyType())
        table = env.Body()
        body = None
        if table is not None and not body_name.startswith("unknown"):
            cls = getattr(getattr(wire, body_name), body_name)
            body = cls()
            body.Init(table.Bytes, table.Pos)
        tensors = []
        for i in range(env.TensorsLength()):
            spec = env.Tensors(i)
            if i + 1 >= len(frames):
                raise ClientError(f"tensor {i} is described but its frame is missing")
            data = bytes(frames[i + 1])
            if spec.ByteLength() != len(data):
                raise ClientError(f"tensor {i}: {len(data)} bytes, the spec says {spec.ByteLength()}")
            shape = [spec.Shape(j) for j in range(spec.ShapeLength())]
            tensors.append((_text(spec.Name()), spec.Dtype(), shape, data))
        if len(frames) != 1 + len(tensors):
            raise ClientError(f"{len(frames) - 1} tensor frames for {len(tensors)} tensor specs")
        return Envelope(_text(env.MessageId()), _text(env.CorrelationId()), _text(env.Sender()),
                        env.SentAtMs(), body_name, body, tensors)
    except ClientError:
        raise
    except Exception as e:  # a corrupt buffer surfaces as IndexError, struct.error, ...
        raise ClientError(f"a malformed reply envelope: {type(e).__name__}: {e}") from e


def error_of(wire, envelope):
    """The GatewayError an Error reply carries."""
    e = envelope.body
    code_names = {v: k for k, v in vars(wire.ErrorCode.ErrorCode).items() if not k.startswith("_")}
    return GatewayError(code_names.get(e.Code(), f"code {e.Code()}"), _text(e.Message()),
                        _text(e.Where()))


def institution_of(info):
    return {
        "id": _text(info.Id()),
        "name": _text(info.Name()),
        "role": _text(info.Role()),
        "status": _text(info.Status()),
        "public_key": _text(info.PublicKey()),
        "enrolled_at_ms": info.EnrolledAtMs(),
        "updated_at_ms": info.UpdatedAtMs(),
    }


# ---- The connection ------------------------------------------------------------

class GatewayClient:
    """One CURVE DEALER connection to the gateway. Not thread-safe."""

    def __init__(self, wire, endpoint, server_key, public_key, secret_key, sender="fedrx-python"):
        self.wire = wire
        self.sender = sender
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.curve_serverkey = server_key.encode("ascii")
        self.socket.curve_publickey = public_key.encode("ascii")
        self.socket.curve_secretkey = secret_key.encode("ascii")
        # As the C++ bus: a frame larger than any the codec accepts drops the connection.
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_ENVELOPE_BYTES + (512 << 20))
        self.socket.connect(endpoint)

    def close(self):
        self.socket.close(linger=0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, body_name, build_body, timeout_s):
        """Sends one request and returns the decoded reply that answers it (its
        correlation_id), skipping pushes meant for a site. Raises GatewayError
        for an Error reply and NoAnswer when nothing answers in time. A refused
        CURVE handshake looks like no answer: the gateway's ZAP handler says
        nothing to a key it does not know."""
        deadline = time.monotonic() + timeout_s
        message_id, frame = encode(self.wire, body_name, build_body, sender=self.sender)
        # A DEALER holds a message until a connection takes it; when the
        # handshake keeps failing (a refused key) none does, and that too is
        # no answer.
        self.socket.setsockopt(zmq.SNDTIMEO, max(1, int(timeout_s * 1000)))
        try:
            self.socket.send(frame)
        except zmq.Again:
            raise NoAnswer(f"no answer to {body_name} within {timeout_s:g} s "
                           "(no connection to the gateway took it)") from None
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoAnswer(f"no answer to {body_name} within {timeout_s:g} s")
            if not poller.poll(int(left * 1000) + 1):
                continue
            reply = decode(self.wire, self.socket.recv_multipart(copy=True))
            if reply.correlation_id != message_id:
                continue  # a push, or a late answer to something earlier
            if reply.body_name == "Error":
                raise error_of(self.wire, reply)
            return reply

    def health(self, timeout_s):
        reply = self.request("HealthCheck", health_check_body(self.wire), timeout_s)
        if reply.body_name != "HealthStatus":
            raise ClientError(f"HealthCheck was answered with a {reply.body_name}")
        h = reply.body
        return {
            "service": _text(h.Service()),
            "ready": bool(h.Ready()),
            "version": _text(h.Version()),
            "uptime_s": h.UptimeS(),
            "detail": _text(h.Detail()),
        }

    def enrol(self, institution_id, name, role, timeout_s):
        """Returns (institution record, secret key)."""
        reply = self.request("EnrolInstitution",
                             enrol_institution_body(self.wire, institution_id, name, role),
                             timeout_s)
        if reply.body_name != "InstitutionEnrolled":
            raise ClientError(f"EnrolInstitution was answered with a {reply.body_name}")
        info = reply.body.Institution()
        if info is None:
            raise ClientError("InstitutionEnrolled without an institution")
        return institution_of(info), _text(reply.body.SecretKey())


# ---- Command line ------------------------------------------------------------------

def _parser():
    p = argparse.ArgumentParser(
        prog="fedrx_client.py",
        description="fedrx gateway client (CurveZMQ, FlatBuffers).",
        epilog="Exit status: 0 answered, 1 Error reply, 2 local problem, 3 no answer.")
    p.add_argument("--gateway", default=os.environ.get("FEDRX_GATEWAY", "tcp://127.0.0.1:5560"),
                   help="the gateway's sites endpoint (FEDRX_GATEWAY; tcp://127.0.0.1:5560)")
    p.add_argument("--server-key", default=os.environ.get("FEDRX_GATEWAY_KEY"), required=False,
                   help="file with the gateway's public key (FEDRX_GATEWAY_KEY)")
    p.add_argument("--key", default=os.environ.get("FEDRX_KEY_FILE"),
                   help="this institution's key file, mode 0600 (FEDRX_KEY_FILE)")
    p.add_argument("--generated", default=os.environ.get("FEDRX_PYTHON_GENERATED"),
                   help="directory of the flatc --python output (FEDRX_PYTHON_GENERATED)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("health", help="HealthCheck -> HealthStatus")
    e = sub.add_parser("enrol", help="(admin) enrol an institution and write its key pair")
    e.add_argument("id")
    e.add_argument("name")
    e.add_argument("role", choices=["site", "scientist", "admin"])
    e.add_argument("--out", required=True, help="key file to write (0600); must not exist")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if not args.server_key or not args.key:
            raise ClientError("--server-key and --key are required")
        if args.command == "enrol" and os.path.exists(args.out):
            raise ClientError(f"{args.out} exists; a key file is never overwritten")
        wire = Wire(args.generated)
        public, secret = read_key_file(args.key)
        server_key = read_server_key(args.server_key)
        with GatewayClient(wire, args.gateway, server_key, public, secret) as client:
            if args.command == "health":
                h = client.health(args.timeout)
                if args.json:
                    print(json.dumps(h, sort_keys=True))
                else:
                    print(f"{h['service']}: {'ready' if h['ready'] else 'not ready'}"
                          f" (version {h['version'] or '?'}, up {h['uptime_s']:.1f} s)"
                          + (f": {h['detail']}" if h["detail"] else ""))
            else:
                record, new_secret = client.enrol(args.id, args.name, args.role, args.timeout)
                if not new_secret:
                    raise ClientError("InstitutionEnrolled carried no secret key")
                write_key_file(args.out, record["public_key"], new_secret)
                # The written pair must load back: catches a key that is not a pair.
                read_key_file(args.out)
                if args.json:
                    print(json.dumps(record, sort_keys=True))
                else:
                    print(f"enrolled {record['id']} ({record['name']}) as {record['role']}, "
                          f"{record['status']}; key pair written to {args.out}")
        return EXIT_OK
    except GatewayError as e:
        print(f"fedrx_client: refused: {e}", file=sys.stderr)
        return EXIT_ERROR_REPLY
    except NoAnswer as e:
        print(f"fedrx_client: {e} (is the gateway up, and is this key enrolled and active?)",
              file=sys.stderr)
        return EXIT_NO_ANSWER
    except (ClientError, OSError, zmq.ZMQError) as e:
        print(f"fedrx_client: {e}", file=sys.stderr)
        return EXIT_LOCAL


if __name__ == "__main__":
    sys.exit(main())

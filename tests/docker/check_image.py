#!/usr/bin/python3
"""Static checks of deploy/Dockerfile (there is no container engine in CI).

  libs     For every service the Dockerfile builds, the binary of its CMake
           target in this build tree is inspected: every shared library it
           needs (ldd) is mapped to the Debian package that ships it (dpkg -S).
           A library the binary links directly (DT_NEEDED) must come from a
           package the image's runtime stages install explicitly, or from one
           debian:bookworm-slim ships; a library it gets only through another
           library must come from a package the installed ones depend on
           (dpkg's Depends), or from bookworm-slim. Every package a runtime
           stage installs must also be needed by the service's binary.
  lint     The recipe's shape: multi-stage, the final stage runs as a non-root
           uid, no ADD of URLs, no :latest or untagged base images, the SERVICE
           argument selects the build and the final stage, every service maps
           to an existing CMake target whose binary path matches, every
           deployable executable is mapped, entry points and ports per service,
           and the .dockerignore.
  mutate   Writes a copy of the Dockerfile with one change (for the tests that
           check the checks fail): --remove-package PKG [--stage NAME],
           --add-package PKG --stage NAME, --drop-user, or --set-base STAGE IMAGE.

Errors are printed one a line, naming the binary, the library and the package
where it applies; the exit status is 1 when there is any.
"""

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

# Ports per service: bus port(s), then the /metrics /healthz /readyz port
# (the topology table of issue 10). The site and ingest have no bus port; the
# CLI listens on nothing.
EXPECTED_PORTS = {
    "gateway": {5560, 9465},
    "coordinator": {5570, 9464},
    "translational": {5580, 9482},
    "trial": {5581, 9483},
    "tox": {5582, 9484},
    "clinical": {5583, 9485},
    "reverse": {5584, 9486},
    "orchestrator": {5585, 9487},
    "report": {5586, 9488},
    "site": {9466},
    "ingest": {9470},
    "cli": set(),
}

# Services whose process is a command-line tool, not a daemon with a config.
TOOLS = {"cli"}


# ---------------------------------------------------------------------------
# Dockerfile parsing


class Instruction:
    def __init__(self, line_no, keyword, args):
        self.line_no = line_no
        self.keyword = keyword.upper()
        self.args = args

    def __repr__(self):
        return "%d: %s %s" % (self.line_no, self.keyword, self.args)


class Stage:
    def __init__(self, index, base, name, line_no):
        self.index = index
        self.base = base
        self.name = name
        self.line_no = line_no
        self.instructions = []


def parse_dockerfile(text):
    """Returns (global instructions before the first FROM, stages)."""
    logical = []
    buf, start = "", None
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if start is None:
            start = no
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        logical.append((start, buf.strip()))
        buf, start = "", None
    if buf:
        logical.append((start, buf.strip()))

    globals_, stages = [], []
    for no, line in logical:
        parts = line.split(None, 1)
        keyword = parts[0].upper()
        args = parts[1] if len(parts) > 1 else ""
        if keyword == "FROM":
            toks = [t for t in args.split() if not t.startswith("--")]
            base = toks[0] if toks else ""
            name = toks[2] if len(toks) >= 3 and toks[1].upper() == "AS" else None
            stages.append(Stage(len(stages), base, name, no))
            continue
        ins = Instruction(no, keyword, args)
        if stages:
            stages[-1].instructions.append(ins)
        else:
            globals_.append(ins)
    return globals_, stages


def global_args(globals_):
    out = {}
    for ins in globals_:
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            out[name.strip()] = default.strip().strip('"') if _ else None
    return out


def stage_by_name(stages, name):
    for s in stages:
        if s.name and s.name.lower() == name.lower():
            return s
    return None


def expand(text, values):
    def sub(m):
        key = m.group(1) or m.group(2)
        return values.get(key, "") or ""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, text)


def chain(stages, stage, values):
    """The stage and its ancestors (stage first), following FROM <stage name>
    after ARG expansion; the last element's base is an external image."""
    out, seen = [], set()
    cur = stage
    while cur is not None and cur.index not in seen:
        seen.add(cur.index)
        out.append(cur)
        cur = stage_by_name(stages, expand(cur.base, values))
    return out


def apt_installs(stage):
    """Packages named by `apt-get install` in the stage's RUN instructions."""
    pkgs = []
    for ins in stage.instructions:
        if ins.keyword != "RUN":
            continue
        for m in re.finditer(r"apt-get\s+install\b(.*?)(?:&&|;|\|\||$)", ins.args):
            for tok in m.group(1).split():
                if tok.startswith("-") or "$" in tok:
                    continue
                pkgs.append(tok)
    return pkgs


def build_table(stages):
    """service -> (target, binary path in the build tree), from the build
    stage's `case "${SERVICE}"` arms."""
    table = {}
    for s in stages:
        for ins in s.instructions:
            if ins.keyword != "RUN" or "SERVICE" not in ins.args:
                continue
            for m in re.finditer(
                    r"([\w|-]+)\)\s*target=(\S+)\s+binary=(\S+)\s*;;", ins.args):
                for service in m.group(1).split("|"):
                    table[service] = (m.group(2), m.group(3), s)
    return table


def service_stage_name(service):
    return "svc-" + service


def load_base_packages(path):
    pkgs = set()
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                pkgs.add(line.split()[0].split(":")[0])
    return pkgs


# ---------------------------------------------------------------------------
# Packages of libraries


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout, p.stderr


def needed_sonames(binary):
    rc, out, err = run(["readelf", "-d", binary])
    if rc != 0:
        raise RuntimeError("readelf -d %s: %s" % (binary, err.strip()))
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))


def ldd(binary):
    """soname -> resolved path (None when ldd reports it not found)."""
    rc, out, err = run(["ldd", binary])
    if rc != 0:
        raise RuntimeError("ldd %s: %s" % (binary, (err or out).strip()))
    libs = {}
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"(\S+)\s+=>\s+not found", line)
        if m:
            libs[m.group(1)] = None
            continue
        m = re.match(r"(\S+)\s+=>\s+(/\S+)", line)
        if m:
            libs[m.group(1)] = m.group(2)
            continue
        m = re.match(r"(/\S+)\s+\(0x", line)  # the dynamic loader
        if m:
            libs[os.path.basename(m.group(1))] = m.group(1)
    return libs


def path_variants(path):
    """The names dpkg may record for a library: as resolved by the loader, the
    symlink's target, each with and without /usr (merged /usr)."""
    out = []
    for p in (path, os.path.realpath(path)):
        out.append(p)
        if p.startswith("/usr/"):
            out.append(p[len("/usr"):])
        else:
            out.append("/usr" + p)
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


_owner_cache = {}


def prefetch_owners(paths):
    """Looks up the packages of all `paths` with one dpkg-query run (each run
    reads dpkg's whole file database)."""
    todo = [p for p in set(paths) if p not in _owner_cache]
    if not todo:
        return
    candidates = sorted({c for p in todo for c in path_variants(p)})
    # Exit status 1 only says some candidate (another spelling) is unknown.
    _, out, _ = run(["dpkg-query", "-S"] + candidates)
    owners = {}
    for line in out.splitlines():
        if line.startswith("diversion "):
            continue
        pkgs, _, p = line.partition(": ")
        owners.setdefault(p.strip(), pkgs.split(",")[0].strip().split(":")[0])
    for p in todo:
        _owner_cache[p] = next((owners[c] for c in path_variants(p) if c in owners), None)


def owner_package(path):
    prefetch_owners([path])
    return _owner_cache[path]


_dep_graph = None


def dependency_graph():
    """package -> packages it (pre-)depends on, over the installed packages;
    alternatives and virtual packages resolve to the installed ones."""
    global _dep_graph
    if _dep_graph is not None:
        return _dep_graph
    rc, out, err = run(["dpkg-query", "-W", "-f",
                        "${Package}\t${db:Status-Abbrev}\t${Provides}\t${Pre-Depends}, ${Depends}\n"])
    if rc != 0:
        raise RuntimeError("dpkg-query -W: " + err.strip())
    installed, provides, raw = set(), {}, {}
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) < 4 or not fields[1].startswith("ii"):
            continue
        pkg = fields[0]
        installed.add(pkg)
        raw[pkg] = fields[3]
        for prov in fields[2].split(","):
            name = prov.strip().split(" ")[0].split(":")[0]
            if name:
                provides.setdefault(name, set()).add(pkg)
    graph = {}
    for pkg, deps in raw.items():
        edges = set()
        for group in deps.split(","):
            for alt in group.split("|"):
                name = alt.strip().split(" ")[0].split(":")[0]
                if not name:
                    continue
                if name in installed:
                    edges.add(name)
                edges |= provides.get(name, set())
        graph[pkg] = edges
    _dep_graph = graph
    return graph


def dependency_closure(pkgs):
    graph = dependency_graph()
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(graph.get(p, ()))
    return seen


# ---------------------------------------------------------------------------
# Checks


def parse_targets(items):
    targets = {}
    for item in items or []:
        name, _, path = item.partition("=")
        targets[name] = path
    return targets


def load(dockerfile):
    with open(dockerfile) as f:
        text = f.read()
    globals_, stages = parse_dockerfile(text)
    return text, globals_, stages


def check_libs(args):
    errors = []
    _, globals_, stages = load(args.dockerfile)
    base = load_base_packages(args.base_packages)
    targets = parse_targets(args.target)
    table = build_table(stages)
    if not table:
        return ["%s: no `case \"${SERVICE}\"` arms `<service>) target=... binary=... ;;` "
                "in the build stage" % args.dockerfile]
    values = dict(global_args(globals_))
    for service in sorted(table):
        target, _, _ = table[service]
        values["SERVICE"] = service
        stage = stage_by_name(stages, service_stage_name(service))
        if stage is None:
            errors.append("service %s: no stage %s" % (service, service_stage_name(service)))
            continue
        stage_chain = chain(stages, stage, values)
        installed = {}
        for s in stage_chain:
            for p in apt_installs(s):
                installed.setdefault(p, s.name or ("stage %d" % s.index))
        binary = targets.get(target)
        if not binary:
            errors.append("service %s: target %s is not an executable of this build"
                          % (service, target))
            continue
        if not os.path.isfile(binary):
            errors.append("service %s: %s is not built (cmake --build . --target %s)"
                          % (service, binary, target))
            continue
        name = os.path.basename(binary)
        where = service_stage_name(service)
        try:
            needed = needed_sonames(binary)
            libs = ldd(binary)
        except RuntimeError as e:
            errors.append("%s: %s" % (name, e))
            continue
        prefetch_owners([p for p in libs.values() if p])
        explicit = set(installed) | base
        reachable = dependency_closure(explicit)
        used = set()
        for soname, path in sorted(libs.items()):
            if soname.startswith("linux-vdso") or soname.startswith("linux-gate"):
                continue
            if path is None:
                errors.append("%s: %s: not found by the loader" % (name, soname))
                continue
            pkg = owner_package(path)
            if pkg is None:
                errors.append("%s: %s (%s) belongs to no Debian package; the image cannot "
                              "install it" % (name, soname, path))
                continue
            used.add(pkg)
            if soname in needed:
                if pkg not in explicit:
                    errors.append(
                        "%s (SERVICE=%s): links %s (%s) from Debian package %s, which the "
                        "image does not install: add %s to the apt-get install list of stage %s"
                        % (name, service, soname, path, pkg, pkg, where))
            elif pkg not in reachable:
                errors.append(
                    "%s (SERVICE=%s): needs %s (%s) from Debian package %s, which no package "
                    "the image installs depends on: add %s to the apt-get install list of "
                    "stage %s" % (name, service, soname, path, pkg, pkg, where))
        for pkg, stage_name in sorted(installed.items()):
            if pkg not in used:
                errors.append(
                    "%s (SERVICE=%s): stage %s installs %s, which ships no library the binary "
                    "needs (runtime stages carry only the binary's libraries)"
                    % (name, service, stage_name, pkg))
        if args.verbose:
            print("%s (SERVICE=%s): %d libraries from %s" % (
                name, service, len(libs), " ".join(sorted(used - base)) or "the base image"))
    return errors


def symlink_chain(path):
    """path, each symlink it goes through, and the file it ends at (/usr/bin/c++
    -> /etc/alternatives/c++ -> /usr/bin/g++ -> g++-12 ...)."""
    out, seen = [path], set()
    cur = path
    while os.path.islink(cur) and cur not in seen:
        seen.add(cur)
        cur = os.path.join(os.path.dirname(cur), os.readlink(cur))
        cur = os.path.normpath(cur)
        out.append(cur)
    out.append(os.path.realpath(path))
    return out


def first_owner(path):
    links = symlink_chain(path)
    prefetch_owners(links)
    for p in links:
        if _owner_cache.get(p):
            return _owner_cache[p]
    return None


def read_cmake_cache(build_dir):
    """name -> (type, value) of a build tree's CMakeCache.txt."""
    cache = {}
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"([^#/][^:=]*):(\w+)=(.*)", line.rstrip("\n"))
            if m:
                cache[m.group(1)] = (m.group(2), m.group(3))
    return cache


def check_build_deps(args):
    """The build stage's packages provide every system file the services'
    builds use: the headers their objects include and the libraries they link
    (this Ninja build tree's dependency log and graph), and what configure finds
    with the build stage's options (a configure-only run into --scratch-dir:
    tools, libraries, CMake package files). Each listed build package must
    provide one of those files itself or through a dependency no base package
    brings in. With --dockerignore, configure runs on a copy of the context it
    leaves, and every project file the builds use must be in that context."""
    errors = []
    _, globals_, stages = load(args.dockerfile)
    table = build_table(stages)
    if not table:
        return ["%s: no build mapping" % args.dockerfile]
    build_stage = next(iter(table.values()))[2]
    listed = []
    for p in apt_installs(build_stage):
        if p not in listed:
            listed.append(p)
    base = load_base_packages(args.base_packages)
    build_dir = os.path.realpath(args.build_dir)
    cache = read_cmake_cache(build_dir)
    if "ninja" not in cache.get("CMAKE_GENERATOR", ("", ""))[1].lower():
        print("build-deps: needs a Ninja build tree (its dependency log); skipped")
        return None
    source_dir = os.path.realpath(cache["CMAKE_HOME_DIRECTORY"][1])
    ninja = cache.get("CMAKE_MAKE_PROGRAM", ("", "ninja"))[1]
    cmake = cache["CMAKE_COMMAND"][1]
    targets = parse_targets(args.target)

    # The build stage's configure command line, as the Dockerfile has it.
    configure = None
    for ins in build_stage.instructions:
        m = re.search(r"cmake\s+-S\s+\S+\s+-B\s+\S+(.*?)(?:;|&&|$)", ins.args)
        if ins.keyword == "RUN" and m:
            configure = [t for t in shlex.split(m.group(1)) if t.startswith("-D") or t.startswith("-G")
                         or t == "Ninja"]
    if not configure:
        return ["%s: the build stage has no `cmake -S ... -B ...` configure" % args.dockerfile]
    scratch = os.path.realpath(args.scratch_dir)
    patterns = read_dockerignore(args.dockerignore) if args.dockerignore else None
    configure_source = source_dir
    if patterns is not None:
        # Configure what the image build sees: the context .dockerignore leaves.
        configure_source = os.path.join(scratch, "context")
        copy_context(source_dir, configure_source, patterns, skip=(build_dir, scratch))
    rc, out, err = run([cmake, "-S", configure_source, "-B", os.path.join(scratch, "build")]
                       + configure)
    if rc != 0:
        return ["the build stage's configure (%s) fails:\n%s%s" % (" ".join(configure), out, err)]
    scratch_cache = read_cmake_cache(os.path.join(scratch, "build"))

    used = {}  # system file -> what used it

    def use(path, why):
        path = os.path.normpath(path)
        real = os.path.realpath(path)
        if patterns is not None and real.startswith(source_dir + os.sep):
            rel = os.path.relpath(real, source_dir)
            if not real.startswith(build_dir + os.sep) and ignore_matches(patterns, rel):
                errors.append("%s (%s) is excluded from the build context by .dockerignore"
                              % (rel, why))
        for root in (build_dir, source_dir, scratch):
            if real == root or real.startswith(root + os.sep):
                return
        if os.path.isfile(path):
            used.setdefault(path, why)

    for service in sorted(table):
        target, _, _ = table[service]
        if target not in targets or not os.path.isfile(targets[target]):
            errors.append("service %s: target %s is not built in %s" % (service, target, build_dir))
            continue
        out_path = os.path.relpath(os.path.realpath(targets[target]), build_dir)
        rc, inputs, err = run([ninja, "-C", build_dir, "-t", "inputs", out_path])
        if rc != 0:
            errors.append("ninja -t inputs %s: %s" % (out_path, err.strip()))
            continue
        inputs = inputs.split()
        for i in inputs:
            if os.path.isabs(i):
                use(i, "linked by " + target)
        objects = [i for i in inputs if i.endswith(".o")]
        rc, deps, err = run([ninja, "-C", build_dir, "-t", "deps"] + objects)
        if rc != 0:
            errors.append("ninja -t deps: %s" % err.strip())
            continue
        for line in deps.splitlines():
            if line.startswith("    /"):
                use(line.strip(), "included by " + target)
    for key, (kind, value) in scratch_cache.items():
        if kind == "FILEPATH" or key in ("CMAKE_COMMAND",):
            for v in value.split(";"):
                if v.startswith("/"):
                    use(v, "configure: " + key)
        elif kind == "PATH" and key.endswith("_DIR") and os.path.isdir(value):
            for f in sorted(os.listdir(value)):
                if re.search(r"(Config|-config)\.cmake$", f):
                    use(os.path.join(value, f), "configure: " + key)
                    break
    # flatc, the messages' code generator (an imported target, not cached).
    flatbuffers_dir = scratch_cache.get("FlatBuffers_DIR", ("", ""))[1]
    if flatbuffers_dir:
        use(os.path.join(flatbuffers_dir, "..", "..", "..", "..", "bin", "flatc"),
            "messages: flatc")

    chains = {path: symlink_chain(path) for path in used}
    prefetch_owners([p for c in chains.values() for p in c])
    reachable = dependency_closure(set(listed) | base)
    providers = set()
    for path, why in sorted(used.items()):
        pkg = next((_owner_cache[p] for p in chains[path] if _owner_cache.get(p)), None)
        if pkg is None:
            errors.append("%s (%s) belongs to no Debian package" % (path, why))
            continue
        providers.add(pkg)
        if pkg not in reachable:
            errors.append("the build uses %s (%s) from Debian package %s, which the build stage "
                          "does not install: add %s to its apt-get install list"
                          % (path, why, pkg, pkg))
    base_closure = dependency_closure(base)
    for pkg in listed:
        if not (dependency_closure([pkg]) - base_closure) & providers:
            errors.append("the build stage installs %s, which provides nothing the services' "
                          "builds use" % pkg)
    if args.verbose:
        print("build-deps: %d system files used, from %d packages: %s" % (
            len(used), len(providers), " ".join(sorted(providers - base))))
    return errors


def check_lint(args):
    errors = []
    text, globals_, stages = load(args.dockerfile)
    targets = parse_targets(args.target)
    gargs = global_args(globals_)

    def err(msg):
        errors.append("%s: %s" % (args.dockerfile, msg))

    if len(stages) < 2:
        err("not multi-stage: %d FROM" % len(stages))
        return errors
    names = {s.name.lower() for s in stages if s.name}

    # Base images: pinned tags, never :latest or untagged.
    for s in stages:
        base = expand(s.base, gargs)
        if stage_by_name(stages, base) is not None:
            continue
        image = base.split("@", 1)[0]
        last = image.rsplit("/", 1)[-1]
        if "@" not in base and ":" not in last:
            err("line %d: FROM %s has no tag (implies :latest)" % (s.line_no, s.base))
        elif last.endswith(":latest"):
            err("line %d: FROM %s uses :latest" % (s.line_no, s.base))
    for s in stages:
        for ins in s.instructions:
            if ins.keyword == "ADD" and re.search(r"\b(https?|ftp)://|git@", ins.args):
                err("line %d: ADD of a URL (%s); download in a RUN with a checksum instead"
                    % (ins.line_no, ins.args))
            if ins.keyword in ("COPY", "ADD", "RUN") and ":latest" in ins.args:
                err("line %d: %s refers to :latest" % (ins.line_no, ins.keyword))

    # SERVICE: a global argument that selects the final stage, redeclared and
    # used by the build stage.
    if "SERVICE" not in gargs:
        err("no global `ARG SERVICE` before the first FROM")
    final = stages[-1]
    if "SERVICE" not in final.base:
        err("line %d: the final stage's FROM (%s) does not depend on ${SERVICE}"
            % (final.line_no, final.base))
    table = build_table(stages)
    if not table:
        err("the build stage has no `case \"${SERVICE}\"` arms "
            "`<service>) target=... binary=... ;;`")
        return errors
    build_stage = next(iter(table.values()))[2]
    if not any(i.keyword == "ARG" and i.args.split("=")[0].strip() == "SERVICE"
               for i in build_stage.instructions):
        err("stage %s uses SERVICE without redeclaring `ARG SERVICE`" % build_stage.name)
    if not any(i.keyword == "COPY" and re.search(r"--from=%s\b" % re.escape(build_stage.name or ""),
                                                 i.args)
               for s in chain(stages, final, dict(gargs, SERVICE=sorted(table)[0]))
               for i in s.instructions):
        err("the final stage copies nothing from the build stage %s" % build_stage.name)

    services = set(table)
    if set(EXPECTED_PORTS) - services:
        err("services without a build mapping: %s" % " ".join(sorted(set(EXPECTED_PORTS) - services)))
    for extra in sorted(services - set(EXPECTED_PORTS)):
        err("service %s is not in the platform's service list" % extra)
    svc_stages = {s.name[len("svc-"):] for s in stages if s.name and s.name.startswith("svc-")}
    for orphan in sorted(svc_stages - services - {"none"}):
        err("stage svc-%s has no build mapping" % orphan)

    build_dir = os.path.realpath(args.build_dir) if args.build_dir else None
    mapped_targets = set()
    for service in sorted(table):
        target, binary, _ = table[service]
        mapped_targets.add(target)
        if target not in targets:
            err("service %s maps to target %s, which is not an executable target of the "
                "CMake project (%s)" % (service, target, " ".join(sorted(targets))))
        elif build_dir:
            actual = os.path.relpath(os.path.realpath(targets[target]), build_dir)
            if actual != binary:
                err("service %s: the build stage takes the binary from %s, CMake puts "
                    "target %s at %s" % (service, binary, target, actual))
        # The service's stage chain: non-root user, entry point, ports.
        values = dict(gargs, SERVICE=service)
        stage = stage_by_name(stages, service_stage_name(service))
        if stage is None:
            err("service %s: no stage %s" % (service, service_stage_name(service)))
            continue
        final_chain = chain(stages, final, values)
        if final_chain[1:2] != [stage]:
            err("service %s: the final stage does not derive from %s"
                % (service, service_stage_name(service)))
        user = entry = None
        ports = set()
        for s in final_chain:  # nearest stage first
            for ins in reversed(s.instructions):
                if ins.keyword == "USER" and user is None:
                    user = ins.args.strip()
                if ins.keyword == "ENTRYPOINT" and entry is None:
                    entry = ins.args.strip()
                if ins.keyword == "EXPOSE":
                    for tok in expand(ins.args, values).split():
                        ports.add(int(tok.split("/")[0]))
        if user is None:
            err("service %s: the final stage runs as root (no USER)" % service)
        else:
            uid, _, gid = expand(user, values).partition(":")
            if not uid.isdigit() or int(uid) == 0 or (gid and (not gid.isdigit() or int(gid) == 0)):
                err("service %s: USER %s is not a numeric non-zero uid[:gid] (Kubernetes "
                    "runAsNonRoot needs a numeric uid)" % (service, user))
        want = ["/usr/local/bin/" + os.path.basename(binary)]
        if service not in TOOLS:
            want += ["--config", "/etc/fedrx/%s.conf" % service]
        try:
            got = json.loads(entry) if entry else None
        except ValueError:
            got = entry
        if got != want:
            err("service %s: ENTRYPOINT is %s, expected the exec form %s"
                % (service, entry, json.dumps(want)))
        if ports != EXPECTED_PORTS.get(service, ports):
            err("service %s: EXPOSE %s, the topology has %s" % (
                service, " ".join(map(str, sorted(ports))) or "nothing",
                " ".join(map(str, sorted(EXPECTED_PORTS[service]))) or "nothing"))

    # Every deployable executable of the project is an image.
    skip = set(args.not_deployed or [])
    for target in sorted(set(targets) - mapped_targets - skip):
        err("executable target %s is built by CMake but no SERVICE builds it (map it in the "
            "build stage, or list it as not deployed in tests/docker/CMakeLists.txt)" % target)

    # Runtime stages: only what runs (no recommends, no apt lists left).
    runtime_stages = set()
    for service in table:
        for s in chain(stages, final, dict(gargs, SERVICE=service)):
            runtime_stages.add(s.index)
    for s in stages:
        if s.index not in runtime_stages:
            continue
        for ins in s.instructions:
            if ins.keyword == "RUN" and "apt-get install" in ins.args:
                if "--no-install-recommends" not in ins.args:
                    err("line %d: runtime apt-get install without --no-install-recommends"
                        % ins.line_no)
                if "rm -rf /var/lib/apt/lists" not in ins.args:
                    err("line %d: runtime apt-get leaves /var/lib/apt/lists in the layer"
                        % ins.line_no)
    if not re.search(r"org\.opencontainers\.image\.title", text):
        err("no org.opencontainers.image.* labels")

    if args.dockerignore:
        errors += check_dockerignore(args.dockerignore, stages)
    return errors


def ignore_matches(patterns, path):
    """Whether .dockerignore patterns exclude `path` (a simplified matcher:
    `**` spans directories, a trailing / matches a directory and its content,
    `!` re-includes; last match wins)."""
    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.strip("/")
        hit = False
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatchcase(prefix, p) or (
                    p.startswith("**/") and any(fnmatch.fnmatchcase("/".join(parts[j:i]), p[3:])
                                               for j in range(i))):
                hit = True
                break
        if hit:
            excluded = not neg
    return excluded


def read_dockerignore(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.strip().startswith("#")]


def copy_context(source_dir, dest, patterns, skip=()):
    """Copies the files of source_dir that .dockerignore `patterns` leave in
    the build context to dest (replacing it); directories in `skip` (the build
    tree, dest itself) are never copied, whatever their names."""
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    skip = {os.path.realpath(p) for p in skip} | {os.path.realpath(dest)}
    for root, dirs, files in os.walk(source_dir):
        rel_root = os.path.relpath(root, source_dir)
        rel = lambda n: n if rel_root == "." else os.path.join(rel_root, n)
        dirs[:] = [d for d in dirs if not ignore_matches(patterns, rel(d))
                   and os.path.realpath(os.path.join(root, d)) not in skip]
        os.makedirs(os.path.join(dest, rel_root), exist_ok=True)
        for f in files:
            if not ignore_matches(patterns, rel(f)):
                shutil.copy2(os.path.join(root, f), os.path.join(dest, rel(f)),
                             follow_symlinks=False)


def check_dockerignore(path, stages):
    errors = []
    try:
        patterns = read_dockerignore(path)
    except OSError as e:
        return ["%s: %s" % (path, e)]
    for must in ("build/", "build-x/", ".fedrx-run/", ".git/", "node_modules/", "a/node_modules/"):
        if not ignore_matches(patterns, must.rstrip("/")):
            errors.append("%s: does not exclude %s" % (path, must))
    needed = {"CMakeLists.txt", "messages/CMakeLists.txt", "services/CMakeLists.txt",
              "gateway/CMakeLists.txt"}
    for s in stages:
        for ins in s.instructions:
            if ins.keyword == "COPY" and "--from" not in ins.args:
                srcs = [t for t in shlex.split(ins.args) if not t.startswith("--")][:-1]
                needed |= {t.rstrip("/") for t in srcs if t not in (".", "./")}
    for n in sorted(needed):
        if ignore_matches(patterns, n):
            errors.append("%s: excludes %s, which the image build copies" % (path, n))
    return errors


def mutate(args):
    with open(args.dockerfile) as f:
        lines = f.read().splitlines(keepends=True)
    out, stage, changed = [], None, 0
    for line in lines:
        m = re.match(r"\s*FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            stage = m.group(1)
        if args.remove_package and (args.stage is None or stage == args.stage):
            new = re.sub(r"(?<=\s)%s(?=\s|$)" % re.escape(args.remove_package), "", line)
            if new != line:
                changed += 1
                line = new
        if (args.add_package and stage == args.stage and "--no-install-recommends" in line
                and "apt-get" in line):
            line = line.replace("--no-install-recommends",
                                "--no-install-recommends " + args.add_package, 1)
            changed += 1
        if args.drop_user and re.match(r"\s*USER\s", line):
            changed += 1
            continue
        if args.set_base and m and stage == args.set_base[0]:
            line = re.sub(r"(FROM\s+)\S+", r"\g<1>" + args.set_base[1], line, count=1, flags=re.I)
            changed += 1
        out.append(line)
    if not changed:
        print("mutate: nothing changed", file=sys.stderr)
        return 1
    with open(args.output, "w") as f:
        f.writelines(out)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("libs", "lint", "build-deps"):
        p = sub.add_parser(name)
        p.add_argument("--dockerfile", required=True)
        p.add_argument("--target", action="append", metavar="NAME=FILE",
                       help="an executable target of the build and its file")
        p.add_argument("--verbose", action="store_true")
        if name in ("libs", "build-deps"):
            p.add_argument("--base-packages", required=True,
                           help="the packages the base images ship, one a line")
        if name == "build-deps":
            p.add_argument("--build-dir", required=True)
            p.add_argument("--scratch-dir", required=True,
                           help="where configure runs with the build stage's options")
            p.add_argument("--dockerignore",
                           help="configure the context this leaves, and check that it keeps "
                                "every project file the services' builds use")
        if name == "lint":
            p.add_argument("--build-dir")
            p.add_argument("--not-deployed", action="append", metavar="TARGET")
            p.add_argument("--dockerignore")
    p = sub.add_parser("mutate")
    p.add_argument("--dockerfile", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--remove-package")
    p.add_argument("--add-package")
    p.add_argument("--stage")
    p.add_argument("--drop-user", action="store_true")
    p.add_argument("--set-base", nargs=2, metavar=("STAGE", "IMAGE"))
    args = ap.parse_args()

    if args.command == "mutate":
        return mutate(args)
    try:
        check = {"libs": check_libs, "lint": check_lint, "build-deps": check_build_deps}
        errors = check[args.command](args)
    except (OSError, RuntimeError) as e:
        errors = [str(e)]
    if errors is None:
        return 77  # not applicable to this build tree
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print("%s: %d problem(s)" % (args.command, len(errors)), file=sys.stderr)
        return 1
    print("%s: ok" % args.command)
    return 0


if __name__ == "__main__":
    sys.exit(main())

// Consistency test: the manifests agree with the services they run and with
// the rest of the repository.
//  - each fedrx image is a SERVICE of deploy/Dockerfile, and the config file
//    its entry point reads is a file of a ConfigMap mounted in the container;
//  - each service's k8s .conf (from its rendered ConfigMap) binds 0.0.0.0 on
//    the bus and metrics ports its container declares, and the scrape
//    annotation names that metrics port;
//  - every tcp://host:port a config or an env variable names is a Service (or
//    a StatefulSet pod behind a headless Service) of the overlay with that port;
//  - every key file a config names under /run/fedrx/keys/ is provided by the
//    pod's Secret volume (copied there by the `keys` init container);
//  - every config key and FEDRX_ variable is one the code reads (the env name
//    is derived as the config loader does: a.b_c <- FEDRX_A_B_C);
//  - every Secret a workload references is created by a `kubectl create
//    secret` command in k8s/README.md, with each key it uses;
//  - the orchestrator's workflows are identical to deploy/workflows.
//   node consistency_test.js platform|site
'use strict';

const fs = require('fs');
const path = require('path');
const { REPO, load, overlayDir, isWorkload, podTemplate, ref } = require('./lib/manifests');

let failures = 0;
function fail(msg) {
  console.error(`FAIL ${msg}`);
  failures++;
}

function parseConf(text) {
  const out = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    out.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return out;
}

function envName(key) {
  return `FEDRX_${key.replace(/\./g, '_').toUpperCase()}`;
}

// Every quoted string in the services' and the gateway's C++ sources: the
// config keys they read are among them ("gateway.coordinator_endpoint"), or
// are built from a prefix and a suffix among them ("tox" + ".curve_key_file").
function sourceLiterals() {
  const literals = new Set();
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cc|h)$/.test(e.name)) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/"([a-z0-9_.]+)"/g)) literals.add(m[1]);
      }
    }
  };
  walk(path.join(REPO, 'services'));
  walk(path.join(REPO, 'gateway'));
  return literals;
}

function keyIsRead(key, literals) {
  if (literals.has(key)) return true;
  const segs = key.split('.');
  const last = segs[segs.length - 1];
  const lastKnown = literals.has(`.${last}`) || literals.has(last);
  // "gateway.services." + name + ".endpoint"
  for (let i = 1; i < segs.length - 1; i++) {
    if (literals.has(`${segs.slice(0, i).join('.')}.`) && lastKnown) return true;
  }
  // prefix + ".curve_key_file", with the prefix a literal of its own
  return segs.length === 2 && literals.has(segs[0]) && literals.has(`.${last}`);
}

// SERVICE -> the ENTRYPOINT of its stage `svc-<service>` in deploy/Dockerfile.
function dockerEntrypoints() {
  const text = fs.readFileSync(path.join(REPO, 'deploy', 'Dockerfile'), 'utf8');
  const out = new Map();
  let stage = null;
  for (const line of text.split('\n')) {
    const from = /^FROM\s+\S+\s+AS\s+svc-([a-z0-9-]+)/i.exec(line);
    if (from) stage = from[1];
    else if (/^FROM\s/i.test(line)) stage = null;
    const ep = /^ENTRYPOINT\s+(\[.*\])\s*$/.exec(line);
    if (ep && stage) out.set(stage, JSON.parse(ep[1]));
  }
  return out;
}

function main(args) {
  const overlay = args[0];
  const objects = load(overlay);
  const literals = sourceLiterals();
  const entrypoints = dockerEntrypoints();
  const services = objects.filter((o) => o.kind === 'Service');
  const statefulSets = objects.filter((o) => o.kind === 'StatefulSet');
  const configMaps = objects.filter((o) => o.kind === 'ConfigMap');
  const workloads = objects.filter(isWorkload);

  // host:port -> is it served in the overlay?
  const served = (host, port) => {
    const direct = services.find((s) => s.metadata.name === host);
    if (direct) return direct.spec.ports.some((p) => p.port === port);
    const m = /^(.+)-([0-9]+)\.([^.]+)$/.exec(host);
    if (!m) return false;
    const sts = statefulSets.find((s) => s.metadata.name === m[1] && s.spec.serviceName === m[3]);
    const headless = services.find((s) => s.metadata.name === m[3] && s.spec.clusterIP === 'None');
    return Boolean(sts && headless && Number(m[2]) < sts.spec.replicas && headless.spec.ports.some((p) => p.port === port));
  };
  const checkEndpoint = (where, key, value) => {
    for (const ep of value.split(',')) {
      const m = /^tcp:\/\/([^:]+):([0-9]+)$/.exec(ep.trim());
      if (!m) {
        fail(`${where}: ${key} = ${ep} is not tcp://host:port`);
        continue;
      }
      if (m[1] === '0.0.0.0' || /^[0-9.]+$/.test(m[1])) continue;
      if (!served(m[1], Number(m[2]))) fail(`${where}: ${key} = ${ep}: no Service of the overlay serves ${m[1]}:${m[2]}`);
    }
  };

  const secretRefs = new Map(); // secret name -> Set(keys)
  const noteSecret = (name, key) => {
    if (!secretRefs.has(name)) secretRefs.set(name, new Set());
    secretRefs.get(name).add(key);
  };

  for (const w of workloads) {
    const pod = podTemplate(w).spec;
    const annotations = podTemplate(w).metadata.annotations || {};
    const volumes = new Map((pod.volumes || []).map((v) => [v.name, v]));
    // Files the Secret volume provides (projected or plain).
    const keyFiles = new Set();
    for (const v of pod.volumes || []) {
      const sources = v.projected ? v.projected.sources : v.secret ? [{ secret: v.secret }] : [];
      for (const s of sources) {
        if (!s.secret) continue;
        for (const item of s.secret.items || []) {
          keyFiles.add(item.path);
          noteSecret(s.secret.secretName || s.secret.name, item.key);
        }
      }
    }
    for (const c of pod.containers) {
      for (const e of c.env || []) {
        if (e.valueFrom && e.valueFrom.secretKeyRef) noteSecret(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
      }
      if (!/(^|\/)fedrx\//.test(c.image)) continue;
      const where = `${ref(w)} container ${c.name}`;
      // The config file the container is started with: the image's entry
      // point (deploy/Dockerfile) unless the manifest replaces it, then args.
      const service = /(?:^|\/)fedrx\/([a-z0-9-]+)(?::|@|$)/.exec(c.image)[1];
      if (!entrypoints.has(service)) {
        fail(`${where}: image ${c.image}: deploy/Dockerfile has no stage svc-${service} (SERVICE=${service})`);
        continue;
      }
      const argv = [...(c.command || entrypoints.get(service)), ...(c.args || [])];
      const i = argv.lastIndexOf('--config');
      if (i < 0 || i + 1 >= argv.length) {
        fail(`${where}: the command ${JSON.stringify(argv)} names no --config file`);
        continue;
      }
      const confPath = argv[i + 1];
      const mount = (c.volumeMounts || []).find((m) => confPath.startsWith(`${m.mountPath}/`));
      const vol = mount && volumes.get(mount.name);
      const cm = vol && vol.configMap && configMaps.find((x) => x.metadata.name === vol.configMap.name);
      const file = confPath.slice(mount ? mount.mountPath.length + 1 : 0);
      if (!cm || !cm.data || cm.data[file] === undefined) {
        fail(`${where}: --config ${confPath} is not a file of a mounted ConfigMap`);
        continue;
      }
      const conf = parseConf(cm.data[file]);
      const ports = new Map((c.ports || []).map((p) => [p.name, p.containerPort]));
      // Settings from the environment override the file.
      const settings = new Map(conf);
      for (const e of c.env || []) settings.set(e.name, e.value !== undefined ? e.value : '');
      for (const from of c.envFrom || []) {
        const env = from.configMapRef && configMaps.find((x) => x.metadata.name === from.configMapRef.name);
        if (!env) fail(`${where}: envFrom ${JSON.stringify(from)} is not a ConfigMap of the overlay`);
        else for (const [k, v] of Object.entries(env.data || {})) settings.set(k, v);
      }

      for (const key of conf.keys()) {
        if (!keyIsRead(key, literals)) fail(`${where}: ${file}: key ${key} is not read by any service`);
      }
      for (const name of settings.keys()) {
        if (!name.startsWith('FEDRX_')) continue;
        const match = [...literals].some((l) => envName(l) === name) ||
          [...conf.keys()].some((k) => envName(k) === name);
        if (!match) fail(`${where}: ${name} is the environment name of no config key the code reads`);
      }
      const get = (key) => settings.get(envName(key)) !== undefined ? settings.get(envName(key)) : settings.get(key);

      const listen = get('http.listen') || '';
      if (listen !== `0.0.0.0:${ports.get('metrics')}`) fail(`${where}: http.listen = ${listen}, expected 0.0.0.0:${ports.get('metrics')}`);
      if (annotations['prometheus.io/port'] !== String(ports.get('metrics'))) {
        fail(`${ref(w)}: prometheus.io/port ${annotations['prometheus.io/port']} is not the metrics port ${ports.get('metrics')}`);
      }
      for (const [key, value] of conf) {
        if (key.endsWith('endpoint') && value.startsWith('tcp://0.0.0.0:')) {
          if (value !== `tcp://0.0.0.0:${ports.get('bus')}`) fail(`${where}: ${key} = ${value} binds another port than the declared bus port ${ports.get('bus')}`);
        }
      }
      if (ports.has('bus') && ![...conf.values()].includes(`tcp://0.0.0.0:${ports.get('bus')}`)) {
        fail(`${where}: nothing binds the declared bus port ${ports.get('bus')} on 0.0.0.0`);
      }
      for (const [key, value] of settings) {
        const k = key;
        if (/^tcp:\/\//.test(value) && !value.startsWith('tcp://0.0.0.0:')) checkEndpoint(where, k, value);
        if (/(^|[._])redis$/i.test(k) && /^[a-z0-9.-]+:[0-9]+$/.test(value)) {
          const [h, p] = value.split(':');
          if (!served(h, Number(p))) fail(`${where}: ${k} = ${value}: no Service of the overlay serves it`);
        }
        if (/^\/run\/fedrx\/keys\//.test(value)) {
          const f = value.slice('/run/fedrx/keys/'.length);
          if (!keyFiles.has(f)) fail(`${where}: ${k} = ${value}, which the pod's Secret volume does not provide`);
        }
      }
      if (conf.has('redis.host')) {
        const port = Number(conf.get('redis.port') || 6379);
        if (!served(conf.get('redis.host'), port)) fail(`${where}: redis.host ${conf.get('redis.host')}:${port} is not a Service of the overlay`);
      }
    }
  }

  // Secrets: created by the README's commands, with every key used.
  const readme = fs.readFileSync(path.join(REPO, 'k8s', 'README.md'), 'utf8').replace(/\\\n/g, ' ');
  for (const [name, keys] of secretRefs) {
    const cmd = readme.split('\n').find((l) => new RegExp(`kubectl\\b.*\\bcreate secret generic ${name}(\\s|$)`).test(l));
    if (!cmd) {
      fail(`Secret ${name} is referenced but k8s/README.md has no "kubectl create secret generic ${name}" command`);
      continue;
    }
    for (const k of keys) {
      if (!new RegExp(`--from-(file|literal)=${k.replace(/\./g, '\\.')}=`).test(cmd)) {
        fail(`Secret ${name}: key ${k} is used but the README's command does not create it`);
      }
    }
  }

  // The orchestrator's workflows are deploy/workflows, byte for byte.
  if (overlay === 'platform') {
    const deployDir = path.join(REPO, 'deploy', 'workflows');
    const k8sDir = path.join(REPO, 'k8s', 'base', 'platform', 'orchestrator', 'workflows');
    const names = (d) => fs.readdirSync(d).filter((f) => f.endsWith('.yaml')).sort();
    const a = names(deployDir);
    const b = names(k8sDir);
    if (JSON.stringify(a) !== JSON.stringify(b)) fail(`workflows differ: deploy/workflows has ${a}, k8s has ${b}`);
    for (const f of a.filter((x) => b.includes(x))) {
      if (!fs.readFileSync(path.join(deployDir, f)).equals(fs.readFileSync(path.join(k8sDir, f)))) {
        fail(`k8s/base/platform/orchestrator/workflows/${f} differs from deploy/workflows/${f} (copy it over)`);
      }
    }
    const cm = configMaps.find((c) => c.metadata.name.startsWith('fedrx-workflows'));
    if (!cm || JSON.stringify(Object.keys(cm.data || {}).sort()) !== JSON.stringify(a)) {
      fail(`the ConfigMap fedrx-workflows does not hold exactly ${a} (k8s/base/platform/orchestrator/kustomization.yaml)`);
    }
  }
  if (overlay === 'site') {
    const env = parseConf(fs.readFileSync(path.join(overlayDir('site'), 'site-settings.env'), 'utf8'));
    if (!/^\/data\/stores\/[A-Za-z0-9_-]{1,64}$/.test(env.get('FEDRX_SITE_STORE') || '')) {
      fail(`site-settings.env: FEDRX_SITE_STORE ${env.get('FEDRX_SITE_STORE')} is not /data/stores/<name> (what fedrx-ingest writes)`);
    }
  }
  console.log(`${overlay}: ${workloads.length} workloads, ${secretRefs.size} Secrets referenced; ${failures} failure(s)`);
  return failures === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));

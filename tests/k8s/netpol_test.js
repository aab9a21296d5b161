// NetworkPolicy test: evaluates the rendered policies the way Kubernetes
// does (a pod selected by a policy of a type accepts/sends only what one of
// those policies allows; traffic needs both the sender's egress and the
// receiver's ingress) over every pair of workloads and every declared port,
// plus sources and destinations outside the namespace, and compares the
// connections allowed with the list of connections the platform needs:
// a missing one fails (a service cannot reach a caller it needs) and so does
// an extra one (a service accepts or opens traffic it does not need).
//   node netpol_test.js platform|site
'use strict';

const fs = require('fs');
const path = require('path');
const { load, overlayDir, isWorkload, podTemplate, selectorMatches } = require('./lib/manifests');

const DOMAIN = ['translational', 'trial', 'tox', 'clinical', 'reverse'];
// Addresses outside the cluster the test connects from and to.
const OUTSIDE = ['198.51.100.7', '10.96.0.1'];
const REDIS_CLIENTS = ['gateway', 'coordinator', 'orchestrator', 'report', 'tox', 'clinical', 'reverse'];

// A pod of the namespace, DNS in kube-system, or an address outside the cluster.
function podsOf(objects, namespace) {
  return objects.filter(isWorkload).map((w) => {
    const tpl = podTemplate(w);
    const ports = [];
    for (const c of tpl.spec.containers) {
      for (const p of c.ports || []) ports.push({ name: p.name, port: p.containerPort, protocol: p.protocol || 'TCP' });
    }
    return {
      kind: 'pod', name: tpl.metadata.labels['app.kubernetes.io/name'], namespace,
      labels: tpl.metadata.labels, ports,
      scrapePort: Number((tpl.metadata.annotations || {})['prometheus.io/port']),
    };
  });
}
const DNS = { kind: 'pod', name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' },
  ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] };
function external(ip) {
  return { kind: 'external', name: `external ${ip}`, ip };
}

function ipToInt(ip) {
  return ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
}
function inCidr(ip, cidr) {
  const [base, bits] = cidr.split('/');
  const n = Number(bits);
  const size = 2 ** (32 - n);
  return Math.floor(ipToInt(ip) / size) === Math.floor(ipToInt(base) / size);
}

// Does a policy peer (a `from` or `to` entry) cover `who`, for a policy in `ns`?
function peerCovers(peer, who, ns) {
  if (peer.ipBlock) {
    if (who.kind !== 'external') return false;
    if (!inCidr(who.ip, peer.ipBlock.cidr)) return false;
    return !(peer.ipBlock.except || []).some((c) => inCidr(who.ip, c));
  }
  if (who.kind !== 'pod') return false;
  if (peer.namespaceSelector) {
    const nsLabels = { 'kubernetes.io/metadata.name': who.namespace };
    if (!selectorMatches(peer.namespaceSelector, nsLabels)) return false;
  } else if (who.namespace !== ns) {
    return false;
  }
  return peer.podSelector ? selectorMatches(peer.podSelector, who.labels) : true;
}

function portCovers(rulePorts, dst, port, protocol) {
  if (!rulePorts || rulePorts.length === 0) return true;
  return rulePorts.some((p) => {
    if ((p.protocol || 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'string') {
      return dst.kind === 'pod' && dst.ports.some((d) => d.name === p.port && d.port === port && d.protocol === protocol);
    }
    return port >= p.port && port <= (p.endPort || p.port);
  });
}

function allowed(policies, ns, src, dst, port, protocol) {
  const side = (who, type) => policies.filter((p) => who.kind === 'pod' && who.namespace === ns &&
    (p.spec.policyTypes || ['Ingress']).includes(type) && selectorMatches(p.spec.podSelector || {}, who.labels));
  const egress = side(src, 'Egress');
  const egressOk = egress.length === 0 || egress.some((p) => (p.spec.egress || []).some((r) =>
    (!r.to || r.to.length === 0 || r.to.some((peer) => peerCovers(peer, dst, ns))) && portCovers(r.ports, dst, port, protocol)));
  const ingress = side(dst, 'Ingress');
  const ingressOk = ingress.length === 0 || ingress.some((p) => (p.spec.ingress || []).some((r) =>
    (!r.from || r.from.length === 0 || r.from.some((peer) => peerCovers(peer, src, ns))) && portCovers(r.ports, dst, port, protocol)));
  return egressOk && ingressOk;
}

// The connections each overlay needs, as "src -> dst:port/proto".
function expectedPlatform(pods) {
  const bus = (name) => pods.find((p) => p.name === name).ports.find((x) => x.name === 'bus').port;
  const e = new Set();
  const add = (s, d, port, proto = 'TCP') => e.add(`${s} -> ${d}:${port}/${proto}`);
  for (const ip of OUTSIDE) add(`external ${ip}`, 'gateway', 5560);
  add('gateway', 'coordinator', 5570);
  for (const s of [...DOMAIN, 'orchestrator', 'report']) add('gateway', s, bus(s));
  for (const s of [...DOMAIN, 'report']) add('orchestrator', s, bus(s));
  for (const c of REDIS_CLIENTS) add(c, 'redis', 6379);
  for (const c of [...REDIS_CLIENTS, 'prometheus']) {
    add(c, 'kube-dns', 53, 'UDP');
    add(c, 'kube-dns', 53, 'TCP');
  }
  for (const p of pods) add('prometheus', p.name, p.scrapePort);
  // The API server, for pod discovery. Its address differs from cluster to
  // cluster, so the base allows 443 and 6443 to any address (README: narrow it).
  for (const ip of OUTSIDE) for (const port of [443, 6443]) add('prometheus', `external ${ip}`, port);
  return e;
}

function expectedSite(pods, settings) {
  const e = new Set();
  const add = (s, d, port, proto = 'TCP') => e.add(`${s} -> ${d}:${port}/${proto}`);
  const m = /^tcp:\/\/([0-9.]+):([0-9]+)$/.exec(settings.FEDRX_SITE_GATEWAY || '');
  if (!m) throw new Error(`FEDRX_SITE_GATEWAY ${JSON.stringify(settings.FEDRX_SITE_GATEWAY)} is not tcp://IPv4:port`);
  add('site', `external ${m[1]}`, Number(m[2]));
  add('site', 'kube-dns', 53, 'UDP');
  add('site', 'kube-dns', 53, 'TCP');
  return { expected: e, gateway: external(m[1]), gatewayPort: Number(m[2]) };
}

function readEnvFile(file) {
  const out = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function main(args) {
  const overlay = args[0];
  if (!['platform', 'site'].includes(overlay)) {
    console.error('usage: node netpol_test.js platform|site');
    return 2;
  }
  const objects = load(overlay);
  const ns = objects.find((o) => o.kind === 'Namespace').metadata.name;
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  const pods = podsOf(objects, ns);
  let expected;
  const outside = OUTSIDE.map(external);
  if (overlay === 'platform') {
    expected = expectedPlatform(pods);
  } else {
    const site = expectedSite(pods, readEnvFile(path.join(overlayDir('site'), 'site-settings.env')));
    expected = site.expected;
    outside.push(site.gateway);
  }
  // Every source against every destination port: pods' declared ports, DNS,
  // and a few well-known ports outside the cluster.
  const sources = [...pods, ...outside];
  const destinations = [];
  for (const d of [...pods, DNS]) for (const p of d.ports) destinations.push([d, p.port, p.protocol]);
  for (const o of outside) for (const port of [443, 5560, 6379, 6443]) destinations.push([o, port, 'TCP']);
  const actual = new Set();
  for (const s of sources) {
    for (const [d, port, proto] of destinations) {
      if (s.kind === 'external' && d.kind === 'external') continue;
      if (s.kind === 'external' && d === DNS) continue;
      if (allowed(policies, ns, s, d, port, proto)) actual.add(`${s.name} -> ${d.name}:${port}/${proto}`);
    }
  }
  let failures = 0;
  for (const e of [...expected].sort()) {
    if (!actual.has(e)) {
      console.error(`FAIL ${overlay}: needed connection is blocked: ${e}`);
      failures++;
    }
  }
  for (const a of [...actual].sort()) {
    if (!expected.has(a)) {
      console.error(`FAIL ${overlay}: connection allowed that nothing needs: ${a}`);
      failures++;
    }
  }
  console.log(`${overlay}: ${policies.length} NetworkPolicies, ${sources.length} sources x ${destinations.length} destination ports; ` +
    `${actual.size} connections allowed, ${expected.size} needed; ${failures} failure(s)`);
  return failures === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));

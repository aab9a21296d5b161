// The deployment policy fedrx's rendered manifests must meet (issue 10): what
// every workload carries (probes, resources, a locked-down security context,
// a pinned image, scrape annotations) and what the overlay as a whole carries
// (disruption budgets, autoscalers for the stateless domain services, a
// default-deny NetworkPolicy, and the gateway as the only door from outside
// the namespace). check() returns the violations; each names the rule, the
// object and, where it applies, the container.
'use strict';

const { ref, isWorkload, podTemplate, selectorMatches, quantity } = require('./manifests');

const USER_ID = 10001;
// The domain services are stateless and must each have an autoscaler.
const DOMAIN_SERVICES = ['translational', 'trial', 'tox', 'clinical', 'reverse'];
// The one workload that may accept traffic from outside its namespace.
const GATEWAY = 'gateway';
const NAME_LABEL = 'app.kubernetes.io/name';

function isFedrxImage(image) {
  return /^(?:[^/]+\/)*fedrx\/[a-z0-9-]+(?::|@|$)/.test(image || '');
}

// "fedrx/gateway:0.1.0" -> tag "0.1.0"; digest images count as pinned.
function imagePinProblem(image) {
  if (!image) return 'no image';
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return null;
  const last = image.split('/').pop();
  const colon = last.lastIndexOf(':');
  if (colon < 0) return `image ${image} has no tag (it would pull :latest)`;
  const tag = last.slice(colon + 1);
  if (tag === '' || tag === 'latest') return `image ${image} is not pinned (tag "${tag}")`;
  return null;
}

function declaredPorts(container) {
  return (container.ports || []).map((p) => ({ name: p.name, number: p.containerPort }));
}

// The containerPort a probe's port (a name or a number) refers to, or null.
function resolvePort(container, port) {
  for (const p of declaredPorts(container)) {
    if (typeof port === 'string' && p.name === port) return p.number;
    if (typeof port === 'number' && p.number === port) return p.number;
  }
  return null;
}

function checkProbe(v, where, c, kind, probe, wantPath, metricsPort) {
  const rule = `${kind}-probe`;
  if (!probe) {
    v.push({ rule, where, container: c.name, message: `no ${kind}Probe` });
    return;
  }
  const fedrx = isFedrxImage(c.image);
  const action = probe.httpGet ? 'httpGet' : probe.tcpSocket ? 'tcpSocket' : probe.exec ? 'exec' : probe.grpc ? 'grpc' : null;
  if (action === null) {
    v.push({ rule, where, container: c.name, message: `${kind}Probe has no action` });
    return;
  }
  if (fedrx && action !== 'httpGet') {
    v.push({ rule, where, container: c.name,
      message: `${kind}Probe must be an httpGet of ${wantPath} (a fedrx service), not ${action}` });
    return;
  }
  if (action === 'httpGet' || action === 'tcpSocket' || action === 'grpc') {
    const port = probe[action].port;
    const resolved = resolvePort(c, port);
    if (resolved === null) {
      v.push({ rule, where, container: c.name,
        message: `${kind}Probe ${action} port ${JSON.stringify(port)} is not a declared containerPort` });
      return;
    }
    if (fedrx) {
      if (probe.httpGet.path !== wantPath) {
        v.push({ rule, where, container: c.name,
          message: `${kind}Probe path is ${JSON.stringify(probe.httpGet.path)}, expected ${wantPath}` });
      }
      if (metricsPort !== null && resolved !== metricsPort) {
        v.push({ rule, where, container: c.name,
          message: `${kind}Probe is on port ${resolved}, not the metrics port ${metricsPort}` });
      }
    }
  }
}

function checkResources(v, where, c) {
  const r = c.resources || {};
  for (const side of ['requests', 'limits']) {
    for (const what of ['cpu', 'memory']) {
      const q = r[side] && r[side][what];
      if (q === undefined || q === null || q === '') {
        v.push({ rule: 'resources', where, container: c.name, message: `no ${side}.${what}` });
      } else if (!(quantity(q) > 0)) {
        v.push({ rule: 'resources', where, container: c.name, message: `${side}.${what} ${q} is not a positive quantity` });
      }
    }
  }
  for (const what of ['cpu', 'memory']) {
    const rq = r.requests && quantity(r.requests[what]);
    const lim = r.limits && quantity(r.limits[what]);
    if (rq > 0 && lim > 0 && rq > lim) {
      v.push({ rule: 'resources', where, container: c.name,
        message: `requests.${what} ${r.requests[what]} exceeds limits.${what} ${r.limits[what]}` });
    }
  }
}

// The effective security settings: the container's own, else the pod's.
function checkSecurity(v, where, pod, c) {
  const ps = pod.securityContext || {};
  const cs = c.securityContext || {};
  const pick = (k) => (cs[k] !== undefined ? cs[k] : ps[k]);
  const push = (rule, message) => v.push({ rule, where, container: c.name, message });
  if (pick('runAsNonRoot') !== true) push('run-as-non-root', `runAsNonRoot is ${JSON.stringify(pick('runAsNonRoot'))}, must be true`);
  if (pick('runAsUser') !== USER_ID) push('run-as-user', `runAsUser is ${JSON.stringify(pick('runAsUser'))}, must be ${USER_ID}`);
  if (cs.readOnlyRootFilesystem !== true) push('read-only-root-filesystem', 'readOnlyRootFilesystem is not true');
  if (cs.allowPrivilegeEscalation !== false) push('no-privilege-escalation', 'allowPrivilegeEscalation is not false');
  if (cs.privileged === true) push('not-privileged', 'privileged is true');
  const caps = cs.capabilities || {};
  if (!(caps.drop || []).includes('ALL')) push('drop-all-capabilities', 'capabilities.drop does not include ALL');
  if ((caps.add || []).length > 0) push('drop-all-capabilities', `capabilities.add ${JSON.stringify(caps.add)}`);
  const seccomp = pick('seccompProfile');
  if (!seccomp || seccomp.type !== 'RuntimeDefault') push('seccomp-runtime-default', `seccompProfile is ${JSON.stringify(seccomp)}, must be RuntimeDefault`);
}

function checkWorkload(v, w) {
  const where = ref(w);
  const tpl = podTemplate(w);
  if (!tpl || !tpl.spec) {
    v.push({ rule: 'pod-template', where, message: 'no pod template' });
    return;
  }
  const pod = tpl.spec;
  const annotations = (tpl.metadata && tpl.metadata.annotations) || {};
  const containers = pod.containers || [];
  const inits = pod.initContainers || [];
  for (const k of ['hostNetwork', 'hostPID', 'hostIPC']) {
    if (pod[k] === true) v.push({ rule: 'no-host-namespaces', where, message: `${k} is true` });
  }
  for (const vol of pod.volumes || []) {
    if (vol.hostPath) v.push({ rule: 'no-host-namespaces', where, message: `volume ${vol.name} is a hostPath` });
  }
  // Only a pod that talks to the API server (under its own ServiceAccount)
  // gets a token.
  const ownAccount = pod.serviceAccountName && pod.serviceAccountName !== 'default';
  if (pod.automountServiceAccountToken !== false && !ownAccount) {
    v.push({ rule: 'service-account-token', where,
      message: 'automountServiceAccountToken is not false for a pod without a ServiceAccount of its own' });
  }

  // Scrape annotations name a port some container declares.
  let metricsPort = null;
  if (annotations['prometheus.io/scrape'] !== 'true') {
    v.push({ rule: 'scrape-annotations', where, message: 'prometheus.io/scrape is not "true"' });
  }
  const portText = annotations['prometheus.io/port'];
  if (!/^[0-9]+$/.test(portText || '')) {
    v.push({ rule: 'scrape-annotations', where, message: `prometheus.io/port is ${JSON.stringify(portText)}, not a port number` });
  } else {
    metricsPort = Number(portText);
    const declared = containers.some((c) => declaredPorts(c).some((p) => p.number === metricsPort));
    if (!declared) {
      v.push({ rule: 'scrape-annotations', where, message: `prometheus.io/port ${metricsPort} is not a declared containerPort` });
    }
  }
  if (!/^\//.test(annotations['prometheus.io/path'] || '')) {
    v.push({ rule: 'scrape-annotations', where, message: `prometheus.io/path is ${JSON.stringify(annotations['prometheus.io/path'])}` });
  }

  if (containers.length === 0) v.push({ rule: 'pod-template', where, message: 'no containers' });
  const volumes = new Map((pod.volumes || []).map((x) => [x.name, x]));
  for (const c of containers) {
    // A fedrx service's probes are on its own metrics port.
    const ownMetrics = metricsPort !== null && resolvePort(c, metricsPort) !== null ? metricsPort : null;
    checkProbe(v, where, c, 'readiness', c.readinessProbe, '/readyz', ownMetrics);
    checkProbe(v, where, c, 'liveness', c.livenessProbe, '/healthz', ownMetrics);
    if (isFedrxImage(c.image)) {
      const tmp = (c.volumeMounts || []).find((m) => m.mountPath === '/tmp');
      if (!tmp || !volumes.get(tmp.name) || !volumes.get(tmp.name).emptyDir) {
        v.push({ rule: 'writable-tmp', where, container: c.name, message: 'no emptyDir mounted at /tmp (the root filesystem is read-only)' });
      }
    }
  }
  for (const c of [...inits, ...containers]) {
    checkResources(v, where, c);
    checkSecurity(v, where, pod, c);
    const problem = imagePinProblem(c.image);
    if (problem) v.push({ rule: 'image-pinned', where, container: c.name, message: problem });
  }
}

function podLabels(w) {
  const tpl = podTemplate(w);
  return (tpl && tpl.metadata && tpl.metadata.labels) || {};
}

// replicas, or the autoscaler's minimum when one scales the workload.
function effectiveReplicas(w, hpas) {
  const hpa = hpas.find((h) => h.spec.scaleTargetRef.kind === w.kind && h.spec.scaleTargetRef.name === w.metadata.name);
  const replicas = w.spec.replicas === undefined ? 1 : w.spec.replicas;
  return hpa ? Math.max(replicas, hpa.spec.minReplicas || 1) : replicas;
}

function checkDisruptionAndScaling(v, objects) {
  const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
  const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
  const hpas = objects.filter((o) => o.kind === 'HorizontalPodAutoscaler');
  for (const w of workloads) {
    const n = effectiveReplicas(w, hpas);
    if (n <= 1) continue;
    const pdb = pdbs.find((p) => selectorMatches(p.spec.selector, podLabels(w)));
    if (!pdb) {
      v.push({ rule: 'pdb', where: ref(w), message: `${n} replicas but no PodDisruptionBudget selects its pods` });
    } else if (typeof pdb.spec.minAvailable === 'number' && pdb.spec.minAvailable >= n) {
      v.push({ rule: 'pdb', where: ref(pdb), message: `minAvailable ${pdb.spec.minAvailable} leaves no disruption allowed for ${n} replicas of ${ref(w)}` });
    }
  }
  for (const h of hpas) {
    const t = h.spec.scaleTargetRef;
    if (!workloads.some((w) => w.kind === t.kind && w.metadata.name === t.name)) {
      v.push({ rule: 'hpa', where: ref(h), message: `scales ${t.kind}/${t.name}, which is not in the overlay` });
    }
    const cpu = (h.spec.metrics || []).some((m) => m.type === 'Resource' && m.resource && m.resource.name === 'cpu');
    if (!cpu) v.push({ rule: 'hpa', where: ref(h), message: 'no CPU resource metric' });
    if (h.apiVersion !== 'autoscaling/v2') v.push({ rule: 'hpa', where: ref(h), message: `apiVersion ${h.apiVersion}, expected autoscaling/v2` });
  }
  for (const w of workloads) {
    const name = podLabels(w)[NAME_LABEL];
    if (!DOMAIN_SERVICES.includes(name)) continue;
    const has = hpas.some((h) => h.spec.scaleTargetRef.kind === w.kind && h.spec.scaleTargetRef.name === w.metadata.name);
    if (!has) v.push({ rule: 'hpa', where: ref(w), message: `domain service ${name} has no HorizontalPodAutoscaler` });
  }
}

// True when a NetworkPolicy peer admits traffic from outside the namespace.
function peerIsExternal(peer) {
  return Boolean(peer.ipBlock || peer.namespaceSelector);
}

function checkNetworkPolicies(v, objects) {
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  const workloads = objects.filter(isWorkload);
  const deny = policies.find((p) => {
    const s = p.spec || {};
    const all = !s.podSelector || (Object.keys(s.podSelector.matchLabels || {}).length === 0 && (s.podSelector.matchExpressions || []).length === 0);
    const types = s.policyTypes || [];
    return all && types.includes('Ingress') && types.includes('Egress') &&
      (s.ingress || []).length === 0 && (s.egress || []).length === 0;
  });
  if (!deny) {
    v.push({ rule: 'default-deny', where: 'NetworkPolicy/*', message: 'no NetworkPolicy denies all ingress and egress for every pod of the namespace' });
  }
  for (const p of policies) {
    const selected = workloads.filter((w) => selectorMatches(p.spec.podSelector || {}, podLabels(w)));
    (p.spec.ingress || []).forEach((rule, i) => {
      const external = !rule.from || rule.from.length === 0 || rule.from.some(peerIsExternal);
      if (!external) return;
      for (const w of selected) {
        if (podLabels(w)[NAME_LABEL] !== GATEWAY) {
          v.push({ rule: 'external-ingress', where: ref(p),
            message: `ingress rule ${i} admits traffic from outside the namespace to ${ref(w)}; only the ${GATEWAY} may` });
        }
      }
    });
    (p.spec.egress || []).forEach((rule, i) => {
      if ((!rule.to || rule.to.length === 0) && (!rule.ports || rule.ports.length === 0)) {
        v.push({ rule: 'egress-restricted', where: ref(p), message: `egress rule ${i} allows every destination on every port` });
      }
    });
  }
}

function check(objects) {
  const v = [];
  for (const o of objects) {
    if (isWorkload(o)) checkWorkload(v, o);
  }
  checkDisruptionAndScaling(v, objects);
  checkNetworkPolicies(v, objects);
  return v;
}

function format(violation) {
  const c = violation.container ? ` container ${violation.container}` : '';
  return `[${violation.rule}] ${violation.where}${c}: ${violation.message}`;
}

module.exports = { check, format, isFedrxImage, imagePinProblem, DOMAIN_SERVICES, USER_ID };

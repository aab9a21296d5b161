// Negative policy test: the checker must catch what it is there to catch.
// Takes the rendered platform overlay, breaks one thing at a time in a copy
// (a liveness probe removed, limits removed, runAsNonRoot false, ...), writes
// the copy to a file and runs policy_test.js on it as a child process: it
// must exit 1 and name the object and the rule. The unbroken rendering must
// pass, so each failure is the break's doing.
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const YAML = require('yaml');
const { load } = require('./lib/manifests');

const POLICY = path.join(__dirname, 'policy_test.js');

function find(objects, kind, name) {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`the rendered platform has no ${kind}/${name}`);
  return o;
}
function container(objects, kind, name) {
  return find(objects, kind, name).spec.template.spec.containers[0];
}

// Each case: what is broken, how, and the rule + object the checker must name.
const CASES = [
  { what: 'gateway without a liveness probe', expect: ['liveness-probe', 'Deployment/gateway'],
    apply: (o) => { delete container(o, 'Deployment', 'gateway').livenessProbe; } },
  { what: 'tox without a readiness probe', expect: ['readiness-probe', 'Deployment/tox'],
    apply: (o) => { delete container(o, 'Deployment', 'tox').readinessProbe; } },
  { what: 'report liveness probe on an undeclared port', expect: ['liveness-probe', 'Deployment/report'],
    apply: (o) => { container(o, 'Deployment', 'report').livenessProbe.httpGet.port = 9999; } },
  { what: 'orchestrator without limits', expect: ['resources', 'Deployment/orchestrator'],
    apply: (o) => { delete container(o, 'Deployment', 'orchestrator').resources.limits; } },
  { what: 'redis exporter without requests', expect: ['resources', 'StatefulSet/redis'],
    apply: (o) => { delete find(o, 'StatefulSet', 'redis').spec.template.spec.containers[1].resources.requests; } },
  { what: 'coordinator pod with runAsNonRoot false', expect: ['run-as-non-root', 'StatefulSet/coordinator'],
    apply: (o) => {
      const pod = find(o, 'StatefulSet', 'coordinator').spec.template.spec;
      pod.securityContext.runAsNonRoot = false;
      for (const c of [...pod.containers, ...(pod.initContainers || [])]) delete c.securityContext.runAsNonRoot;
    } },
  { what: 'trial container with runAsNonRoot false', expect: ['run-as-non-root', 'Deployment/trial'],
    apply: (o) => { container(o, 'Deployment', 'trial').securityContext.runAsNonRoot = false; } },
  { what: 'clinical with a writable root filesystem', expect: ['read-only-root-filesystem', 'Deployment/clinical'],
    apply: (o) => { container(o, 'Deployment', 'clinical').securityContext.readOnlyRootFilesystem = false; } },
  { what: 'reverse allowing privilege escalation', expect: ['no-privilege-escalation', 'Deployment/reverse'],
    apply: (o) => { delete container(o, 'Deployment', 'reverse').securityContext.allowPrivilegeEscalation; } },
  { what: 'translational keeping capabilities', expect: ['drop-all-capabilities', 'Deployment/translational'],
    apply: (o) => { container(o, 'Deployment', 'translational').securityContext.capabilities = { add: ['NET_ADMIN'] }; } },
  { what: 'prometheus without a seccomp profile', expect: ['seccomp-runtime-default', 'Deployment/prometheus'],
    apply: (o) => {
      const pod = find(o, 'Deployment', 'prometheus').spec.template.spec;
      delete pod.securityContext.seccompProfile;
      delete pod.containers[0].securityContext.seccompProfile;
    } },
  { what: 'gateway init container running as root', expect: ['run-as-user', 'Deployment/gateway'],
    apply: (o) => { find(o, 'Deployment', 'gateway').spec.template.spec.initContainers[0].securityContext.runAsUser = 0; } },
  { what: 'report mounting an API token', expect: ['service-account-token', 'Deployment/report'],
    apply: (o) => { delete find(o, 'Deployment', 'report').spec.template.spec.automountServiceAccountToken; } },
  { what: 'gateway image :latest', expect: ['image-pinned', 'Deployment/gateway'],
    apply: (o) => { container(o, 'Deployment', 'gateway').image = 'fedrx/gateway:latest'; } },
  { what: 'redis image without a tag', expect: ['image-pinned', 'StatefulSet/redis'],
    apply: (o) => { find(o, 'StatefulSet', 'redis').spec.template.spec.containers[0].image = 'redis'; } },
  { what: 'tox scrape port not declared', expect: ['scrape-annotations', 'Deployment/tox'],
    apply: (o) => { find(o, 'Deployment', 'tox').spec.template.metadata.annotations['prometheus.io/port'] = '9999'; } },
  { what: 'coordinator without its PodDisruptionBudget', expect: ['pdb', 'StatefulSet/coordinator'],
    apply: (o) => { o.splice(o.indexOf(find(o, 'PodDisruptionBudget', 'coordinator')), 1); } },
  { what: 'tox without its HorizontalPodAutoscaler', expect: ['hpa', 'Deployment/tox'],
    apply: (o) => { o.splice(o.indexOf(find(o, 'HorizontalPodAutoscaler', 'tox')), 1); } },
  { what: 'no default-deny NetworkPolicy', expect: ['default-deny', 'NetworkPolicy/*'],
    apply: (o) => { o.splice(o.indexOf(find(o, 'NetworkPolicy', 'default-deny')), 1); } },
  { what: 'redis open to every source', expect: ['external-ingress', 'NetworkPolicy/redis'],
    apply: (o) => { delete find(o, 'NetworkPolicy', 'redis').spec.ingress[0].from; } },
  { what: 'coordinator open to another namespace', expect: ['external-ingress', 'NetworkPolicy/coordinator'],
    apply: (o) => { find(o, 'NetworkPolicy', 'coordinator').spec.ingress[0].from.push({ namespaceSelector: {} }); } },
  { what: 'orchestrator egress to anything', expect: ['egress-restricted', 'NetworkPolicy/orchestrator'],
    apply: (o) => { find(o, 'NetworkPolicy', 'orchestrator').spec.egress.push({}); } },
];

function runPolicy(file) {
  try {
    const out = execFileSync(process.execPath, [POLICY, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, output: out };
  } catch (e) {
    return { code: e.status, output: `${e.stdout || ''}${e.stderr || ''}` };
  }
}

function main() {
  const rendered = load('platform');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedrx-k8s-policy-'));
  let failures = 0;
  try {
    const writeCopy = (name, objects) => {
      const file = path.join(dir, `${name}.yaml`);
      fs.writeFileSync(file, objects.map((o) => YAML.stringify(o)).join('---\n'));
      return file;
    };
    const clean = runPolicy(writeCopy('unbroken', rendered));
    if (clean.code !== 0) {
      console.error(`FAIL the unbroken platform rendering does not pass the policy:\n${clean.output}`);
      return 1;
    }
    CASES.forEach((c, i) => {
      const copy = JSON.parse(JSON.stringify(rendered));
      c.apply(copy);
      const res = runPolicy(writeCopy(`case-${i}`, copy));
      const [rule, where] = c.expect;
      const named = res.output.split('\n').some((line) => line.includes(`[${rule}] ${where}`));
      if (res.code === 1 && named) {
        console.log(`ok   ${c.what}: exit 1, reports [${rule}] ${where}`);
      } else {
        failures++;
        console.error(`FAIL ${c.what}: expected exit 1 naming [${rule}] ${where}; got exit ${res.code}:\n${res.output}`);
      }
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${CASES.length - failures} passed, ${failures} failed`);
  return failures === 0 ? 0 : 1;
}

process.exitCode = main();

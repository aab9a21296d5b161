// Schema test: every object an overlay renders is validated against the
// Kubernetes API schemas (the npm package kubernetes-models, generated from
// Kubernetes' OpenAPI). A kind with no model is a failure naming it, not a
// skip. Also: names are valid DNS-1123 names and every namespaced object is
// in the overlay's namespace. Before checking the overlays, the validator is
// shown a broken Deployment and must refuse it, so a validator that accepts
// everything cannot pass.
//   node schema_test.js OVERLAY|DIR|FILE [NAMESPACE]
'use strict';

const { load, ref } = require('./lib/manifests');

// apiVersion "apps/v1" -> module "kubernetes-models/apps/v1"; core "v1" -> "kubernetes-models/v1".
function modelFor(obj) {
  if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') return null;
  let mod;
  try {
    mod = require(`kubernetes-models/${obj.apiVersion}`);
  } catch (e) {
    return null;
  }
  const Model = mod[obj.kind];
  return typeof Model === 'function' ? Model : null;
}

// Errors of one object ([] when valid).
function validate(obj) {
  const Model = modelFor(obj);
  if (!Model) return [`no schema model for apiVersion ${obj.apiVersion} kind ${obj.kind}`];
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    return [e.message];
  }
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume',
  'StorageClass', 'CustomResourceDefinition', 'PriorityClass']);
const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function selfCheck() {
  const broken = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'broken' },
    spec: { selector: {}, template: { spec: { containers: [{ name: 'x', image: 'x:1', ports: [{ containerPort: 'http' }] }] } } },
  };
  const errors = validate(broken);
  if (errors.length === 0) {
    console.error('FAIL self-check: the validator accepted a Deployment whose containerPort is a string');
    return false;
  }
  const unknown = validate({ apiVersion: 'example.org/v1', kind: 'Widget', metadata: { name: 'w' } });
  if (unknown.length === 0) {
    console.error('FAIL self-check: a kind with no model was not reported');
    return false;
  }
  return true;
}

function main(args) {
  if (args.length < 1) {
    console.error('usage: node schema_test.js OVERLAY|DIR|FILE [NAMESPACE]');
    return 2;
  }
  if (!selfCheck()) return 1;
  const [what, namespace] = args;
  let objects;
  try {
    objects = load(what);
  } catch (e) {
    console.error(`FAIL ${what}: ${e.message}`);
    return 1;
  }
  let failures = 0;
  const kinds = new Map();
  for (const obj of objects) {
    const where = ref(obj);
    kinds.set(`${obj.apiVersion} ${obj.kind}`, (kinds.get(`${obj.apiVersion} ${obj.kind}`) || 0) + 1);
    for (const e of validate(obj)) {
      console.error(`FAIL ${what}: ${where}: ${e}`);
      failures++;
    }
    const name = obj.metadata && obj.metadata.name;
    if (typeof name !== 'string' || name.length > 253 || !DNS1123.test(name)) {
      console.error(`FAIL ${what}: ${where}: metadata.name ${JSON.stringify(name)} is not a DNS-1123 name`);
      failures++;
    }
    if (namespace && !CLUSTER_SCOPED.has(obj.kind) && obj.metadata.namespace !== namespace) {
      console.error(`FAIL ${what}: ${where}: namespace ${JSON.stringify(obj.metadata.namespace)}, expected ${namespace}`);
      failures++;
    }
  }
  const summary = [...kinds.entries()].map(([k, n]) => `${n} ${k}`).join(', ');
  console.log(`${what}: ${objects.length} objects validated (${summary}); ${failures} failure(s)`);
  return failures === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));

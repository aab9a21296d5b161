// Loading fedrx's Kubernetes manifests for the tests: renders an overlay with
// `kubectl kustomize` (or reads an already rendered file) and parses every
// document, and small helpers the checks share (workloads, their pod
// templates, label selectors, quantities).
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const YAML = require('yaml');

const REPO = path.resolve(__dirname, '..', '..', '..');
const OVERLAYS = ['platform', 'site'];

function overlayDir(name) {
  return path.join(REPO, 'k8s', 'overlays', name);
}

// The rendered YAML of an overlay; throws with kubectl's own message.
function renderText(dir) {
  const kubectl = process.env.KUBECTL || 'kubectl';
  try {
    return execFileSync(kubectl, ['kustomize', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    });
  } catch (e) {
    const why = (e.stderr || e.message || '').toString().trim();
    throw new Error(`kubectl kustomize ${dir} failed: ${why}`);
  }
}

// Every non-empty document of a multi-document YAML text, as plain objects.
function parseDocuments(text, source) {
  const docs = YAML.parseAllDocuments(text);
  const out = [];
  docs.forEach((doc, i) => {
    if (doc.errors && doc.errors.length > 0) {
      throw new Error(`${source}: document ${i + 1}: ${doc.errors[0].message}`);
    }
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  });
  return out;
}

// An overlay by name ("platform"), an overlay directory, or a rendered file.
function load(what) {
  if (OVERLAYS.includes(what)) return parseDocuments(renderText(overlayDir(what)), what);
  if (fs.existsSync(what) && fs.statSync(what).isDirectory()) {
    return parseDocuments(renderText(what), what);
  }
  return parseDocuments(fs.readFileSync(what, 'utf8'), what);
}

function ref(obj) {
  return `${obj.kind}/${obj.metadata && obj.metadata.name}`;
}

const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'];

function isWorkload(obj) {
  return WORKLOAD_KINDS.includes(obj.kind);
}

function podTemplate(obj) {
  if (obj.kind === 'CronJob') return obj.spec.jobTemplate.spec.template;
  return obj.spec && obj.spec.template;
}

// matchLabels / matchExpressions against a label map.
function selectorMatches(selector, labels) {
  if (!selector) return false;
  labels = labels || {};
  for (const [k, v] of Object.entries(selector.matchLabels || {})) {
    if (labels[k] !== v) return false;
  }
  for (const e of selector.matchExpressions || []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const values = e.values || [];
    if (e.operator === 'In' && !(has && values.includes(labels[e.key]))) return false;
    if (e.operator === 'NotIn' && has && values.includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

// Kubernetes quantities ("250m", "2", "512Mi", "1G") as numbers, for comparing
// requests with limits; NaN for anything else.
function quantity(q) {
  if (typeof q === 'number') return q;
  const m = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(String(q));
  if (!m) return NaN;
  const scale = {
    m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  };
  return Number(m[1]) * (m[2] ? scale[m[2]] : 1);
}

module.exports = {
  REPO, OVERLAYS, overlayDir, renderText, parseDocuments, load, ref, isWorkload, podTemplate,
  selectorMatches, quantity,
};

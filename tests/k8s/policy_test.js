// Policy test: renders each overlay named on the command line (or reads a
// rendered YAML file) and checks every workload and the overlay as a whole
// against lib/policy.js. Prints each violation with its rule and object, and
// exits 1 when there is one.
'use strict';

const { load } = require('./lib/manifests');
const policy = require('./lib/policy');

function main(args) {
  if (args.length === 0) {
    console.error('usage: node policy_test.js OVERLAY|DIR|FILE...');
    return 2;
  }
  let failures = 0;
  for (const what of args) {
    let objects;
    try {
      objects = load(what);
    } catch (e) {
      console.error(`FAIL ${what}: ${e.message}`);
      failures++;
      continue;
    }
    const violations = policy.check(objects);
    for (const v of violations) console.error(`FAIL ${what}: ${policy.format(v)}`);
    const workloads = objects.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind)).length;
    console.log(`${what}: ${objects.length} objects, ${workloads} workloads, ${violations.length} policy violation(s)`);
    failures += violations.length;
  }
  return failures === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));

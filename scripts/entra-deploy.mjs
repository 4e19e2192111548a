#!/usr/bin/env node
// azd hooks (azure.yaml): deploys infra/entra.bicep, the broker's Microsoft Entra objects, around
// main.bicep, and stores its outputs as azd environment values that main.parameters.json reads.
//
//   node scripts/entra-deploy.mjs pre    preprovision: the broker app registration (+ service principal,
//                                        Token.Request for the callers, the optional connection app);
//                                        sets BROKER_API_CLIENT_ID, BROKER_API_URI, BROKER_TENANT_ID, ...
//   node scripts/entra-deploy.mjs post   postprovision: once main.bicep has created the Function App and
//                                        its identity, deploys again with BROKER_URL (redirect URIs) and
//                                        AZURE_MANAGED_IDENTITY_PRINCIPAL_ID (the connection app's
//                                        federated credential); skipped when the pre run already had both
//
// The same template both times: every Graph resource is keyed by its uniqueName, so a run updates the
// objects of the last one. azd environment values read (docs/deploy.md):
//   BROKER_ENTRA=false              skip: no app registration, main.bicep falls back to key modes
//   BROKER_CALLER_PRINCIPAL_IDS     JSON array of the callers' service principal object ids
//   BROKER_CONNECTION_APP=true      also create the secretless connection app
// Needs `az` signed in with Graph rights (Application Administrator, or Application.ReadWrite.All and
// AppRoleAssignment.ReadWrite.All). Plain Node, no dependencies.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const phase = process.argv[2];
const env = process.env;

// az and azd are .cmd scripts on Windows, which Node runs only through the shell: quote for cmd there.
const quote = (a) => (process.platform === 'win32' && (a === '' || /[\s"&|<>^]/.test(a)) ? `"${a}"` : a);

function run(command, args) {
  const r = spawnSync(command, args.map(quote), {
    cwd: root,
    encoding: 'utf8',
    shell: process.platform === 'win32',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) {
    console.error(`entra-deploy: ${command} ${args[0]} ${args[1] ?? ''} failed (exit ${r.status})`);
    process.exit(1);
  }
  return r.stdout;
}

function parseArray(name) {
  const raw = env[name]?.trim();
  if (!raw) return [];
  try {
    const value = JSON.parse(raw);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  } catch {}
  console.error(
    `entra-deploy: ${name} must be a JSON array of strings, e.g. ["00000000-0000-0000-0000-000000000000"]`,
  );
  process.exit(1);
}

if (phase !== 'pre' && phase !== 'post') {
  console.error('usage: node scripts/entra-deploy.mjs pre|post');
  process.exit(2);
}
if (env.BROKER_ENTRA === 'false') {
  console.log('entra-deploy: BROKER_ENTRA=false, no app registration: CALLER_AUTH and ADMIN_AUTH stay key');
  process.exit(0);
}
for (const name of ['AZURE_ENV_NAME', 'AZURE_LOCATION', 'AZURE_SUBSCRIPTION_ID']) {
  if (!env[name]) {
    console.error(`entra-deploy: ${name} is not set (run it through azd: azd provision)`);
    process.exit(1);
  }
}

const createConnectionApp = env.BROKER_CONNECTION_APP === 'true';
const brokerUrl = env.BROKER_URL ?? '';
const identityPrincipalId = createConnectionApp ? (env.AZURE_MANAGED_IDENTITY_PRINCIPAL_ID ?? '') : '';
// What this run deploys that depends on main.bicep; the post run is needed only when it grew.
const applied = createHash('sha256')
  .update(`${brokerUrl}\n${identityPrincipalId}`)
  .digest('hex')
  .slice(0, 16);
if (phase === 'post' && env.BROKER_ENTRA_APPLIED === applied) {
  console.log('entra-deploy: nothing new since the preprovision run');
  process.exit(0);
}

const parameters = {
  $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#',
  contentVersion: '1.0.0.0',
  parameters: {
    environmentName: { value: env.AZURE_ENV_NAME },
    brokerUrl: { value: brokerUrl },
    callerPrincipalIds: { value: parseArray('BROKER_CALLER_PRINCIPAL_IDS') },
    createConnectionApp: { value: createConnectionApp },
    brokerIdentityPrincipalId: { value: identityPrincipalId },
  },
};
const dir = mkdtempSync(join(tmpdir(), 'entra-deploy-'));
const file = join(dir, 'entra.parameters.json');
writeFileSync(file, JSON.stringify(parameters, null, 2));
console.log(`entra-deploy (${phase}): az deployment sub create --template-file infra/entra.bicep`);
let outputs;
try {
  outputs = JSON.parse(
    run('az', [
      'deployment',
      'sub',
      'create',
      '--name',
      `entra-${env.AZURE_ENV_NAME}`,
      '--subscription',
      env.AZURE_SUBSCRIPTION_ID,
      '--location',
      env.AZURE_LOCATION,
      '--template-file',
      join(root, 'infra', 'entra.bicep'),
      '--parameters',
      `@${file}`,
      '--query',
      'properties.outputs',
      '--output',
      'json',
    ]),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
for (const [name, output] of Object.entries(outputs ?? {})) {
  run('azd', ['env', 'set', name, String(output.value ?? '')]);
  console.log(`entra-deploy: ${name}=${output.value ?? ''}`);
}
run('azd', ['env', 'set', 'BROKER_ENTRA_APPLIED', applied]);

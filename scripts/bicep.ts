// The real Bicep CLI for CI and tests (issue 20), restored from NuGet only:
//
//   npm run infra:check      restores the CLI, then `bicep build` + `bicep lint` of every template that
//                            compiles here; fails on any error or warning (bicepconfig.json sets the rules)
//
// The CLI comes from the NuGet package Azure.Bicep.CommandLine.linux-x64 (its tools/bicep binary): a
// throwaway project under node_modules/.cache/bicep-restore asks `dotnet restore` for it, so it lands in
// the NuGet package cache and nothing is downloaded from anywhere else. No dotnet: it says so and skips.
// Templates that declare a Bicep extension (infra/entra.bicep, Microsoft Graph) are listed as skipped:
// their extension is restored from a container registry this network does not reach. Unless
// BICEP_GRAPH_TYPES_DIR names a folder of the published Graph types (index.json + types.json of
// github.com/microsoftgraph/msgraph-bicep-types, generated/microsoftgraph/microsoft.graph/v1.0/1.0.0,
// the version bicepconfig.json names): then they are packed into a local extension
// (`bicep publish-extension`) and those templates are built and linted against it too.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join, relative, resolve } from 'node:path';

export const BICEP_PACKAGE = 'Azure.Bicep.CommandLine.linux-x64';
export const BICEP_VERSION = '0.49.2';

export const repoRoot = resolve(import.meta.dirname, '..');

export type BicepCli = { path: string } | { skip: string };

const packagesDir = () => process.env.NUGET_PACKAGES ?? join(homedir(), '.nuget', 'packages');

function findBinary(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const found = findBinary(path);
      if (found) return found;
    } else if (entry.name === 'bicep') {
      return path;
    }
  }
  return undefined;
}

function hasDotnet(): boolean {
  const r = spawnSync('dotnet', ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

let cached: BicepCli | undefined;

/** The Bicep CLI's path, restoring it from NuGet first when the cache lacks it; or why it cannot be had. */
export function bicepCli(): BicepCli {
  if (cached) return cached;
  const packageDir = join(packagesDir(), BICEP_PACKAGE.toLowerCase(), BICEP_VERSION);
  let binary = findBinary(packageDir);
  if (!binary) {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      cached = { skip: `${BICEP_PACKAGE} is for linux-x64; this is ${process.platform}-${process.arch}` };
      return cached;
    }
    if (!hasDotnet()) {
      cached = { skip: `no dotnet on PATH: cannot restore ${BICEP_PACKAGE} ${BICEP_VERSION} from NuGet` };
      return cached;
    }
    const project = join(repoRoot, 'node_modules', '.cache', 'bicep-restore');
    mkdirSync(project, { recursive: true });
    writeFileSync(
      join(project, 'bicep-restore.csproj'),
      `<Project Sdk="Microsoft.NET.Sdk">
  <!-- Throwaway project: restoring it puts the Bicep CLI into the NuGet package cache (scripts/bicep.ts). -->
  <PropertyGroup>
    <TargetFramework>net8.0</TargetFramework>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="${BICEP_PACKAGE}" Version="[${BICEP_VERSION}]" />
  </ItemGroup>
</Project>
`,
    );
    const r = spawnSync('dotnet', ['restore', project, '--nologo'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`dotnet restore of ${BICEP_PACKAGE} failed:\n${r.stdout}${r.stderr}`);
    binary = findBinary(packageDir);
    if (!binary)
      throw new Error(`${BICEP_PACKAGE} ${BICEP_VERSION} restored, but no bicep binary in ${packageDir}`);
  }
  // NuGet extracts the binary without its execute bit.
  if ((statSync(binary).mode & 0o111) === 0) chmodSync(binary, 0o755);
  cached = { path: binary };
  return cached;
}

export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  level: string;
  code: string;
  message: string;
}

const DIAGNOSTIC = /^(.+?)\((\d+),(\d+)\) : (Error|Warning|Info) ([\w-]+): (.*)$/;

/** Runs the CLI; returns its stdout and every diagnostic it printed (Bicep writes them to stderr). */
export function runBicep(cli: string, args: string[]): { stdout: string; diagnostics: Diagnostic[] } {
  const r = spawnSync(cli, args, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const diagnostics: Diagnostic[] = [];
  const other: string[] = [];
  for (const line of `${r.stderr}`.split('\n')) {
    const m = DIAGNOSTIC.exec(line.trim());
    if (m) {
      diagnostics.push({
        file: relative(repoRoot, m[1]!),
        line: Number(m[2]),
        column: Number(m[3]),
        level: m[4]!,
        code: m[5]!,
        message: m[6]!,
      });
    } else if (line.trim()) other.push(line);
  }
  if (r.status !== 0 && diagnostics.length === 0) {
    throw new Error(`bicep ${args.join(' ')} exited ${r.status}:\n${other.join('\n')}`);
  }
  return { stdout: r.stdout, diagnostics };
}

/** The ARM JSON `bicep build --stdout` makes of a template, with the diagnostics of the build. */
export function buildArm(cli: string, file: string): { template: unknown; diagnostics: Diagnostic[] } {
  const { stdout, diagnostics } = runBicep(cli, ['build', file, '--stdout']);
  if (diagnostics.some((d) => d.level === 'Error')) return { template: undefined, diagnostics };
  return { template: JSON.parse(stdout), diagnostics };
}

/** Every .bicep file under infra/, split into those that compile here and those that cannot (and why). */
export function templates(): { compile: string[]; skipped: { file: string; reason: string }[] } {
  const compile: string[] = [];
  const skipped: { file: string; reason: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(repoRoot, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.bicep')) {
        const extension = /^extension\s+(\w+)/m.exec(readFileSync(join(repoRoot, path), 'utf8'));
        if (extension)
          skipped.push({
            file: path,
            reason: `declares the Bicep extension '${extension[1]}', restored from a registry this network does not reach (text-tested in test/unit/infra.test.ts)`,
          });
        else compile.push(path);
      }
    }
  };
  walk('infra');
  return { compile: compile.sort(), skipped };
}

/**
 * A bicepconfig.json that points the Graph extension at a local package made from the published types
 * in BICEP_GRAPH_TYPES_DIR; undefined without that variable.
 */
export function graphTypesConfig(cli: string): string | undefined {
  const dir = process.env.BICEP_GRAPH_TYPES_DIR;
  if (!dir) return undefined;
  const cache = join(repoRoot, 'node_modules', '.cache', 'bicep-graph');
  mkdirSync(cache, { recursive: true });
  const extension = join(cache, 'microsoftgraph-v1.0.tgz');
  runBicep(cli, ['publish-extension', resolve(dir, 'index.json'), '--target', extension, '--force']);
  const config = JSON.parse(readFileSync(join(repoRoot, 'bicepconfig.json'), 'utf8'));
  config.extensions.microsoftGraphV1 = extension;
  const path = join(cache, 'bicepconfig.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

function main(): number {
  const cli = bicepCli();
  if ('skip' in cli) {
    console.log(`infra:check skipped: ${cli.skip}`);
    return 0;
  }
  const version = spawnSync(cli.path, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`infra:check with ${version} (${cli.path})`);
  const { compile, skipped } = templates();
  const problems: Diagnostic[] = [];
  for (const file of compile) {
    const build = runBicep(cli.path, ['build', file, '--stdout']);
    const lint = runBicep(cli.path, ['lint', file]);
    const found = [...build.diagnostics, ...lint.diagnostics];
    problems.push(...found);
    console.log(`  ${found.length ? 'FAIL' : 'ok  '} ${file} (build + lint)`);
  }
  const graphConfig = skipped.length ? graphTypesConfig(cli.path) : undefined;
  for (const s of skipped) {
    if (!graphConfig) {
      console.log(`  skip ${s.file}: ${s.reason}`);
      continue;
    }
    const config = ['--config', graphConfig];
    const found = [
      ...runBicep(cli.path, ['build', s.file, '--stdout', ...config]).diagnostics,
      ...runBicep(cli.path, ['lint', s.file, ...config]).diagnostics,
    ];
    problems.push(...found);
    console.log(`  ${found.length ? 'FAIL' : 'ok  '} ${s.file} (build + lint against BICEP_GRAPH_TYPES_DIR)`);
  }
  // Build and lint report the same diagnostic, and linting main.bicep reports its modules' too.
  const unique = [...new Map(problems.map((d) => [`${d.file}:${d.line}:${d.column}:${d.code}`, d])).values()];
  for (const d of unique)
    console.log(`${d.file}(${d.line},${d.column}) : ${d.level} ${d.code}: ${d.message}`);
  if (unique.length) {
    console.log(
      `infra:check failed: ${unique.length} diagnostic(s); zero errors and zero warnings are required`,
    );
    return 1;
  }
  const checked = compile.length + (graphConfig ? skipped.length : 0);
  console.log(`infra:check passed: ${checked} template(s), no errors, no warnings`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) process.exitCode = main();

